"""The informer's handling of reports, against the API server emulator: a slow object delays no
other object and does not stop the watch; the watch and the resync never handle one object at once;
per object, reports arrive in order and a backlog collapses to the latest state."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client

from k8s.emulator import Emulator
from k8s.informer import Informer, coalesce
from tests.support import until

pytestmark = pytest.mark.timeout(60)

NS = "default"


@pytest.fixture
async def core() -> AsyncIterator[client.CoreV1Api]:
    emulator = Emulator()
    await emulator.start()
    configuration = client.Configuration(host=emulator.url)
    try:
        async with client.ApiClient(configuration) as api:
            yield client.CoreV1Api(api)
    finally:
        await emulator.stop()


def config_map(name: str, version: int = 0) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": {"version": str(version)}}


async def set_version(core: client.CoreV1Api, name: str, version: int) -> None:
    await core.patch_namespaced_config_map(name, NS, {"data": {"version": str(version)}})


def version_of(obj: dict[str, Any]) -> int:
    return int(obj["data"]["version"])


async def running(informer: Informer) -> asyncio.Task[None]:
    task = asyncio.create_task(informer.run())
    await until(informer.synced.is_set, what="the first list")
    return task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def config_maps(core: client.CoreV1Api, handler: Any, resync: float = 30.0) -> Informer:
    return Informer(
        core.list_namespaced_config_map,
        {"namespace": NS},
        handler=handler,
        what="configmaps",
        resync=resync,
    )


async def test_a_slow_object_delays_neither_other_objects_nor_the_watch(
    core: client.CoreV1Api,
) -> None:
    release_a = asyncio.Event()
    a_started = asyncio.Event()
    seen_b: list[tuple[str, int]] = []

    async def handler(kind: str, obj: dict[str, Any]) -> None:
        if obj["metadata"]["name"] == "a":
            a_started.set()
            await release_a.wait()  # an apply waiting for its outcome, say
        else:
            seen_b.append((kind, version_of(obj)))

    task = await running(config_maps(core, handler))
    try:
        await core.create_namespaced_config_map(NS, config_map("a"))
        await until(a_started.is_set, what="the handler to start on a")
        await core.create_namespaced_config_map(NS, config_map("b"))
        await until(lambda: ("ADDED", 0) in seen_b, what="b to be handled while a is held")
        await set_version(core, "b", 1)  # a watch event after a's handler started
        await until(lambda: ("MODIFIED", 1) in seen_b, what="b's change while a is held")
        assert not release_a.is_set()
    finally:
        release_a.set()
        await stop(task)


async def test_the_watch_and_the_resync_never_handle_one_object_at_once(
    core: client.CoreV1Api,
) -> None:
    active: Counter[str] = Counter()
    overlaps: list[str] = []
    kinds: Counter[str] = Counter()
    versions: list[int] = []

    async def handler(kind: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        active[name] += 1
        if active[name] > 1:
            overlaps.append(f"{kind} {name}")
        kinds[kind] += 1
        versions.append(version_of(obj))
        await asyncio.sleep(0.03)  # work that spans several resyncs and watch events
        active[name] -= 1

    await core.create_namespaced_config_map(NS, config_map("x"))
    task = await running(config_maps(core, handler, resync=0.01))
    try:
        for version in range(1, 16):
            await set_version(core, "x", version)
        # A change that meets a waiting SYNC is handled as SYNC, with the watch's newer object.
        await until(lambda: 15 in versions, what="the watch's last change")
        synced = kinds["SYNC"]
        await until(lambda: kinds["SYNC"] > synced + 3, what="resyncs after the changes")
        assert overlaps == []
    finally:
        await stop(task)


async def test_per_object_order_is_kept_and_a_backlog_collapses_to_the_latest(
    core: client.CoreV1Api,
) -> None:
    release = asyncio.Event()
    held = asyncio.Event()
    seen: defaultdict[str, list[int]] = defaultdict(list)

    async def handler(kind: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        seen[name].append(version_of(obj))
        if name == "slow" and not release.is_set():
            held.set()
            await release.wait()

    informer = config_maps(core, handler)
    task = await running(informer)
    try:
        for name in ("slow", "fast"):
            await core.create_namespaced_config_map(NS, config_map(name))
        await until(held.is_set, what="the slow object's handler to start")
        for version in range(1, 31):
            await set_version(core, "slow", version)
            await set_version(core, "fast", version)

        def cached(name: str) -> int:
            obj = informer.cache.get((NS, name))
            return version_of(obj) if obj else -1

        await until(lambda: cached("slow") == 30, what="the watch to deliver every change")
        release.set()
        await until(lambda: seen["slow"][-1:] == [30], what="the slow object's latest state")
        await until(lambda: seen["fast"][-1:] == [30], what="the fast object's latest state")
        for name in ("slow", "fast"):
            assert seen[name] == sorted(seen[name]), f"{name} out of order: {seen[name]}"
        assert seen["slow"] == [0, 30], "30 changes behind a slow handler wait as one"
    finally:
        release.set()
        await stop(task)


def test_a_waiting_report_takes_the_stronger_kind_and_deleted_is_never_lost() -> None:
    assert coalesce("ADDED", "MODIFIED") == "ADDED"
    assert coalesce("MODIFIED", "SYNC") == "SYNC"
    assert coalesce("SYNC", "ADDED") == "ADDED"
    assert coalesce("MODIFIED", "DELETED") == "DELETED"
    assert coalesce("DELETED", "SYNC") == "SYNC"
