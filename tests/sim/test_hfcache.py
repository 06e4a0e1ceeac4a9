"""Hub ids found in a local Hugging Face cache (the layout `huggingface_hub` writes), built here:
nothing in these tests touches the network or the developer's own cache."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from dgdr.domain.hardware import ResolvedHardware
from sim import ProfilingError, can_estimate, model_refusal, profile
from sim._hfcache import cached_config, hub_cache_dir, is_hub_id
from tests.sim.test_hfconfig import MISTRAL_7B

HW = ResolvedHardware.from_dict({"gpuSku": "h100_sxm", "totalGpus": 8, "numGpusPerNode": 8})
BERT = {**MISTRAL_7B, "architectures": ["BertForMaskedLM"], "model_type": "bert"}


def cache_repo(cache: Path, repo: str, config: dict[str, Any], revision: str = "abc123") -> Path:
    """`repo` in `cache` as huggingface_hub stores it: the file in blobs/, the snapshot a link."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    blob = folder / "blobs" / f"sha-{revision}"
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_text(json.dumps(config))
    snapshot = folder / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").symlink_to(os.path.relpath(blob, snapshot))
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(revision)
    return blob


def test_the_cache_directory_follows_huggingface_hubs_variables() -> None:
    assert hub_cache_dir({"HF_HUB_CACHE": "/a"}) == Path("/a")
    assert hub_cache_dir({"HUGGINGFACE_HUB_CACHE": "/b", "HF_HOME": "/c"}) == Path("/b")
    assert hub_cache_dir({"HF_HOME": "/c"}) == Path("/c/hub")
    assert hub_cache_dir({"XDG_CACHE_HOME": "/d"}) == Path("/d/huggingface/hub")
    assert hub_cache_dir({}) == Path("~/.cache/huggingface/hub").expanduser()


def test_a_model_only_in_the_cache_is_profiled_from_its_config(cache: Path) -> None:
    cache_repo(cache, "acme/Tiny-7B", MISTRAL_7B)
    snapshot = cache / "models--acme--Tiny-7B" / "snapshots" / "abc123" / "config.json"
    spec = {"model": "acme/Tiny-7B", "backend": "vllm"}
    assert can_estimate("acme/Tiny-7B") and model_refusal(_spec(spec)) is None
    result = profile(spec, HW, name="tiny")
    assert result.sla_verdict != "unverified"  # estimated, not the naive fallback
    assert f"architecture of acme/Tiny-7B from the Hugging Face cache, {snapshot}" in result.message
    assert result.selected_config["spec"]["components"]


def test_hub_ids_match_the_cache_ignoring_case(cache: Path) -> None:
    cache_repo(cache, "Acme/Tiny-7B", MISTRAL_7B)
    found = cached_config("acme/tiny-7b")
    assert found == cache / "models--Acme--Tiny-7B" / "snapshots" / "abc123" / "config.json"


def test_the_revision_refs_main_names_wins_over_a_newer_snapshot(cache: Path) -> None:
    blob = cache_repo(cache, "acme/Tiny-7B", MISTRAL_7B, revision="main111")
    folder = blob.parents[1]
    newer = folder / "snapshots" / "newer222"
    newer.mkdir()
    (newer / "config.json").write_text(json.dumps({**MISTRAL_7B, "num_hidden_layers": 2}))
    assert cached_config("acme/Tiny-7B") == folder / "snapshots" / "main111" / "config.json"
    (folder / "refs" / "main").write_text("gone333")  # refs/main names no snapshot: newest one
    assert cached_config("acme/Tiny-7B") == newer / "config.json"


def test_a_cached_encoder_is_refused_by_its_architecture(cache: Path) -> None:
    cache_repo(cache, "acme/bert-large-340M", BERT)
    refusal = model_refusal(_spec({"model": "acme/bert-large-340M"}))
    assert refusal is not None and "BertForMaskedLM" in refusal and "decoder-only" in refusal
    with pytest.raises(ProfilingError, match="BertForMaskedLM"):
        profile({"model": "acme/bert-large-340M", "backend": "vllm"}, HW, name="bert")


def test_a_cached_config_lacking_a_figure_leaves_the_model_to_the_naive_fallback(
    cache: Path,
) -> None:
    partial = {k: v for k, v in MISTRAL_7B.items() if k != "intermediate_size"}
    cache_repo(cache, "acme/Odd-7B", partial)
    assert not can_estimate("acme/Odd-7B")
    result = profile({"model": "acme/Odd-7B", "backend": "vllm"}, HW, name="odd")
    assert result.sla_verdict == "unverified"


def test_ids_that_could_leave_the_cache_are_never_looked_up(cache: Path, tmp_path: Path) -> None:
    cache_repo(cache, "acme/Tiny-7B", MISTRAL_7B)
    for bad in ("../acme/Tiny-7B", "acme/../Tiny-7B", "acme--x/Tiny-7B", "a/b/c", "/etc", ""):
        assert not is_hub_id(bad)
        assert cached_config(bad) is None
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps(MISTRAL_7B))
    folder = cache / "models--acme--Leaky-7B" / "snapshots" / "r1"
    folder.mkdir(parents=True)
    (folder / "config.json").symlink_to(outside)
    assert cached_config("acme/Leaky-7B") is None


def _spec(fields: dict[str, Any]) -> Any:
    from dgdr.domain.spec import parse_spec

    spec = parse_spec(fields)
    assert not isinstance(spec, list), spec
    return spec


def test_a_model_given_as_a_cache_repository_folder_is_profiled_from_its_snapshot(
    tmp_path: Path,
) -> None:
    cache_repo(tmp_path / "hub", "acme/Tiny-7B", MISTRAL_7B)
    folder = tmp_path / "hub" / "models--acme--Tiny-7B"
    spec = {"model": str(folder), "backend": "vllm"}
    assert model_refusal(_spec(spec), (tmp_path,)) is None
    result = profile(spec, HW, name="tiny", model_dirs=(tmp_path,))
    assert result.sla_verdict != "unverified"  # estimated from the snapshot, not sized by name
    assert f"architecture of {folder} from " in result.message
