"""The Kubernetes target against the emulator: a DGD change whose observation fails (NATS
unavailable) is reported again until it is recorded, never dropped."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from k8s.emulator import Emulator, gpu_nodes
from k8s.kube import connect
from k8s.target import KubernetesTarget
from tests.support import until


@pytest.mark.timeout(60)
async def test_an_observation_that_fails_is_recorded_later(tmp_path: Path) -> None:
    emulator = Emulator(nodes=gpu_nodes(1))
    await emulator.start(port=0)
    api = await connect(emulator.write_kubeconfig(tmp_path / "kubeconfig"))
    target = KubernetesTarget(api)
    recorded: list[tuple[str, str]] = []
    failures = 0

    async def observe(ns: str, name: str, uid: str, dgd: str, state: str, n: int, a: int) -> None:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise TimeoutError("nats: timeout")
        recorded.append((dgd, state))

    try:
        await target.start(observe)
        dgd: dict[str, Any] = {
            "apiVersion": "nvidia.com/v1alpha1",
            "kind": "DynamoGraphDeployment",
            "metadata": {"name": "demo-dgd", "namespace": "default"},
            "spec": {"services": {"Frontend": {"replicas": 1}}},
        }
        assert await target.apply_dgd(dgd, "uid-1") == "created"
        async with asyncio.timeout(30):
            await until(lambda: ("demo-dgd", "successful") in recorded, 30, "the rollout")
        assert failures == 2
        # The creation, whose report failed twice, is recorded first, not lost.
        assert recorded[0] == ("demo-dgd", "pending"), recorded
    finally:
        await target.stop()
        await api.close()
        await emulator.stop()
