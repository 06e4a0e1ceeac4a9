from typing import Any

import pytest

from dgdr.domain.hardware import ResolvedHardware
from dgdr.domain.spec import DGDRSpec
from sim import ProfilingError, profile
from sim._dgd import DgdPlan, WorkerShape, build_dgd, runtime_image

HW = ResolvedHardware.from_dict({"gpuSku": "h100_sxm", "totalGpus": 8, "numGpusPerNode": 8})
DGD = {"apiVersion": "nvidia.com/v1alpha1", "kind": "DynamoGraphDeployment"}


def _plan(spec: DGDRSpec, backend: str, workers: WorkerShape, **options: Any) -> DgdPlan:
    return DgdPlan(spec=spec, backend=backend, name="d", namespace="ns", workers=workers, **options)


def _run(**fields: Any) -> tuple[dict[str, Any], str]:
    spec = DGDRSpec.model_validate({"model": "Qwen/Qwen3-8B", "backend": "vllm", **fields})
    result = profile(spec, HW, name="my-req", namespace="team-a")
    assert result.dgd_name == result.selected_config["metadata"]["name"]
    return result.selected_config, result.message


def test_dgd_shape_labels_and_vllm_worker() -> None:
    dgd, _ = _run(image="nvcr.io/nvidia/ai-dynamo/dynamo-planner:1.1.0")
    assert dgd["apiVersion"] == "nvidia.com/v1alpha1" and dgd["kind"] == "DynamoGraphDeployment"
    assert dgd["metadata"]["name"] == "my-req-dgd" and dgd["metadata"]["namespace"] == "team-a"
    assert dgd["metadata"]["labels"] == {
        "dgdr.nvidia.com/name": "my-req",
        "dgdr.nvidia.com/namespace": "team-a",
        "nvidia.com/managed-by": "dgdr",
    }
    assert dgd["spec"]["backendFramework"] == "vllm"
    services = dgd["spec"]["services"]
    assert set(services) == {"Frontend", "VllmWorker"}
    assert services["Frontend"]["componentType"] == "frontend"
    assert services["Frontend"]["replicas"] == 1
    worker = services["VllmWorker"]
    tp = worker["resources"]["limits"]["gpu"]
    assert isinstance(tp, str) and worker["resources"]["requests"]["gpu"] == tp
    assert worker["componentType"] == "worker" and worker["envFromSecret"] == "hf-token-secret"
    container = worker["extraPodSpec"]["mainContainer"]
    assert container["image"] == "nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.1.0"
    assert container["command"] == ["python3", "-m", "dynamo.vllm"]
    assert container["args"] == ["--model", "Qwen/Qwen3-8B", "--tensor-parallel-size", tp]


@pytest.mark.parametrize(
    ("backend", "service", "args"),
    [
        ("sglang", "decode", ["--model-path", "Qwen/Qwen3-8B", "--tp"]),
        ("trtllm", "TRTLLMWorker", ["--model-path", "Qwen/Qwen3-8B", "--tensor-parallel-size"]),
    ],
)
def test_other_backends(backend: str, service: str, args: list[str]) -> None:
    dgd, message = _run(backend=backend)
    assert "auto" not in message
    worker = dgd["spec"]["services"][service]
    container = worker["extraPodSpec"]["mainContainer"]
    assert container["command"] == ["python3", "-m", f"dynamo.{backend}"]
    assert container["args"][:3] == args
    assert container["args"][3] == worker["resources"]["limits"]["gpu"]
    runtime = {"sglang": "sglang-runtime", "trtllm": "tensorrtllm-runtime"}[backend]
    assert container["image"] == f"nvcr.io/nvidia/ai-dynamo/{runtime}:latest"


def test_runtime_image_keeps_registry_and_tag_or_digest() -> None:
    assert runtime_image("localhost:5000/x/dynamo-planner:1.2", "vllm") == (
        "localhost:5000/x/vllm-runtime:1.2"
    )
    assert runtime_image("reg.io/p/dynamo-planner@sha256:abc", "trtllm") == (
        "reg.io/p/tensorrtllm-runtime@sha256:abc"
    )
    assert runtime_image(None, "sglang") == "nvcr.io/nvidia/ai-dynamo/sglang-runtime:latest"


