"""The request handler against a real nats-server: a request redelivered after a crash (its events
stored, its message not acknowledged) is answered from what it recorded, not decided again."""

from __future__ import annotations

import json

import nats
import pytest

from dgdr.app.handler import CommandHandler
from dgdr.app.request_handler import RequestHandler
from dgdr.app.simcluster import SimulatedCluster
from events import subjects as s
from events.jetstream import JetStreamEventStore, ensure_layout
from events.server import EmbeddedNatsServer

MANIFEST = {
    "apiVersion": "nvidia.com/v1beta1",
    "kind": "DynamoGraphDeploymentRequest",
    "metadata": {"name": "again", "namespace": "default"},
    "spec": {"model": "Qwen/Qwen3-0.6B", "hardware": {"gpuSku": "h200_sxm", "totalGpus": 8}},
}


@pytest.mark.timeout(60)
async def test_a_redelivered_delete_does_not_delete_the_name_created_again_since(
    nats_server: EmbeddedNatsServer,
) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await ensure_layout(js)
        store = JetStreamEventStore(nc, js)
        requests = RequestHandler(
            nc,
            js,
            CommandHandler(store),
            SimulatedCluster(js),
            model_dirs=(),
            max_deliveries=5,
            max_transient_deliveries=20,
        )
        subject = s.request_subject("default", "again")
        body = json.dumps(MANIFEST).encode()
        delete = json.dumps({"action": "delete"}).encode()
        first = await requests._process(subject, body, "apply-1")
        deleted = await requests._process(subject, delete, "delete-1")
        second = await requests._process(subject, body, "apply-2")
        assert (first.status, deleted.status, second.status) == ("accepted",) * 3
        assert second.uid != first.uid

        again = await requests._process(subject, delete, "delete-1", redelivered=True)

        assert (again.status, again.resource_version, again.uid) == (
            "accepted",
            deleted.resource_version,
            first.uid,
        )
        latest = await store.latest("default", "again")
        assert latest is not None and latest.aggregate.uid == second.uid
        assert latest.seq == second.resource_version  # nothing recorded by the redelivery
    finally:
        await nc.close()
