"""List-then-watch for one kind of object, with a local cache of plain dicts (what client-go calls
an informer, reduced to what the adapter needs). `Informer.custom(...)` is for custom resources,
`Informer(api, list_fn, ...)` for any kubernetes-asyncio list call (e.g. `CoreV1Api.list_config_map_for_all_namespaces`).

`Informer.run()` lists, reports every object, then watches from the list's resourceVersion with
bookmarks, and reports each change. It never gives up:
- 410 Gone (the resourceVersion is too old) → list again; objects that vanished while the watch was
  down are reported as DELETED, so a handler always converges on the cluster's state;
- a closed stream (server timeout, bookmark reconnect) → watch again from the last resourceVersion;
- a transport error or any other API error → back off (0.2 s doubling to 5 s) and try again;
- any other failure of the list or the watch → logged, backed off, and listed afresh.
Every `resync` seconds each cached object is reported again as SYNC, so a handler that failed (and
logged) gets another chance: level-triggered, not edge-triggered. Handler exceptions are logged and
never stop the informer.

Reports never wait for a handler: the list, the watch and the resync hand them to `ObjectQueues`,
which runs the handler for one object (by uid) at a time and for different objects concurrently
(at most `max_concurrent` at once), so a slow object delays nobody else and the watch and the
resync never handle the same object at once. Per object, reports are handled in arrival order;
a report that arrives while an older one still waits replaces it (the newest object, and the
strongest kind of the two: DELETED > ADDED > SYNC > MODIFIED), so at most one report per object
waits and the handler always ends on the object's latest state. `synced` is set once the first
list is in the cache (its reports queued, not necessarily handled yet).

Observed (`WorkQueueObserver`, no-op by default), as client-go's work queue and controller-runtime
report theirs: each report queued, the number waiting, and each handler run (seconds, raised or not).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp
import structlog
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

log = structlog.get_logger("k8s.informer")

Key = tuple[str, str]
Handler = Callable[[str, dict[str, Any]], Awaitable[None]]


def key_of(obj: dict[str, Any]) -> Key:
    m = obj.get("metadata", {})
    return str(m.get("namespace", "")), str(m["name"])


def identity_of(obj: dict[str, Any]) -> str:
    """The object's uid (one incarnation), or namespace/name for an object that has none."""
    m = obj.get("metadata", {})
    return str(m.get("uid") or "{}/{}".format(*key_of(obj)))


_STRENGTH = {"MODIFIED": 0, "SYNC": 1, "ADDED": 2}


def coalesce(older: str, newer: str) -> str:
    """The kind of one report standing for two of the same object: what asks most of a handler
    (DELETED, then ADDED, then SYNC, then MODIFIED), except that a report after DELETED wins."""
    if newer == "DELETED" or older == "DELETED":
        return newer
    return max(older, newer, key=lambda kind: _STRENGTH.get(kind, 0))


class WorkQueueObserver(Protocol):
    def queued(self, name: str, depth: int) -> None:
        """A report was queued on work queue `name` (not merged into a waiting one); `depth`
        reports now wait."""

    def dequeued(self, name: str, depth: int) -> None:
        """A report was taken off `name` for its handler; `depth` reports now wait."""

    def reconciled(self, name: str, seconds: float, failed: bool) -> None:
        """The handler of `name` ran for `seconds`; `failed` when it raised."""


class _Unobserved:
    def queued(self, name: str, depth: int) -> None:
        pass

    def dequeued(self, name: str, depth: int) -> None:
        pass

    def reconciled(self, name: str, seconds: float, failed: bool) -> None:
        pass


