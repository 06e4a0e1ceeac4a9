"""Watches: replay from a resourceVersion, synthetic ADDED, bookmarks, 410 Gone after compaction
or history overflow, selectors (objects leaving the selection are DELETED), timeoutSeconds,
sendInitialEvents, clean closes on expire_watches() and server stop, and events that wait while a
bookmark is due (a busy event loop) still delivered."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from k8s.emulator import Emulator
from k8s.emulator.store import WriteOptions

from .conftest import dgdr_manifest

pytestmark = pytest.mark.timeout(30)

G, V, P = "nvidia.com", "v1beta1", "dynamographdeploymentrequests"
PATH = f"/apis/{G}/{V}/namespaces/default/{P}"
MERGE = "application/merge-patch+json"


async def read_events(resp: aiohttp.ClientResponse, limit: float = 5.0) -> list[dict[str, Any]]:
    """Every event until the server ends the stream."""
    events = []
    async with asyncio.timeout(limit):
        async for line in resp.content:
            if line.strip():
                events.append(json.loads(line))
    return events


async def test_replay_live_and_bookmarks(emu: Emulator, api: client.ApiClient) -> None:
    objects = client.CustomObjectsApi(api)
    start_rv = emu.store.resource_version
    await objects.create_namespaced_custom_object(G, V, "default", P, dgdr_manifest())
    seen: list[tuple[str, str]] = []
    bookmarks = 0
    w = watch.Watch()
    stream = w.stream(
        objects.list_namespaced_custom_object, G, V, "default", P,
        resource_version=start_rv, allow_watch_bookmarks=True, timeout_seconds=5,
    )  # fmt: skip

    async def writer() -> None:
        await objects.patch_namespaced_custom_object_status(
            G, V, "default", P, "demo", {"status": {"phase": "Pending"}}, _content_type=MERGE
        )
        await objects.delete_namespaced_custom_object(G, V, "default", P, "demo")

    task: asyncio.Task[None] | None = None
    async with asyncio.timeout(10):
        async for event in stream:
            if task is None:  # the replayed ADDED: the stream is open, the rest comes live
                task = asyncio.create_task(writer())
            if event["type"] == "BOOKMARK":
                bookmarks += 1
                assert int(event["object"]["metadata"]["resourceVersion"]) > int(start_rv)
                if seen and seen[-1][0] == "DELETED":
                    break
                continue
            obj = event["object"]
            seen.append((event["type"], obj.get("status", {}).get("phase", "")))
    await w.close()
    assert task is not None
    await task
    assert seen == [("ADDED", ""), ("MODIFIED", "Pending"), ("DELETED", "Pending")]
    assert bookmarks >= 1


async def test_compacted_and_overflowed_history_is_410(
    emu: Emulator, api: client.ApiClient
) -> None:
    objects = client.CustomObjectsApi(api)
    old_rv = emu.store.resource_version
    await objects.create_namespaced_custom_object(G, V, "default", P, dgdr_manifest())
    emu.compact()
    w = watch.Watch()
    with pytest.raises(ApiException) as err:
        async for _ in w.stream(
            objects.list_namespaced_custom_object, G, V, "default", P,
            resource_version=old_rv, timeout_seconds=2,
        ):  # fmt: skip
            pass
    await w.close()
    assert err.value.status == 410
    async with (
        aiohttp.ClientSession(emu.url) as http,
        http.get(f"{PATH}?watch=1&resourceVersion={old_rv}") as resp,
    ):
        assert resp.status == 200
        events = await read_events(resp)
    assert events == [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: {old_rv} ({emu.store.resource_version})",
                "reason": "Expired",
                "code": 410,
            },
        }
    ]
    # the current resourceVersion is still fine
    async with aiohttp.ClientSession(emu.url) as http:
        rv = emu.store.resource_version
        async with http.get(f"{PATH}?watch=true&resourceVersion={rv}&timeoutSeconds=0.3") as resp:
            assert await read_events(resp) == []

    small = Emulator(history=3)
    await small.start()
    try:
        first = small.store.resource_version
        for i in range(5):
            await small.store.create(G, V, P, "default", dgdr_manifest(f"d{i}"))
        async with aiohttp.ClientSession(small.url) as http:
            async with http.get(f"{PATH}?watch=True&resourceVersion={first}") as resp:
                (event,) = await read_events(resp)
            assert event["object"]["code"] == 410
            recent = int(small.store.resource_version) - 2
            async with http.get(
                f"{PATH}?watch=True&resourceVersion={recent}&timeoutSeconds=0.3"
            ) as resp:
                events = await read_events(resp)
            assert [e["object"]["metadata"]["name"] for e in events] == ["d3", "d4"]
    finally:
        await small.stop()


async def test_synthetic_added_selectors_and_timeout(emu: Emulator) -> None:
    for name, app in [("a", "x"), ("b", "y")]:
        body = dgdr_manifest(name)
        body["metadata"]["labels"] = {"app": app}
        await emu.store.create(G, V, P, "default", body)
    async with aiohttp.ClientSession(emu.url) as http:
        async with http.get(f"{PATH}?watch=1&labelSelector=app%3Dx&timeoutSeconds=1") as resp:
            assert resp.headers["Content-Type"].startswith("application/json")
            # The headers come once the watch is open: what follows is live, not the snapshot.
            await emu.store.patch(G, V, P, "default", "b", {"metadata": {"labels": {"app": "x"}}})
            await emu.store.patch(G, V, P, "default", "a", {"metadata": {"labels": {"app": "z"}}})
            events = await read_events(resp)  # the server ends the stream (timeoutSeconds)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
            ("ADDED", "a"),
            ("ADDED", "b"),
            ("DELETED", "a"),
        ]
        async with http.get(
            f"{PATH}?watch=1&fieldSelector=metadata.name%3Db&timeoutSeconds=0.3"
        ) as resp:
            events = await read_events(resp)
        assert [e["object"]["metadata"]["name"] for e in events] == ["b"]
        async with http.get(f"{PATH}?watch=maybe") as resp:
            assert resp.status == 400
        async with http.get(
            f"{PATH}?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
            "&resourceVersionMatch=NotOlderThan&timeoutSeconds=0.3"
        ) as resp:
            events = await read_events(resp)
        assert [e["type"] for e in events[:3]] == ["ADDED", "ADDED", "BOOKMARK"]
        assert events[2]["object"]["metadata"]["annotations"] == {
            "k8s.io/initial-events-end": "true"
        }


async def test_expire_watches_and_stop_close_streams(emu: Emulator) -> None:
    async with aiohttp.ClientSession(emu.url) as http:
        async with http.get(f"{PATH}?watch=1") as resp:  # headers: the watch is open
            emu.expire_watches()
            assert await read_events(resp) == []
        async with http.get("/api/v1/watch/namespaces/default/configmaps") as resp:
            await emu.store.create("", "v1", "configmaps", "default", {"metadata": {"name": "c"}})
            line = await asyncio.wait_for(resp.content.readline(), 2)
            assert json.loads(line)["type"] == "ADDED"
            await emu.stop()
            assert await read_events(resp) == []


async def test_events_waiting_when_a_bookmark_is_due_are_delivered(emu: Emulator) -> None:
    """Two changes are queued for a caught-up watcher, then the event loop is kept busy past the
    next bookmark (as under CPU load). The stream must still deliver both. It used to deliver
    nothing more: with a bookmark due the serving loop waited 0 s for the queue, and
    `asyncio.wait_for(queue.get(), 0)` times out without taking an item that is there; the
    bookmark is only sent once the queue is empty, so the deadline never moved and the watch
    spun until its timeoutSeconds while its client saw neither events nor bookmarks."""
    interval = 0.2  # the emu fixture's bookmark_interval
    rt = emu.store.resource_type("", "v1", "configmaps")
    path = "/api/v1/namespaces/default/configmaps"
    query = f"watch=1&allowWatchBookmarks=true&resourceVersion={emu.store.resource_version}"
    async with (
        aiohttp.ClientSession(emu.url) as http,
        http.get(f"{path}?{query}&timeoutSeconds=2") as resp,
    ):
        line = await asyncio.wait_for(resp.content.readline(), 2)
        assert json.loads(line)["type"] == "BOOKMARK"  # caught up: the next one is due soon
        for name in ("a", "b"):
            emu.store.do_create(rt, "default", {"metadata": {"name": name}}, WriteOptions())
        # Block the event loop on purpose (as CPU load does): the bookmark falls due, both queued.
        time.sleep(interval * 1.5)  # noqa: ASYNC251
        events = await read_events(resp)  # until the server ends the stream
    assert [
        (e["type"], e["object"]["metadata"]["name"]) for e in events if e["type"] != "BOOKMARK"
    ] == [("ADDED", "a"), ("ADDED", "b")]
    assert any(e["type"] == "BOOKMARK" for e in events)  # and bookmarks go on once caught up
