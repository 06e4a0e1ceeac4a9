"""The naive fallback for a model nothing estimates (not in the catalog, no config.json), as Dynamo's
rapid profiler's: the smallest power-of-two TP that holds 1.5 x the weights its name states,
aggregated, `totalGpus // TP` replicas, and a DGD, with the SLA unverified."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dgdr.cli.main import app
from dgdr.domain.hardware import ResolvedHardware
from dgdr.domain.spec import DGDRSpec, GpuSku
from sim import ProfilingError, can_estimate, model_refusal, models, profile, profile_async
from sim._catalog import find_gpu
from sim._naive import MEMORY_MULTIPLIER, naive_plan, name_size

H200x8 = ResolvedHardware.from_dict({"gpuSku": "h200_sxm", "totalGpus": 8, "numGpusPerNode": 8})
BIG = "Qwen/Qwen3-235B-A22B-FP8"


def _hw(sku: str, total: int, per_node: int = 8) -> ResolvedHardware:
    return ResolvedHardware.from_dict(
        {"gpuSku": sku, "totalGpus": total, "numGpusPerNode": per_node}
    )


def _spec(model: str = BIG, **fields: Any) -> DGDRSpec:
    return DGDRSpec.model_validate({"model": model, **fields})


def _worker_args(dgd: dict[str, Any]) -> tuple[int, list[str]]:
    workers = [c for c in dgd["spec"]["components"] if c["type"] == "worker"]
    assert len(workers) == 1
    (container,) = workers[0]["podTemplate"]["spec"]["containers"]
    return workers[0]["replicas"], [*container.get("command", []), *container.get("args", [])]


@pytest.mark.parametrize(
    ("model", "params", "dtype"),
    [
        (BIG, 235e9, "fp8"),  # A22B is the active count, not the stored size
        ("Qwen/Qwen2.5-0.5B", 0.5e9, "bf16"),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", 56e9, "bf16"),
        ("HuggingFaceTB/SmolLM2-135M", 135e6, "bf16"),
        ("acme/Model-120b-MXFP4", 120e9, "fp4"),
        ("hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4", 8e9, "fp4"),
        ("neuralmagic/Meta-Llama-3.1-70B-Instruct-FP8", 70e9, "fp8"),
        ("acme/moonshot-1T-w8a8", 1e12, "fp8"),
    ],
)
def test_the_name_states_the_stored_parameters_and_the_weight_dtype(
    model: str, params: float, dtype: str
) -> None:
    size = name_size(model)
    assert size is not None
    assert math.isclose(size.params, params) and size.dtype == dtype


@pytest.mark.parametrize(
    "model",
    ["deepseek-ai/DeepSeek-V3.2-Exp", "meta-llama/Llama-4-Scout-17B-16E", "acme/unknown", "x/A3B"],
)
def test_a_name_without_a_stored_count_cannot_be_sized(model: str) -> None:
    assert name_size(model) is None
    refusal = model_refusal(_spec(model))
    assert refusal is not None and "no stored parameter count" in refusal
    with pytest.raises(ProfilingError) as err:
        profile(_spec(model), H200x8)
    assert err.value.sub_phase == "Initializing" and err.value.message == refusal


def test_the_naive_pick_of_qwen3_235b_fp8_on_8_h200() -> None:
    """235 GB of fp8 weights x 1.5 = 352 GB: 3 x 141 GB GPUs, so TP 4; 8 // 4 = 2 replicas."""
    steps: list[tuple[str, str]] = []
    result = profile(
        _spec(), H200x8, name="big", namespace="ns", progress=lambda p, m: steps.append((p, m))
    )
    assert result.sla_verdict == "unverified" and result.pareto == []
    assert result.backend == "vllm"  # backend auto: Dynamo's naive default
    assert [p for p, _ in steps] == ["Initializing", "SelectingConfig", "GeneratingDGD"]
    replicas, args = _worker_args(result.selected_config)
    assert replicas == 2
    assert args[args.index("--tensor-parallel-size") + 1] == "4"
    assert "--enable-expert-parallel" not in args
    assert result.dgd_name == "big-dgd" and result.selected_config["metadata"]["namespace"] == "ns"
    message = result.message
    assert message.startswith("Picked the naive configuration vllm agg TP 4 x 2 replica(s)")
    assert f"{BIG} is not in the catalog and has no config.json" in message
    assert "235 B params x 1 byte (fp8) = 235.0 GB" in message
    assert "SLA unverified: TTFT <= 2000 ms, ITL <= 30.0 ms not checked" in message


def test_a_small_model_gets_one_gpu_per_replica_and_the_spec_backend() -> None:
    result = profile(_spec("Qwen/Qwen2.5-0.5B", backend="sglang", sla={"e2eLatency": 900}), H200x8)
    replicas, args = _worker_args(result.selected_config)
    assert result.backend == "sglang" and replicas == 8
    assert args[args.index("--tp") + 1] == "1"
    assert "SLA unverified: e2eLatency <= 900 ms not checked" in result.message
    assert "backend auto" not in result.message


def test_a_tp_capped_at_the_node_is_deployed_with_a_warning_and_weights_beyond_it_fail() -> None:
    # 70 B bf16 = 140 GB; x 1.5 needs TP 4 on 80 GB H100s, two GPUs hold the weights alone.
    capped = profile(_spec("acme/Model-70B"), _hw("h100_sxm", 2))
    _, args = _worker_args(capped.selected_config)
    assert args[args.index("--tensor-parallel-size") + 1] == "2"
    assert "TP 2, capped from TP 4" in capped.message and "may not fit" in capped.message
    with pytest.raises(ProfilingError) as err:
        profile(_spec("acme/Model-100B"), _hw("h100_sxm", 2))
    assert err.value.sub_phase == "SelectingConfig" and "200.0 GB of weights" in err.value.message


