"""The service on a 3-node JetStream cluster with replicas 3: SIGKILL of the events stream's leader
under load, applies going on while it is down, then its restart on the same store.

The service connects to all three nodes (it may lose its own connection with the victim); the test's
client connects to the two survivors only, and retries a request whose publish is not acknowledged
(with the same request id, so a request stored twice is deduplicated). Progress is read from the
store, not counted in outcomes: outcomes are core NATS, and those in flight through the victim die
with it. What must hold: every
`accepted` outcome's resourceVersion is a stored commit of that name, every DGDR reaches Deployed,
and the store-wide invariants of tests/invariants.py (contiguous history, unique event ids, machine
edges, KV equal to a rebuild, one DGD per Deployed DGDR, no consumer backlog).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from dgdr.app.service import Service, ServiceConfig
from dgdr.domain.errors import ConfigurationError
from events import subjects as s
from events.connection import ConnectOptions
from events.envelope import AggregateId, Envelope
from events.jetstream import JetStreamEventStore, ensure_layout
from events.transient import TRANSIENT_ERRORS
from tests import invariants
from tests.nats_cluster import LocalCluster, stream_leader
from tests.support import manifest, until

BEFORE_KILL, WHILE_DOWN = 24, 12


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    nodes = LocalCluster(tmp_path / "cluster")
    await nodes.start()
    try:
        yield nodes
    finally:
        await nodes.stop()


class Requests:
    """Submits requests the way a careful client does, and collects every outcome by request id."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self.outcomes: dict[str, dict[str, Any]] = {}
        self.arrived = asyncio.Condition()

    async def listen(self) -> None:
        async def on_outcome(msg: Any) -> None:
            outcome = json.loads(msg.data)
            async with self.arrived:
                self.outcomes[outcome["requestId"]] = outcome
                self.arrived.notify_all()

        await self.nc.subscribe(f"{s.RESULTS_PREFIX}.>", cb=on_outcome)

    async def apply(self, name: str) -> str:
        """Publish until the stream acknowledges it; returns the request id."""
        request_id = str(uuid.uuid4())
        body = json.dumps(manifest(name)).encode()
        js = self.nc.jetstream()
        async with asyncio.timeout(40):
            while True:
                try:
                    await js.publish(
                        s.request_subject("default", name),
                        body,
                        stream=s.REQUESTS_STREAM,
                        headers={"Nats-Msg-Id": request_id},
                        timeout=2,
                    )
                    return request_id
                except (nats.errors.Error, TimeoutError):
                    await asyncio.sleep(0.1)  # no stream leader yet: try again, same id

    async def answered(self, n: int) -> None:
        async with self.arrived:
            await self.arrived.wait_for(lambda: len(self.outcomes) >= n)


