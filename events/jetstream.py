"""The JetStream EventStore and the creation/verification of the project's streams and bucket.

Layout (design §4): stream `DGDR_EVENTS`, subjects `dgdr.evt.<ns>.<name>.<uid>`, no limits, deny delete
and purge, no rollups; one message per decision (atomic); `Nats-Msg-Id` = commit id (dedup);
`Nats-Expected-Last-Subject-Sequence` checked against `dgdr.evt.<ns>.<name>.*` (every incarnation of
the name) through `Nats-Expected-Last-Subject-Sequence-Subject`.

Reads (`latest`, `load`, `history`, `read_all`) never raise for what is stored: each message is
verified (`events.integrity`) and one that is not a valid commit is returned damaged, in its place.

Failure semantics: NATS briefly unavailable (a timeout, no responders, JetStream's 503 while a
stream leader is elected: `events.transient`) is retried within each call for up to
`retry_deadline` seconds (20 by default), so a leader change is ridden out rather than surfaced;
a stale expectation raises `ConcurrencyConflict`; a commit larger than the
server's max payload (headers included: the server would close the connection over it) raises
`CommitTooLarge` before anything is sent, never a retry. nats-server 2.15 answers a retried
publish (same Msg-Id, same expectation, after a lost ack) with error 10071 instead of a duplicate ack,
so after 10071 the subject's last message id is compared with ours: equal means our earlier attempt
was stored and its sequence is returned. `ensure_layout` refuses (`IncompatibleStream`) to run on an
existing events stream with limits that would drop history or that allows delete/purge.

Replicas: every stream and bucket is created with `replicas` copies (`dgdr up --replicas N`; 1 for a
single server, 3 for a three-node cluster). An existing one with fewer copies is grown to `replicas`
with a warning in the log (JetStream moves the data itself; nothing is lost), one with more is left
alone; more replicas than the cluster has JetStream servers is a one-line `ConfigurationError`. A
placement refused because a peer is offline (a cluster still forming, a new meta leader not yet
told of every peer) is retried for up to `PEER_OFFLINE_WAIT` seconds first.

Observed (`AppendObserver`, no-op by default): each `append`'s duration, retries included, and its
outcome: `stored`, `conflict` (a stale expectation) or `error`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from nats.aio.client import Client
from nats.errors import MaxPayloadError
from nats.js import JetStreamContext
from nats.js.api import (
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import APIError, BadRequestError, NotFoundError
from nats.js.kv import KeyValue

from dgdr.domain.errors import (
    CommitTooLarge,
    ConcurrencyConflict,
    ConfigurationError,
    IncompatibleStream,
)
from events import subjects as s
from events.transient import DEFAULT_DEADLINE, retry_transient

if TYPE_CHECKING:  # the event models are imported by the calls that need them: listing a KV
    from events.envelope import AggregateId, Commit, Envelope  # bucket (`dgdr get`) does not

WRONG_LAST_SEQUENCE = 10071
PUBLISH_TIMEOUT = 3.0  # per attempt; a lost leader is retried (events.transient), not waited out
DUPLICATE_WINDOW_S = 120.0
READ_ALL_BATCH = 256  # the messages `read_all` decodes between two turns of the event loop
READ_ALL_IDLE_S = 10.0  # `read_all` gives up when no message arrives for this long


def _log() -> Any:
    import structlog  # here: a call that logs nothing does without it (and rich)

    return structlog.get_logger("events.jetstream")


def events_stream_config() -> StreamConfig:
    return StreamConfig(
        name=s.EVENTS_STREAM,
        subjects=[f"{s.EVENTS_PREFIX}.>"],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        max_msgs=-1,
        max_bytes=-1,
        max_age=0,
        max_msgs_per_subject=-1,
        deny_delete=True,
        deny_purge=True,
        allow_rollup_hdrs=False,
        duplicate_window=DUPLICATE_WINDOW_S,
        description="DGDR events: the source of truth (never delete or purge)",
    )


def work_queue_config(name: str, prefix: str, description: str) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=[f"{prefix}.>"],
        storage=StorageType.FILE,
        retention=RetentionPolicy.WORK_QUEUE,
        duplicate_window=DUPLICATE_WINDOW_S,
        description=description,
    )


def check_events_stream(config: StreamConfig) -> list[str]:
    """Why an existing events stream is unsafe to use; empty when it is fine."""
    problems = []
    if f"{s.EVENTS_PREFIX}.>" not in (config.subjects or []):
        problems.append(f"subjects {config.subjects} do not include {s.EVENTS_PREFIX}.>")
    for limit in ("max_msgs", "max_bytes", "max_msgs_per_subject"):
        value = getattr(config, limit)
        if value is not None and value > 0:
            problems.append(f"{limit}={value} would drop history")
    if config.max_age:
        problems.append(f"max_age={config.max_age}s would drop history")
    if config.retention not in (None, RetentionPolicy.LIMITS):
        problems.append(f"retention {config.retention} would remove acknowledged events")
    if not config.deny_delete or not config.deny_purge:
        problems.append(
            "the stream allows deleting or purging events (set deny_delete and deny_purge)"
        )
    if config.allow_rollup_hdrs:
        problems.append("rollup headers are allowed (they purge history)")
    return problems


NO_MESSAGE_FOUND = 10037  # a message get with nothing stored under the subject

# What nats-server answers when it cannot place the replicas asked for.
REPLICA_PLACEMENT_ERRORS = frozenset(
    {
        10005,  # "no suitable peers for placement": more replicas than JetStream servers
        10023,  # "insufficient resources"
        10074,  # "replicas > 1 not supported in non-clustered mode"
    }
)


def _replicas_error(name: str, replicas: int, exc: APIError) -> ConfigurationError:
    return ConfigurationError(
        f"--replicas {replicas}: NATS cannot place {name} on {replicas} servers "
        f"({exc.description}); use --replicas 1 for a single server, or at most the number of "
        "JetStream servers in the cluster"
    )


_T = TypeVar("_T")

PEER_OFFLINE_WAIT = 30.0
"""Seconds to keep retrying a placement that fails only because a JetStream peer is offline."""


async def _placed(name: str, replicas: int, place: Callable[[], Awaitable[_T]]) -> _T:
    """`place()` (a stream or bucket create or update), with placement errors made plain.

    A cluster that is still forming, or whose meta leader has just changed, refuses placement
    with "no suitable peers for placement, peer offline" until every peer has reported in: that
    is retried for up to `PEER_OFFLINE_WAIT` seconds. Any other placement error (more replicas
    than JetStream servers, a single server) is a `ConfigurationError` at once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PEER_OFFLINE_WAIT
    logged = False
    while True:
        try:
            return await place()
        except APIError as exc:
            if exc.err_code not in REPLICA_PLACEMENT_ERRORS:
                raise
            if "offline" not in (exc.description or "") or loop.time() > deadline:
                raise _replicas_error(name, replicas, exc) from exc
            if not logged:
                _log().warning("a JetStream peer is offline: waiting to place", stream=name)
                logged = True
        await asyncio.sleep(0.25)


