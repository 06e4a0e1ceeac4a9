"""The EventStore port and its in-memory implementation.

Contract (tested once in tests/events/test_store_contract.py and run against every implementation):
- `append(aggregate, envelopes, expected=..., commit_id=...)` stores all envelopes of one decision as one
  commit, atomically, and returns its sequence. `expected` is the sequence of the last commit of *any*
  incarnation of the aggregate's namespace/name (0 for none): the scope of optimistic concurrency is the
  name, so two replicas can never create two incarnations of one name. A mismatch raises
  `ConcurrencyConflict` and stores nothing. Re-appending the same `commit_id` after a lost
  acknowledgement returns the original sequence instead of storing it twice.
- `latest(namespace, name)` is the last commit of the name (its aggregate tells the current uid).
- `load(aggregate, after)` returns the aggregate's commits with sequence > `after`, in order.
- `history(namespace, name, after)` returns the commits of every incarnation of the name with
  sequence > `after`, in order.
- Reads return what is stored, in place: a stored message that is not a valid commit comes back as a
  damaged `Commit` (`damage` set, no envelopes; `events.integrity`), never as an exception.
- `read_all(after)` yields every commit in stream order (for rebuilds); `last_sequence()` is the
  sequence of the newest commit in the store.
Sequences are store-wide, increasing, and may have gaps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Protocol

from dgdr.domain.errors import ConcurrencyConflict
from events.envelope import AggregateId, Commit, Envelope


class EventStore(Protocol):
    async def append(
        self, aggregate: AggregateId, envelopes: list[Envelope], *, expected: int, commit_id: str
    ) -> int: ...

    async def latest(self, namespace: str, name: str) -> Commit | None: ...

    async def load(self, aggregate: AggregateId, after: int = 0) -> list[Commit]: ...

    async def history(self, namespace: str, name: str, after: int = 0) -> list[Commit]: ...

    def read_all(self, after: int = 0) -> AsyncIterator[Commit]: ...

    async def last_sequence(self) -> int: ...


class InMemoryEventStore:
    """A process-local store with the same semantics as the JetStream one (for tests and tools)."""

    def __init__(self) -> None:
        self._commits: list[Commit] = []
        self._by_id: dict[str, Commit] = {}
        self._lock = asyncio.Lock()

    async def append(
        self, aggregate: AggregateId, envelopes: list[Envelope], *, expected: int, commit_id: str
    ) -> int:
        async with self._lock:
            if commit_id in self._by_id:
                return self._by_id[commit_id].seq
            last = self._latest(aggregate.namespace, aggregate.name)
            actual = last.seq if last else 0
            if actual != expected:
                raise ConcurrencyConflict(
                    f"{aggregate.namespace}/{aggregate.name}", expected, actual
                )
            seq = (self._commits[-1].seq if self._commits else 0) + 1
            commit = Commit(
                aggregate, list(envelopes), seq=seq, expected=expected, commit_id=commit_id
            )
            self._commits.append(commit)
            self._by_id[commit_id] = commit
            return seq

    def _latest(self, namespace: str, name: str) -> Commit | None:
        for c in reversed(self._commits):
            if (c.aggregate.namespace, c.aggregate.name) == (namespace, name):
                return c
        return None

    async def latest(self, namespace: str, name: str) -> Commit | None:
        return self._latest(namespace, name)

    async def load(self, aggregate: AggregateId, after: int = 0) -> list[Commit]:
        return [replace(c) for c in self._commits if c.aggregate == aggregate and c.seq > after]

    async def history(self, namespace: str, name: str, after: int = 0) -> list[Commit]:
        return [
            c
            for c in self._commits
            if (c.aggregate.namespace, c.aggregate.name) == (namespace, name) and c.seq > after
        ]

    async def read_all(self, after: int = 0) -> AsyncIterator[Commit]:
        for c in list(self._commits):
            if c.seq > after:
                yield c

    async def last_sequence(self) -> int:
        return self._commits[-1].seq if self._commits else 0
