"""features.planner: autoscale picking (one prefill + one decode worker), the planner's curves and
ConfigMaps, and the Planner service mounting them."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from dgdr.domain.hardware import ResolvedHardware
from dgdr.domain.spec import DGDRSpec
from sim import ProfilingError, profile
from sim._dgd_model import main_container

H200x8 = ResolvedHardware.from_dict({"gpuSku": "h200_sxm", "totalGpus": 8, "numGpusPerNode": 8})


def _components(dgd: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A v1beta1 DGD's components by name."""
    return {c["name"]: c for c in dgd["spec"]["components"]}


def _main(component: dict[str, Any]) -> dict[str, Any]:
    """A v1beta1 component's main container."""
    container = main_container(component)
    assert container is not None
    return container


def _spec(planner: dict[str, Any] | None = None, **extra: Any) -> DGDRSpec:
    return DGDRSpec.model_validate(
        {
            "model": "Qwen/Qwen3-8B",
            "backend": "vllm",
            "image": "nvcr.io/nvidia/ai-dynamo/dynamo-planner:0.9.0",
            "sla": {"ttft": 500, "itl": 20},
            "workload": {"isl": 3000, "osl": 300},
            "features": {"planner": planner if planner is not None else {}},
            **extra,
        }
    )


def test_autoscale_deploys_one_prefill_and_one_decode_worker_with_the_planner() -> None:
    phases: list[str] = []
    result = profile(
        _spec(), H200x8, name="p", namespace="ns", progress=lambda p, m: phases.append(p)
    )
    assert "BuildingCurves" in phases
    services = _components(result.selected_config)
    assert set(services) == {"Frontend", "VllmPrefillWorker", "VllmDecodeWorker", "Planner"}
    assert (
        services["VllmPrefillWorker"]["replicas"] == services["VllmDecodeWorker"]["replicas"] == 1
    )
    planner = services["Planner"]
    assert planner["type"] == "planner"
    container = _main(planner)
    assert container["image"] == "nvcr.io/nvidia/ai-dynamo/dynamo-planner:0.9.0"
    assert container["args"] == ["--config", "/workspace/planner_config/planner_config.json"]
    pod = planner["podTemplate"]["spec"]
    volumes = {v["name"]: v["configMap"]["name"] for v in pod["volumes"]}
    names = [m["metadata"]["name"] for m in result.configmaps]
    assert sorted(volumes.values()) == sorted(names)
    assert names[0].startswith("planner-config-") and names[1].startswith("planner-profile-data-")
    (selected,) = [p["config"] for p in result.pareto if p["config"]["selected"]]
    assert (selected["prefillWorkers"], selected["decodeWorkers"]) == (1, 1)


def test_planner_configmaps_carry_dynamos_keys_and_finite_curves() -> None:
    result = profile(_spec({"enable_load_scaling": True}), H200x8, name="p", namespace="ns")
    config_cm, data_cm = result.configmaps
    config = json.loads(config_cm["data"]["planner_config.json"])
    services = _components(result.selected_config)
    assert config["prefill_engine_num_gpu"] == int(
        _main(services["VllmPrefillWorker"])["resources"]["limits"]["nvidia.com/gpu"]
    )
    assert config["decode_engine_num_gpu"] == int(
        _main(services["VllmDecodeWorker"])["resources"]["limits"]["nvidia.com/gpu"]
    )
    assert config["backend"] == "vllm" and config["ttft"] == 500 and config["itl"] == 20
    prefill = json.loads(data_cm["data"]["prefill_raw_data.json"])
    decode = json.loads(data_cm["data"]["decode_raw_data.json"])
    assert set(prefill) == {"prefill_isl", "prefill_ttft", "prefill_thpt_per_gpu"}
    assert set(decode) == {
        "x_kv_usage",
        "y_context_length",
        "z_itl",
        "z_thpt_per_gpu",
        "max_kv_tokens",
    }
    n = len(prefill["prefill_isl"])
    assert n > 2 and len(prefill["prefill_ttft"]) == len(prefill["prefill_thpt_per_gpu"]) == n
    assert prefill["prefill_ttft"] == sorted(prefill["prefill_ttft"])  # longer prompts take longer
    m = len(decode["z_itl"])
    assert m > 2 and all(len(decode[k]) == m for k in ("x_kv_usage", "y_context_length"))
    assert decode["max_kv_tokens"] > 0
    assert all(0 < x <= 1.0 + 1e-9 for x in decode["x_kv_usage"])
    for values in (*prefill.values(), *(v for k, v in decode.items() if k != "max_kv_tokens")):
        assert all(math.isfinite(v) and v > 0 for v in values)