async def _create(js: JetStreamContext, config: StreamConfig, replicas: int) -> None:
    config.num_replicas = replicas
    await _placed(str(config.name), replicas, lambda: js.add_stream(config))


async def _raise_replicas(js: JetStreamContext, config: StreamConfig, replicas: int) -> None:
    """Grow an existing stream to `replicas` (never shrink: fewer copies is an operator's call)."""
    have = config.num_replicas or 1
    if have >= replicas:
        return
    _log().warning(
        "stream has fewer replicas than asked: updating",
        stream=config.name,
        replicas=have,
        asked=replicas,
    )
    config.num_replicas = replicas
    await _placed(str(config.name), replicas, lambda: js.update_stream(config))
    await _wait_for_replicas(js, str(config.name), replicas)


async def _wait_for_replicas(
    js: JetStreamContext, stream: str, replicas: int, timeout: float = 30.0
) -> None:
    """Wait until a grown stream has a leader and every replica is current: writes to it time
    out meanwhile. Past `timeout` the service goes on (its writes are retried) with a warning."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        with contextlib.suppress(APIError, TimeoutError):
            cluster = (await js.stream_info(stream)).cluster
            peers = (cluster.replicas or []) if cluster else []
            if cluster and cluster.leader and sum(1 for p in peers if p.current) == replicas - 1:
                return
        await asyncio.sleep(0.2)
    _log().warning("stream replicas not all current yet", stream=stream, replicas=replicas)


async def ensure_layout(js: JetStreamContext, replicas: int = 1) -> KeyValue:
    """Create the streams and the status bucket with `replicas` copies, or verify existing ones;
    returns the bucket. An existing stream or bucket with fewer replicas is updated to `replicas`
    (logged); one with more is left alone. More replicas than JetStream servers is a
    `ConfigurationError`."""
    try:
        info = await js.stream_info(s.EVENTS_STREAM)
    except NotFoundError:
        await _create(js, events_stream_config(), replicas)
    else:
        problems = check_events_stream(info.config)
        if problems:
            raise IncompatibleStream(
                f"stream {s.EVENTS_STREAM} is unsafe for an event store: " + "; ".join(problems)
            )
        await _raise_replicas(js, info.config, replicas)
    for name, prefix, desc in (
        (s.REQUESTS_STREAM, s.REQUESTS_PREFIX, "DGDR requests (work queue, dedup by request id)"),
        (s.JOBS_STREAM, s.JOBS_PREFIX, "DGDR profiling jobs (work queue)"),
    ):
        try:
            info = await js.stream_info(name)
        except NotFoundError:
            await _create(js, work_queue_config(name, prefix, desc), replicas)
        else:
            if info.config.retention != RetentionPolicy.WORK_QUEUE:
                raise IncompatibleStream(
                    f"stream {name} must have work-queue retention, has {info.config.retention}"
                )
            await _raise_replicas(js, info.config, replicas)
    return await ensure_bucket(
        js,
        s.STATUS_BUCKET,
        "DGDR status projection: <ns>.<name> -> object",
        replicas,
    )


async def ensure_stream(js: JetStreamContext, config: StreamConfig, replicas: int = 1) -> None:
    """Create `config`'s stream with `replicas` copies, or grow an existing one to `replicas`."""
    try:
        info = await js.stream_info(str(config.name))
    except NotFoundError:
        await _create(js, config, replicas)
    else:
        await _raise_replicas(js, info.config, replicas)