@settings(max_examples=60, deadline=None)
@given(
    billions=st.floats(min_value=0.05, max_value=3000.0, allow_nan=False).map(
        lambda x: round(x, 2)
    ),
    dtype=st.sampled_from(["", "-FP8", "-NVFP4"]),
    sku=st.sampled_from([GpuSku.H200_SXM, GpuSku.H100_SXM, GpuSku.A100_SXM, GpuSku.L40S]),
    total=st.integers(min_value=1, max_value=32),
    per_node=st.sampled_from([1, 2, 4, 8]),
)
def test_the_naive_tp_is_the_smallest_power_of_two_that_fits_within_one_node(
    billions: float, dtype: str, sku: GpuSku, total: int, per_node: int
) -> None:
    spec = _spec(f"acme/Model-{billions:g}B{dtype}")
    hardware = ResolvedHardware(gpu_sku=sku, num_gpus_per_node=per_node, total_gpus=total)
    size = name_size(spec.model)
    assert size is not None and math.isclose(size.params, billions * 1e9)
    vram = find_gpu(sku).memory_gb * 1e9
    largest = 1 << (min(per_node, total).bit_length() - 1)
    if size.weight_bytes > largest * vram:
        with pytest.raises(ProfilingError):
            naive_plan(spec, hardware)
        return
    plan = naive_plan(spec, hardware)
    need = MEMORY_MULTIPLIER * size.weight_bytes
    assert plan.tp & (plan.tp - 1) == 0 and plan.tp <= largest
    assert plan.tp * vram >= need or plan.tp == largest  # holds 1.5 x, unless capped
    assert plan.tp == 1 or (plan.tp // 2) * vram < need  # and no smaller TP would
    assert plan.replicas == total // plan.tp >= 1
    assert (plan.tp < plan.required_tp) == bool(plan.notes)


def test_what_can_be_estimated_and_what_is_refused(tmp_path: Path) -> None:
    for model in models():
        assert can_estimate(model) and can_estimate(model.upper())
        assert model_refusal(_spec(model)) is None
    entry = models()["Qwen/Qwen3-0.6B"]
    (tmp_path / "config.json").write_text(
        json.dumps({"num_hidden_layers": entry.num_hidden_layers})
    )
    # a named config.json is read (and its errors reported), where the model directories allow
    assert can_estimate(str(tmp_path), (tmp_path,)) and can_estimate(str(tmp_path), None)
    assert not can_estimate(str(tmp_path))
    assert not can_estimate(BIG) and model_refusal(_spec()) is None
    thorough = model_refusal(_spec(backend="vllm", searchStrategy="thorough"))
    assert thorough is not None and "use searchStrategy rapid" in thorough
    mocker = model_refusal(_spec(features={"mocker": {"enabled": True}}))
    assert mocker is not None and "features.mocker" in mocker
    with pytest.raises(ProfilingError, match="searchStrategy thorough"):
        profile(_spec(backend="vllm", searchStrategy="thorough"), H200x8)


def test_the_planner_and_the_objective_are_left_out_and_said_so() -> None:
    result = profile(_spec(features={"planner": {}}, sla={"optimizationType": "latency"}), H200x8)
    assert "features.planner left out" in result.message
    assert "optimizationType latency: not applied (naive)" in result.message
    names = {c["name"] for c in result.selected_config["spec"]["components"]}
    assert names == {"Frontend", "VllmDecodeWorker"}
    assert result.configmaps == []


def test_an_estimated_model_still_gets_a_verdict_from_its_estimate() -> None:
    met = profile(_spec("Qwen/Qwen3-8B"), H200x8)
    missed = profile(_spec("Qwen/Qwen3-8B", sla={"ttft": 1, "itl": 0.1}), H200x8)
    assert (met.sla_verdict, missed.sla_verdict) == ("met", "missed")
    assert met.pareto and missed.pareto


def test_the_service_path_runs_the_naive_profile_off_the_loop() -> None:
    seen: list[str] = []

    async def report(sub_phase: str, message: str) -> None:
        seen.append(sub_phase)

    result = asyncio.run(profile_async(_spec(), H200x8, report=report, name="big"))
    assert result.sla_verdict == "unverified" and seen[-1] == "GeneratingDGD"


def test_dgdr_profile_prints_the_naive_pick_and_the_unverified_verdict(tmp_path: Path) -> None:
    manifest = tmp_path / "big.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "nvidia.com/v1beta1",
                "kind": "DynamoGraphDeploymentRequest",
                "metadata": {"name": "big"},
                "spec": {"model": BIG, "hardware": {"gpuSku": "h200_sxm", "totalGpus": 8}},
            }
        )
    )
    runner = CliRunner()
    table = runner.invoke(app, ["profile", "-f", str(manifest)], terminal_width=400)
    assert table.exit_code == 0, table.output
    assert "Picked the naive configuration vllm agg TP 4 x 2 replica(s)" in table.output
    assert (
        "SLA unverified" in table.output
        and "DGD big-dgd (nvidia.com/v1beta1): Frontend x1, VllmDecodeWorker x2" in (table.output)
    )
    data = json.loads(runner.invoke(app, ["profile", "-f", str(manifest), "-o", "json"]).output)
    assert data["slaVerdict"] == "unverified" and data["pareto"] == []
    simulated = runner.invoke(app, ["simulate", "-f", str(manifest)])
    assert simulated.exit_code == 1 and "cannot simulate" in simulated.output
