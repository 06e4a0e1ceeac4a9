"""The simulated DGD controller (pending → successful, fates fail/degrade/vanish, set_dgd_state)
and the Job runner extension point."""

from __future__ import annotations

from typing import Any

import pytest

from k8s.emulator import Emulator
from k8s.emulator.store import Store
from tests.support import until

from .conftest import Kubectl

pytestmark = pytest.mark.timeout(30)

G, V, P = "nvidia.com", "v1alpha1", "dynamographdeployments"


def dgd(name: str, fate: str | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name}
    if fate:
        md["annotations"] = {"emulator.dgdr.dev/fate": fate}
    return {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeployment",
        "metadata": md,
        "spec": {
            "backendFramework": "vllm",
            "services": {"Frontend": {"replicas": 1}, "VllmWorker": {"replicas": 2}},
        },
    }


def state(emu: Emulator, name: str) -> str | None:
    obj = emu.store.get(G, V, P, "default", name)
    return None if obj is None else (obj.get("status") or {}).get("state")


async def test_pending_then_successful(emu: Emulator, kubectl: Kubectl) -> None:
    await emu.store.create(G, V, P, "default", dgd("d"))
    await until(lambda: state(emu, "d") == "pending")
    obj = emu.store.get(G, V, P, "default", "d")
    assert obj is not None
    status = obj["status"]
    assert status["conditions"][0]["status"] == "False"
    assert status["conditions"][0]["reason"] == "some_resources_are_not_ready"
    assert status["services"]["VllmWorker"] == {
        "componentKind": "Deployment",
        "replicas": 2,
        "updatedReplicas": 2,
        "readyReplicas": 0,
        "availableReplicas": 0,
    }
    await until(lambda: state(emu, "d") == "successful")
    obj = emu.store.get(G, V, P, "default", "d")
    assert obj is not None
    ready = obj["status"]["conditions"][0]
    assert (ready["type"], ready["status"], ready["reason"], ready["message"]) == (
        "Ready", "True", "all_resources_are_ready", "All resources are ready",
    )  # fmt: skip
    assert obj["status"]["services"]["VllmWorker"]["availableReplicas"] == 2
    assert obj["status"]["observedGeneration"] == 1
    table = await kubectl("get", "dgd")
    assert table.out.splitlines()[0].split() == ["NAME", "READY", "BACKEND", "AGE"]
    assert table.out.splitlines()[1].split()[:3] == ["d", "True", "vllm"]
    # a spec change restarts the rollout
    await emu.store.patch(
        G, V, P, "default", "d", {"spec": {"services": {"VllmWorker": {"replicas": 3}}}}
    )
    await until(lambda: state(emu, "d") == "pending")
    await until(lambda: state(emu, "d") == "successful")
    obj = emu.store.get(G, V, P, "default", "d")
    assert obj is not None and obj["status"]["observedGeneration"] == 2
    assert obj["status"]["services"]["VllmWorker"]["readyReplicas"] == 3


async def test_fates(emu: Emulator) -> None:
    for fate in ("fail", "degrade", "vanish"):
        await emu.store.create(G, V, P, "default", dgd(fate, fate))
    await until(lambda: state(emu, "fail") == "failed")
    await until(lambda: state(emu, "degrade") == "successful")
    await until(lambda: state(emu, "vanish") == "successful")
    await until(lambda: state(emu, "degrade") == "failed")
    await until(lambda: emu.store.get(G, V, P, "default", "vanish") is None)
    obj = emu.set_dgd_state("default", "fail", "successful")
    assert obj["status"]["state"] == "successful"
    assert obj["status"]["conditions"][-1]["status"] == "True"


async def test_custom_job_runner() -> None:
    seen: list[str] = []

    async def runner(store: Store, job: dict[str, Any]) -> None:
        md = job["metadata"]
        seen.append(md["name"])
        await store.update_status("batch", "v1", "jobs", md["namespace"], md["name"], {"active": 1})
        await store.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"{md['name']}-out", "namespace": md["namespace"]},
                "data": {"result": "ok"},
            },
            field_manager="runner",
        )
        await store.patch_status(
            "batch", "v1", "jobs", md["namespace"], md["name"], {"active": None, "succeeded": 1}
        )

    emu = Emulator(job_runner=runner)
    await emu.start()
    try:
        await emu.store.create(
            "batch", "v1", "jobs", "default", {"metadata": {"name": "j"}, "spec": {}}
        )
        await until(
            lambda: (
                (emu.store.get("batch", "v1", "jobs", "default", "j") or {})
                .get("status", {})
                .get("succeeded")
            )
        )
        cm = emu.store.get("", "v1", "configmaps", "default", "j-out")
        assert cm is not None and cm["data"] == {"result": "ok"}
        assert seen == ["j"]
    finally:
        await emu.stop()
