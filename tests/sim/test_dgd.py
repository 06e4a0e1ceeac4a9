import dataclasses
from typing import Any

import pytest

from dgdr.domain.hardware import ResolvedHardware
from dgdr.domain.spec import DGDRSpec
from sim import ProfilingError, profile
from sim._dgd import DEFAULT_RUNTIME_VERSION, DgdPlan, WorkerShape, build_dgd, runtime_image
from sim._dgd_model import main_container

HW = ResolvedHardware.from_dict({"gpuSku": "h100_sxm", "totalGpus": 8, "numGpusPerNode": 8})
DGD = {"apiVersion": "nvidia.com/v1alpha1", "kind": "DynamoGraphDeployment"}
BETA = {"apiVersion": "nvidia.com/v1beta1", "kind": "DynamoGraphDeployment"}
GPU = "nvidia.com/gpu"


def _plan(spec: DGDRSpec, backend: str, workers: WorkerShape, **options: Any) -> DgdPlan:
    return DgdPlan(spec=spec, backend=backend, name="d", namespace="ns", workers=workers, **options)


def _run(**fields: Any) -> tuple[dict[str, Any], str]:
    spec = DGDRSpec.model_validate({"model": "Qwen/Qwen3-8B", "backend": "vllm", **fields})
    result = profile(spec, HW, name="my-req", namespace="team-a")
    assert result.dgd_name == result.selected_config["metadata"]["name"]
    return result.selected_config, result.message


def _components(dgd: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in dgd["spec"]["components"]}


def _main(component: dict[str, Any]) -> dict[str, Any]:
    container = main_container(component)
    assert container is not None
    return container


def _gpu(component: dict[str, Any]) -> str:
    return str(_main(component)["resources"]["limits"][GPU])


def _value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_dgd_shape_labels_and_vllm_worker() -> None:
    dgd, _ = _run(image="nvcr.io/nvidia/ai-dynamo/dynamo-planner:1.1.0")
    assert dgd["apiVersion"] == "nvidia.com/v1beta1" and dgd["kind"] == "DynamoGraphDeployment"
    assert dgd["metadata"]["name"] == "my-req-dgd" and dgd["metadata"]["namespace"] == "team-a"
    assert dgd["metadata"]["labels"] == {
        "dgdr.nvidia.com/name": "my-req",
        "dgdr.nvidia.com/namespace": "team-a",
        "nvidia.com/managed-by": "dgdr",
    }
    assert dgd["spec"]["backendFramework"] == "vllm"
    components = _components(dgd)
    assert list(components) == ["Frontend", "VllmDecodeWorker"]
    frontend = components["Frontend"]
    assert (frontend["type"], frontend["replicas"]) == ("frontend", 1)
    assert _main(frontend)["command"] == ["python3"]
    assert _main(frontend)["args"] == ["-m", "dynamo.frontend"]
    assert _main(frontend)["envFrom"] == [{"secretRef": {"name": "hf-token-secret"}}]
    worker = components["VllmDecodeWorker"]
    assert worker["type"] == "worker"
    container = _main(worker)
    tp = _gpu(worker)
    assert container["resources"]["requests"] == {"ephemeral-storage": "2Gi"}
    assert container["envFrom"] == [{"secretRef": {"name": "hf-token-secret"}}]
    assert container["workingDir"] == "/workspace/examples/backends/vllm"
    assert container["image"] == "nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.1.0"
    assert container["command"] == ["python3", "-m", "dynamo.vllm"]
    args = container["args"]
    assert args[:6] == [
        "--model",
        "Qwen/Qwen3-8B",
        "--served-model-name",
        "Qwen/Qwen3-8B",
        "--tensor-parallel-size",
        tp,
    ]
    assert "--disaggregation-mode" not in args and "--is-prefill-worker" not in args


def test_the_picked_batch_size_reaches_the_engine() -> None:
    spec = DGDRSpec.model_validate({"model": "Qwen/Qwen3-8B", "backend": "vllm"})
    result = profile(spec, HW, name="my-req", namespace="team-a")
    (picked,) = [p["config"] for p in result.pareto if p["config"]["selected"]]
    (worker,) = [c for c in result.selected_config["spec"]["components"] if c["type"] == "worker"]
    assert _value(_main(worker)["args"], "--max-num-seqs") == str(picked["batchSize"])


