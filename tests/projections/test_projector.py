"""The projector against a real KV bucket: idempotent, order-tolerant, forward-only, checked at start."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import nats
import pytest

from dgdr.domain.errors import ProjectionAheadOfStore
from dgdr.domain.model import Created, Deleted, ProfilingStarted, Validated
from events import subjects
from events.envelope import AggregateId, Commit, wrap
from events.jetstream import JetStreamEventStore, ensure_layout
from events.server import EmbeddedNatsServer
from projections.projector import Projector

AT = "2026-01-01T00:00:00.000Z"


@pytest.fixture
async def wired(
    nats_server: EmbeddedNatsServer,
) -> AsyncIterator[tuple[Projector, JetStreamEventStore]]:
    nc = await nats.connect(nats_server.url)
    kv = await ensure_layout(nc.jetstream())
    store = JetStreamEventStore(nc)
    yield Projector(nc.jetstream(), kv, store), store
    await nc.close()


async def append(
    store: JetStreamEventStore, agg: AggregateId, events: list, expected: int, cid: str
) -> Commit:  # type: ignore[type-arg]
    envs = wrap(events, agg, command_id=cid, at=AT, correlation_id=None)
    seq = await store.append(agg, envs, expected=expected, commit_id=cid)
    return Commit(agg, envs, seq=seq, expected=expected, commit_id=cid)


async def history(store: JetStreamEventStore, agg: AggregateId) -> list[Commit]:
    c1 = await append(
        store,
        agg,
        [Created(spec={"model": "m"}), Validated(generation=1, hardware={}, message="ok")],
        0,
        "c1",
    )
    c2 = await append(
        store, agg, [ProfilingStarted(generation=1, job_name="profile-p")], c1.seq, "c2"
    )
    return [c1, c2]


async def test_redelivery_and_reordering_never_move_a_value_backwards(
    wired: tuple[Projector, JetStreamEventStore],
) -> None:
    projector, store = wired
    agg = AggregateId("default", "p", str(uuid.uuid4()))
    c1, c2 = await history(store, agg)
    await projector.apply(c2)  # out of order: the gap is repaired from the store
    values = await projector.values()
    obj = json.loads(values[subjects.status_key("default", "p")])
    assert obj["metadata"]["resourceVersion"] == str(c2.seq)
    assert obj["status"]["phase"] == "Profiling"
    for commit in (c1, c2, c1):  # redelivered: nothing changes
        await projector.apply(commit)
    assert await projector.values() == values
    fresh = Projector(projector.js, projector.kv, store)  # another replica, no cache
    await fresh.apply(c1)
    assert await fresh.values() == values == await fresh.rebuild()


async def test_the_cache_of_written_statuses_is_bounded_and_keeps_the_recently_used(
    wired: tuple[Projector, JetStreamEventStore],
) -> None:
    _, store = wired
    projector = Projector(wired[0].js, wired[0].kv, store, cache_size=2)
    a, b, c = (AggregateId("default", n, str(uuid.uuid4())) for n in ("a", "b", "c"))
    created = [Created(spec={"model": "m"})]
    a1, b1, c1 = [await append(store, agg, created, 0, f"{agg.name}1") for agg in (a, b, c)]
    await projector.apply(a1)
    await projector.apply(b1)
    await projector.apply(a1)  # redelivered, answered from the cache: b is the least recently used
    await projector.apply(c1)
    assert list(projector._cache) == [
        subjects.status_key("default", "a"),
        subjects.status_key("default", "c"),
    ]
    values = await projector.values()
    versions = {k: json.loads(v)["metadata"]["resourceVersion"] for k, v in values.items()}
    assert versions == {
        subjects.status_key("default", commit.aggregate.name): str(commit.seq)
        for commit in (a1, b1, c1)
    }


async def test_deletion_removes_the_key_and_old_commits_do_not_resurrect_it(
    wired: tuple[Projector, JetStreamEventStore],
) -> None:
    projector, store = wired
    agg = AggregateId("default", "p", str(uuid.uuid4()))
    c1, c2 = await history(store, agg)
    gone = await append(store, agg, [Deleted()], c2.seq, "c3")
    for commit in (c1, c2, gone, c1):
        await projector.apply(commit)
    assert await projector.values() == {}
    assert await projector.rebuild() == {}


async def test_a_delete_that_loses_a_compare_and_swap_reads_again_and_deletes(
    wired: tuple[Projector, JetStreamEventStore],
) -> None:
    projector, store = wired
    agg = AggregateId("default", "race", str(uuid.uuid4()))
    c1, c2 = await history(store, agg)
    for commit in (c1, c2):
        await projector.apply(commit)
    key = subjects.status_key("default", "race")
    # Another projector replica writes the key meanwhile: this one's cached revision is stale, so
    # its conditional delete is refused by the server (10071) and must be retried, not raised.
    entry = await projector.kv.get(key)
    assert entry.value is not None
    await projector.kv.put(key, entry.value)
    gone = await append(store, agg, [Deleted()], c2.seq, "c3")
    await projector.apply(gone)
    assert await projector.values() == {}


async def test_a_projection_ahead_of_the_store_stops_the_start(
    wired: tuple[Projector, JetStreamEventStore],
) -> None:
    projector, _ = wired
    fake = {"metadata": {"name": "x", "namespace": "default", "uid": "u", "resourceVersion": "999"}}
    await projector.kv.put(subjects.status_key("default", "x"), json.dumps(fake).encode())
    with pytest.raises(ProjectionAheadOfStore, match="resourceVersion 999"):
        await projector.check_not_ahead()


async def test_a_names_first_commit_is_written_with_one_create_and_no_read(
    nats_server: EmbeddedNatsServer,
    wired: tuple[Projector, JetStreamEventStore],
) -> None:
    projector, store = wired
    agg = AggregateId("default", "first", str(uuid.uuid4()))
    c1, _ = await history(store, agg)
    nc = await nats.connect(nats_server.url)  # the projector's own connection, to count on
    try:
        js = nc.jetstream()
        own = Projector(js, await js.key_value(subjects.STATUS_BUCKET), store)
        sent = nc.stats["out_msgs"]
        await own.apply(c1)
        assert nc.stats["out_msgs"] - sent == 1  # the create; no kv.get before it
        again = Projector(js, own.kv, store)  # another replica, no cache: the key exists
        await again.apply(c1)
    finally:
        await nc.close()
    obj = json.loads((await projector.values())[subjects.status_key("default", "first")])
    assert obj["metadata"]["resourceVersion"] == str(c1.seq)
    assert obj["status"]["phase"] == "Pending"
