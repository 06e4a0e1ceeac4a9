"""kill -9 of `dgdr up` mid-deploy, against an API server that survives it (the emulator in its own
process): the restart creates no second DGD, records no Event twice, and the history holds one
DeploymentCreated."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes_asyncio import client

from events.server import free_port
from k8s.kube import DGD_PLURAL, DGD_VERSION, DGDR_PLURAL, DGDR_VERSION, GROUP, connect
from tests.support import until

from .conftest import dgdr

pytestmark = pytest.mark.timeout(120)

T = TypeVar("T")


async def spawn(*args: str, log: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *args,
        stdout=log.open("ab"),
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def until_or_log(
    check: Callable[[], Awaitable[T]], timeout: float, what: str, log: Path
) -> T:
    """`until`, and on a timeout the end of the service's log in the failure."""
    try:
        return await until(check, timeout, what)
    except AssertionError as exc:
        tail = (await asyncio.to_thread(log.read_text))[-2000:]
        raise AssertionError(f"{exc}\n{tail}") from None


async def kill(proc: asyncio.subprocess.Process, sig: int) -> None:
    """Send `sig` to the process group; one that outlives a SIGTERM by 10 s gets SIGKILL, so a
    failing test never leaves a `dgdr up` behind."""
    if proc.returncode is not None:
        return
    os.killpg(proc.pid, sig)
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[Path]:
    kc = tmp_path / "kubeconfig"
    proc = await spawn(
        sys.executable,
        "-m",
        "k8s.emulator",
        "--port",
        str(free_port()),
        "--kubeconfig",
        str(kc),
        "--nodes",
        "2",
        "--dgd-ready-delay",
        "3",
        log=tmp_path / "emulator.log",
    )
    try:
        await until(lambda: kc.is_file() and kc.stat().st_size > 0, 10, "the emulator's kubeconfig")
        yield kc
    finally:
        await kill(proc, signal.SIGTERM)


async def test_kill_9_mid_deploy_then_restart_creates_nothing_twice(
    emulator: Path, tmp_path: Path
) -> None:
    port = str(free_port())

    def up() -> Any:
        return spawn(
            sys.executable,
            "-m",
            "dgdr",
            "up",
            "--data-dir",
            str(tmp_path / "data"),
            "--port",
            port,
            "--kubeconfig",
            str(emulator),
            "--lease-duration",
            "2",
            log=tmp_path / "up.log",
        )

    api = await connect(emulator)
    objects = client.CustomObjectsApi(api)
    proc = await up()
    try:
        leases = client.CoordinationV1Api(api)

        async def leading() -> bool:
            held = await leases.list_namespaced_lease("default")
            return any(lease.spec.holder_identity for lease in held.items)

        await until_or_log(leading, 15, "an adapter to lead", tmp_path / "up.log")
        await objects.create_namespaced_custom_object(
            GROUP, DGDR_VERSION, "default", DGDR_PLURAL, dgdr("crash")
        )

        def reached(phase: str) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                obj = await objects.get_namespaced_custom_object(
                    GROUP, DGDR_VERSION, "default", DGDR_PLURAL, "crash"
                )
                return bool((obj.get("status") or {}).get("phase") == phase)

            return check

        await until_or_log(reached("Deploying"), 15, "Deploying", tmp_path / "up.log")
        await kill(proc, signal.SIGKILL)

        proc = await up()
        await until_or_log(
            reached("Deployed"), 30, "Deployed after the restart", tmp_path / "up.log"
        )

        dgds = await objects.list_namespaced_custom_object(
            GROUP, DGD_VERSION, "default", DGD_PLURAL
        )
        assert [d["metadata"]["name"] for d in dgds["items"]] == ["crash-dgd"]

        async def recorded() -> Counter[str] | None:
            events = await client.CoreV1Api(api).list_namespaced_event(
                "default", field_selector="involvedObject.name=crash"
            )
            reasons = Counter(e.reason for e in events.items)
            return reasons if reasons["DeploymentReady"] else None

        # DeploymentReady is the history's last event, and the recorder follows one DGDR's
        # history in order: once it is recorded, every Event before it has been too.
        reasons = await until_or_log(recorded, 15, "the last Event", tmp_path / "up.log")
        assert reasons["DeploymentCreated"] == 1 and reasons["DeploymentReady"] == 1, reasons
        assert all(n == 1 for n in reasons.values()), reasons
    finally:
        await kill(proc, signal.SIGTERM)
        await api.close()
