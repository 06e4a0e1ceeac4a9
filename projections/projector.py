"""The projector: keeps KV bucket `DGDR_STATUS` (key `<ns>.<name>`) equal to the status projection.

`apply(commit)` is idempotent and order-tolerant. The KV value's `metadata.resourceVersion` says which
commit was folded last: a commit at or below it is skipped (redelivery is harmless); a commit whose
expected sequence equals it is folded directly (the usual case); anything else (a gap, a deleted key,
a new incarnation of a name, a damaged message) is repaired by folding the name's stored messages
after the current value onto it (its whole stored history when there is no value).
Every write is a compare-and-swap on the KV revision, so two projector replicas never move a value
backwards; a lost CAS (on update, create or delete: an expected race) re-reads and tries again,
logged at debug. A name's first message (expected sequence 0) is written without reading the key
first: a write expecting no revision at all, refused when the key exists or holds a delete marker;
the key is then read as above.

Written through (`writing`): where the writer of a commit (request intake, the reactor) runs
in the same process as the projector, it projects its commit itself right after the append, by the
same `apply`, instead of waiting for the projector's consumer to deliver it. The guarantees stay:
the status is never ahead of the store (the commit is stored before it is folded), never behind
for long (a write-through that fails is only logged: the consumer projects every commit as before),
and a rebuild gives the same bytes (the same fold of the same commit). Applies of one key run one at
a time in a process; the consumer then finds the commit folded and skips it without decoding it
(`on_message`; `folded` lets the consumer acknowledge it without running a handler at all): every
message at or below a value's resourceVersion was verified, folded or quarantined, by whoever wrote
that value, or is the writer's own commit.
The last value written is kept in memory for at most `PROJECTOR_CACHE_SIZE` keys (least recently
used go first), so memory does not grow with the number of DGDRs.

Trusted but verified (`events.integrity`): a delivered message that is not a valid commit, or a commit
that is not a legal continuation of the status, is never folded. It is recorded once in the quarantine
(`events.quarantine`, before the status is written, so a crash in between records it on redelivery),
and when it belongs to the DGDR's live incarnation the status keeps its last good fold and gets the
condition `HistoryIntact` False (`projections.status.mark_damaged`). Then the message is acknowledged
like any other: nothing is redelivered forever. Commits after it are folded when they are legal.

`rebuild()` recomputes every key from the stream into a dict of canonical bytes (for the check that a
rebuild equals the live bucket; the cyclic garbage collector is paused while it runs), by the same
fold: a damaged DGDR is rebuilt to its last good state with its condition, and reported
(`rebuild_report`, and a warning per damaged DGDR); every other DGDR is rebuilt as if nothing were
wrong. `check_not_ahead()` refuses to start when a recently written
value claims a sequence the store does not have (`ProjectionAheadOfStore`; in constant time, its
docstring says what it catches).

Observed (`ProjectionObserver`, no-op by default): each status write, with the seconds from the
delivered commit's time (when it was decided) to the write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from nats.js import JetStreamContext
from nats.js.errors import BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from dgdr.domain import machine
from dgdr.domain.errors import ProjectionAheadOfStore, StoreError
from events import codec
from events import subjects as s
from events.envelope import AggregateId, Commit, Damage
from events.integrity import NO_AGGREGATE, aggregate_of, illegal, mark_illegal
from events.jetstream import WRONG_LAST_SEQUENCE, bucket_entries, bucket_values, decode_message
from events.quarantine import quarantine
from events.store import EventStore
from projections.status import encode, mark_damaged, project

log = structlog.get_logger("dgdr.projector")
# The statuses the projector keeps in memory (the last it wrote, to skip a read): enough for every
# DGDR in the middle of its lifecycle at once; a DGDR that waited longer costs one KV read.
PROJECTOR_CACHE_SIZE = 1024

# How many of the status bucket's last writes `check_not_ahead` reads (its docstring says why).
AHEAD_CHECK_WRITES = 1024

Status = dict[str, Any]
WriteThrough = Callable[[Commit], Awaitable[None]]


def is_cas_conflict(exc: Exception) -> bool:
    """Whether a KV write failed only because the key moved on (another writer won the race):
    `update`/`create` raise nats-py's KeyWrongLastSequenceError or KeyNotFoundError, but `delete`
    with `last=` raises a plain BadRequestError with JetStream's error code 10071."""
    if isinstance(exc, KeyWrongLastSequenceError | KeyNotFoundError):
        return True
    return isinstance(exc, BadRequestError) and exc.err_code == WRONG_LAST_SEQUENCE


