"""The request handler's per-request checks, without NATS: the name check gives `Metadata`'s own
errors without building one, and a hub id's model refusal is looked up in the local Hugging Face
cache at most once per `ttl` seconds (a local path every time)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from dgdr.app.request_handler import ModelRefusals, _check_name
from dgdr.domain.spec import Metadata, parse_spec
from tests.sim.test_hfcache import BERT, cache_repo
from tests.sim.test_hfconfig import MISTRAL_7B


def _metadata_errors(namespace: str, name: str) -> list[dict[str, str]]:
    try:
        Metadata(name=name, namespace=namespace)
    except ValidationError as exc:
        return [
            {
                "field": f"metadata.{e['loc'][0]}",
                "message": str(e["msg"]).removeprefix("Value error, "),
            }
            for e in exc.errors()
        ]
    return []


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("default", "ok"),
        ("default", "a.b-c"),
        ("Default", "ok"),
        ("default", "-bad"),
        ("n" * 64, "x" * 254),
        ("default", "trailing."),
        ("a_b", "UPPER"),
    ],
)
def test_the_name_check_answers_as_the_metadata_model_does(namespace: str, name: str) -> None:
    assert _check_name(namespace, name) == _metadata_errors(namespace, name)


def test_a_hub_ids_refusal_is_reused_for_ttl_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    cache_repo(tmp_path / "hub", "acme/bert-large-340M", BERT)
    now = [100.0]
    refusals = ModelRefusals((), ttl=2.0, clock=lambda: now[0])
    spec = parse_spec({"model": "acme/bert-large-340M"})
    first = refusals(spec)
    assert first is not None and "not a text-generating model" in first
    shutil.rmtree(tmp_path / "hub")  # the cache changes: not looked at again within the ttl
    now[0] += 1.9
    assert refusals(spec) == first
    now[0] += 0.2
    assert refusals(spec) is None


def test_a_local_paths_refusal_is_looked_up_on_every_apply(tmp_path: Path) -> None:
    refusals = ModelRefusals((tmp_path,), clock=lambda: 0.0)
    spec = parse_spec({"model": str(tmp_path / "m")})
    assert refusals(spec) is not None  # no config.json there yet: nothing sizes it
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps(MISTRAL_7B))
    assert refusals(spec) is None