async def ensure_bucket(
    js: JetStreamContext, bucket: str, description: str, replicas: int = 1
) -> KeyValue:
    """Open KV `bucket` (history 1, file storage) with `replicas` copies, creating it or growing
    its stream's replicas as `ensure_layout` does for streams."""
    try:
        info = await js.stream_info(f"KV_{bucket}")
    except NotFoundError:
        config = KeyValueConfig(
            bucket=bucket,
            history=1,
            storage=StorageType.FILE,
            description=description,
            replicas=replicas,
        )
        return await _placed(bucket, replicas, lambda: js.create_key_value(config))
    await _raise_replicas(js, info.config, replicas)
    return await js.key_value(bucket)


async def bucket_keys(js: JetStreamContext, bucket: str, pattern: str = ">") -> list[str]:
    """The keys of a KV bucket that have a value or a delete marker, sorted.

    Read from the stream's subject index in one request; nats-py's `KeyValue.keys()` is a watch
    that can wait forever for its end marker while the bucket is being written."""
    prefix = f"$KV.{bucket}."
    info = await js.stream_info(f"KV_{bucket}", subjects_filter=prefix + pattern)
    return sorted(subject[len(prefix) :] for subject in (info.state.subjects or {}))


async def bucket_values(
    js: JetStreamContext, bucket: str, pattern: str = ">", timeout: float = 30.0
) -> dict[str, bytes]:
    """Every live value of a KV bucket, `{key: value}`: one ordered consumer delivering the last
    message per key (a push with flow control, handled in a callback), not one request per key.

    A snapshot up to the last message of `pattern` as the stream's leader has it when the read
    starts (one request): what is written meanwhile may or may not be in it (as with any list).
    The read ends when that message is delivered, not when the consumer has nothing pending: the
    consumer may be served by a replica still catching up after a restart, whose "nothing
    pending" would end the snapshot at an older state. Keys whose last entry is a delete or purge
    marker are left out. `TimeoutError` when the snapshot is not complete within `timeout`
    seconds."""
    prefix = f"$KV.{bucket}."
    try:
        last = int((await js.get_last_msg(f"KV_{bucket}", prefix + pattern)).seq or 0)
    except NotFoundError as exc:
        if exc.err_code == NO_MESSAGE_FOUND:
            return {}  # nothing stored under `pattern`
        raise
    out: dict[str, bytes] = {}
    done = asyncio.Event()

    async def take(msg: Any) -> None:
        key = str(msg.subject)[len(prefix) :]
        if (msg.headers or {}).get("KV-Operation") in ("DEL", "PURGE"):
            out.pop(key, None)
        else:
            out[key] = msg.data
        if int(msg.metadata.sequence.stream) >= last:
            done.set()

    sub = await js.subscribe(
        prefix + pattern,
        ordered_consumer=True,
        cb=take,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.LAST_PER_SUBJECT),
    )
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        await sub.unsubscribe()
    return out


