"""DGDR conversion v1alpha1 <-> v1beta1: the field mapping Dynamo's notes give, and lossless round
trips in both directions (property tests over generated objects)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dgdr.domain.errors import RequestRejected
from k8s.webhook.dgdr_conversion import (
    ANN_SPEC,
    V1ALPHA1,
    V1BETA1,
    convert,
    to_v1alpha1,
    to_v1beta1,
)

ALPHA: dict[str, Any] = {
    "apiVersion": V1ALPHA1,
    "kind": "DynamoGraphDeploymentRequest",
    "metadata": {"name": "q", "namespace": "default", "labels": {"team": "a"}},
    "spec": {
        "model": "Qwen/Qwen3-0.6B",
        "backend": "vllm",
        "autoApply": True,
        "useMocker": True,
        "enableGpuDiscovery": False,
        "profilingConfig": {
            "profilerImage": "nvcr.io/nvidia/ai-dynamo/dynamo-planner:0.9.0",
            "outputPVC": "results",
            "configMapRef": {"name": "cfg", "key": "disagg.yaml"},
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
            "resources": {"limits": {"cpu": "2"}},
            "config": {
                "sla": {"ttft": 300.0, "itl": 20.0, "isl": 3000, "osl": 500},
                "deployment": {"modelCache": {"pvcName": "models", "modelPathInPvc": "qwen"}},
                "planner": {"enable": True},
                "sweep": {"use_ai_configurator": True},
            },
        },
        "deploymentOverrides": {"workersImage": "img:1", "labels": {"x": "y"}},
    },
    "status": {
        "state": "Ready",
        "backend": "vllm",
        "deployment": {"name": "q-dgd", "created": True, "state": "successful"},
        "generatedDeployment": {"kind": "DynamoGraphDeployment"},
        "profilingResults": "configmap/q-results",
    },
}


def test_v1alpha1_fields_land_where_the_notes_say() -> None:
    beta = to_v1beta1(ALPHA)
    spec, status = beta["spec"], beta["status"]
    assert beta["apiVersion"] == V1BETA1
    assert spec["model"] == "Qwen/Qwen3-0.6B" and spec["backend"] == "vllm"
    assert spec["autoApply"] is True
    assert spec["features"] == {"mocker": {"enabled": True}, "planner": {"enable": True}}
    assert spec["image"] == "nvcr.io/nvidia/ai-dynamo/dynamo-planner:0.9.0"
    assert spec["sla"] == {"ttft": 300.0, "itl": 20.0}
    assert spec["workload"] == {"isl": 3000, "osl": 500}
    assert spec["modelCache"] == {"pvcName": "models", "pvcModelPath": "qwen"}
    pod = spec["overrides"]["profilingJob"]["template"]["spec"]
    assert pod["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert pod["containers"] == [{"name": "profiler", "resources": {"limits": {"cpu": "2"}}}]
    assert status["phase"] == "Deployed" and status["dgdName"] == "q-dgd"
    assert status["profilingResults"]["selectedConfig"] == {"kind": "DynamoGraphDeployment"}
    # what v1beta1 cannot say is kept in the annotation, not lost
    assert "enableGpuDiscovery" in beta["metadata"]["annotations"][ANN_SPEC]
    assert beta["metadata"]["labels"] == {"team": "a"}


def test_the_workers_image_stands_in_for_a_missing_profiler_image() -> None:
    alpha = copy.deepcopy(ALPHA)
    del alpha["spec"]["profilingConfig"]["profilerImage"]
    assert to_v1beta1(alpha)["spec"]["image"] == "img:1"
    assert to_v1alpha1(to_v1beta1(alpha)) == alpha


def test_status_phase_mapping() -> None:
    def phase(state: str, created: bool = False) -> str:
        obj = {**ALPHA, "status": {"state": state, "deployment": {"name": "d", "created": created}}}
        return str(to_v1beta1(obj)["status"]["phase"])

    assert phase("Initializing") == "Pending"
    assert phase("Ready") == "Ready"
    assert phase("Ready", created=True) == "Deployed"
    assert phase("DeploymentDeleted") == "Ready"
    assert phase("Profiling") == "Profiling"


def test_a_change_made_in_v1alpha1_wins_over_the_saved_v1beta1_spec() -> None:
    beta = {
        "apiVersion": V1BETA1,
        "kind": "DynamoGraphDeploymentRequest",
        "metadata": {"name": "q"},
        "spec": {"model": "m", "backend": "vllm", "searchStrategy": "thorough",
                 "hardware": {"gpuSku": "h200_sxm"}},
    }  # fmt: skip
    alpha = to_v1alpha1(beta)
    alpha["spec"]["backend"] = "sglang"
    back = to_v1beta1(alpha)
    assert back["spec"]["backend"] == "sglang"
    assert back["spec"]["searchStrategy"] == "thorough"  # v1beta1-only: restored
    assert back["spec"]["hardware"] == {"gpuSku": "h200_sxm"}


def test_refusals() -> None:
    with pytest.raises(RequestRejected):
        convert({"apiVersion": V1ALPHA1, "kind": "Other"}, V1BETA1)
    with pytest.raises(RequestRejected):
        convert(ALPHA, "nvidia.com/v2")
    bad = copy.deepcopy(ALPHA)
    bad["spec"]["profilingConfig"]["config"] = [1, 2]
    with pytest.raises(RequestRejected, match=r"profilingConfig\.config"):
        convert(bad, V1BETA1)
    assert convert(ALPHA, V1ALPHA1) == ALPHA


# --------------------------------------------------------------------------- properties

names = st.text("abcdefgh-", min_size=1, max_size=8)
numbers = st.one_of(st.integers(1, 10_000), st.floats(0.5, 1e4, allow_nan=False))
json_leaf = st.one_of(st.booleans(), st.integers(-5, 5), names)
json_obj = st.dictionaries(
    names, st.one_of(json_leaf, st.dictionaries(names, json_leaf, max_size=2)), max_size=3
)


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


hub_specs = st.fixed_dictionaries(
    {"model": names},
    optional={
        "backend": st.sampled_from(["auto", "vllm", "sglang", "trtllm"]),
        "image": names,
        "searchStrategy": st.sampled_from(["rapid", "thorough"]),
        "autoApply": st.booleans(),
        "runtimeVersionOverride": st.just("1.2.3"),
        "sla": _optional(ttft=numbers, itl=numbers, e2eLatency=numbers,
                         optimizationType=st.sampled_from(["latency", "throughput"])),
        "workload": _optional(isl=st.integers(1, 9000), osl=st.integers(1, 9000),
                              concurrency=numbers, requestRate=numbers),
        "hardware": _optional(gpuSku=st.sampled_from(["h200_sxm", "b200_sxm"]),
                              totalGpus=st.integers(1, 32), rdma=st.booleans()),
        "modelCache": _optional(pvcName=names, pvcModelPath=names, pvcMountPath=names),
        "features": _optional(planner=json_obj, mocker=_optional(enabled=st.booleans()),
                              kvRouter=_optional(enabled=st.booleans())),
        "overrides": _optional(
            dgd=json_obj,
            profilingJob=_optional(
                backoffLimit=st.integers(0, 3),
                template=_optional(spec=_optional(
                    tolerations=st.lists(_optional(key=names), max_size=2),
                    nodeSelector=st.dictionaries(names, names, max_size=2),
                    containers=st.lists(_optional(name=st.sampled_from(["profiler", "x"]),
                                                  resources=json_obj, image=names), max_size=2),
                )),
            ),
        ),
    },
)  # fmt: skip
hub_statuses = _optional(
    phase=st.sampled_from(["Pending", "Profiling", "Ready", "Deploying", "Deployed", "Failed"]),
    profilingPhase=st.sampled_from(["Initializing", "SweepingPrefill", "Done"]),
    dgdName=names,
    profilingJobName=names,
    observedGeneration=st.integers(1, 9),
    conditions=st.lists(_optional(type=names, status=st.sampled_from(["True", "False"])), max_size=2),
    profilingResults=_optional(selectedConfig=json_obj, pareto=st.lists(json_obj, max_size=1)),
    deploymentInfo=_optional(replicas=st.integers(0, 4)),
)  # fmt: skip
spoke_specs = st.fixed_dictionaries(
    {"model": names, "backend": st.sampled_from(["auto", "vllm", "sglang", "trtllm"])},
    optional={
        "autoApply": st.booleans(),
        "useMocker": st.booleans(),
        "enableGpuDiscovery": st.booleans(),
        "runtimeVersionOverride": st.just("1.2.3"),
        "profilingConfig": _optional(
            profilerImage=names,
            outputPVC=names,
            configMapRef=_optional(name=names, key=names),
            resources=json_obj,
            tolerations=st.lists(_optional(key=names), max_size=2),
            nodeSelector=st.dictionaries(names, names, max_size=2),
            config=_optional(
                sla=_optional(ttft=numbers, itl=numbers, isl=st.integers(1, 9), osl=st.integers(1, 9)),
                deployment=_optional(modelCache=_optional(pvcName=names, modelPathInPvc=names),
                                     namespace=names),
                planner=json_obj,
                sweep=json_obj,
            ),
        ),
        "deploymentOverrides": _optional(name=names, workersImage=names,
                                         labels=st.dictionaries(names, names, max_size=2)),
    },
)  # fmt: skip
spoke_statuses = _optional(
    state=st.sampled_from(["Initializing", "Pending", "Profiling", "Deploying", "Ready",
                           "DeploymentDeleted", "Failed"]),
    backend=names,
    observedGeneration=st.integers(1, 9),
    profilingResults=names,
    generatedDeployment=json_obj,
    deployment=_optional(name=names, namespace=names, created=st.booleans(),
                         state=st.sampled_from(["pending", "successful"])),
)  # fmt: skip
metadatas = st.fixed_dictionaries(
    {"name": names, "namespace": names},
    optional={
        "labels": st.dictionaries(names, names, min_size=1, max_size=2),
        "annotations": st.dictionaries(
            st.sampled_from(["a", "b/c"]), names, min_size=1, max_size=2
        ),
        "resourceVersion": st.just("7"),
    },
)


def _object(api_version: str, md: Any, spec: Any, status: Any) -> dict[str, Any]:
    obj = {"apiVersion": api_version, "kind": "DynamoGraphDeploymentRequest", "metadata": md,
           "spec": spec}  # fmt: skip
    if status is not None:
        obj["status"] = status
    return obj


@settings(max_examples=150, deadline=None)
@given(metadatas, hub_specs, st.none() | hub_statuses)
def test_v1beta1_to_v1alpha1_and_back_is_lossless(md: Any, spec: Any, status: Any) -> None:
    beta = _object(V1BETA1, md, spec, status)
    alpha = convert(beta, V1ALPHA1)
    assert alpha["apiVersion"] == V1ALPHA1
    assert convert(alpha, V1BETA1) == beta


@settings(max_examples=150, deadline=None)
@given(metadatas, spoke_specs, st.none() | spoke_statuses)
# Ready + created with no deployment name: v1beta1 says Deployed, which maps back without a name.
@example(
    md={"name": "a", "namespace": "a"},
    spec={"model": "a", "backend": "auto"},
    status={"state": "Ready", "deployment": {"created": True}},
)
def test_v1alpha1_to_v1beta1_and_back_is_lossless(md: Any, spec: Any, status: Any) -> None:
    alpha = _object(V1ALPHA1, md, spec, status)
    beta = convert(alpha, V1BETA1)
    assert beta["apiVersion"] == V1BETA1
    assert convert(beta, V1ALPHA1) == alpha


@settings(max_examples=100, deadline=None)
@given(metadatas, hub_specs, hub_statuses)
def test_a_status_written_in_v1beta1_later_reads_through_the_mapping(
    md: Any, spec: Any, status: Any
) -> None:
    """The controller writes v1beta1 status after a v1alpha1 apply: the v1alpha1 view shows it."""
    alpha = convert(_object(V1BETA1, md, spec, None), V1ALPHA1)
    stored = convert(alpha, V1BETA1)
    stored["status"] = status
    seen = convert(stored, V1ALPHA1)
    if "dgdName" in status:
        assert seen["status"]["deployment"]["name"] == status["dgdName"]
    assert convert(seen, V1BETA1) == stored