def test_the_same_profile_gives_the_same_configmap_names() -> None:
    a = profile(_spec(), H200x8, name="p", namespace="ns")
    b = profile(_spec(), H200x8, name="p", namespace="ns")
    assert a.configmaps == b.configmaps and a.selected_config == b.selected_config


def test_a_planner_with_no_scaling_mode_is_refused_naming_the_field() -> None:
    with pytest.raises(ProfilingError) as err:
        profile(
            _spec({"enable_load_scaling": False, "enable_throughput_scaling": False}),
            H200x8,
            name="p",
            namespace="ns",
        )
    assert err.value.sub_phase == "SelectingConfig"
    assert "spec.features.planner" in err.value.message


def test_no_room_for_disaggregation_deploys_without_the_planner_and_says_so() -> None:
    one = ResolvedHardware.from_dict({"gpuSku": "h200_sxm", "totalGpus": 1, "numGpusPerNode": 1})
    result = profile(_spec(), one, name="p", namespace="ns")
    assert "Planner" not in _components(result.selected_config)
    assert result.configmaps == []
    assert "deployed without the Planner" in result.message


def _mocker_spec(**features: Any) -> DGDRSpec:
    return DGDRSpec.model_validate(
        {
            "model": "Qwen/Qwen3-8B",
            "backend": "vllm",
            "sla": {"ttft": 500, "itl": 20},
            "workload": {"isl": 3000, "osl": 300},
            "features": {"mocker": {"enabled": True}, **features},
        }
    )


def test_mocker_deploys_dynamos_disaggregated_mocker_reading_the_profile_data() -> None:
    result = profile(_mocker_spec(), H200x8, name="m", namespace="ns")
    services = _components(result.selected_config)
    assert set(services) == {"Frontend", "prefill", "decode"}
    assert "backendFramework" not in result.selected_config["spec"]
    (data_cm,) = result.configmaps
    assert data_cm["metadata"]["name"].startswith("planner-profile-data-")
    for role in ("prefill", "decode"):
        worker = services[role]
        container = _main(worker)
        assert worker["type"] == role and "resources" not in container
        assert container["command"] == ["python3", "-m", "dynamo.mocker"]
        assert container["args"][container["args"].index("--disaggregation-mode") + 1] == role
        assert "--planner-profile-data" in container["args"]
        (volume,) = worker["podTemplate"]["spec"]["volumes"]
        assert volume["configMap"]["name"] == data_cm["metadata"]["name"]


def test_mocker_with_the_planner_gets_both_configmaps_and_the_planner() -> None:
    result = profile(_mocker_spec(planner={}), H200x8, name="m", namespace="ns")
    assert set(_components(result.selected_config)) == {
        "Frontend",
        "prefill",
        "decode",
        "Planner",
    }
    assert [m["metadata"]["name"].rsplit("-", 1)[0] for m in result.configmaps] == [
        "planner-config",
        "planner-profile-data",
    ]


def test_mocker_on_one_gpu_fails_and_names_the_field() -> None:
    one = ResolvedHardware.from_dict({"gpuSku": "h200_sxm", "totalGpus": 1, "numGpusPerNode": 1})
    with pytest.raises(ProfilingError) as err:
        profile(_mocker_spec(), one, name="m", namespace="ns")
    assert "spec.hardware.totalGpus" in err.value.message