def test_model_cache_pvc_path_is_not_doubled() -> None:
    for sub in ("models/qwen3-8b", "/models/qwen3-8b", "/opt/model-cache/models/qwen3-8b"):
        dgd, _ = _run(modelCache={"pvcName": "cache", "pvcModelPath": sub})
        assert dgd["spec"]["pvcs"] == [{"name": "cache", "create": False}]
        worker = dgd["spec"]["services"]["VllmWorker"]
        assert worker["volumeMounts"] == [{"name": "cache", "mountPoint": "/opt/model-cache"}]
        args = worker["extraPodSpec"]["mainContainer"]["args"]
        assert args[:2] == ["--model", "/opt/model-cache/models/qwen3-8b"]
        assert args[-2:] == ["--served-model-name", "Qwen/Qwen3-8B"]


def test_overrides_merge_like_dynamo() -> None:
    override = {
        **DGD,
        "metadata": {
            "name": "custom-name",
            "namespace": "ignored",
            "labels": {"team": "a", "nvidia.com/managed-by": "someone-else"},
            "annotations": {"note": "x"},
        },
        "spec": {
            "envs": [{"name": "A", "value": "1"}],
            "services": {
                "VllmWorker": {
                    "extraPodSpec": {
                        "mainContainer": {"args": ["--max-model-len", "8192"]},
                        "tolerations": [{"key": "gpu", "operator": "Exists"}],
                    },
                },
                "Frontend": {"extraPodSpec": {"mainContainer": {"args": ["--port", "9000"]}}},
                "Planner": {"replicas": 1},
            },
        },
    }
    dgd, message = _run(overrides={"dgd": override})
    meta = dgd["metadata"]
    assert meta["name"] == "custom-name" and meta["namespace"] == "team-a"
    assert meta["labels"]["team"] == "a" and meta["labels"]["nvidia.com/managed-by"] == "dgdr"
    assert meta["annotations"] == {"note": "x"}
    assert dgd["spec"]["envs"] == [{"name": "A", "value": "1"}]
    worker = dgd["spec"]["services"]["VllmWorker"]
    args = worker["extraPodSpec"]["mainContainer"]["args"]
    assert args[:2] == ["--model", "Qwen/Qwen3-8B"] and args[-2:] == ["--max-model-len", "8192"]
    assert worker["extraPodSpec"]["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert worker["extraPodSpec"]["mainContainer"]["image"].endswith("vllm-runtime:latest")
    frontend = dgd["spec"]["services"]["Frontend"]["extraPodSpec"]["mainContainer"]
    assert frontend["args"] == ["--port", "9000"]
    assert "Planner" not in dgd["spec"]["services"]
    assert "services not in the generated DGD were skipped: Planner" in message


def test_override_of_worker_size_is_reported() -> None:
    override = {**DGD, "spec": {"services": {"VllmWorker": {"replicas": 99}}}}
    dgd, message = _run(overrides={"dgd": override})
    assert dgd["spec"]["services"]["VllmWorker"]["replicas"] == 99
    assert "GPU budget is not rechecked" in message


@pytest.mark.parametrize(
    ("name", "override_name"),
    [("a" * 60, None), ("dotted.name", None), ("ok", "Not_A_Label")],
)
def test_invalid_dgd_name_fails_in_generating_dgd(name: str, override_name: str | None) -> None:
    fields: dict[str, Any] = {"model": "Qwen/Qwen3-8B"}
    if override_name:
        fields["overrides"] = {"dgd": {**DGD, "metadata": {"name": override_name}}}
    with pytest.raises(ProfilingError) as err:
        profile(DGDRSpec.model_validate(fields), HW, name=name, namespace="ns")
    assert err.value.sub_phase == "GeneratingDGD"
    assert "DNS label" in err.value.message


def test_profiling_job_tolerations_reach_every_service_once() -> None:
    gpu = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    spot = {"key": "spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    job = {"template": {"spec": {"tolerations": [gpu, spot, gpu]}}}
    override = {
        **DGD,
        "spec": {"services": {"VllmWorker": {"extraPodSpec": {"tolerations": [dict(gpu)]}}}},
    }
    dgd, _ = _run(overrides={"profilingJob": job, "dgd": override})
    services = dgd["spec"]["services"]
    assert set(services) == {"Frontend", "VllmWorker"}
    for service in services.values():
        assert service["extraPodSpec"]["tolerations"] == [gpu, spot]
    assert services["VllmWorker"]["extraPodSpec"]["mainContainer"]["image"].endswith(
        "vllm-runtime:latest"
    )
    plain, _ = _run(overrides={"profilingJob": {"template": {"spec": {}}}})
    assert all("tolerations" not in s["extraPodSpec"] for s in plain["spec"]["services"].values())


@pytest.mark.parametrize(
    ("backend", "service", "tp", "per_node", "nodes", "gpu"),
    [
        ("vllm", "VllmWorker", 16, 8, 2, "8"),
        ("sglang", "decode", 32, 8, 4, "8"),
        ("trtllm", "TRTLLMWorker", 8, 4, 2, "4"),
        ("vllm", "VllmWorker", 8, 8, 1, "8"),
        ("vllm", "VllmWorker", 4, None, 1, "4"),
    ],
)
def test_multinode_worker_when_tp_exceeds_a_node(
    backend: str, service: str, tp: int, per_node: int | None, nodes: int, gpu: str
) -> None:
    spec = DGDRSpec.model_validate({"model": "Qwen/Qwen3-8B", "backend": backend})
    dgd, notes = build_dgd(_plan(spec, backend, WorkerShape(tp, 3), gpus_per_node=per_node))
    worker = dgd["spec"]["services"][service]
    assert worker["replicas"] == 3
    assert worker["resources"] == {"limits": {"gpu": gpu}, "requests": {"gpu": gpu}}
    if nodes > 1:
        assert worker["multinode"] == {"nodeCount": nodes}
        assert nodes * int(gpu) == tp  # Dynamo: total GPUs per replica = nodeCount x gpu limit
    else:
        assert "multinode" not in worker
    args = worker["extraPodSpec"]["mainContainer"]["args"]
    assert args[3] == str(tp)  # the worker still runs one TP group across the nodes
    assert "multinode" not in dgd["spec"]["services"]["Frontend"]
    assert notes == []


@pytest.mark.parametrize(
    ("backend", "prefill", "decode", "prefill_flag", "decode_flag"),
    [
        ("vllm", "VllmPrefillWorker", "VllmDecodeWorker", ["--is-prefill-worker"], []),
        (
            "sglang",
            "prefill",
            "decode",
            ["--disaggregation-mode", "prefill", "--disaggregation-transfer-backend", "nixl"],
            ["--disaggregation-mode", "decode", "--disaggregation-transfer-backend", "nixl"],
        ),
        (
            "trtllm",
            "TRTLLMPrefillWorker",
            "TRTLLMDecodeWorker",
            ["--disaggregation-mode", "prefill"],
            ["--disaggregation-mode", "decode"],
        ),
    ],
)
def test_disaggregated_dgd_per_backend(
    backend: str, prefill: str, decode: str, prefill_flag: list[str], decode_flag: list[str]
) -> None:
    spec = DGDRSpec.model_validate({"model": "Qwen/Qwen3-32B", "backend": backend})
    dgd, notes = build_dgd(
        _plan(spec, backend, WorkerShape(4, 2), prefill=WorkerShape(2, 3), gpus_per_node=8)
    )
    assert notes == []
    services = dgd["spec"]["services"]
    assert list(services) == ["Frontend", prefill, decode]
    p, d = services[prefill], services[decode]
    assert (p["componentType"], p["subComponentType"]) == ("worker", "prefill")
    assert (d["componentType"], d["subComponentType"]) == ("worker", "decode")
    assert (p["replicas"], p["resources"]["limits"]["gpu"]) == (3, "2")
    assert (d["replicas"], d["resources"]["limits"]["gpu"]) == (2, "4")
    p_args = p["extraPodSpec"]["mainContainer"]["args"]
    d_args = d["extraPodSpec"]["mainContainer"]["args"]
    assert p_args[-len(prefill_flag) :] == prefill_flag
    assert d_args[4:] == decode_flag
    assert str(2) in p_args and str(4) in d_args


def test_disaggregated_worker_over_a_node_is_multinode_and_overrides_reach_both() -> None:
    spec = DGDRSpec.model_validate(
        {
            "model": "Qwen/Qwen3-32B",
            "backend": "vllm",
            "overrides": {
                "dgd": {
                    **DGD,
                    "spec": {
                        "services": {
                            "VllmDecodeWorker": {
                                "extraPodSpec": {
                                    "mainContainer": {"args": ["--max-num-seqs", "64"]}
                                }
                            }
                        }
                    },
                }
            },
        }
    )
    dgd, notes = build_dgd(
        _plan(spec, "vllm", WorkerShape(16, 1), prefill=WorkerShape(4, 2), gpus_per_node=8)
    )
    assert notes == []
    decode = dgd["spec"]["services"]["VllmDecodeWorker"]
    assert decode["multinode"] == {"nodeCount": 2} and decode["resources"]["limits"]["gpu"] == "8"
    assert decode["extraPodSpec"]["mainContainer"]["args"][-2:] == ["--max-num-seqs", "64"]
    assert "multinode" not in dgd["spec"]["services"]["VllmPrefillWorker"]


def test_long_prompts_on_a_large_model_pick_disaggregated_serving_within_budget() -> None:
    spec = DGDRSpec.model_validate(
        {
            "model": "meta-llama/Llama-3.3-70B-Instruct",
            "backend": "trtllm",
            "sla": {"ttft": 3000, "itl": 25},
            "workload": {"isl": 8000, "osl": 500},
        }
    )
    hw = ResolvedHardware.from_dict({"gpuSku": "h200_sxm", "totalGpus": 16, "numGpusPerNode": 8})
    seen: list[str] = []
    result = profile(spec, hw, name="big", namespace="ns", progress=lambda p, m: seen.append(m))
    (picked,) = [p["config"] for p in result.pareto if p["config"]["selected"]]
    assert picked["mode"] == "disagg" and picked["meetsSla"]
    services = result.selected_config["spec"]["services"]
    p, d = services["TRTLLMPrefillWorker"], services["TRTLLMDecodeWorker"]
    used = sum(int(s["resources"]["limits"]["gpu"]) * s["replicas"] for s in (p, d))
    assert used == picked["totalGpus"] <= 16
    assert p["replicas"] == picked["prefillWorkers"] and d["replicas"] == picked["decodeWorkers"]
    assert "disagg prefill TP" in result.message
    assert any("disaggregated" in m for m in seen)


@pytest.mark.parametrize(
    ("backend", "flag"),
    [
        ("vllm", ["--enable-expert-parallel"]),
        ("sglang", ["--ep-size", "4"]),
        ("trtllm", ["--expert-parallel-size", "4"]),
    ],
)
def test_expert_parallel_workers_get_the_backends_flag(backend: str, flag: list[str]) -> None:
    spec = DGDRSpec.model_validate({"model": "Qwen/Qwen3-30B-A3B", "backend": backend})
    dgd, _ = build_dgd(_plan(spec, backend, WorkerShape(4, 2, ep=4)))
    (worker,) = [s for s in dgd["spec"]["services"].values() if s["componentType"] == "worker"]
    args = worker["extraPodSpec"]["mainContainer"]["args"]
    assert all(a in args for a in flag)


def test_moe_search_considers_expert_parallel_rows() -> None:
    from sim._hfconfig import find_model
    from sim._roofline import parallel_rows

    assert parallel_rows(find_model("Qwen/Qwen3-30B-A3B"), [1, 2, 4]) == (
        [1, 2, 2, 4, 4],
        [1, 1, 2, 1, 4],
    )
    assert parallel_rows(find_model("Qwen/Qwen3-8B"), [1, 2, 4]) == ([1, 2, 4], [1, 1, 1])


@pytest.mark.parametrize(
    ("backend", "flag"),
    [
        ("vllm", ["--pipeline-parallel-size", "2"]),
        ("sglang", ["--pp-size", "2"]),
        ("trtllm", ["--pipeline-parallel-size", "2"]),
    ],
)
def test_pipeline_stages_span_nodes(backend: str, flag: list[str]) -> None:
    spec = DGDRSpec.model_validate({"model": "deepseek-ai/DeepSeek-R1", "backend": backend})
    dgd, _ = build_dgd(_plan(spec, backend, WorkerShape(8, 1, pp=2), gpus_per_node=8))
    (worker,) = [s for s in dgd["spec"]["services"].values() if s["componentType"] == "worker"]
    assert worker["multinode"] == {"nodeCount": 2} and worker["resources"]["limits"]["gpu"] == "8"
    args = worker["extraPodSpec"]["mainContainer"]["args"]
    assert args[args.index(flag[0]) + 1] == flag[1]


def test_pipeline_rows_count_their_gpus_against_the_budget() -> None:
    from dgdr.domain.spec import SLA, GpuSku, Workload
    from sim._catalog import find_gpu
    from sim._hfconfig import find_model
    from sim._roofline import evaluate
    from sim._search import search

    model, gpu = find_model("deepseek-ai/DeepSeek-R1"), find_gpu(GpuSku.H100_SXM)
    grid = evaluate(model, gpu, "vllm", [8, 8], 2000, 200, eps=[1, 1], pps=[2, 4])
    pick = search(model, gpu, grid, SLA(), Workload(isl=2000, osl=200), 32, backend="vllm")
    assert {c.pp for c in pick.candidates} <= {2, 4}
    for c in pick.candidates:
        assert c.gpus == 8 * c.pp * c.replicas <= 32
        assert c.to_json(False)["pipelineParallelSize"] == c.pp
