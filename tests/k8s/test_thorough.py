"""searchStrategy thorough on a cluster: the profiling Job `profile-<name>` with the overrides merged
per the allow-list, its output ConfigMap driving the sub-phases, and its result or failure."""

from __future__ import annotations

from typing import Any

import pytest

from dgdr.domain.phases import PROFILING_PHASES
from tests.support import until

from .conftest import Kube, dgdr

pytestmark = pytest.mark.timeout(90)

IMAGE = "nvcr.io/nvidia/ai-dynamo/dynamo-planner:0.9.0"


async def test_thorough_runs_the_profiling_job_and_deploys_its_result(kube: Kube) -> None:
    overrides = {
        "backoffLimit": 1,
        "completions": 2,
        "template": {
            "spec": {
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
                "containers": [{"name": "profiler", "resources": {"limits": {"cpu": "2"}}}],
            }
        },
    }
    await kube.create(
        dgdr("deep", searchStrategy="thorough", image=IMAGE, overrides={"profilingJob": overrides})
    )
    obj = await kube.phase("deep", "Deployed", timeout=60)
    assert obj["status"]["dgdName"] == "deep-dgd"
    assert obj["status"]["profilingJobName"] == "profile-deep"

    job = await kube.batch.read_namespaced_job("profile-deep", "default")
    assert job.spec.backoff_limit == 1
    assert job.spec.completions in (None, 1)  # not in the allow-list
    pod = job.spec.template.spec
    assert pod.restart_policy == "Never"
    assert pod.tolerations[0].key == "nvidia.com/gpu"
    assert pod.containers[0].image == IMAGE and pod.containers[0].resources.limits == {"cpu": "2"}
    assert job.metadata.owner_references[0].name == "deep"

    cm = await kube.core.read_namespaced_config_map("dgdr-output-deep", "default")
    assert cm.data["profiler_status"] == "success" and "final_config.yaml" in cm.data

    assert kube.nats_client is not None
    history = await kube.nats_client.history("deep")
    progressed = [e["payload"] for e in history if e["type"] == "ProfilingProgressed"]
    subs = [p["subPhase"] for p in progressed]
    # The output ConfigMap is level-triggered (Dynamo's protocol): a watcher may skip a phase the
    # Job overwrote quickly, but what it relays comes in the profiler's order.
    assert subs and subs == sorted(subs, key=PROFILING_PHASES.index), subs
    ignored = [e for e in await kube.events("deep") if e.reason == "ProfilingJobOverridesIgnored"]
    assert len(ignored) == 1 and "spec.overrides.profilingJob.completions" in ignored[0].message
    dgd = await kube.get_dgd("deep-dgd")
    assert dgd is not None
    assert dgd["metadata"]["labels"]["dgdr.nvidia.com/name"] == "deep"


async def test_a_failing_profiling_job_fails_the_dgdr_in_its_sub_phase(kube: Kube) -> None:
    await kube.create(
        dgdr(
            "too-big",
            model="deepseek-ai/DeepSeek-R1",
            searchStrategy="thorough",
            image=IMAGE,
            hardware={"gpuSku": "l4", "totalGpus": 1, "numGpusPerNode": 1},
        )
    )
    obj = await kube.phase("too-big", "Failed", timeout=60)
    profiling = next(c for c in obj["status"]["conditions"] if c["type"] == "Profiling")
    assert profiling["reason"].endswith("Failed")
    assert "profile-too-big failed" in profiling["message"]
    job = await kube.batch.read_namespaced_job("profile-too-big", "default")
    assert job.status.failed == 1


async def test_thorough_without_an_image_fails_and_names_the_field(kube: Kube) -> None:
    await kube.create(dgdr("no-image", searchStrategy="thorough"))
    obj = await kube.phase("no-image", "Failed", timeout=30)
    profiling = next(c for c in obj["status"]["conditions"] if c["type"] == "Profiling")
    assert "spec.image" in profiling["message"]


def test_final_config_with_planner_configmaps_gives_the_dgd_and_the_maps() -> None:
    from k8s.profiling import dgd_from_final_config

    text = """
apiVersion: v1
kind: ConfigMap
metadata: {name: planner-config-ab12}
data: {planner_config.json: "{}"}
---
apiVersion: nvidia.com/v1alpha1
kind: DynamoGraphDeployment
metadata: {name: vllm-disagg}
spec: {services: {Frontend: {replicas: 1}}}
"""
    dgd, maps = dgd_from_final_config(text, "deep", "team", {"overrides": {}})
    assert dgd["metadata"]["name"] == "deep-dgd" and dgd["metadata"]["namespace"] == "team"
    assert [m["metadata"]["name"] for m in maps] == ["planner-config-ab12"]
    assert maps[0]["metadata"]["labels"]["dgdr.nvidia.com/name"] == "deep"


async def test_a_dgdr_name_too_long_for_the_job_is_refused_before_creating_anything(
    kube: Kube,
) -> None:
    name = "a-very-long-request-name-" + "x" * 33  # 58 characters: profile-<name> is 66
    await kube.create(dgdr(name, searchStrategy="thorough", image=IMAGE))

    async def refused() -> list[Any]:
        return [e for e in await kube.events(name) if e.reason == "Invalid"]

    (event,) = await until(refused, 30, "the refusal's Event")
    assert event.type == "Warning" and "metadata.name: 58 characters" in event.message
    assert await kube.reactor_caught_up()
    jobs = await kube.batch.list_namespaced_job("default")
    assert not jobs.items


async def test_a_profiling_job_that_misses_the_sla_reports_the_short_verdict(kube: Kube) -> None:
    """The Job's output carries the verdict in words (as the in-process worker reports it), so
    SLAMet and the phase message say "SLA missed: ..." rather than repeating the whole pick."""
    await kube.create(
        dgdr("tight", searchStrategy="thorough", image=IMAGE, sla={"ttft": 1.0, "itl": 20.0})
    )
    obj = await kube.phase("tight", "Deployed", timeout=60)
    conditions = {c["type"]: c for c in obj["status"]["conditions"]}
    sla = conditions["SLAMet"]
    assert (sla["status"], sla["reason"]) == ("False", "SLAMissed")
    assert sla["message"].startswith("SLA missed"), sla["message"]
    assert not sla["message"].startswith("Picked"), sla["message"]
    assert "SLA missed" in conditions["Succeeded"]["message"]