def resource_version(obj: Status | None) -> int:
    if not obj:
        return 0
    return int(obj["metadata"]["resourceVersion"])


def _position(obj: Status | None, aggregate: AggregateId) -> tuple[str, AggregateId | None]:
    """The machine state a status shows, and its incarnation (None: no DGDR)."""
    if obj is None:
        return machine.ABSENT, None
    status = obj["status"]
    live = AggregateId(aggregate.namespace, aggregate.name, obj["metadata"]["uid"])
    return machine.join_state(status["phase"], status.get("profilingPhase")), live


def fold_commit(obj: Status | None, commit: Commit) -> tuple[Status | None, Damage | None]:
    """`obj` with `commit` folded in when it is a valid commit and a legal continuation; else
    `obj` as it was (marked damaged when the message is its incarnation's) and the damage."""
    if commit.damage is None:
        reason = illegal(*_position(obj, commit.aggregate), commit)
        if reason is None:
            for env in commit.envelopes:
                obj = project(obj, env, commit.seq)
            return obj, None
        commit = mark_illegal(commit, reason)
    assert commit.damage is not None
    if obj is not None and obj["metadata"]["uid"] == commit.aggregate.uid:
        return mark_damaged(obj, commit.damage), commit.damage
    return obj, commit.damage


class ProjectionObserver(Protocol):
    def projected(self, seconds_behind: float) -> None:
        """A status was written, `seconds_behind` after its commit was decided."""


class _Unobserved:
    def projected(self, seconds_behind: float) -> None:
        pass


def seconds_since(commit: Commit) -> float | None:
    """Seconds from the commit's time to now (never negative; None when it carries no time)."""
    try:
        decided = datetime.fromisoformat(commit.envelopes[-1].time)
    except (IndexError, ValueError, TypeError):
        return None
    if decided.tzinfo is None:
        return None
    return max(0.0, (datetime.now(UTC) - decided).total_seconds())