@pytest.mark.parametrize(
    ("backend", "service", "args", "batch_flag"),
    [
        ("sglang", "decode", ["--model-path", "Qwen/Qwen3-8B"], "--max-running-requests"),
        ("trtllm", "TRTLLMWorker", ["--model-path", "Qwen/Qwen3-8B"], "--trtllm.max_batch_size"),
    ],
)
def test_other_backends(backend: str, service: str, args: list[str], batch_flag: str) -> None:
    dgd, message = _run(backend=backend)
    assert "auto" not in message
    worker = _components(dgd)[service]
    assert worker["type"] == "worker"
    container = _main(worker)
    assert container["command"] == ["python3", "-m", f"dynamo.{backend}"]
    assert container["args"][:2] == args
    tp_flag = "--tp" if backend == "sglang" else "--trtllm.tensor_parallel_size"
    assert _value(container["args"], tp_flag) == _gpu(worker)
    assert int(_value(container["args"], batch_flag)) >= 1
    runtime = {"sglang": "sglang-runtime", "trtllm": "tensorrtllm-runtime"}[backend]
    assert container["image"] == f"nvcr.io/nvidia/ai-dynamo/{runtime}:{DEFAULT_RUNTIME_VERSION}"


# Our own expectations of each backend's worker flags (what Dynamo's current templates and
# profiler give them), independent of the upstream files, so CI always checks them.
EXPECTED_FLAGS: dict[tuple[str, str | None], list[list[str]]] = {
    ("vllm", None): [["--max-num-seqs", "64"]],
    ("vllm", "decode"): [["--disaggregation-mode", "decode"], ["--max-num-seqs", "64"]],
    ("vllm", "prefill"): [
        ["--disaggregation-mode", "prefill"],
        ["--kv-transfer-config", '{"kv_connector":"NixlConnector","kv_role":"kv_both"}'],
        ["--max-num-batched-tokens", "4000"],
    ],
    ("sglang", None): [
        ["--page-size", "16"],
        ["--trust-remote-code"],
        ["--skip-tokenizer-init"],
        ["--max-running-requests", "64"],
    ],
    ("sglang", "prefill"): [
        ["--page-size", "16"],
        ["--disaggregation-mode", "prefill"],
        ["--disaggregation-transfer-backend", "nixl"],
        ["--disaggregation-bootstrap-port", "12345"],
        ["--host", "0.0.0.0"],
        ["--chunked-prefill-size", "4000"],
    ],
    ("trtllm", None): [
        ["--extra-engine-args", "./examples/backends/trtllm/engine_configs/qwen3/agg.yaml"],
        ["--trtllm.max_batch_size", "64"],
        ["--trtllm.enable_chunked_prefill", "true"],
    ],
    ("trtllm", "decode"): [
        ["--extra-engine-args", "./examples/backends/trtllm/engine_configs/qwen3/decode.yaml"],
        ["--disaggregation-mode", "decode"],
        ["--trtllm.max_batch_size", "64"],
    ],
    ("trtllm", "prefill"): [
        ["--extra-engine-args", "./examples/backends/trtllm/engine_configs/qwen3/prefill.yaml"],
        ["--disaggregation-mode", "prefill"],
        ["--trtllm.max_num_tokens", "4000"],
    ],
}


@pytest.mark.parametrize(("backend", "role"), list(EXPECTED_FLAGS))
def test_flags_per_backend(backend: str, role: str | None) -> None:
    spec = DGDRSpec.model_validate({"model": "Qwen/Qwen3-8B", "backend": backend})
    decode = WorkerShape(2, 1, max_batch=64)
    prefill = WorkerShape(1, 1, max_num_tokens=4000) if role else None
    dgd, _ = build_dgd(_plan(spec, backend, decode, prefill=prefill))
    (worker,) = [c for c in dgd["spec"]["components"] if c["type"] == (role or "worker")]
    args = _main(worker)["args"]
    for flag in EXPECTED_FLAGS[(backend, role)]:
        i = args.index(flag[0])
        assert args[i : i + len(flag)] == flag, (backend, role, flag)
    assert "--is-prefill-worker" not in args
    if role != "prefill":
        assert "--kv-transfer-config" not in args


