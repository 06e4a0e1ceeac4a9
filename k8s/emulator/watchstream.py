"""Watch streams: one HTTP response per watch, newline-delimited JSON events, one chunk each.

Owns the protocol of `?watch=true`: synthetic ADDED events for the current state when no
resourceVersion (or "0") is given, replay of the kept history after a resourceVersion, then live
events; labelSelector/fieldSelector filtering (an object that starts or stops matching becomes
ADDED or DELETED for that watcher, as on the real server); `allowWatchBookmarks` (a BOOKMARK with
the current resourceVersion every `bookmark_interval` seconds when the watcher is caught up);
`sendInitialEvents=true` (the initial ADDED events, then a BOOKMARK annotated
`k8s.io/initial-events-end`); `timeoutSeconds`; Table or PartialObjectMetadata event objects when
the Accept header asks for them. Queued events always go first: a bookmark that falls due while
events wait (a busy event loop) is sent once they are written.

Failure semantics: a resourceVersion older than the kept history gives an HTTP 200 stream with
one ERROR event (a Status with code 410, reason Expired) and then the end of the stream, as the
real server does; so does a failed conversion webhook (the Status it failed with). The stream ends cleanly (terminating chunk) on timeout, on `expire_watches()`,
on server stop, and when the client goes away.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from k8s.emulator import errors
from k8s.emulator.resources import ResourceType
from k8s.emulator.selectors import (
    field_value,
    parse_field_selector,
    parse_label_selector,
    supported_fields,
)
from k8s.emulator.store import Event, Store
from k8s.emulator.wire import negotiate, parse_bool, render

IDLE_CHECK = 5.0  # seconds between checks that an idle watch's client is still there


async def serve_watch(
    request: web.Request,
    store: Store,
    rt: ResourceType,
    namespace: str | None,
    bookmark_interval: float,
    *,
    name: str | None = None,
    convert: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None = None,
) -> web.StreamResponse:
    """Serve one watch; `name` limits it to one object (the legacy /watch/.../<name> path);
    `convert` turns each stored object into `rt`'s version (a CRD's conversion webhook)."""
    q = request.query
    labels = parse_label_selector(q.get("labelSelector"))
    fields = parse_field_selector(q.get("fieldSelector"), supported_fields(rt.group, rt.plural))
    bookmarks = parse_bool(q.get("allowWatchBookmarks"), "allowWatchBookmarks")
    send_initial = parse_bool(q.get("sendInitialEvents"), "sendInitialEvents")
    timeout_raw = q.get("timeoutSeconds")
    try:
        timeout = float(timeout_raw) if timeout_raw else None
    except ValueError as exc:
        raise errors.bad_request(f"invalid timeoutSeconds {timeout_raw!r}") from exc
    neg = negotiate(request)
    resp = web.StreamResponse(status=200)
    resp.content_type = "application/json"
    resp.enable_chunked_encoding()
    try:
        watcher = store.watch(rt, namespace, "0" if send_initial else q.get("resourceVersion"))
    except errors.ApiError as exc:
        if exc.code != 410:
            raise
        await resp.prepare(request)
        await _send(resp, "ERROR", exc.status())
        await resp.write_eof()
        return resp
    initial_left = watcher.queue.qsize() if send_initial else -1

    def matches(obj: dict[str, Any] | None) -> bool:
        return (
            obj is not None
            and (name is None or obj["metadata"]["name"] == name)
            and labels.matches(obj["metadata"].get("labels"))
            and fields.matches(obj, field_value)
        )

    async def bookmark(initial_end: bool = False) -> None:
        md: dict[str, Any] = {"resourceVersion": store.resource_version}
        if initial_end:
            md["annotations"] = {"k8s.io/initial-events-end": "true"}
        await _send(
            resp, "BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": md}
        )

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout if timeout is not None else None
    next_bookmark = loop.time() + bookmark_interval
    try:
        await resp.prepare(request)
        if initial_left == 0 and bookmarks:
            await bookmark(initial_end=True)
        while True:
            now = loop.time()
            if deadline is not None and now >= deadline:
                break
            wait = IDLE_CHECK
            if deadline is not None:
                wait = min(wait, deadline - now)
            if bookmarks:
                wait = min(wait, max(0.0, next_bookmark - now))
            try:
                event = await _next_event(watcher.queue, wait)
            except TimeoutError:
                transport = request.transport
                if transport is None or transport.is_closing():
                    break  # the client went away
                if bookmarks and loop.time() >= next_bookmark and watcher.queue.empty():
                    await bookmark()
                    next_bookmark = loop.time() + bookmark_interval
                continue
            if event is None:
                break  # expire_watches() or server stop
            out = selection_change(event, matches)
            if out is not None:
                try:
                    obj = store.present(rt, out[1]) if convert is None else await convert(out[1])
                except errors.ApiError as exc:  # the conversion webhook failed: end with an ERROR
                    await _send(resp, "ERROR", exc.status())
                    break
                await _send(resp, out[0], render(rt, obj, neg))
            if initial_left > 0:
                initial_left -= 1
                if initial_left == 0 and bookmarks:
                    await bookmark(initial_end=True)
        await resp.write_eof()
    except ConnectionResetError:
        pass  # the client went away
    finally:
        store.unwatch(watcher)
    return resp


async def _next_event(queue: asyncio.Queue[Event | None], wait: float) -> Event | None:
    """The next event: one already queued at once, else the next within `wait` seconds
    (TimeoutError). `wait` is 0 once a bookmark is due, and `wait_for(queue.get(), 0)` times out
    without taking an item that is there, so the watch would spin (no event, no bookmark) until
    its timeout."""
    if not queue.empty():
        return queue.get_nowait()
    return await asyncio.wait_for(queue.get(), wait)


async def _send(resp: web.StreamResponse, kind: str, obj: dict[str, Any]) -> None:
    await resp.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")


def selection_change(
    event: Event, matches: Callable[[dict[str, Any] | None], bool]
) -> tuple[str, dict[str, Any]] | None:
    """Apply a watcher's selectors: objects entering/leaving the selection become ADDED/DELETED."""
    new_ok = matches(event.obj)
    old_ok = matches(event.old)
    if event.type == "ADDED":
        return ("ADDED", event.obj) if new_ok else None
    if event.type == "DELETED":
        return ("DELETED", event.obj) if (new_ok or old_ok) else None
    if new_ok and old_ok:
        return ("MODIFIED", event.obj)
    if new_ok:
        return ("ADDED", event.obj)
    if old_ok:
        return ("DELETED", event.obj)
    return None