class Projector:
    def __init__(
        self,
        js: JetStreamContext,
        kv: KeyValue,
        store: EventStore,
        cache_size: int = PROJECTOR_CACHE_SIZE,
        observer: ProjectionObserver | None = None,
    ) -> None:
        self.observer: ProjectionObserver = observer or _Unobserved()
        self.js = js
        self.kv = kv
        self.store = store
        # What this projector last wrote per key: saves a KV read when it is still current. A
        # stale entry only costs a failed CAS and a re-read; a missing one, a read. Bounded: the
        # least recently used keys go beyond `cache_size`.
        self._cache: OrderedDict[str, tuple[dict[str, Any] | None, int]] = OrderedDict()
        self._cache_size = cache_size
        self._keys: dict[str, list[Any]] = {}  # key -> [lock, users]: `_serialized`

    def _remember(self, key: str, obj: dict[str, Any] | None, revision: int) -> None:
        self._cache[key] = (obj, revision)
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _cached(self, key: str) -> tuple[dict[str, Any] | None, int] | None:
        entry = self._cache.get(key)
        if entry is not None:
            self._cache.move_to_end(key)
        return entry

    async def _read(self, key: str) -> tuple[dict[str, Any] | None, int]:
        """(object, KV revision); a deleted or missing key is (None, revision or 0)."""
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError as exc:  # a deleted key carries its delete marker as `entry`
            marker = getattr(exc, "entry", None)
            return None, int(marker.revision) if marker is not None else 0
        return (json.loads(entry.value) if entry.value else None), int(entry.revision or 0)

    async def _write(self, key: str, obj: dict[str, Any] | None, revision: int) -> None:
        if obj is None:
            await self.kv.delete(key, last=revision)
            self._cache.pop(key, None)
        elif revision:
            self._remember(key, obj, await self.kv.update(key, encode(obj), last=revision))
        else:  # not `create`: it would write over a delete marker the caller has not seen
            self._remember(key, obj, await self.kv.update(key, encode(obj), last=0))

    async def _refold(
        self, aggregate: AggregateId, current: Status | None
    ) -> tuple[Status | None, list[Commit]]:
        """The name's status brought up to its last stored message: the messages after the
        current object folded onto it (it is the exact fold up to its resourceVersion), or the
        whole stored history when there is no object; and the messages not folded (as damaged
        commits). One pass covers every message stored so far, so a burst of messages on a name
        costs one repair, not one per message."""
        obj = current
        found: list[Commit] = []
        after = resource_version(current)
        for commit in await self.store.history(aggregate.namespace, aggregate.name, after=after):
            obj, damage = fold_commit(obj, commit)
            if damage is not None:
                found.append(commit if commit.damage else mark_illegal(commit, damage.reason))
        return obj, found

    async def _record_illegal(self, commit: Commit, damage: Damage | None) -> None:
        """Quarantine the delivered, well-formed `commit` when the fold found it illegal."""
        if commit.damage is None and damage is not None and damage.seq == commit.seq:
            await self._quarantine(mark_illegal(commit, damage.reason))

    async def _quarantine(self, commit: Commit) -> None:
        if await quarantine(self.js, commit):
            log.warning("stored message quarantined", damage=str(commit.damage))

    @contextlib.asynccontextmanager
    async def _serialized(self, key: str) -> AsyncIterator[None]:
        """One apply at a time per key in this process: a commit written through by its writer
        (`writing`) and the same commit delivered to the projector's consumer do not race
        each other's compare-and-swap; the later one finds it folded."""
        held = self._keys.get(key)
        if held is None:
            held = self._keys[key] = [asyncio.Lock(), 0]
        held[1] += 1
        try:
            async with held[0]:
                yield
        finally:
            held[1] -= 1
            if not held[1]:
                del self._keys[key]

    def _covers(self, key: str, seq: int) -> bool:
        """Whether what this projector last wrote for `key` already folds stream sequence `seq`."""
        cached = self._cache.get(key)
        return cached is not None and resource_version(cached[0]) >= seq

    def folded(self, msg: Any) -> bool:
        """Whether a delivered `DGDR_EVENTS` message is folded already in what this projector
        wrote (its writer wrote it through) and no write of its key is under way: `on_message`
        would skip it, so the consumer acknowledges it without running it."""
        agg = aggregate_of(str(msg.subject))
        if agg is None:
            return False
        key = s.status_key(agg.namespace, agg.name)
        return key not in self._keys and self._covers(key, int(msg.metadata.sequence.stream))

    async def on_message(self, msg: Any) -> None:
        """A `DGDR_EVENTS` message delivered to the projector's consumer. When this process wrote
        a status that folds it (its writer wrote the commit through), it is not decoded again:
        every message at or below a value's resourceVersion was verified (folded or quarantined)
        by whoever wrote that value, or is the writer's own commit."""
        seq = int(msg.metadata.sequence.stream)
        agg = aggregate_of(str(msg.subject))
        if agg is None:
            await self.apply(decode_message(msg, seq))
            return
        key = s.status_key(agg.namespace, agg.name)
        async with self._serialized(key):
            if not self._covers(key, seq):
                await self._apply(decode_message(msg, seq))

    @contextlib.asynccontextmanager
    async def writing(self, namespace: str, name: str) -> AsyncIterator[WriteThrough]:
        """For a writer of commits on a name in this process (request intake, the reactor): held
        from before its append until it has written the commit through, so the projector's
        consumer, delivered the commit meanwhile, waits and then finds it folded. Yields the
        write: best effort, a failure is logged and the consumer projects the commit as it
        would anyway."""

        async def write(commit: Commit) -> None:
            try:
                await self._apply(commit)
            except Exception as exc:
                log.warning(
                    "writing the status through failed; the projector's consumer will write it",
                    seq=commit.seq,
                    aggregate=str(commit.aggregate),
                    error=f"{type(exc).__name__}: {exc}",
                )

        async with self._serialized(s.status_key(namespace, name)):
            yield write

    async def apply(self, commit: Commit) -> None:
        agg = commit.aggregate
        if agg == NO_AGGREGATE:
            await self._apply(commit)
            return
        async with self._serialized(s.status_key(agg.namespace, agg.name)):
            await self._apply(commit)

    async def _apply(self, commit: Commit) -> None:
        agg = commit.aggregate
        if commit.damage is not None:  # unreadable: recorded whatever the status shows
            await self._quarantine(commit)
        if agg == NO_AGGREGATE:  # on a subject that names no DGDR: nothing to show it on
            return
        key = s.status_key(agg.namespace, agg.name)
        cached = self._cached(key)
        if cached is None and commit.expected == 0 and commit.damage is None:
            cached = (None, 0)  # the name's first message: its key is new, `create` checks that
        for _ in range(20):
            if cached is not None:
                current, revision = cached
                cached = None
            else:
                current, revision = await self._read(key)
            rv = resource_version(current)
            if current is not None and commit.seq <= rv:
                return
            new: Status | None
            if (
                current is not None
                and commit.expected == rv
                and (current["metadata"]["uid"] == agg.uid)
            ) or (current is None and revision == 0 and commit.expected == 0):
                new, damage = fold_commit(current, commit)
                await self._record_illegal(commit, damage)
                if new is current:
                    return
            else:
                new, found = await self._refold(agg, current)
                for damaged in found:  # what this write covers is not folded here again
                    if damaged.seq > rv:
                        await self._quarantine(damaged)
                if (new is None and current is None) or (
                    new is not None and resource_version(new) <= rv
                ):
                    return
            try:
                await self._write(key, new, revision)
            except (KeyWrongLastSequenceError, KeyNotFoundError, BadRequestError) as exc:
                if not is_cas_conflict(exc):
                    raise
                log.debug("status changed meanwhile; reading it again", key=key, seq=commit.seq)
                self._cache.pop(key, None)
                continue
            log.debug(
                "projected", namespace=agg.namespace, name=agg.name, uid=agg.uid, seq=commit.seq
            )
            if (behind := seconds_since(commit)) is not None:
                self.observer.projected(behind)
            return
        raise StoreError(
            f"could not project commit {commit.seq} of {agg}: the KV value kept changing"
        )

    async def values(self) -> dict[str, bytes]:
        """Every status in the bucket as stored, read in one bulk pass
        (`events.jetstream.bucket_values`). Every write is `encode`d, so these are the canonical
        bytes `rebuild` gives for the same objects: they are compared as they are, not decoded."""
        raw = await bucket_values(self.js, s.STATUS_BUCKET)
        return {key: value for key, value in raw.items() if value}

    async def rebuild_report(self) -> tuple[dict[str, bytes], dict[str, list[Damage]]]:
        """Every key recomputed from the stream (as `rebuild`), and the damage found per key
        (key "" for messages on subjects that name no DGDR)."""
        objects: dict[str, Status | None] = {}
        damaged: dict[str, list[Damage]] = {}
        keys: dict[AggregateId, str] = {NO_AGGREGATE: ""}  # a DGDR's commits come in runs
        with codec.collector_paused():  # what is decoded and folded holds no cycles
            async for commit in self.store.read_all():
                agg = commit.aggregate
                key = keys.get(agg)
                if key is None:
                    key = keys[agg] = s.status_key(agg.namespace, agg.name)
                objects[key], damage = fold_commit(objects.get(key), commit)
                if damage is not None:
                    damaged.setdefault(key, []).append(damage)
            return {k: encode(v) for k, v in objects.items() if v is not None and k}, damaged

    async def rebuild(self) -> dict[str, bytes]:
        objects, damaged = await self.rebuild_report()
        for key, found in damaged.items():
            log.warning(
                "damaged history: rebuilt without the messages that are not folded",
                key=key or None,
                damage=[str(d) for d in found],
            )
        return objects

    async def check_not_ahead(self) -> None:
        """Refuse to start (`ProjectionAheadOfStore`) when a status claims a sequence the store
        does not have: events were lost (a stream restored from an older backup, or recreated)
        while the status bucket kept what was projected from them.

        Constant time: only the statuses written by the bucket's last `AHEAD_CHECK_WRITES` writes
        are read (`events.jetstream.bucket_entries`, `tail`), not every status. The projector
        writes in the order it consumes commits, so the newest writes carry the highest
        resourceVersions: a status whose resourceVersion is the highest in the bucket is among
        them unless more than that many writes of lower ones followed it (the consumer keeps at
        most `max_inflight` = 256 commits in flight per replica, so only that many, plus the
        redeliveries of commits that failed to project, can finish after a later one).
        Caught: a store that lost its tail (any loss below the highest projected sequence), and
        any status among the last writes that claims more than the store has.
        Not caught (weaker than reading every status, which this did before): an ahead status
        written before the last `AHEAD_CHECK_WRITES` writes when none of those claims more than
        the store has, which needs that many writes of older commits after it (redeliveries) or
        a bucket edited by hand; and, as before, a store replaced by another history at least
        as long."""
        last = await self.store.last_sequence()
        recent = await bucket_entries(self.js, s.STATUS_BUCKET, tail=AHEAD_CHECK_WRITES)
        for key, (raw, _) in sorted(recent.items()):
            rv = resource_version(json.loads(raw))
            if rv > last:
                raise ProjectionAheadOfStore(
                    f"{s.STATUS_BUCKET}/{key} is at resourceVersion {rv} but the event store "
                    f"ends at {last}: events were lost; restore the stream or rebuild the "
                    "projection deliberately"
                )
