"""kill -9 of `dgdr up` mid-deploy, against an API server that survives it (the emulator in its own
process): the restart creates no second DGD, records no Event twice, and the history holds one
DeploymentCreated."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from events.server import free_port
from k8s.kube import DGD_PLURAL, DGD_VERSION, DGDR_PLURAL, DGDR_VERSION, GROUP, connect

from .conftest import dgdr

pytestmark = pytest.mark.timeout(120)


async def spawn(*args: str, log: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *args,
        stdout=log.open("ab"),
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def kill(proc: asyncio.subprocess.Process, sig: int) -> None:
    if proc.returncode is None:
        os.killpg(proc.pid, sig)
        await asyncio.wait_for(proc.wait(), 20)


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
        for _ in range(100):
            if kc.is_file() and kc.stat().st_size:
                break
            await asyncio.sleep(0.1)
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
            "--step-delay",
            "0.05",
            log=tmp_path / "up.log",
        )

    api = await connect(emulator)
    objects = client.CustomObjectsApi(api)
    proc = await up()
    try:
        leases = client.CoordinationV1Api(api)
        for _ in range(150):  # up once an adapter leads
            held = await leases.list_namespaced_lease("default")
            if any(lease.spec.holder_identity for lease in held.items):
                break
            await asyncio.sleep(0.1)
        await objects.create_namespaced_custom_object(
            GROUP, DGDR_VERSION, "default", DGDR_PLURAL, dgdr("crash")
        )

        async def phase() -> str | None:
            obj = await objects.get_namespaced_custom_object(
                GROUP, DGDR_VERSION, "default", DGDR_PLURAL, "crash"
            )
            return (obj.get("status") or {}).get("phase")

        for _ in range(300):
            if await phase() == "Deploying":
                break
            await asyncio.sleep(0.05)
        assert await phase() == "Deploying", (tmp_path / "up.log").read_text()[-2000:]
        await kill(proc, signal.SIGKILL)

        proc = await up()
        for _ in range(300):
            if await phase() == "Deployed":
                break
            await asyncio.sleep(0.1)
        assert await phase() == "Deployed", (tmp_path / "up.log").read_text()[-2000:]

        dgds = await objects.list_namespaced_custom_object(
            GROUP, DGD_VERSION, "default", DGD_PLURAL
        )
        assert [d["metadata"]["name"] for d in dgds["items"]] == ["crash-dgd"]
        await asyncio.sleep(1)  # the Event recorder catches up
        events = await client.CoreV1Api(api).list_namespaced_event(
            "default", field_selector="involvedObject.name=crash"
        )
        reasons = Counter(e.reason for e in events.items)
        assert reasons["DeploymentCreated"] == 1 and reasons["DeploymentReady"] == 1, reasons
        assert all(n == 1 for n in reasons.values()), reasons
    finally:
        await kill(proc, signal.SIGTERM)
        await api.close()
