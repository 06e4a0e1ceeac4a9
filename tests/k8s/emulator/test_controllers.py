"""The simulated DGD controller (pending → successful, fates fail/degrade/vanish, set_dgd_state),
its status in the shape of each DGD version (v1alpha1 `services`, v1beta1 `components`) valid
against the served CRD, and the Job runner extension point."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from k8s.emulator import Emulator, schema
from k8s.emulator.controllers import dgd_status
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
        "componentName": "d-vllmworker",
        "componentNames": ["d-vllmworker"],
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


def v1beta1_dgd(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "nvidia.com/v1beta1",
        "kind": "DynamoGraphDeployment",
        "metadata": {"name": name},
        "spec": {
            "backendFramework": "vllm",
            "components": [
                {"name": "Frontend", "type": "frontend", "replicas": 1},
                {
                    "name": "VllmWorker",
                    "type": "worker",
                    "replicas": 2,
                    "multinode": {"nodeCount": 2},
                },
            ],
        },
    }


def schema_of(emu: Emulator, version: str) -> dict[str, Any]:
    rt = emu.store.registry.lookup(G, version, P)
    assert rt is not None and rt.schema is not None
    return rt.schema


async def test_a_v1beta1_dgd_gets_status_components(emu: Emulator) -> None:
    await emu.store.create(G, "v1beta1", P, "default", v1beta1_dgd("b"))
    await until(lambda: state(emu, "b") == "pending")
    await until(lambda: state(emu, "b") == "successful")
    obj = emu.store.get(G, "v1beta1", P, "default", "b")
    assert obj is not None
    status = obj["status"]
    assert "services" not in status
    assert status["components"]["VllmWorker"] == {
        "componentKind": "LeaderWorkerSet",
        "componentNames": ["b-vllmworker"],
        "replicas": 2,
        "updatedReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 2,
    }
    assert status["components"]["Frontend"]["componentKind"] == "Deployment"
    assert [c["type"] for c in status["conditions"]] == ["Ready"]
    assert status["conditions"][0]["observedGeneration"] == 1


@pytest.mark.parametrize(
    ("version", "body"), [("v1alpha1", dgd("x")), ("v1beta1", v1beta1_dgd("x"))]
)
@pytest.mark.parametrize("state_name", ["pending", "successful", "failed"])
def test_status_is_valid_for_its_version_and_prunes_nothing(
    emu: Emulator, version: str, body: dict[str, Any], state_name: str
) -> None:
    body = {**copy.deepcopy(body), "metadata": {"name": "x", "generation": 1}}
    status = dgd_status(body, state_name)
    full = copy.deepcopy({**body, "status": status})
    s = schema_of(emu, version)
    assert schema.prune(s, full) == [] and full["status"] == status
    assert schema.validate(s, full) == []
    other = schema_of(emu, "v1beta1" if version == "v1alpha1" else "v1alpha1")
    wrong = copy.deepcopy({**body, "status": status})
    assert schema.prune(other, wrong) != []  # the other version's shape would lose fields


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
