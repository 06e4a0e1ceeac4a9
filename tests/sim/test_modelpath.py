"""`spec.model` as a local path: which models are paths, the pure confinement rule, and, on a real
file system, that a path outside the model directories (as written, through `..`, or through a
symbolic link) is refused without the process looking at it: every stat, lstat, readlink and open
the process makes is recorded and none is outside the model directory (or its ancestors, which
resolving the operator's directory itself looks at)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim._modelpath import absolute, confine, local_model, looks_like_path

CONFIG = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 32768,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "vocab_size": 32000,
}


@pytest.mark.parametrize(
    "model",
    [
        "Qwen/Qwen3-0.6B",
        "Qwen/Qwen2.5-0.5B-Instruct",
        "meta-llama/Llama-3.1-8B",
        "deepseek-ai/DeepSeek-R1",
        "gpt2",
        "acme/unknown-8B",
        "models/llama",  # one `/`, relative: a hub id (write ./models/llama for the path)
    ],
)
def test_hub_ids_are_not_paths(model: str) -> None:
    assert not looks_like_path(model)


@pytest.mark.parametrize(
    "model",
    [
        "/etc/passwd",
        "/proc/self/environ",
        "./m",
        "../m",
        "~/m",
        "~root/m",
        ".",
        "..",
        "a/b/c",
        "a\\b",
        "config.json",
        "org/",
        "/x",
        "a/..",
        "./",
        "a//b",
        "Qwen/../../etc/passwd",
    ],
)
def test_paths_are_paths(model: str) -> None:
    assert looks_like_path(model)


MODELS = [("/models", "/models")]


@pytest.mark.parametrize(
    ("path", "confined"),
    [
        ("/etc/passwd", None),
        ("/proc/self/environ", None),
        ("/modelsX/config.json", None),  # a sibling whose name starts the same
        ("/", None),
        ("/models", ("/models", ".")),
        ("/models/q/config.json", ("/models", "q/config.json")),
        (absolute("../../etc/passwd", "/models/q"), None),
        (absolute("/models/../etc/passwd", "/"), None),
        (absolute("./q", "/models"), ("/models", "q")),
    ],
)
def test_confinement_is_a_pure_function_of_the_path_and_the_directories(
    path: str, confined: tuple[str, str] | None
) -> None:
    assert confine(path, MODELS) == confined


def test_a_directory_is_matched_as_written_and_as_resolved() -> None:
    dirs = [("/srv/models", "/mnt/disk/models")]
    assert confine("/srv/models/q", dirs) == ("/mnt/disk/models", "q")
    assert confine("/mnt/disk/models/q", dirs) == ("/mnt/disk/models", "q")
    assert confine("/srv/other", dirs) is None


_segment = st.sampled_from(["..", ".", "models", "modelsX", "q", "etc", "", "config.json"])


@given(st.lists(_segment, max_size=8), st.sampled_from(["/", "/models", "/models/q", "/etc"]))
def test_what_is_confined_stays_under_its_directory(segments: list[str], cwd: str) -> None:
    path = absolute("/".join(segments), cwd)
    found = confine(path, MODELS)
    inside = path == "/models" or path.startswith("/models/")
    assert (found is not None) == inside
    if found is not None:
        directory, relative = found
        assert ".." not in relative.split("/")
        assert os.path.normpath(os.path.join(directory, relative)) == path


# --------------------------------------------------------------------- on a real file system


class Touched:
    """Every path the process stats, lstats, reads a link of, or opens, while recording."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.recording = False

    def add(self, path: Any) -> None:
        if self.recording and isinstance(path, str | bytes | os.PathLike):
            self.paths.append(os.path.abspath(os.fsdecode(path)))

    def outside(self, root: Path) -> list[str]:
        """Touched paths neither under `root` nor one of its ancestors."""
        root_s = str(root)
        return [
            p
            for p in self.paths
            if not (
                p == root_s or p.startswith(root_s + "/") or root_s.startswith(p.rstrip("/") + "/")
            )
        ]


