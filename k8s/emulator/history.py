"""Watch history and fan-out: the bounded log of committed changes and the open watchers.

Owns `Event` (one committed change, with the object before and after), `Watcher` (one open watch:
a queue of events for one resource, optionally one namespace) and `EventLog`, which keeps the last
`size` events, replays those after a resourceVersion to a new watcher, pushes each new event to
every matching watcher, and remembers the newest resourceVersion it has forgotten.

Failure semantics: `EventLog.open` raises `ApiError` 410 Expired for a resourceVersion older than
the kept history (after overflow or `compact()`), and 400 for one that is not a number; closing
puts a `None` sentinel on each watcher's queue, which ends its stream cleanly.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from k8s.emulator import errors

Key = tuple[str, str]  # (group, plural): where a kind's objects are stored


@dataclass(frozen=True)
class Event:
    """One committed change; `obj` is the object after it (never mutated afterwards)."""

    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    key: Key
    namespace: str
    obj: dict[str, Any]
    old: dict[str, Any] | None


@dataclass(eq=False)
class Watcher:
    key: Key
    namespace: str | None  # None: every namespace
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)

    def wants(self, event: Event) -> bool:
        return event.key == self.key and self.namespace in (None, event.namespace)


class EventLog:
    def __init__(self, size: int) -> None:
        self._events: deque[Event] = deque()
        self._size = max(1, size)
        self._forgotten = 0  # newest resourceVersion no longer in the log
        self._watchers: set[Watcher] = set()

    def record(self, event: Event) -> None:
        self._events.append(event)
        while len(self._events) > self._size:
            self._forgotten = self._events.popleft().rv
        for watcher in list(self._watchers):
            if watcher.wants(event):
                watcher.queue.put_nowait(event)

    def open(
        self,
        key: Key,
        namespace: str | None,
        resource_version: str | None,
        snapshot: Iterable[Event],
    ) -> Watcher:
        """A registered watcher pre-filled with `snapshot` (resourceVersion unset or "0") or with
        the kept events after `resource_version`."""
        watcher = Watcher(key, namespace)
        if resource_version in (None, "", "0"):
            events: Iterable[Event] = snapshot
        else:
            try:
                since = int(str(resource_version))
            except ValueError as exc:
                raise errors.bad_request(
                    f'resourceVersion: Invalid value: "{resource_version}": strconv.ParseUint: '
                    "parsing: invalid syntax"
                ) from exc
            if since < self._forgotten:
                raise errors.expired(since, self._forgotten)
            events = [e for e in self._events if e.rv > since]
        for event in events:
            if watcher.wants(event):
                watcher.queue.put_nowait(event)
        self._watchers.add(watcher)
        return watcher

    def close(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def close_all(self) -> None:
        for watcher in list(self._watchers):
            watcher.queue.put_nowait(None)
        self._watchers.clear()

    def compact(self, current: int) -> None:
        self._events.clear()
        self._forgotten = current