class ObjectQueues:
    """One queue of at most one waiting report per object, drained by one task per object."""

    def __init__(
        self,
        handler: Handler,
        what: str,
        max_concurrent: int = 64,
        observer: WorkQueueObserver | None = None,
    ) -> None:
        self.handler, self.plural = handler, what
        self.observer: WorkQueueObserver = observer or _Unobserved()
        self.waiting: dict[str, tuple[str, dict[str, Any]]] = {}
        self.workers: dict[str, asyncio.Task[None]] = {}
        self.slots = asyncio.Semaphore(max_concurrent)

    def submit(self, kind: str, obj: dict[str, Any]) -> None:
        """Queue `obj` for the handler and return at once."""
        identity = identity_of(obj)
        older = self.waiting.get(identity)
        self.waiting[identity] = (coalesce(older[0], kind) if older else kind, obj)
        if older is None:  # one merged into a waiting report is no new item (client-go's count)
            self.observer.queued(self.plural, len(self.waiting))
        if identity not in self.workers:
            self.workers[identity] = asyncio.create_task(
                self._drain(identity), name=f"{self.plural}:{identity}"
            )

    async def _drain(self, identity: str) -> None:
        try:
            while identity in self.waiting:
                async with self.slots:  # taken once a slot is free: it waits (and coalesces) here
                    report = self.waiting.pop(identity, None)
                    if report is None:
                        break
                    self.observer.dequeued(self.plural, len(self.waiting))
                    await self._handle(*report)
        finally:
            self.workers.pop(identity, None)

    async def _handle(self, kind: str, obj: dict[str, Any]) -> None:
        started = time.monotonic()
        try:
            await self.handler(kind, obj)
            self.observer.reconciled(self.plural, time.monotonic() - started, False)
        except Exception:
            self.observer.reconciled(self.plural, time.monotonic() - started, True)
            m = obj.get("metadata", {})
            log.exception(
                "handler failed",
                plural=self.plural,
                kind=kind,
                namespace=m.get("namespace"),
                name=m.get("name"),
            )

    async def close(self) -> None:
        """Cancel every running handler and forget what waits."""
        self.waiting.clear()
        tasks = list(self.workers.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        self.workers.clear()  # a task cancelled before it started never ran its `finally`


class Informer:
    def __init__(
        self,
        list_fn: Callable[..., Any],
        list_kwargs: dict[str, Any],
        *,
        handler: Handler,
        what: str,
        label_selector: str | None = None,
        resync: float = 30.0,
        watch_timeout: int = 300,
        max_concurrent: int = 64,
        observer: WorkQueueObserver | None = None,
    ) -> None:
        self.list_fn = list_fn
        self.list_kwargs = dict(list_kwargs)
        if label_selector:
            self.list_kwargs["label_selector"] = label_selector
        self.plural = what
        self.handler = handler
        self.queues = ObjectQueues(handler, what, max_concurrent, observer)
        self.resync, self.watch_timeout = resync, watch_timeout
        self.cache: dict[Key, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.relists = 0

    @classmethod
    def custom(
        cls,
        api: client.ApiClient,
        *,
        group: str,
        version: str,
        plural: str,
        handler: Handler,
        namespace: str | None = None,
        label_selector: str | None = None,
        resync: float = 30.0,
        observer: WorkQueueObserver | None = None,
    ) -> Informer:
        objects = client.CustomObjectsApi(api)
        kwargs: dict[str, Any] = {"group": group, "version": version, "plural": plural}
        if namespace:
            fn: Callable[..., Any] = objects.list_namespaced_custom_object
            kwargs["namespace"] = namespace
        else:
            fn = objects.list_cluster_custom_object
        return cls(
            fn,
            kwargs,
            handler=handler,
            what=plural,
            label_selector=label_selector,
            resync=resync,
            observer=observer,
        )

    def _list_call(self) -> tuple[Callable[..., Any], dict[str, Any]]:
        return self.list_fn, self.list_kwargs

    async def _relist(self) -> str:
        fn, kwargs = self._list_call()
        # Raw JSON, so every kind arrives as plain dicts; without preloading the client does not
        # check the status, so it is checked here.
        response = await fn(**kwargs, _preload_content=False)
        body = await response.read()
        if not 200 <= response.status <= 299:
            raise ApiException(status=response.status, reason=body.decode(errors="replace")[:500])
        listing = json.loads(body)
        self.relists += 1
        seen: dict[Key, dict[str, Any]] = {key_of(o): o for o in listing.get("items", [])}
        gone = [obj for key, obj in self.cache.items() if key not in seen]
        self.cache = seen
        for obj in gone:
            self.queues.submit("DELETED", obj)
        for obj in seen.values():
            self.queues.submit("ADDED", obj)
        self.synced.set()
        return str(listing["metadata"]["resourceVersion"])

    async def _watch(self, resource_version: str) -> str:
        fn, kwargs = self._list_call()
        w = watch.Watch()
        try:
            stream = w.stream(
                fn,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=self.watch_timeout,
                **kwargs,
            )
            async for event in stream:
                obj: dict[str, Any] = event["raw_object"]
                resource_version = str(obj.get("metadata", {}).get("resourceVersion", ""))
                kind = event["type"]
                if kind == "BOOKMARK":
                    continue
                if kind == "DELETED":
                    self.cache.pop(key_of(obj), None)
                else:
                    self.cache[key_of(obj)] = obj
                self.queues.submit(kind, obj)
        finally:
            await w.close()
        return resource_version

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.resync)
            for obj in self.cache.values():
                self.queues.submit("SYNC", obj)

    async def run(self) -> None:
        resyncer = asyncio.create_task(self._resync_forever())
        delay = 0.2
        resource_version: str | None = None
        try:
            while True:
                try:
                    if resource_version is None:
                        resource_version = await self._relist()
                    resource_version = await self._watch(resource_version)
                    delay = 0.2
                except ApiException as exc:
                    if exc.status == 410:
                        log.info("watch expired; listing again", plural=self.plural)
                        resource_version = None
                        continue
                    log.warning(
                        "api error", plural=self.plural, status=exc.status, error=exc.reason
                    )
                    resource_version = None if exc.status in (404,) else resource_version
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    log.warning("api unreachable", plural=self.plural, error=str(exc))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                except Exception:  # anything else (a malformed stream, say): list afresh
                    log.exception("watch failed; listing again", plural=self.plural)
                    resource_version = None
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
        finally:
            resyncer.cancel()
            await self.queues.close()


class InformerGroup:
    """One informer per watched namespace, or one for the whole cluster (`namespaces` None/empty),
    read and run as one."""

    def __init__(
        self, make: Callable[[str | None], Informer], namespaces: list[str] | None = None
    ) -> None:
        self.members = [make(ns) for ns in namespaces] if namespaces else [make(None)]

    def get(self, key: Key) -> dict[str, Any] | None:
        for member in self.members:
            if key in member.cache:
                return member.cache[key]
        return None

    @property
    def relists(self) -> int:
        return sum(m.relists for m in self.members)

    async def wait_synced(self) -> None:
        await asyncio.gather(*(m.synced.wait() for m in self.members))

    async def run(self) -> None:
        await asyncio.gather(*(m.run() for m in self.members))