async def bucket_entries(
    js: JetStreamContext,
    bucket: str,
    *,
    tail: int | None = None,
    timeout: float = 30.0,
) -> dict[str, tuple[bytes, int]]:
    """Live values of a KV bucket with their revisions, `{key: (value, revision)}`, read as
    `bucket_values` reads them (one ordered consumer, a callback per message): every key's last
    entry, or with `tail=N` only the keys written by the bucket's last N writes (the stream
    sequences `last - N + 1 .. last`; with history 1 each such key's value there is its current
    one). Keys whose last entry is a delete or purge marker are left out. A snapshot at the
    stream's last sequence when the read starts; `TimeoutError` when it is not complete within
    `timeout` seconds."""
    prefix = f"$KV.{bucket}."
    info = await js.stream_info(f"KV_{bucket}")
    last = int(info.state.last_seq)
    out: dict[str, tuple[bytes, int]] = {}
    if not info.state.messages:
        return out
    if tail is None:
        config = ConsumerConfig(deliver_policy=DeliverPolicy.LAST_PER_SUBJECT)
    else:
        start = max(int(info.state.first_seq), last - max(1, tail) + 1)
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
    done = asyncio.Event()

    async def take(msg: Any) -> None:
        key = str(msg.subject)[len(prefix) :]
        meta = msg.metadata
        seq = int(meta.sequence.stream)
        if (msg.headers or {}).get("KV-Operation") in ("DEL", "PURGE"):
            out.pop(key, None)
        else:
            out[key] = (msg.data, seq)
        if seq >= last or int(meta.num_pending) == 0:
            done.set()

    sub = await js.subscribe(prefix + ">", ordered_consumer=True, cb=take, config=config)
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        await sub.unsubscribe()
    return out


def decode_message(msg: Any, seq: int | None = None) -> Commit:
    """The commit stored in a `DGDR_EVENTS` message: a direct get (`msg.seq`) or a consumer
    delivery (pass its stream sequence as `seq`). Verified by `events.integrity.read_commit`:
    a message that is not a valid commit comes back damaged (never raises)."""
    from events.integrity import read_commit

    return read_commit(
        msg.data or b"",
        subject=str(msg.subject),
        headers=msg.headers,
        seq=int(msg.seq if seq is None else seq),
    )


def _message_size(data: bytes, headers: dict[str, str]) -> int:
    # NATS/1.0 line, "key: value" lines, blank line: what the server counts against max payload.
    return len(data) + 12 + sum(len(k) + len(v) + 4 for k, v in headers.items())


class AppendObserver(Protocol):
    def appended(self, seconds: float, outcome: str) -> None:
        """One `append` ended after `seconds`: `stored`, `conflict` or `error`."""


class _Unobserved:
    def appended(self, seconds: float, outcome: str) -> None:
        pass