def test_runtime_image_keeps_registry_and_tag_or_digest() -> None:
    assert runtime_image("localhost:5000/x/dynamo-planner:1.2", "vllm") == (
        "localhost:5000/x/vllm-runtime:1.2"
    )
    assert runtime_image("reg.io/p/dynamo-planner@sha256:abc", "trtllm") == (
        "reg.io/p/tensorrtllm-runtime@sha256:abc"
    )
    assert runtime_image(None, "sglang") == (
        f"nvcr.io/nvidia/ai-dynamo/sglang-runtime:{DEFAULT_RUNTIME_VERSION}"
    )
    assert runtime_image(None, "sglang", "1.3.0") == "nvcr.io/nvidia/ai-dynamo/sglang-runtime:1.3.0"
    assert runtime_image("reg.io/p/dynamo-planner@sha256:abc", "vllm", "1.3.0") == (
        "reg.io/p/vllm-runtime:1.3.0"
    )
    assert DEFAULT_RUNTIME_VERSION != "latest"


def test_runtime_version_override_sets_every_components_image_and_field() -> None:
    dgd, _ = _run(runtimeVersionOverride="1.3.0")
    for component in dgd["spec"]["components"]:
        assert component["runtimeVersionOverride"] == "1.3.0"
        assert _main(component)["image"] == "nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.3.0"


def test_a_components_own_runtime_version_override_wins_for_its_image() -> None:
    override = {
        **BETA,
        "spec": {"components": [{"name": "Frontend", "runtimeVersionOverride": "1.2.0"}]},
    }
    dgd, _ = _run(runtimeVersionOverride="1.3.0", overrides={"dgd": override})
    components = _components(dgd)
    assert _main(components["Frontend"])["image"].endswith("vllm-runtime:1.2.0")
    assert _main(components["VllmDecodeWorker"])["image"].endswith("vllm-runtime:1.3.0")


def test_model_cache_pvc_path_is_not_doubled() -> None:
    for sub in ("models/qwen3-8b", "/models/qwen3-8b", "/opt/model-cache/models/qwen3-8b"):
        dgd, _ = _run(modelCache={"pvcName": "cache", "pvcModelPath": sub})
        for component in dgd["spec"]["components"]:  # the workers and the Frontend
            pod = component["podTemplate"]["spec"]
            assert pod["volumes"] == [
                {"name": "cache", "persistentVolumeClaim": {"claimName": "cache"}}
            ]
            assert _main(component)["volumeMounts"] == [
                {"name": "cache", "mountPath": "/opt/model-cache"}
            ]
        components = _components(dgd)
        args = _main(components["VllmDecodeWorker"])["args"]
        assert args[:4] == [
            "--model",
            "/opt/model-cache/models/qwen3-8b",
            "--served-model-name",
            "Qwen/Qwen3-8B",
        ]
        frontend_args = _main(components["Frontend"])["args"]
        assert _value(frontend_args, "--model-path") == "/opt/model-cache/models/qwen3-8b"


