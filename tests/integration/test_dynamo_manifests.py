"""Dynamo's own DGDR manifests (docs, examples, operator test data, e2e tests; the copies under
`tests/dgdr/domain/data/dynamo_dgdrs/`) through a running service on the NATS path: each one
Dynamo admits reaches Deployed, or Ready when it says `autoApply: false`; each one Dynamo refuses is
answered `invalid` and stores nothing."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
import yaml

from dgdr.app.service import Service
from dgdr.client import DgdrClient
from dgdr.domain.errors import WaitTimeout
from events.connection import ConnectOptions
from events.server import EmbeddedNatsServer
from tests.dgdr.domain.test_admission import FILES, _expectation
from tests.integration.conftest import Running, fast_config

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
async def one_node(nats_server: EmbeddedNatsServer) -> AsyncIterator[Running]:
    """A running service whose simulated cluster is one node of 8 GPUs: the manifests that state
    no hardware take it from there, and thorough profiling (a simulation per candidate) stays
    a few seconds each."""
    config = replace(fast_config(nats_server.url), cluster_nodes=1)
    service = Service(config)
    await service.start()
    client = DgdrClient(ConnectOptions(url=nats_server.url))
    await client.connect()
    try:
        yield Running(nats_server, service, client)
    finally:
        await client.close()
        await service.stop()


def _as_applied(index: int, path: Any) -> dict[str, Any]:
    """The manifest under a name of its own (several examples share one), in `default`."""
    doc = copy.deepcopy(yaml.safe_load(path.read_text()))
    doc["metadata"] = {**doc.get("metadata", {}), "name": f"dynamo-{index}", "namespace": "default"}
    return dict(doc)


async def test_dynamos_manifests_are_admitted_and_deployed_or_refused_as_dynamo_does(
    one_node: Running,
) -> None:
    c = one_node.client
    expected: dict[str, str] = {}
    for index, path in enumerate(FILES):
        doc = _as_applied(index, path)
        verdict, _ = _expectation(path)
        outcome = await c.apply(doc)
        name = doc["metadata"]["name"]
        if verdict == "refused":
            assert outcome["status"] == "invalid" and not outcome.get("events"), (path, outcome)
            assert await c.get(name) is None, path
            continue
        assert outcome["status"] == "accepted", (path.name, outcome)
        manual = doc["spec"].get("autoApply") is False
        expected[name] = "Ready" if manual else "Deployed"

    async def settle(name: str, phase: str) -> tuple[str, str]:
        try:
            obj = await c.wait(name, phase=phase, timeout=150)
        except WaitTimeout:
            obj = await c.get(name) or {}
        return name, str(obj.get("status", {}).get("phase"))

    reached = dict(await asyncio.gather(*(settle(n, p) for n, p in expected.items())))
    wrong = {n: (reached[n], p) for n, p in expected.items() if reached[n] != p}
    assert not wrong, wrong
    assert len(expected) == 33