class JetStreamEventStore:
    def __init__(
        self,
        nc: Client,
        js: JetStreamContext | None = None,
        retry_deadline: float = DEFAULT_DEADLINE,
        observer: AppendObserver | None = None,
    ) -> None:
        self.nc = nc
        self.js = js or nc.jetstream()
        self.retry_deadline = retry_deadline  # seconds a call goes on through transient failures
        self.observer: AppendObserver = observer or _Unobserved()

    async def append(
        self, aggregate: AggregateId, envelopes: list[Envelope], *, expected: int, commit_id: str
    ) -> int:
        started = time.perf_counter()
        try:
            seq = await self._append(aggregate, envelopes, expected=expected, commit_id=commit_id)
        except Exception as exc:
            outcome = "conflict" if isinstance(exc, ConcurrencyConflict) else "error"
            self.observer.appended(time.perf_counter() - started, outcome)
            raise
        self.observer.appended(time.perf_counter() - started, "stored")
        return seq

    async def _append(
        self, aggregate: AggregateId, envelopes: list[Envelope], *, expected: int, commit_id: str
    ) -> int:
        from events.envelope import Commit
        from events.integrity import H_EXPECTED, H_EXPECTED_SUBJECT, H_MSG_ID

        subject = s.events_subject(aggregate.namespace, aggregate.name, aggregate.uid)
        scope = s.name_subjects(aggregate.namespace, aggregate.name)
        headers = {H_MSG_ID: commit_id, H_EXPECTED: str(expected), H_EXPECTED_SUBJECT: scope}
        data = Commit(aggregate, envelopes).encode()
        size = _message_size(data, headers)
        if size > self.nc.max_payload:
            raise CommitTooLarge(subject, size, self.nc.max_payload)

        async def publish() -> int:
            try:
                ack = await self.js.publish(
                    subject, data, stream=s.EVENTS_STREAM, headers=headers, timeout=PUBLISH_TIMEOUT
                )
            except MaxPayloadError as exc:  # the server's limit changed since the check above
                raise CommitTooLarge(subject, size, self.nc.max_payload) from exc
            return int(ack.seq)

        try:
            return await retry_transient(publish, f"append {subject}", self.retry_deadline)
        except BadRequestError as exc:
            if exc.err_code != WRONG_LAST_SEQUENCE:
                raise
            last = await self.latest(aggregate.namespace, aggregate.name)
            if last is not None and last.commit_id == commit_id:
                return last.seq
            raise ConcurrencyConflict(scope, expected, last.seq if last else 0) from exc

    async def latest(self, namespace: str, name: str) -> Commit | None:
        subjects = s.name_subjects(namespace, name)
        try:
            msg = await retry_transient(
                lambda: self.js.get_last_msg(s.EVENTS_STREAM, subjects),
                f"last message of {subjects}",
                self.retry_deadline,
            )
        except NotFoundError:
            return None
        return decode_message(msg)

    async def _scan(self, subject: str, after: int) -> list[Commit]:
        out: list[Commit] = []
        seq = after + 1
        while True:
            try:
                msg = await retry_transient(
                    functools.partial(
                        self.js.get_msg, s.EVENTS_STREAM, seq=seq, subject=subject, next=True
                    ),
                    f"read {subject}",
                    self.retry_deadline,
                )
            except NotFoundError:
                return out
            except APIError as exc:  # 10037 "no message found" on some server versions
                if exc.code == 404:
                    return out
                raise
            out.append(decode_message(msg))
            seq = int(msg.seq or 0) + 1

    async def load(self, aggregate: AggregateId, after: int = 0) -> list[Commit]:
        return await self._scan(
            s.events_subject(aggregate.namespace, aggregate.name, aggregate.uid), after
        )

    async def history(self, namespace: str, name: str, after: int = 0) -> list[Commit]:
        return await self._scan(s.name_subjects(namespace, name), after)

    async def last_sequence(self) -> int:
        info = await retry_transient(
            lambda: self.js.stream_info(s.EVENTS_STREAM), "events stream info", self.retry_deadline
        )
        return int(info.state.last_seq)

    async def read_all(self, after: int = 0) -> AsyncIterator[Commit]:
        """Every stored commit after sequence `after`, in order, up to the last sequence when the
        read starts: one ordered consumer whose callback only collects the messages (a push with
        flow control); what has arrived is taken as one batch and decoded as it is yielded. The
        reader waits (with a timer) only when nothing has arrived: a turn of the event loop per
        batch, not per message, and the connection is read on while a batch is folded."""
        last = await self.last_sequence()
        if last <= after:
            return
        arrived: collections.deque[Any] = collections.deque()
        more = asyncio.Event()

        async def take(msg: Any) -> None:
            arrived.append(msg)
            more.set()

        sub = await self.js.subscribe(
            f"{s.EVENTS_PREFIX}.>",
            ordered_consumer=True,
            cb=take,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after + 1
            ),
        )
        try:
            while True:
                if not arrived:
                    more.clear()
                    async with asyncio.timeout(READ_ALL_IDLE_S):
                        await more.wait()
                for _ in range(min(len(arrived), READ_ALL_BATCH)):
                    msg = arrived.popleft()
                    seq = int(msg.metadata.sequence.stream)
                    yield decode_message(msg, seq)
                    if seq >= last:
                        return
                if arrived:
                    await asyncio.sleep(0)  # the connection's reader gets a turn between batches
        finally:
            await sub.unsubscribe()
