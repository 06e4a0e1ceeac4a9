"""`dgdr cluster degrade|recover|delete` as a user runs them, against a real nats-server holding a
simulated cluster with one DGD."""

from __future__ import annotations

import nats
import pytest

from dgdr.app.simcluster import SimulatedCluster
from events.server import EmbeddedNatsServer
from tests.integration.test_cli import dgdr


@pytest.mark.timeout(90)
async def test_each_action_reports_its_past_tense(nats_server: EmbeddedNatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    cluster = SimulatedCluster(nc.jetstream(), rollout_delay=3600.0)  # it stays pending
    try:
        await cluster.open()
        dgd = {
            "apiVersion": "nvidia.com/v1beta1",
            "kind": "DynamoGraphDeployment",
            "metadata": {"name": "one-dgd", "namespace": "default"},
            "spec": {"components": []},
        }
        assert await cluster.apply_dgd(dgd, "uid-one") == "created"
        for action, done in (("degrade", "degraded"), ("recover", "recovered")):
            code, out, err = await dgdr(nats_server.url, "cluster", action, "one-dgd")
            assert (code, out) == (0, f"dynamographdeployment/one-dgd {done}\n"), err
        held = await cluster.get("default", "one-dgd")
        assert held is not None and held["status"]["state"] == "successful"
        code, out, err = await dgdr(nats_server.url, "cluster", "delete", "one-dgd")
        assert (code, out) == (0, "dynamographdeployment/one-dgd deleted\n"), err
    finally:
        await cluster.stop()
        await nc.close()
