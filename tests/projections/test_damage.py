"""The projector against a real nats-server when a DGDR's stored history holds what the service did
not write: the status keeps its last good fold and says so, the message is quarantined once,
later legal commits are folded, and a rebuild gives the same bucket."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import nats
import pytest
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

from dgdr.domain.model import (
    Created,
    DeploymentDeleted,
    Event,
    ProfilingProgressed,
    ProfilingStarted,
    Validated,
)
from events import subjects
from events.envelope import AggregateId, Commit, wrap
from events.jetstream import JetStreamEventStore, ensure_layout
from events.quarantine import DEAD_LETTER_STREAM, QUARANTINE_PREFIX, REASON
from events.server import EmbeddedNatsServer
from projections.projector import Projector

AT = "2026-01-01T00:00:00.000Z"


@dataclass
class Wired:
    js: JetStreamContext
    store: JetStreamEventStore
    projector: Projector

    async def append(self, agg: AggregateId, events: list[Event], cid: str) -> Commit:
        last = await self.store.latest(agg.namespace, agg.name)
        expected = last.seq if last else 0
        envs = wrap(events, agg, command_id=cid, at=AT, correlation_id=None)
        await self.store.append(agg, envs, expected=expected, commit_id=f"{agg.uid}:{cid}")
        return await self.delivered(agg)

    async def delivered(self, agg: AggregateId) -> Commit:
        """The name's last stored message, read as a consumer delivers it."""
        last = await self.store.latest(agg.namespace, agg.name)
        assert last is not None
        return last

    async def status(self, name: str) -> dict[str, Any]:
        return json.loads((await self.projector.values())[subjects.status_key("default", name)])

    async def quarantined(self) -> dict[str, int]:
        info = await self.js.stream_info(
            DEAD_LETTER_STREAM, subjects_filter=f"{QUARANTINE_PREFIX}.>"
        )
        return dict(info.state.subjects or {})


@pytest.fixture
async def wired(nats_server: EmbeddedNatsServer) -> AsyncIterator[Wired]:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    kv = await ensure_layout(js)
    await js.add_stream(StreamConfig(name=DEAD_LETTER_STREAM, subjects=["dgdr.dlq.>"]))
    store = JetStreamEventStore(nc)
    yield Wired(js, store, Projector(js, kv, store))
    await nc.close()


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in obj["status"]["conditions"] if c["type"] == ctype), None)


async def profiling(w: Wired, name: str) -> AggregateId:
    agg = AggregateId("default", name, str(uuid.uuid4()))
    validated = Validated(generation=1, hardware={}, message="ok")
    await w.projector.apply(await w.append(agg, [Created(spec={"model": "m"}), validated], "c1"))
    await w.projector.apply(
        await w.append(agg, [ProfilingStarted(generation=1, job_name=f"profile-{name}")], "c2")
    )
    return agg


