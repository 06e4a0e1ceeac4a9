"""The reactor against a real nats-server: it acts on the state it holds, reads the store only for
what it has not seen, identifies observations by what was observed; and the state cache it uses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import nats
import pytest
from nats.js import JetStreamContext

from dgdr.app.handler import CommandHandler
from dgdr.app.reactors import (
    Reactor,
    observation_id,
    progress_command,
    result_command,
)
from dgdr.app.states import STATE_CACHE_SIZE, Loaded, StateCache
from dgdr.domain.decider import decide, initial_state
from dgdr.domain.model import Apply
from dgdr.domain.target import ApplyResult, Observer
from events.envelope import AggregateId, Commit, Envelope, wrap
from events.jetstream import JetStreamEventStore, ensure_layout
from events.server import EmbeddedNatsServer
from tests.support import manifest

NS, AT = "default", "2026-01-01T00:00:00.000Z"
SPEC = manifest("x")["spec"]


def dgd(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeployment",
        "metadata": {"name": f"{name}-dgd", "namespace": NS},
        "spec": {"services": {}},
    }


class CountingStore:
    """The JetStream store, with every read counted."""

    def __init__(self, inner: JetStreamEventStore) -> None:
        self.inner = inner
        self.reads: list[tuple[str, int]] = []

    async def append(
        self, aggregate: AggregateId, envelopes: list[Envelope], *, expected: int, commit_id: str
    ) -> int:
        return await self.inner.append(aggregate, envelopes, expected=expected, commit_id=commit_id)

    async def latest(self, namespace: str, name: str) -> Commit | None:
        self.reads.append(("latest", 0))
        return await self.inner.latest(namespace, name)

    async def load(self, aggregate: AggregateId, after: int = 0) -> list[Commit]:
        self.reads.append(("load", after))
        return await self.inner.load(aggregate, after)

    async def history(self, namespace: str, name: str, after: int = 0) -> list[Commit]:
        self.reads.append(("history", after))
        return await self.inner.history(namespace, name, after)

    def read_all(self, after: int = 0) -> AsyncIterator[Commit]:
        return self.inner.read_all(after)

    async def last_sequence(self) -> int:
        return await self.inner.last_sequence()


@dataclass
class RecordingTarget:
    """A deployment target that records what it was asked to apply."""

    applied: list[tuple[dict[str, Any], str, list[dict[str, Any]]]] = field(default_factory=list)

    async def discover_hardware(self) -> dict[str, Any]:
        return {}

    async def apply_dgd(
        self, dgd: dict[str, Any], owner_uid: str, resources: list[dict[str, Any]] | None = None
    ) -> ApplyResult:
        self.applied.append((dgd, owner_uid, resources or []))
        return "created"

    async def start(self, observe: Observer | None = None) -> None:
        return None

    async def stop(self) -> None:
        return None


@dataclass
class Rig:
    js: JetStreamContext
    store: JetStreamEventStore
    counted: CountingStore
    other_replica: CommandHandler  # appends as another service replica would
    target: RecordingTarget
    reactor: Reactor

    async def profile_to_the_end(self, name: str, uid: str) -> None:
        """What a profiling worker elsewhere records: every sub-phase, then the result."""
        for sub in ("SweepingPrefill", "SweepingDecode", "SelectingConfig", "GeneratingDGD"):
            out = await self.other_replica.handle(
                NS, name, progress_command(uid, 1, None, sub, sub), expected_uid=uid
            )
            assert out.events == ("ProfilingProgressed",), out
        result = result_command(uid, 1, None, dgd(name), [], "picked", [])
        out = await self.other_replica.handle(NS, name, result, expected_uid=uid)
        assert out.events == ("ProfilingCompleted", "DeploymentStarted"), out

    async def types(self, name: str) -> list[str]:
        return [e.type for c in await self.store.history(NS, name) for e in c.envelopes]


@pytest.fixture
async def rig(nats_server: EmbeddedNatsServer) -> AsyncIterator[Rig]:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_layout(js)
    store = JetStreamEventStore(nc, js)
    counted = CountingStore(store)
    target = RecordingTarget()
    reactor = Reactor(CommandHandler(counted), js, target)
    try:
        yield Rig(js, store, counted, CommandHandler(store), target, reactor)
    finally:
        await nc.close()


async def created(rig: Rig, name: str) -> Commit:
    out = await rig.other_replica.handle(NS, name, Apply(id=f"req-{name}", at=AT, spec=SPEC))
    assert out.commit is not None and out.uid is not None
    return out.commit


@pytest.mark.timeout(30)
async def test_consumed_events_advance_the_held_state_without_reading_the_store(rig: Rig) -> None:
    first = await created(rig, "held")
    uid = first.aggregate.uid
    await rig.reactor.react(first)  # nothing held yet: read once, then StartProfiling
    assert rig.counted.reads, "the first commit of a name it never saw is read from the store"
    await rig.profile_to_the_end("held", uid)
    rig.counted.reads.clear()

    for commit in (await rig.store.history(NS, "held"))[1:]:
        await rig.reactor.react(commit)

    assert rig.counted.reads == []
    assert rig.target.applied == [(dgd("held"), uid, [])]  # the selected config, from the state
    held = rig.reactor.states.get(NS, "held")
    assert held is not None and held.state.phase == "Deploying"
    assert held.version == (await rig.store.history(NS, "held"))[-1].seq


@pytest.mark.timeout(30)
async def test_a_gap_reads_only_the_commits_it_missed(rig: Rig) -> None:
    first = await created(rig, "gap")
    uid = first.aggregate.uid
    await rig.reactor.react(first)
    held = rig.reactor.states.get(NS, "gap")
    assert held is not None and held.state.phase == "Profiling"
    await rig.profile_to_the_end("gap", uid)
    rig.counted.reads.clear()

    last = (await rig.store.history(NS, "gap"))[-1]  # skips every commit in between
    await rig.reactor.react(last)

    assert rig.counted.reads == [("latest", 0), ("history", held.version)]
    assert rig.target.applied == [(dgd("gap"), uid, [])]


@pytest.mark.timeout(30)
async def test_observations_are_named_by_what_was_observed(rig: Rig) -> None:
    first = await created(rig, "seen")
    uid = first.aggregate.uid
    await rig.reactor.react(first)
    await rig.profile_to_the_end("seen", uid)
    for commit in (await rig.store.history(NS, "seen"))[1:]:
        await rig.reactor.react(commit)
    observe = rig.reactor.observe

    await observe(NS, "seen", uid, "seen-dgd", "successful", 1, 1)
    await observe(NS, "seen", uid, "seen-dgd", "successful", 1, 1)  # the same again: nothing
    await observe(NS, "seen", uid, "seen-dgd", "failed", 1, 0)
    await observe(NS, "seen", uid, "seen-dgd", "successful", 1, 1)  # recovered: recorded

    history = await rig.store.history(NS, "seen")
    deployment = [e for c in history for e in c.envelopes if e.type.startswith("Deployment")]
    assert [e.type for e in deployment] == [
        "DeploymentStarted",
        "DeploymentCreated",
        "DeploymentReady",
        "DeploymentDegraded",
        "DeploymentReady",
    ]
    ready = observation_id(uid, "seen-dgd", "successful", 1, 1)
    assert [e.causation_id for e in deployment[1:]] == [
        ready,
        ready,
        observation_id(uid, "seen-dgd", "failed", 1, 0),
        ready,
    ]
    assert len({e.id for c in history for e in c.envelopes}) == sum(
        len(c.envelopes) for c in history
    ), "an event id was reused"


# ----------------------------------------------------------------------------------- the cache


def _commit(agg: AggregateId, seq: int, expected: int) -> Commit:
    apply = Apply(id=f"r{seq}", at=AT, spec=SPEC)
    decision = decide(initial_state(), apply)
    assert isinstance(decision, list)
    envelopes = wrap(decision, agg, command_id=apply.id, at=AT, correlation_id=None)
    return Commit(agg, envelopes, seq=seq, expected=expected)


def test_the_cache_is_bounded_and_never_moves_backwards() -> None:
    cache = StateCache(size=2)
    a, b, c = (Loaded(None, initial_state(), v) for v in (1, 2, 3))
    cache.put(NS, "a", a)
    cache.put(NS, "b", b)
    cache.get(NS, "a")  # a is used: b is the least recently used
    cache.put(NS, "c", c)
    assert len(cache) == 2 and cache.get(NS, "b") is None
    assert cache.put(NS, "a", Loaded(None, initial_state(), 0)) is a  # an older state is refused
    assert cache.get(NS, "a") is a


def test_the_default_cache_holds_fewer_states_than_the_dgdrs_a_service_runs() -> None:
    cache = StateCache()
    for i in range(10_000):  # the scale: 10k live DGDRs
        cache.put(NS, f"d{i}", Loaded(None, initial_state(), i + 1))
    assert len(cache) == STATE_CACHE_SIZE < 10_000
    assert cache.get(NS, "d9999") is not None and cache.get(NS, "d0") is None


def test_the_cache_advances_only_by_the_next_commit() -> None:
    agg = AggregateId(NS, "n", "uid-1")
    cache = StateCache()
    first = _commit(agg, 5, 0)
    assert cache.advance(first) is None  # nothing held: it cannot say
    cache.put(NS, "n", Loaded(None, initial_state(), 0))
    advanced = cache.advance(first)
    assert advanced is not None and advanced.version == 5 and advanced.state.phase == "Pending"
    assert cache.advance(first) is advanced  # already folded in
    assert cache.advance(Commit(agg, first.envelopes, seq=9, expected=7)) is None  # a gap
