"""`spec.model` as a local path through a running service (`ServiceConfig.model_dirs`, what
`dgdr up --model-dir` sets): a config.json under a model directory is profiled and deployed; any
other path is answered `invalid` naming `spec.model` and `--model-dir`, and the service never opens
it (every open in this process is recorded by an audit hook for the whole test)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from dgdr.app.service import Service
from dgdr.client import DgdrClient
from events.connection import ConnectOptions
from events.server import EmbeddedNatsServer
from tests.integration.conftest import fast_config, manifest

MISTRAL_7B = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 32768,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "vocab_size": 32000,
}

_opened: list[str] = []
_recording = [False]


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _recording[0] and event == "open" and args and isinstance(args[0], str | bytes):
        _opened.append(os.path.abspath(os.fsdecode(args[0])))


sys.addaudithook(_audit)  # cannot be removed; records only while `_recording`


async def test_spec_model_is_read_only_under_the_model_directories(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    models, outside = tmp_path / "models", tmp_path / "outside"
    (models / "mistral").mkdir(parents=True)
    (models / "mistral" / "config.json").write_text(json.dumps(MISTRAL_7B))
    outside.mkdir()
    (outside / "config.json").write_text(json.dumps(MISTRAL_7B))
    (models / "escape").symlink_to(outside)
    service = Service(replace(fast_config(nats_server.url), model_dirs=(models,)))
    await service.start()
    client = DgdrClient(ConnectOptions(url=nats_server.url))
    await client.connect()
    refused = {
        "etc-passwd": "/etc/passwd",
        "proc-environ": "/proc/self/environ",
        "outside": str(outside / "config.json"),
        "dot-dot": f"{models}/../outside",
        "link-out": str(models / "escape"),
    }
    _opened.clear()
    _recording[0] = True
    try:
        for name, model in refused.items():
            outcome = await client.apply(manifest(name, model=model))
            assert outcome["status"] == "invalid", (name, outcome)
            (error,) = outcome["errors"]
            assert error["field"] == "spec.model" and "--model-dir" in error["message"]

        accepted = await client.apply(manifest("local", model=str(models / "mistral")))
        assert accepted["status"] == "accepted", accepted
        deployed = await client.wait("local", phase="Deployed", timeout=60)
        # the profiler read the architecture from it (its conditions say so)
        assert str(models / "mistral" / "config.json") in json.dumps(deployed["status"])
        assert str(models / "mistral" / "config.json") in _opened  # the recorder sees opens
        assert [
            p for p in _opened if p.startswith(("/etc/passwd", "/proc/self/environ", str(outside)))
        ] == []
    finally:
        _recording[0] = False
        await client.close()
        await service.stop()