_AUDIT = Touched()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and args:
        _AUDIT.add(args[0])


sys.addaudithook(_audit)  # audit hooks cannot be removed; it records only while `recording`


@pytest.fixture
def touched(monkeypatch: pytest.MonkeyPatch) -> Iterator[Touched]:
    for name in ("stat", "lstat", "readlink"):
        real = getattr(os, name)

        def recorded(path: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            _AUDIT.add(path)
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(os, name, recorded)
    _AUDIT.paths.clear()
    _AUDIT.recording = True
    try:
        yield _AUDIT
    finally:
        _AUDIT.recording = False


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """models/mistral/config.json; outside/config.json (a valid config nobody may read); links."""
    models, outside = tmp_path / "models", tmp_path / "outside"
    (models / "mistral").mkdir(parents=True)
    (models / "mistral" / "config.json").write_text(json.dumps(CONFIG))
    outside.mkdir()
    (outside / "config.json").write_text(json.dumps(CONFIG))
    (models / "escape.json").symlink_to(outside / "config.json")
    (models / "escape-dir").symlink_to(outside)
    (models / "relative-escape").symlink_to("../outside")
    (models / "etc").symlink_to("/etc")
    (models / "alias").symlink_to("mistral")
    (models / "loop-a").symlink_to("loop-b")
    (models / "loop-b").symlink_to("loop-a")
    (models / "inner").mkdir()
    (models / "inner" / "config.json").symlink_to(outside / "config.json")
    return tmp_path


@pytest.mark.parametrize(
    "model",
    [
        "/etc/passwd",
        "/proc/self/environ",
        "{root}/outside/config.json",
        "{root}/outside",
        "{root}/models/../outside/config.json",
        "{root}/models/escape.json",
        "{root}/models/escape-dir",
        "{root}/models/escape-dir/config.json",
        "{root}/models/relative-escape/config.json",
        "{root}/models/etc/passwd",
        "{root}/models/inner",  # a directory whose config.json is a link out
        "{root}/models/loop-a/config.json",
    ],
)
def test_a_path_outside_the_model_directories_is_refused_without_being_looked_at(
    tree: Path, touched: Touched, model: str
) -> None:
    found = local_model(model.format(root=tree), (tree / "models",))
    touched.recording = False
    assert found is not None and found.config is None and found.refusal is not None
    assert "spec.model" in found.refusal and "--model-dir" in found.refusal
    assert touched.outside(tree / "models") == []
    assert not any(
        p.startswith(str(tree / "outside")) or p.startswith("/etc") for p in touched.paths
    )


@pytest.mark.parametrize(
    "model", ["{root}/models/mistral", "{root}/models/mistral/config.json", "{root}/models/alias"]
)
def test_a_config_under_a_model_directory_is_found(tree: Path, model: str) -> None:
    found = local_model(model.format(root=tree), (tree / "models",))
    assert found is not None and found.refusal is None
    assert found.config == tree / "models" / "mistral" / "config.json"


def test_a_model_directory_given_through_a_link_is_the_directory_it_names(tree: Path) -> None:
    (tree / "link-to-models").symlink_to(tree / "models")
    for model in (f"{tree}/link-to-models/mistral", f"{tree}/models/mistral"):
        found = local_model(model, (tree / "link-to-models",))
        assert found is not None and found.config == tree / "models" / "mistral" / "config.json"


def test_a_relative_path_is_read_against_the_working_directory(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tree / "models")
    found = local_model("./mistral", (tree / "models",))
    assert found is not None and found.config == tree / "models" / "mistral" / "config.json"
    refused = local_model("../outside", (tree / "models",))
    assert refused is not None and refused.refusal is not None


def test_under_a_model_directory_without_a_config_json_is_neither_found_nor_refused(
    tree: Path,
) -> None:
    assert local_model(f"{tree}/models/nothing-here-8B", (tree / "models",)) == local_model(
        f"{tree}/models", (tree / "models",)
    )
    found = local_model(f"{tree}/models/nothing-here-8B", (tree / "models",))
    assert found is not None and (found.config, found.refusal) == (None, None)


def test_with_no_model_directory_every_path_is_refused_and_none_looked_at(
    tree: Path, touched: Touched
) -> None:
    found = local_model(f"{tree}/models/mistral", ())
    touched.recording = False
    assert found is not None and found.refusal is not None and "no model directory" in found.refusal
    assert touched.paths == []


def test_offline_any_path_the_user_names_is_read(tree: Path) -> None:
    found = local_model(f"{tree}/outside", None)
    assert found is not None and found.config == tree / "outside" / "config.json"


def test_a_hub_id_is_never_looked_up_on_disk(tree: Path, touched: Touched) -> None:
    assert local_model("Qwen/Qwen3-0.6B", (tree / "models",)) is None
    assert touched.paths == []


def test_the_recorder_sees_a_read_outside(tree: Path, touched: Touched) -> None:
    # the refusal tests above can fail: reading the file outside is recorded
    (tree / "outside" / "config.json").read_text()
    os.path.realpath(tree / "models" / "escape.json")
    touched.recording = False
    assert str(tree / "outside" / "config.json") in touched.outside(tree / "models")


def _cache_repo_under(models: Path) -> Path:
    """models/hub/models--acme--Tiny-7B as huggingface_hub lays it out: refs/main names abc123;
    a newer snapshot def456 holds another config.json."""
    from tests.sim.test_hfcache import cache_repo

    cache_repo(models / "hub", "acme/Tiny-7B", {**CONFIG, "num_hidden_layers": 7}, "def456")
    cache_repo(models / "hub", "acme/Tiny-7B", CONFIG, "abc123")
    repo = models / "hub" / "models--acme--Tiny-7B"
    newer = (repo / "snapshots" / "abc123").lstat().st_mtime + 60
    os.utime(repo / "snapshots" / "def456", (newer, newer), follow_symlinks=False)
    return repo


@pytest.mark.parametrize("confined", [True, False])
def test_a_repository_folder_of_a_hugging_face_cache_reads_the_snapshot_refs_main_names(
    tree: Path, confined: bool
) -> None:
    repo = _cache_repo_under(tree / "models")
    found = local_model(str(repo), (tree / "models",) if confined else None)
    # (confined, the path to read is the walked one: the blob the snapshot links to)
    assert found is not None and found.refusal is None and found.config is not None
    assert json.loads(found.config.read_text()) == CONFIG  # abc123's
    (repo / "refs" / "main").write_text("gone")  # a ref with no snapshot: the newest one
    again = local_model(str(repo), (tree / "models",) if confined else None)
    assert again is not None and again.config is not None
    assert json.loads(again.config.read_text())["num_hidden_layers"] == 7  # def456's


def test_a_cache_snapshot_or_ref_linking_out_of_the_model_directories_is_refused(
    tree: Path, touched: Touched
) -> None:
    repo = _cache_repo_under(tree / "models")
    snapshot = repo / "snapshots" / "abc123" / "config.json"
    snapshot.unlink()
    snapshot.symlink_to(tree / "outside" / "config.json")
    (repo / "snapshots" / "def456" / "config.json").unlink()
    escaped = local_model(str(repo), (tree / "models",))
    (repo / "refs" / "main").unlink()
    (repo / "refs" / "main").symlink_to(tree / "outside" / "config.json")
    ref_out = local_model(str(repo), (tree / "models",))
    touched.recording = False
    assert escaped is not None and escaped.config is None and escaped.refusal is not None
    assert ref_out is not None and ref_out.config is None and ref_out.refusal is not None
    assert not any(p.startswith(str(tree / "outside")) for p in touched.paths)