async def test_a_damaged_history_shows_on_its_dgdr_and_is_quarantined_once(wired: Wired) -> None:
    w = wired
    healthy = await profiling(w, "healthy")
    agg = await profiling(w, "victim")
    before = await w.status("victim")
    garbage = await w.js.publish(
        subjects.events_subject("default", "victim", agg.uid), b"\x00not json{"
    )
    damaged = await w.delivered(agg)
    assert damaged.damage is not None and damaged.seq == garbage.seq
    for projector in (w.projector, Projector(w.js, w.projector.kv, w.store)):  # redelivered
        await projector.apply(damaged)
    obj = await w.status("victim")
    assert obj["status"]["phase"] == before["status"]["phase"] == "Profiling"
    assert obj["metadata"]["resourceVersion"] == str(garbage.seq)
    intact = condition(obj, "HistoryIntact")
    assert intact is not None and intact["status"] == "False"
    assert intact["reason"] == "HistoryDamaged"
    assert f"sequence {garbage.seq}" in intact["message"] and "not JSON" in intact["message"]
    assert "`dgdr history victim`" in intact["message"]
    key = f"{QUARANTINE_PREFIX}.{garbage.seq}"
    assert await w.quarantined() == {key: 1}
    entry = await w.js.get_last_msg(DEAD_LETTER_STREAM, key)
    assert entry.data == b"\x00not json{" and "not JSON" in (entry.headers or {})[REASON]

    # the service's next commit expects the damaged sequence and is folded
    progressed = ProfilingProgressed(sub_phase="SweepingPrefill", message="sweeping")
    later = await w.append(agg, [progressed], "c3")
    await w.projector.apply(later)
    obj = await w.status("victim")
    assert obj["status"]["profilingPhase"] == "SweepingPrefill"
    assert obj["metadata"]["resourceVersion"] == str(later.seq)
    assert condition(obj, "HistoryIntact") == intact  # still damaged, same transition

    # a well-formed commit with every header that is no machine edge is not folded either
    forged = await w.append(agg, [DeploymentDeleted(dgd_name="x")], "forged")
    assert forged.damage is None
    await w.projector.apply(forged)
    obj = await w.status("victim")
    assert obj["status"]["phase"] == "Profiling"
    assert "DeploymentDeleted is not allowed" in condition(obj, "HistoryIntact")["message"]  # type: ignore[index]
    assert set(await w.quarantined()) == {key, f"{QUARANTINE_PREFIX}.{forged.seq}"}

    rebuilt, damaged_keys = await w.projector.rebuild_report()
    assert rebuilt == await w.projector.values()
    victim = subjects.status_key("default", "victim")
    assert [d.seq for d in damaged_keys[victim]] == [garbage.seq, forged.seq]
    assert subjects.status_key("default", healthy.name) not in damaged_keys
    await w.projector.check_not_ahead()


async def test_damage_on_a_subject_of_no_live_incarnation_changes_no_status(wired: Wired) -> None:
    w = wired
    agg = await profiling(w, "p")
    before = await w.projector.values()
    stray = await w.js.publish(subjects.events_subject("default", "p", "not-a-uid"), b"{}")
    nameless = await w.js.publish("dgdr.evt.nowhere", b"x")
    for seq in (stray.seq, nameless.seq):
        (commit,) = [c async for c in w.store.read_all(after=seq - 1) if c.seq == seq]
        await w.projector.apply(commit)
    assert await w.projector.values() == before
    assert len(await w.quarantined()) == 2
    # the next commit of the name expects the stray sequence: repaired from the stored history
    later = await w.append(
        agg, [ProfilingProgressed(sub_phase="SweepingPrefill", message="s")], "c3"
    )
    await w.projector.apply(later)
    assert (await w.status("p"))["metadata"]["resourceVersion"] == str(later.seq)
    rebuilt, damaged = await w.projector.rebuild_report()
    assert rebuilt == await w.projector.values()
    assert set(damaged) == {"", subjects.status_key("default", "p")}


async def test_a_burst_of_garbage_is_repaired_in_one_pass(wired: Wired) -> None:
    w = wired
    agg = await profiling(w, "flooded")
    subject = subjects.events_subject("default", "flooded", agg.uid)
    seqs = [(await w.js.publish(subject, f"junk {i}".encode())).seq for i in range(50)]
    first, *_ = await w.store.history("default", "flooded", after=seqs[0] - 1)
    await w.projector.apply(first)  # one delivery folds (past) every message stored so far
    obj = await w.status("flooded")
    assert obj["metadata"]["resourceVersion"] == str(seqs[-1])
    assert f"sequence {seqs[-1]}" in condition(obj, "HistoryIntact")["message"]  # type: ignore[index]
    assert len(await w.quarantined()) == 50
    async for commit in w.store.read_all(after=seqs[0]):  # the other deliveries change nothing
        await w.projector.apply(commit)
    assert await w.status("flooded") == obj and len(await w.quarantined()) == 50
    assert await w.projector.rebuild() == await w.projector.values()
