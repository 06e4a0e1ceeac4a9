"""Reading manifests as kubectl does: `-f DIR` (lexical order, `-R`), several documents, `kind: List`,
and the one-line refusal of a document of another kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dgdr.domain.errors import ConfigurationError
from dgdr.domain.spec import API_VERSION, KIND
from dgdr.manifests import Document, load_manifests


def dgdr(name: str) -> dict[str, object]:
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "spec": {}}


def write(path: Path, *docs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(docs))
    return path


def names(docs: list[Document]) -> list[str]:
    return [d.name for d in docs]


def test_a_directory_is_its_manifests_in_lexical_order(tmp_path: Path) -> None:
    write(tmp_path / "b.yaml", dgdr("b"))
    write(tmp_path / "a.yml", dgdr("a1"), dgdr("a2"))
    (tmp_path / "c.json").write_text(json.dumps(dgdr("c")))
    (tmp_path / "notes.txt").write_text("not a manifest")
    write(tmp_path / "sub" / "d.yaml", dgdr("d"))
    docs = load_manifests([str(tmp_path)])
    assert names(docs) == ["a1", "a2", "b", "c"]
    assert [d.where for d in docs][:2] == [
        f"{tmp_path}/a.yml (document 1)",
        f"{tmp_path}/a.yml (document 2)",
    ]
    assert names(load_manifests([str(tmp_path)], recursive=True)) == ["a1", "a2", "b", "c", "d"]


def test_several_sources_and_stdin_keep_their_order(tmp_path: Path) -> None:
    first = write(tmp_path / "z.yaml", dgdr("z"))
    stdin = yaml.safe_dump(dgdr("piped")).encode()
    docs = load_manifests([str(first), "-"], stdin=stdin)
    assert names(docs) == ["z", "piped"] and docs[1].where == "<stdin>"


def test_a_directory_without_manifests_says_which_files_count(tmp_path: Path) -> None:
    (tmp_path / "readme.md").write_text("#")
    with pytest.raises(
        ConfigurationError, match=r"no manifest in this directory .*\.json, \.yaml, \.yml"
    ):
        load_manifests([str(tmp_path)])


def test_a_list_is_its_items(tmp_path: Path) -> None:
    listed = {"apiVersion": "v1", "kind": "List", "items": [dgdr("l1"), dgdr("l2")]}
    nested = {
        "kind": "DynamoGraphDeploymentRequestList",
        "items": [{"kind": "List", "items": [dgdr("n1")]}],
    }
    path = write(tmp_path / "list.yaml", listed, nested)
    docs = load_manifests([str(path)])
    assert names(docs) == ["l1", "l2", "n1"]
    assert docs[1].where == f"{path} (document 1, item 2)"
    assert docs[2].where == f"{path} (document 2, item 1, item 1)"
    bad = write(tmp_path / "bad.yaml", {"kind": "List", "items": ["text"]})
    with pytest.raises(ConfigurationError, match=r"bad.yaml \(item 1\) is not a mapping"):
        load_manifests([str(bad)])


def test_another_kind_is_refused_in_one_line_naming_the_document_and_its_kind() -> None:
    cm = Document("cm.yaml", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    dgd = Document(
        "x.yaml (document 2)", {"kind": "DynamoGraphDeployment", "metadata": {"name": "d"}}
    )
    assert cm.kind_problem() == (
        f"cm.yaml: ConfigMap 'c' is not a {KIND}, the only kind dgdr handles: apply it with kubectl"
    )
    problem = dgd.kind_problem()
    assert problem is not None and problem.startswith(
        "x.yaml (document 2): DynamoGraphDeployment 'd'"
    )
    assert "what a DGDR generates" in problem and "\n" not in problem
    assert Document("ok.yaml", dgdr("ok")).kind_problem() is None
    assert (
        Document("nokind.yaml", {"metadata": {"name": "n"}}).kind_problem() is None
    )  # the service names it


def test_an_unreadable_source_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot read .*missing.yaml: No such file"):
        load_manifests([str(tmp_path / "missing.yaml")])