def test_model_cache_without_a_model_directory_is_the_hf_cache() -> None:
    dgd, _ = _run(modelCache={"pvcName": "cache"})
    worker = _components(dgd)["VllmDecodeWorker"]
    assert {"name": "HF_HOME", "value": "/opt/model-cache"} in _main(worker)["env"]
    assert _value(_main(worker)["args"], "--model") == "Qwen/Qwen3-8B"


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
                "VllmDecodeWorker": {
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
    assert dgd["spec"]["env"] == [{"name": "A", "value": "1"}]
    components = _components(dgd)
    worker = components["VllmDecodeWorker"]
    args = _main(worker)["args"]
    assert args[:2] == ["--model", "Qwen/Qwen3-8B"] and args[-2:] == ["--max-model-len", "8192"]
    assert "--max-num-seqs" in args  # appended to, not replaced (a v1alpha1 worker override)
    assert worker["podTemplate"]["spec"]["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert _main(worker)["image"].endswith(f"vllm-runtime:{DEFAULT_RUNTIME_VERSION}")
    assert _main(components["Frontend"])["args"] == ["--port", "9000"]  # Frontend: replaced
    assert "Planner" not in components
    assert "spec.components[name=Planner] skipped" in message
    assert "metadata fields ignored: namespace" in message


def test_v1beta1_override_merges_by_name_and_replaces_args_unless_appended() -> None:
    override = {
        **BETA,
        "spec": {
            "components": [
                {
                    "name": "VllmDecodeWorker",
                    "replicas": 3,
                    "podTemplate": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "main",
                                    "$patch": {"args": "append"},
                                    "args": ["--enforce-eager"],
                                    "env": [{"name": "B", "value": "2"}],
                                },
                                {"name": "sidecar", "image": "busybox"},
                            ]
                        }
                    },
                },
                {
                    "name": "Frontend",
                    "podTemplate": {"spec": {"containers": [{"name": "main", "args": ["-x"]}]}},
                },
            ]
        },
    }
    dgd, message = _run(overrides={"dgd": override}, modelCache={"pvcName": "cache"})
    components = _components(dgd)
    worker = components["VllmDecodeWorker"]
    containers = worker["podTemplate"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["main", "sidecar"]
    main = _main(worker)
    assert main["args"][0] == "--model" and main["args"][-1] == "--enforce-eager"
    assert main["env"] == [
        {"name": "HF_HOME", "value": "/opt/model-cache"},
        {"name": "B", "value": "2"},
    ]
    assert main["workingDir"] == "/workspace/examples/backends/vllm"  # untouched leaves stay
    assert worker["replicas"] == 3 and "GPU budget is not rechecked" in message
    assert _main(components["Frontend"])["args"] == ["-x"]


def test_override_fields_without_a_place_are_reported() -> None:
    override = {
        **DGD,
        "spec": {
            "pvcs": [{"name": "x", "create": True}],
            "services": {"VllmDecodeWorker": {"ingress": {"enabled": True}, "replicas": 2}},
        },
    }
    dgd, message = _run(overrides={"dgd": override})
    assert "spec.pvcs has no place in nvidia.com/v1beta1" in message
    assert "spec.services.VllmDecodeWorker.ingress has no place" in message
    assert _components(dgd)["VllmDecodeWorker"]["replicas"] == 2


def test_override_of_worker_size_is_reported() -> None:
    override = {**DGD, "spec": {"services": {"VllmDecodeWorker": {"replicas": 99}}}}
    dgd, message = _run(overrides={"dgd": override})
    assert _components(dgd)["VllmDecodeWorker"]["replicas"] == 99
    assert "GPU budget is not rechecked" in message


def test_a_v1alpha1_gpu_override_lands_in_the_main_containers_resources() -> None:
    picked = int(_gpu(_components(_run()[0])["VllmDecodeWorker"]))
    gpus = str(picked * 2)  # not what the pick has: the override changes it, and says so
    override = {
        **DGD,
        "spec": {"services": {"VllmDecodeWorker": {"resources": {"limits": {"gpu": gpus}}}}},
    }
    dgd, message = _run(overrides={"dgd": override})
    main = _main(_components(dgd)["VllmDecodeWorker"])
    assert main["resources"] == {
        "limits": {GPU: gpus},
        "requests": {"ephemeral-storage": "2Gi"},  # the generated request stays
    }
    assert f"gpu '{gpus}'" in message and "GPU budget is not rechecked" in message


def test_an_override_without_api_version_reads_as_v1alpha1() -> None:
    """The spec refuses such an override; the merge itself reads it as Dynamo's legacy v1alpha1."""
    from sim._dgd_overrides import apply_override

    spec = DGDRSpec.model_validate({"model": "Qwen/Qwen3-8B", "backend": "vllm"})
    dgd, _ = build_dgd(_plan(spec, "vllm", WorkerShape(1, 1)))
    notes = apply_override(dgd, {"spec": {"services": {"VllmDecodeWorker": {"replicas": 5}}}})
    assert notes == [] and _components(dgd)["VllmDecodeWorker"]["replicas"] == 5


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


def test_profiling_job_tolerations_reach_every_component_once() -> None:
    gpu = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    spot = {"key": "spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    job = {"template": {"spec": {"tolerations": [gpu, spot, gpu]}}}
    override = {
        **DGD,
        "spec": {"services": {"VllmDecodeWorker": {"extraPodSpec": {"tolerations": [dict(gpu)]}}}},
    }
    dgd, _ = _run(overrides={"profilingJob": job, "dgd": override})
    components = _components(dgd)
    assert set(components) == {"Frontend", "VllmDecodeWorker"}
    for component in components.values():
        assert component["podTemplate"]["spec"]["tolerations"] == [gpu, spot]
    assert _main(components["VllmDecodeWorker"])["image"].endswith(
        f"vllm-runtime:{DEFAULT_RUNTIME_VERSION}"
    )
    plain, _ = _run(overrides={"profilingJob": {"template": {"spec": {}}}})
    assert all("tolerations" not in c["podTemplate"]["spec"] for c in plain["spec"]["components"])


@pytest.mark.parametrize(
    ("backend", "service", "tp_flag", "tp", "per_node", "nodes", "gpu"),
    [
        ("vllm", "VllmDecodeWorker", "--tensor-parallel-size", 16, 8, 2, "8"),
        ("sglang", "decode", "--tp", 32, 8, 4, "8"),
        ("trtllm", "TRTLLMWorker", "--trtllm.tensor_parallel_size", 8, 4, 2, "4"),
        ("vllm", "VllmDecodeWorker", "--tensor-parallel-size", 8, 8, 1, "8"),
        ("vllm", "VllmDecodeWorker", "--tensor-parallel-size", 4, None, 1, "4"),
    ],
)
def test_multinode_worker_when_tp_exceeds_a_node(
    backend: str, service: str, tp_flag: str, tp: int, per_node: int | None, nodes: int, gpu: str
) -> None:
    spec = DGDRSpec.model_validate({"model": "Qwen/Qwen3-8B", "backend": backend})
    dgd, notes = build_dgd(_plan(spec, backend, WorkerShape(tp, 3), gpus_per_node=per_node))
    components = _components(dgd)
    worker = components[service]
    assert worker["replicas"] == 3
    assert _main(worker)["resources"]["limits"] == {GPU: gpu}
    if nodes > 1:
        assert worker["multinode"] == {"nodeCount": nodes}
        assert nodes * int(gpu) == tp  # Dynamo: total GPUs per replica = nodeCount x gpu limit
    else:
        assert "multinode" not in worker
    assert _value(_main(worker)["args"], tp_flag) == str(tp)  # one TP group across the nodes
    assert "multinode" not in components["Frontend"]
    assert notes == []


@pytest.mark.parametrize(
    ("backend", "prefill", "decode"),
    [
        ("vllm", "VllmPrefillWorker", "VllmDecodeWorker"),
        ("sglang", "prefill", "decode"),
        ("trtllm", "prefill", "decode"),
    ],
)
def test_disaggregated_dgd_per_backend(backend: str, prefill: str, decode: str) -> None:
    spec = DGDRSpec.model_validate({"model": "Qwen/Qwen3-32B", "backend": backend})
    dgd, notes = build_dgd(
        _plan(spec, backend, WorkerShape(4, 2), prefill=WorkerShape(2, 3), gpus_per_node=8)
    )
    assert notes == []
    components = _components(dgd)
    assert list(components) == ["Frontend", decode, prefill]  # the templates' order
    p, d = components[prefill], components[decode]
    assert (p["type"], d["type"]) == ("prefill", "decode")
    assert (p["replicas"], _gpu(p)) == (3, "2")
    assert (d["replicas"], _gpu(d)) == (2, "4")
    assert _value(_main(p)["args"], "--disaggregation-mode") == "prefill"
    assert _value(_main(d)["args"], "--disaggregation-mode") == "decode"


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
    components = _components(dgd)
    decode = components["VllmDecodeWorker"]
    assert decode["multinode"] == {"nodeCount": 2} and _gpu(decode) == "8"
    assert _main(decode)["args"][-2:] == ["--max-num-seqs", "64"]
    assert "multinode" not in components["VllmPrefillWorker"]


def test_planner_driven_vllm_workers_self_benchmark() -> None:
    spec = DGDRSpec.model_validate({"model": "Qwen/Qwen3-8B", "backend": "vllm"})
    planner = {"componentType": "planner", "replicas": 1}
    disagg, _ = build_dgd(
        _plan(
            spec,
            "vllm",
            WorkerShape(1, 1),
            prefill=WorkerShape(1, 1),
            extra_services={"Planner": planner},
        )
    )
    components = _components(disagg)
    assert components["Planner"] == {"name": "Planner", "type": "planner", "replicas": 1}
    for name, mode in (("VllmPrefillWorker", "prefill"), ("VllmDecodeWorker", "decode")):
        assert _main(components[name])["env"] == [{"name": "DYN_BENCHMARK_MODE", "value": mode}]
    agg, _ = build_dgd(_plan(spec, "vllm", WorkerShape(1, 1), extra_services={"Planner": planner}))
    worker = _components(agg)["VllmDecodeWorker"]
    assert _main(worker)["env"] == [{"name": "DYN_BENCHMARK_MODE", "value": "agg"}]
    plain, _ = build_dgd(_plan(spec, "vllm", WorkerShape(1, 1)))
    assert "env" not in _main(_components(plain)["VllmDecodeWorker"])


def test_mocker_workers_as_dynamos_mocker_template() -> None:
    spec = DGDRSpec.model_validate({"model": "Qwen/Qwen3-8B", "backend": "vllm"})
    dgd, _ = build_dgd(
        _plan(spec, "vllm", WorkerShape(1, 2), prefill=WorkerShape(1, 1), mocker_data="data-cm")
    )
    assert "backendFramework" not in dgd["spec"]
    components = _components(dgd)
    assert list(components) == ["Frontend", "decode", "prefill"]
    assert "envFrom" not in _main(components["Frontend"])
    for name in ("decode", "prefill"):
        c = components[name]
        main = _main(c)
        assert c["type"] == name and "resources" not in main
        assert main["image"].endswith(f"dynamo-planner:{DEFAULT_RUNTIME_VERSION}")
        assert main["command"] == ["python3", "-m", "dynamo.mocker"]
        assert _value(main["args"], "--speedup-ratio") == "1.0"
        assert _value(main["args"], "--disaggregation-mode") == name
        assert main["workingDir"] == "/workspace"
        assert c["podTemplate"]["spec"]["volumes"] == [
            {"name": "planner-profile-data", "configMap": {"name": "data-cm"}}
        ]


def test_v1alpha1_rendering_has_the_same_content() -> None:
    spec = DGDRSpec.model_validate({"model": "Qwen/Qwen3-8B", "backend": "sglang"})
    plan = _plan(spec, "sglang", WorkerShape(2, 2, max_batch=8), prefill=WorkerShape(1, 1))
    alpha, notes = build_dgd(DgdPlan(**{**plan.__dict__, "api_version": "nvidia.com/v1alpha1"}))
    assert notes == [] and alpha["apiVersion"] == "nvidia.com/v1alpha1"
    services = alpha["spec"]["services"]
    assert list(services) == ["Frontend", "decode", "prefill"]
    decode = services["decode"]
    assert (decode["componentType"], decode["subComponentType"]) == ("worker", "decode")
    assert decode["resources"]["limits"] == {"gpu": "2"}
    main = decode["extraPodSpec"]["mainContainer"]
    assert main["envFrom"] == [{"secretRef": {"name": "hf-token-secret"}}]
    assert _value(main["args"], "--max-running-requests") == "8"
    with pytest.raises(ValueError, match="apiVersion"):
        build_dgd(DgdPlan(**{**plan.__dict__, "api_version": "nvidia.com/v2"}))


def test_long_prompts_on_a_large_model_pick_disaggregated_serving_within_budget() -> None:
    spec = DGDRSpec.model_validate(
        {
            "model": "meta-llama/Llama-3.3-70B-Instruct",
            "backend": "trtllm",
            # an ITL that aggregated serving's 8000-token mixed steps cannot keep at any useful
            # batch (at ITL 25 agg and disagg are within 5% of each other, for AIC too)
            "sla": {"ttft": 3000, "itl": 15},
            "workload": {"isl": 8000, "osl": 500},
        }
    )
    hw = ResolvedHardware.from_dict({"gpuSku": "h200_sxm", "totalGpus": 16, "numGpusPerNode": 8})
    seen: list[str] = []
    result = profile(spec, hw, name="big", namespace="ns", progress=lambda p, m: seen.append(m))
    (picked,) = [p["config"] for p in result.pareto if p["config"]["selected"]]
    assert picked["mode"] == "disagg" and picked["meetsSla"]
    components = _components(result.selected_config)
    p, d = components["prefill"], components["decode"]
    used = sum(int(_gpu(s)) * s["replicas"] for s in (p, d))
    assert used == picked["totalGpus"] <= 16
    assert p["replicas"] == picked["prefillWorkers"] and d["replicas"] == picked["decodeWorkers"]
    assert _value(_main(p)["args"], "--trtllm.max_num_tokens") == "8000"
    assert _value(_main(d)["args"], "--trtllm.max_batch_size") == str(picked["batchSize"])
    assert "disagg prefill TP" in result.message
    assert any("disaggregated" in m for m in seen)


@pytest.mark.parametrize(
    ("backend", "flag"),
    [
        ("vllm", ["--enable-expert-parallel"]),
        ("sglang", ["--ep-size", "4"]),
        ("trtllm", ["--trtllm.moe_expert_parallel_size", "4"]),
    ],
)
def test_expert_parallel_workers_get_the_backends_flag(backend: str, flag: list[str]) -> None:
    spec = DGDRSpec.model_validate({"model": "Qwen/Qwen3-30B-A3B", "backend": backend})
    dgd, _ = build_dgd(_plan(spec, backend, WorkerShape(4, 2, ep=4)))
    (worker,) = [c for c in dgd["spec"]["components"] if c["type"] == "worker"]
    args = _main(worker)["args"]
    i = args.index(flag[0])
    assert args[i : i + len(flag)] == flag


def test_moe_search_considers_expert_parallel_rows() -> None:
    from sim._hfconfig import find_model
    from sim._roofline import parallel_rows

    # experts spread over the TP GPUs where they divide (Mixtral's 8 experts: not over 16 GPUs)
    assert parallel_rows(find_model("Qwen/Qwen3-30B-A3B"), [1, 2, 4]) == ([1, 2, 4], [1, 2, 4])
    assert parallel_rows(find_model("Qwen/Qwen3-8B"), [1, 2, 4]) == ([1, 2, 4], [1, 1, 1])
    eight_experts = dataclasses.replace(find_model("Qwen/Qwen3-30B-A3B"), num_experts=8)
    assert parallel_rows(eight_experts, [8, 16]) == ([8, 16], [8, 1])


@pytest.mark.parametrize(
    ("backend", "flag"),
    [
        ("vllm", ["--pipeline-parallel-size", "2"]),
        ("sglang", ["--pp-size", "2"]),
        ("trtllm", ["--trtllm.pipeline_parallel_size", "2"]),
    ],
)
def test_pipeline_stages_span_nodes(backend: str, flag: list[str]) -> None:
    spec = DGDRSpec.model_validate({"model": "deepseek-ai/DeepSeek-R1", "backend": backend})
    dgd, _ = build_dgd(_plan(spec, backend, WorkerShape(8, 1, pp=2), gpus_per_node=8))
    (worker,) = [c for c in dgd["spec"]["components"] if c["type"] == "worker"]
    assert worker["multinode"] == {"nodeCount": 2} and _gpu(worker) == "8"
    args = _main(worker)["args"]
    assert args[args.index(flag[0]) + 1] == flag[1]


@pytest.mark.parametrize(
    ("backend", "flag", "value"),
    [
        ("vllm", "--max-num-seqs", "48"),  # the engine's running requests, all micro-batches
        ("sglang", "--max-running-requests", "48"),  # SGLang splits it over the micro-batches
        ("trtllm", "--trtllm.max_batch_size", "6"),  # per micro-batch, 8 of them in flight
    ],
)
def test_a_pipelined_workers_batch_limit_is_in_each_backends_own_unit(
    backend: str, flag: str, value: str
) -> None:
    spec = DGDRSpec.model_validate({"model": "deepseek-ai/DeepSeek-R1", "backend": backend})
    shape = WorkerShape(2, 2, ep=2, pp=8, max_batch=48)
    dgd, _ = build_dgd(_plan(spec, backend, shape, gpus_per_node=8))
    (worker,) = [c for c in dgd["spec"]["components"] if c["type"] == "worker"]
    args = _main(worker)["args"]
    assert args[args.index(flag) + 1] == value


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
