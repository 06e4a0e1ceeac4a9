"""`dgdr up --hf-fetch` (`ServiceConfig.hub_fetch`) through a running service, against a stand-in
Hub on a loopback port (`tests.fake_hub`): a model only the Hub knows is accepted, its config.json
(and nothing else) is fetched by the profiling worker, and it is profiled from that architecture;
without the flag the same apply is refused naming spec.model, and the Hub is never asked. A model
the Hub does not have fails at Initializing with the Hub's answer in the message."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from dgdr.app.service import Service
from dgdr.client import DgdrClient
from events.connection import ConnectOptions
from events.server import EmbeddedNatsServer
from tests.fake_hub import fake_hub
from tests.integration.conftest import fast_config, manifest
from tests.sim.test_hfconfig import MISTRAL_7B

UNNAMED = "acme/house-model"  # its name states no parameter count: only its config.json sizes it


async def _run(nats_server: EmbeddedNatsServer, hub_url: str | None) -> tuple[Service, DgdrClient]:
    config = fast_config(nats_server.url)
    if hub_url is not None:
        config = replace(config, hub_fetch=True, hub_endpoint=hub_url)
    service = Service(config)
    await service.start()
    client = DgdrClient(ConnectOptions(url=nats_server.url))
    await client.connect()
    return service, client


async def test_a_model_only_the_hub_knows_is_fetched_and_profiled(
    nats_server: EmbeddedNatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with fake_hub({UNNAMED: MISTRAL_7B}) as hub:
        service, client = await _run(nats_server, None)
        try:
            refused = await client.apply(manifest("no-hub", model=UNNAMED))
            assert refused["status"] == "invalid" and refused["errors"][0]["field"] == "spec.model"
        finally:
            await client.close()
            await service.stop()
        assert hub.requests == []  # without --hf-fetch the Hub is never asked

        service, client = await _run(nats_server, hub.url)
        try:
            accepted = await client.apply(manifest("house", model=UNNAMED))
            assert accepted["status"] == "accepted", accepted
            deployed = await client.wait("house", phase="Deployed", timeout=60)
            status = json.dumps(deployed["status"])
            assert f"architecture of {UNNAMED} from the Hugging Face cache" in status
            assert "unverified" not in status  # estimated, not the naive fallback
            assert hub.requests and all(r.endswith("/config.json") for r in hub.requests)

            missing = await client.apply(manifest("gone", model="acme/not-on-the-hub"))
            assert missing["status"] == "accepted", missing
            failed = await client.wait("gone", phase="Failed", timeout=60)
            assert "has no repository acme/not-on-the-hub" in json.dumps(failed["status"])
        finally:
            await client.close()
            await service.stop()
