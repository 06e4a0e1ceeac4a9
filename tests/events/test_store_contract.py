"""The EventStore contract, written once and run against every implementation."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator

import nats
import pytest

from dgdr.domain.errors import ConcurrencyConflict
from dgdr.domain.model import Created, ProfilingProgressed, Validated
from events.envelope import AggregateId, Envelope, wrap
from events.jetstream import JetStreamEventStore, ensure_layout
from events.server import EmbeddedNatsServer
from events.store import EventStore, InMemoryEventStore

AT = "2026-01-01T00:00:00.000Z"


@pytest.fixture(params=["memory", "jetstream"])
async def store(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[EventStore]:  # type: ignore[no-untyped-def]
    if request.param == "memory":
        yield InMemoryEventStore()
        return
    server = await EmbeddedNatsServer(tmp_path / "nats").start()
    nc = await nats.connect(server.url)
    await ensure_layout(nc.jetstream())
    try:
        yield JetStreamEventStore(nc)
    finally:
        await nc.close()
        await server.stop()


def agg(name: str = "demo", uid: str | None = None, ns: str = "default") -> AggregateId:
    return AggregateId(ns, name, uid or str(uuid.uuid4()))


def envs(a: AggregateId, command_id: str, n: int = 1) -> list[Envelope]:
    events = [Created(spec={"model": "m"})] + [
        ProfilingProgressed(sub_phase=f"step{i}", message=f"m{i}") for i in range(1, n)
    ]
    return wrap(events, a, command_id=command_id, at=AT, correlation_id="corr")


async def test_append_then_read_back(store: EventStore) -> None:
    a = agg()
    seq = await store.append(a, envs(a, "c1", 3), expected=0, commit_id="c1")
    assert seq >= 1
    latest = await store.latest("default", "demo")
    assert latest is not None and latest.seq == seq and latest.aggregate == a
    assert [e.type for e in latest.envelopes] == [
        "Created",
        "ProfilingProgressed",
        "ProfilingProgressed",
    ]
    assert latest.envelopes[0].correlation_id == "corr"
    assert latest.envelopes[0].causation_id == "c1"
    assert latest.expected == 0 and latest.commit_id == "c1"
    (loaded,) = await store.load(a)
    assert [e.id for e in loaded.envelopes] == [e.id for e in envs(a, "c1", 3)]
    assert await store.last_sequence() == seq


async def test_stale_expectation_is_a_conflict_and_stores_nothing(store: EventStore) -> None:
    a = agg()
    s1 = await store.append(a, envs(a, "c1"), expected=0, commit_id="c1")
    with pytest.raises(ConcurrencyConflict) as info:
        await store.append(a, envs(a, "c2"), expected=0, commit_id="c2")
    assert info.value.actual == s1
    assert len(await store.load(a)) == 1
    s2 = await store.append(a, envs(a, "c3"), expected=s1, commit_id="c3")
    assert s2 > s1


async def test_one_incarnation_per_name_at_a_time(store: EventStore) -> None:
    first, second = agg(), agg()
    s1 = await store.append(first, envs(first, "a"), expected=0, commit_id="a")
    with pytest.raises(ConcurrencyConflict):
        await store.append(second, envs(second, "b"), expected=0, commit_id="b")
    s2 = await store.append(second, envs(second, "b"), expected=s1, commit_id="b")
    latest = await store.latest("default", "demo")
    assert latest is not None and latest.aggregate == second and latest.seq == s2
    assert [c.aggregate for c in await store.history("default", "demo")] == [first, second]
    assert [c.seq for c in await store.history("default", "demo", after=s1)] == [s2]
    assert len(await store.load(first)) == 1


async def test_retried_append_after_lost_ack_is_stored_once(store: EventStore) -> None:
    a = agg()
    s1 = await store.append(a, envs(a, "c1"), expected=0, commit_id="c1")
    again = await store.append(a, envs(a, "c1"), expected=0, commit_id="c1")
    assert again == s1
    assert len(await store.load(a)) == 1


async def test_load_after_and_read_all_in_order(store: EventStore) -> None:
    a, b = agg("a"), agg("b")
    seqs = []
    last_a = last_b = 0
    for i in range(4):
        last_a = await store.append(a, envs(a, f"a{i}"), expected=last_a, commit_id=f"a{i}")
        last_b = await store.append(b, envs(b, f"b{i}"), expected=last_b, commit_id=f"b{i}")
        seqs += [last_a, last_b]
    assert seqs == sorted(seqs)
    loaded = await store.load(a, after=seqs[2])
    assert [c.commit_id for c in loaded] == ["a2", "a3"]
    assert [c.seq for c in [x async for x in store.read_all()]] == seqs
    assert [c.seq for c in [x async for x in store.read_all(after=seqs[5])]] == seqs[6:]
    assert await store.latest("default", "nothing") is None


async def test_names_with_dots_and_odd_characters(store: EventStore) -> None:
    a = AggregateId("team-a", "qwen3.0.6b", "uid.with.dots")
    other = AggregateId("team-a", "qwen3", "x")
    await store.append(other, envs(other, "o"), expected=0, commit_id="o")
    seq = await store.append(a, envs(a, "c"), expected=0, commit_id="c")
    latest = await store.latest("team-a", "qwen3.0.6b")
    assert latest is not None and latest.seq == seq and latest.aggregate == a
    assert len(await store.history("team-a", "qwen3")) == 1


async def test_concurrent_writers_lose_no_update(store: EventStore) -> None:
    """Ten writers append five commits each to one aggregate, reloading on every conflict."""
    a = agg()
    await store.append(a, envs(a, "init"), expected=0, commit_id="init")

    async def writer(w: int) -> int:
        conflicts = 0
        for i in range(5):
            while True:
                latest = await store.latest("default", "demo")
                assert latest is not None
                event = Validated(generation=1, hardware={}, message=f"{w}/{i}")
                cid = f"w{w}-{i}"
                try:
                    await store.append(
                        a,
                        wrap([event], a, command_id=cid, at=AT, correlation_id=None),
                        expected=latest.seq,
                        commit_id=cid,
                    )
                    break
                except ConcurrencyConflict:
                    conflicts += 1
                    await asyncio.sleep(0)
        return conflicts

    await asyncio.gather(*(writer(w) for w in range(10)))
    commits = await store.load(a)
    assert len(commits) == 51
    assert len({c.commit_id for c in commits}) == 51
    for before, after in itertools.pairwise(commits):
        assert after.expected == before.seq, "an append was accepted on a stale version"
