"""Dynamo's own DGDR manifests (docs, examples, operator test data, e2e tests; the copies under
`tests/dgdr/domain/data/dynamo_dgdrs/`) through a running service on the NATS path: each one
Dynamo admits reaches Deployed, or Ready when it says `autoApply: false`; each one Dynamo refuses is
answered `invalid` and stores nothing."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
import yaml

from dgdr.domain.errors import WaitTimeout
from tests.dgdr.domain.test_admission import FILES, _expectation
from tests.integration.conftest import Running

pytestmark = pytest.mark.timeout(240)


def _as_applied(index: int, path: Any) -> dict[str, Any]:
    """The manifest under a name of its own (several examples share one), in `default`."""
    doc = copy.deepcopy(yaml.safe_load(path.read_text()))
    doc["metadata"] = {**doc.get("metadata", {}), "name": f"dynamo-{index}", "namespace": "default"}
    return dict(doc)


async def test_dynamos_manifests_are_admitted_and_deployed_or_refused_as_dynamo_does(
    running: Running,
) -> None:
    c = running.client
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
