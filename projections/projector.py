"""The projector: keeps KV bucket `DGDR_STATUS` (key `<ns>.<name>`) equal to the status projection.

`apply(commit)` is idempotent and order-tolerant. The KV value's `metadata.resourceVersion` says which
commit was folded last: a commit at or below it is skipped (redelivery is harmless); a commit whose
expected sequence equals it is folded directly (the usual case); anything else (a gap, a deleted key,
a new incarnation of a name) is repaired by re-folding the name's current incarnation from the store.
Every write is a compare-and-swap on the KV revision, so two projector replicas never move a value
backwards; a lost CAS (on update, create or delete: an expected race) re-reads and tries again,
logged at debug.

`rebuild()` recomputes every key from the stream into a dict of canonical bytes (for the check that a
rebuild equals the live bucket); `check_not_ahead()` refuses to start when a value claims a sequence
the store does not have (`ProjectionAheadOfStore`).
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from nats.js import JetStreamContext
from nats.js.errors import BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from dgdr.domain.errors import ProjectionAheadOfStore, StoreError
from events import subjects as s
from events.envelope import Commit
from events.jetstream import WRONG_LAST_SEQUENCE, bucket_keys
from events.store import EventStore
from projections.status import encode, project

log = structlog.get_logger("dgdr.projector")


def is_cas_conflict(exc: Exception) -> bool:
    """Whether a KV write failed only because the key moved on (another writer won the race):
    `update`/`create` raise nats-py's KeyWrongLastSequenceError or KeyNotFoundError, but `delete`
    with `last=` raises a plain BadRequestError with JetStream's error code 10071."""
    if isinstance(exc, KeyWrongLastSequenceError | KeyNotFoundError):
        return True
    return isinstance(exc, BadRequestError) and exc.err_code == WRONG_LAST_SEQUENCE


def resource_version(obj: dict[str, Any] | None) -> int:
    if not obj:
        return 0
    return int(obj["metadata"]["resourceVersion"])


def fold_commit(obj: dict[str, Any] | None, commit: Commit) -> dict[str, Any] | None:
    for env in commit.envelopes:
        obj = project(obj, env, commit.seq)
    return obj


class Projector:
    def __init__(
        self, js: JetStreamContext, kv: KeyValue, store: EventStore, cache_size: int = 10_000
    ) -> None:
        self.js = js
        self.kv = kv
        self.store = store
        # What this projector last wrote per key: saves a KV read when it is still current. A
        # stale entry only costs a failed CAS and a re-read.
        self._cache: dict[str, tuple[dict[str, Any] | None, int]] = {}
        self._cache_size = cache_size

    def _remember(self, key: str, obj: dict[str, Any] | None, revision: int) -> None:
        if len(self._cache) >= self._cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = (obj, revision)

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
        else:
            self._remember(key, obj, await self.kv.create(key, encode(obj)))

    async def _refold(self, commit: Commit) -> dict[str, Any] | None:
        agg = commit.aggregate
        last = await self.store.latest(agg.namespace, agg.name)
        if last is None:
            raise StoreError(f"{agg}: commit {commit.seq} was delivered but the store has none")
        obj: dict[str, Any] | None = None
        for c in await self.store.load(last.aggregate):
            obj = fold_commit(obj, c)
        return obj

    async def apply(self, commit: Commit) -> None:
        agg = commit.aggregate
        key = s.status_key(agg.namespace, agg.name)
        cached = self._cache.get(key)
        for _ in range(20):
            if cached is not None:
                current, revision = cached
                cached = None
            else:
                current, revision = await self._read(key)
            rv = resource_version(current)
            if current is not None and commit.seq <= rv:
                return
            if (
                current is not None
                and commit.expected == rv
                and (current["metadata"]["uid"] == agg.uid)
            ):
                new = fold_commit(current, commit)
            elif current is None and revision == 0 and commit.expected == 0:
                new = fold_commit(None, commit)
            else:
                new = await self._refold(commit)
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
            return
        raise StoreError(
            f"could not project commit {commit.seq} of {agg}: the KV value kept changing"
        )

    async def values(self) -> dict[str, bytes]:
        keys = await bucket_keys(self.js, s.STATUS_BUCKET)
        out: dict[str, bytes] = {}
        for key in keys:
            current, _ = await self._read(key)
            if current is not None:
                out[key] = encode(current)
        return out

    async def rebuild(self) -> dict[str, bytes]:
        objects: dict[str, dict[str, Any] | None] = {}
        async for commit in self.store.read_all():
            key = s.status_key(commit.aggregate.namespace, commit.aggregate.name)
            objects[key] = fold_commit(objects.get(key), commit)
        return {k: encode(v) for k, v in objects.items() if v is not None}

    async def check_not_ahead(self) -> None:
        last = await self.store.last_sequence()
        for key, raw in (await self.values()).items():
            rv = resource_version(json.loads(raw))
            if rv > last:
                raise ProjectionAheadOfStore(
                    f"{s.STATUS_BUCKET}/{key} is at resourceVersion {rv} but the event store "
                    f"ends at {last}: events were lost; restore the stream or rebuild the "
                    "projection deliberately"
                )