@pytest.mark.timeout(150)
async def test_stream_leader_sigkill_under_load_loses_no_acknowledged_write(
    cluster: LocalCluster,
) -> None:
    config = ServiceConfig(
        connect=ConnectOptions(url=cluster.url), rollout_delay=0.2, ack_wait=2.0, replicas=3
    )
    service = Service(config)
    await service.start()
    watcher: Client | None = None
    try:
        probe = await nats.connect(cluster.urls)
        leader = await stream_leader(probe, s.EVENTS_STREAM)
        await probe.close()
        for name in (s.EVENTS_STREAM, s.REQUESTS_STREAM, f"KV_{s.STATUS_BUCKET}"):
            assert (await service.js.stream_info(name)).config.num_replicas == 3  # type: ignore[union-attr]
        victim = cluster.node_named(leader)
        survivors = [n.url for i, n in enumerate(cluster.nodes) if i != victim]
        watcher = await nats.connect(survivors, max_reconnect_attempts=-1)
        requests = Requests(watcher)
        await requests.listen()

        names = [f"c{i:02d}" for i in range(BEFORE_KILL + WHILE_DOWN)]
        first = [asyncio.create_task(requests.apply(n)) for n in names[:BEFORE_KILL]]
        async with asyncio.timeout(60):
            await requests.answered(BEFORE_KILL // 3)  # mid-load: a third answered
        cluster.kill(victim)
        second = [asyncio.create_task(requests.apply(n)) for n in names[BEFORE_KILL:]]
        submitted = await asyncio.gather(*first, *second)
        js = watcher.jetstream()

        async def have_status(n: int) -> bool:
            """At least n of the names have a status: their Apply is stored. Counted in the
            store, not by outcomes: an outcome is core NATS (at most once), and those the service
            published through the victim as it died are lost with it."""
            try:
                kv = await js.key_value(s.STATUS_BUCKET)
            except TRANSIENT_ERRORS:
                return False
            found = 0
            for name in names:
                try:
                    await kv.get(s.status_key("default", name))
                    found += 1
                except (NotFoundError, *TRANSIENT_ERRORS):
                    pass
            return found >= n

        # The two survivors take writes before the restart.
        await until(
            lambda: have_status(BEFORE_KILL + WHILE_DOWN // 2), 60, "writes while down", 0.2
        )
        await cluster.restart(victim)

        async def all_deployed() -> bool:
            try:  # the bucket may be electing a leader after the restart: not yet, not a failure
                kv = await js.key_value(s.STATUS_BUCKET)
            except TRANSIENT_ERRORS:
                return False
            for name in names:
                try:
                    entry = await kv.get(s.status_key("default", name))
                except (NotFoundError, *TRANSIENT_ERRORS):
                    return False
                if json.loads(entry.value or b"{}").get("status", {}).get("phase") != "Deployed":
                    return False
            return True

        await until(all_deployed, 90, "every DGDR Deployed", 0.2)
        assert await invariants.quiescent(js, 30), "a consumer kept a backlog or a replica lagged"

        accepted = [o for o in requests.outcomes.values() if o["status"] == "accepted"]
        assert accepted, "no outcome arrived"
        for outcome in accepted:
            stored = await js.get_msg(s.EVENTS_STREAM, seq=int(outcome["resourceVersion"]))
            assert str(stored.subject).split(".")[3] in names, outcome
            assert (
                json.loads(stored.data or b"{}")["events"][0]["aggregate"]["uid"] == outcome["uid"]
            )
        assert set(submitted) >= {o["requestId"] for o in accepted}

        report = await invariants.check(
            watcher, {s.status_key("default", n): "Deployed" for n in names}
        )
        assert not report.damaged, report.damaged
        assert report.violations == []
    finally:
        if watcher is not None:
            await watcher.close()
        await service.stop()


@pytest.mark.timeout(90)
async def test_appends_while_the_stream_leader_is_killed_are_stored(cluster: LocalCluster) -> None:
    """An append sent right after the events stream's leader died waits for the new leader
    (no responders, 503, timeouts are retried) instead of failing; nothing is stored twice."""
    nc = await nats.connect(cluster.urls, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        js = nc.jetstream()
        await ensure_layout(js, replicas=3)
        store = JetStreamEventStore(nc, js)
        aggregates = [AggregateId("default", f"a{i}", str(uuid.uuid4())) for i in range(8)]

        def event(agg: AggregateId, n: int) -> Envelope:
            return Envelope(f"e{n}", "Created", 1, agg, "2026-01-01T00:00:00Z", f"c{n}", None, {})

        first = [
            await store.append(a, [event(a, 1)], expected=0, commit_id=f"{a.uid}-1")
            for a in aggregates
        ]
        victim = cluster.node_named(await stream_leader(nc, s.EVENTS_STREAM))
        cluster.kill(victim)
        async with asyncio.timeout(60):
            await asyncio.gather(
                *(
                    store.append(a, [event(a, 2)], expected=seq, commit_id=f"{a.uid}-2")
                    for a, seq in zip(aggregates, first, strict=True)
                )
            )
        for agg in aggregates:
            stored = [c.commit_id for c in await store.load(agg)]
            assert stored == [f"{agg.uid}-1", f"{agg.uid}-2"], stored
    finally:
        await nc.close()


async def test_layout_grows_existing_streams_to_the_replicas_asked(cluster: LocalCluster) -> None:
    nc = await nats.connect(cluster.urls)
    try:
        js = nc.jetstream()
        await ensure_layout(js, replicas=1)
        assert (await js.stream_info(s.EVENTS_STREAM)).config.num_replicas == 1
        kv = await ensure_layout(js, replicas=3)
        for name in (s.EVENTS_STREAM, s.REQUESTS_STREAM, s.JOBS_STREAM, f"KV_{s.STATUS_BUCKET}"):
            assert (await js.stream_info(name)).config.num_replicas == 3, name
        await kv.put("default.probe", b"{}")  # the grown bucket still takes writes
        with pytest.raises(ConfigurationError, match="--replicas 5: NATS cannot place"):
            await ensure_layout(js, replicas=5)  # existing streams: growing them is refused
    finally:
        await nc.close()
