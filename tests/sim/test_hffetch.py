"""Fetching a hub id's config.json (`sim.fetch_config`, what `dgdr up --hf-fetch` allows) from a
stand-in Hub on a loopback port (`tests.fake_hub`) into a cache directory built here: the model is
then profiled from that file, exactly as from one an operator put in the cache. Every way the Hub
says no is one line naming the model, and leaves the cache as it was."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from sim import ProfilingError, can_estimate, fetch_config, model_refusal, needs_fetch, profile
from sim._hfcache import cached_config
from tests.fake_hub import GATED, NO_CONFIG, fake_hub
from tests.sim.test_hfcache import BERT, HW, _spec, cache_repo
from tests.sim.test_hfconfig import MISTRAL_7B

UNNAMED = "acme/house-model"  # its name states no parameter count: only its config sizes it


def test_a_fetched_config_is_profiled_as_a_cached_one(cache: Path) -> None:
    assert needs_fetch(UNNAMED)
    assert model_refusal(_spec({"model": UNNAMED})) is not None  # unknown without the Hub
    assert model_refusal(_spec({"model": UNNAMED}), hub_fetch=True) is None  # the worker's to fetch
    with fake_hub({UNNAMED: MISTRAL_7B}) as hub:
        fetched = fetch_config(UNNAMED, endpoint=hub.url, timeout=5)
    assert fetched.reason == "" and fetched.path is not None
    assert hub.requests and all(r.endswith("/config.json") for r in hub.requests)  # only that file
    assert cached_config(UNNAMED) == fetched.path and fetched.path.is_relative_to(cache)
    assert not needs_fetch(UNNAMED) and can_estimate(UNNAMED)
    result = profile({"model": UNNAMED, "backend": "vllm"}, HW, name="house")
    assert result.sla_verdict != "unverified"  # estimated from the fetched architecture
    assert f"architecture of {UNNAMED} from the Hugging Face cache" in result.message


def test_what_the_catalog_or_the_cache_knows_is_never_fetched(cache: Path) -> None:
    cache_repo(cache, "acme/Tiny-7B", MISTRAL_7B)
    assert not needs_fetch("acme/Tiny-7B")
    assert not needs_fetch("Qwen/Qwen3-0.6B") and not needs_fetch("qwen/qwen3-0.6b")
    assert not needs_fetch("/models/x/config.json") and not needs_fetch("../x")


@pytest.mark.parametrize(
    ("repo", "answer", "says"),
    [
        ("acme/locked", GATED, "gated"),
        ("acme/weights-only", NO_CONFIG, "has no config.json"),
        ("acme/nowhere", None, "has no repository acme/nowhere"),
    ],
)
def test_a_refusal_by_the_hub_is_one_line_naming_the_model(
    cache: Path, repo: str, answer: str | None, says: str
) -> None:
    with fake_hub({repo: answer} if answer else {}) as hub:
        fetched = fetch_config(repo, endpoint=hub.url, timeout=5)
    assert fetched.path is None and says in fetched.reason and repo in fetched.reason
    assert "\n" not in fetched.reason
    assert cached_config(repo) is None


def test_an_unreachable_hub_is_named_as_unreachable(cache: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    fetched = fetch_config("acme/house-model", endpoint=f"http://127.0.0.1:{port}", timeout=2)
    assert fetched.path is None and "could not be reached" in fetched.reason


def test_a_fetched_encoder_is_refused_by_its_architecture(cache: Path) -> None:
    with fake_hub({"acme/encoder": BERT}) as hub:
        assert fetch_config("acme/encoder", endpoint=hub.url, timeout=5).path is not None
    with pytest.raises(ProfilingError, match="BertForMaskedLM"):
        profile({"model": "acme/encoder", "backend": "vllm"}, HW, name="enc")


def test_an_id_that_is_not_a_hub_id_is_not_sent(cache: Path) -> None:
    with fake_hub({}) as hub:
        fetched = fetch_config("../etc/passwd", endpoint=hub.url, timeout=5)
    assert fetched.path is None and hub.requests == []


def test_a_config_json_larger_than_any_real_one_is_not_downloaded(cache: Path) -> None:
    huge = {**MISTRAL_7B, "padding": "x" * 2_000_000}
    with fake_hub({UNNAMED: huge}) as hub:
        fetched = fetch_config(UNNAMED, endpoint=hub.url, timeout=5)
    assert fetched.path is None and "2,000," in fetched.reason and "not fetched" in fetched.reason
    assert len(hub.requests) == 1  # the metadata request: the file itself was never asked for
    assert cached_config(UNNAMED) is None


def test_a_local_config_json_larger_than_any_real_one_is_not_read(tmp_path: Path) -> None:
    from sim import model_from_config

    path = tmp_path / "config.json"
    path.write_text(json.dumps({**MISTRAL_7B, "padding": "x" * 2_000_000}))
    with pytest.raises(ProfilingError, match=r"bytes, more than any config\.json"):
        model_from_config(path, "big")
