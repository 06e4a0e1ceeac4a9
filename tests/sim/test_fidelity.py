"""Fidelity guards: `sim.estimate` against AIConfigurator 0.12's measured-silicon figures saved in
bench/results/fidelity.csv (no AIC needed), and the disaggregated TTFT's parts."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

import sim
from dgdr.domain.spec import SLA, GpuSku, Workload
from sim._catalog import find_gpu
from sim._disagg import disagg_candidates
from sim._estimate import _plan, prefill_ms
from sim._hfconfig import find_model

CSV = Path(__file__).resolve().parents[2] / "bench" / "results" / "fidelity.csv"
# the goal for single points (held-out rows): median <= 8 %, p90 <= 25 %
GOAL_MEDIAN, GOAL_P90 = 8.0, 25.0


def _held_out() -> list[dict[str, str]]:
    with CSV.open() as fh:
        return [r for r in csv.DictReader(fh) if r["split"] == "test"]


def _errors(rows: list[dict[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    ttft, itl = [], []
    for r in rows:
        e = sim.estimate(
            r["model"],
            r["gpu"],
            backend=r["backend"],
            tp=int(r["tp"]),
            ep=int(r["ep"]),
            batch_size=int(r["batch"]),
            isl=int(r["isl"]),
            osl=int(r["osl"]),
            mode=r["mode"],
        )
        ttft.append(abs(e.ttft_ms / float(r["aic_ttft_ms"]) - 1.0) * 100.0)
        itl.append(abs(e.itl_ms / float(r["aic_itl_ms"]) - 1.0) * 100.0)
    return np.array(ttft), np.array(itl)


@pytest.fixture(scope="module")
def held_out() -> list[dict[str, str]]:
    return _held_out()


@pytest.mark.parametrize("mode", ["static", "agg"])
def test_held_out_single_points_meet_the_error_goal(
    held_out: list[dict[str, str]], mode: str
) -> None:
    rows = [r for r in held_out if r["mode"] == mode]
    assert len(rows) > 300
    ttft, itl = _errors(rows)
    figures = {
        "ttft median": np.median(ttft),
        "ttft p90": np.percentile(ttft, 90),
        "itl median": np.median(itl),
        "itl p90": np.percentile(itl, 90),
    }
    for name, value in figures.items():
        goal = GOAL_MEDIAN if "median" in name else GOAL_P90
        assert value <= goal, f"{mode} {name} {value:.1f}% > {goal}%: {figures}"


@pytest.mark.parametrize("batch", [1, 8, 32, 128])
def test_agg_ttft_holds_at_every_concurrency(held_out: list[dict[str, str]], batch: int) -> None:
    # In-flight batching prefills each prompt in a step beside the other requests' decodes and
    # queues prompts behind each other; a TTFT shape fitted only in aggregate misses one batch
    # size or another (the old model: batch 8 median 22 %).
    rows = [r for r in held_out if r["mode"] == "agg" and int(r["batch"]) == batch]
    ttft, _ = _errors(rows)
    assert np.median(ttft) <= 10.0, f"agg batch {batch}: TTFT median {np.median(ttft):.1f}%"


def test_agg_ttft_grows_with_the_decodes_sharing_the_prefill_step() -> None:
    # Same concurrency and queueing, longer outputs: the decodes beside each prefill read more KV.
    short, long = (
        sim.estimate(
            "meta-llama/Llama-3.1-8B",
            "h200_sxm",
            "vllm",
            batch_size=64,
            isl=4000,
            osl=o,
            mode="agg",
        ).ttft_ms
        for o in (100, 8000)
    )
    assert long > short


def test_disagg_ttft_adds_prefill_queueing_and_the_kv_transfer() -> None:
    model, gpu = find_model("meta-llama/Llama-3.1-70B"), find_gpu(GpuSku.H200_SXM)
    isl = 4000
    workload = Workload(isl=isl, osl=500)
    candidates = disagg_candidates(model, gpu, "trtllm", [2, 4, 8], SLA(), workload, 32)
    assert candidates
    # KV of one prompt, from the model's shape: layers x K and V x kv heads x head dim x 2 B
    kv_bytes = model.num_hidden_layers * 2 * model.num_key_value_heads * model.head_dim * 2.0 * isl
    for c in candidates:
        assert c.prefill_tp is not None
        engine = prefill_ms(_plan(model, gpu, "trtllm", c.prefill_tp, 1, 1), 1.0, float(isl))
        # each prefill GPU sends its shard; never faster than the one-way NVLink peak
        transfer_floor = kv_bytes / c.prefill_tp / (gpu.interconnect_gbps / 2.0 * 1e9) * 1e3
        # AIC 0.12's queueing correction of disaggregated prefill TTFT
        assert c.ttft_ms >= 1.8 * engine + transfer_floor, c


def test_kv_transfer_crosses_the_network_when_the_workers_do_not_share_a_node() -> None:
    from sim._disagg import kv_transfer_ms

    model, gpu = find_model("meta-llama/Llama-3.1-70B"), find_gpu(GpuSku.H200_SXM)
    tp4, tp8 = (_plan(model, gpu, "trtllm", t, 1, 1) for t in (4, 8))
    in_node = kv_transfer_ms(tp4, tp4, 4000.0)  # 4 + 4 GPUs: one HGX node, NVLink
    across = kv_transfer_ms(tp8, tp8, 4000.0)  # 8 + 8 GPUs: two nodes, 400 Gb/s NIC per GPU
    shard8 = model.num_hidden_layers * 2 * 1 * model.head_dim * 2.0 * 4000  # 8 KV heads / 8
    assert across >= shard8 / 50e9 * 1e3  # DGX H200: one ConnectX-7 400 Gb/s per GPU
    assert across > in_node
    assert math.isfinite(across)


# every model on its own, not only the totals: DeepSeek-V3 (MLA + MoE, 88 of 3,256 rows) was off
# by 28-37 % at the median while the totals met the goal
MODEL_MEDIAN_GOAL = 15.0


@pytest.mark.parametrize("mode", ["static", "agg"])
def test_every_model_meets_a_median_goal_of_its_own(
    held_out: list[dict[str, str]], mode: str
) -> None:
    models = sorted({r["model"] for r in held_out})
    assert "deepseek-ai/DeepSeek-V3" in models and "Qwen/Qwen3-30B-A3B" in models
    medians = {}
    for model in models:
        rows = [r for r in held_out if (r["model"], r["mode"]) == (model, mode)]
        ttft, itl = _errors(rows)
        medians[model] = (round(float(np.median(ttft)), 1), round(float(np.median(itl)), 1))
    worst = {m: v for m, v in medians.items() if max(v) > MODEL_MEDIAN_GOAL}
    assert not worst, f"{mode}: TTFT / ITL median % over {MODEL_MEDIAN_GOAL}: {worst}"


def test_gb200_is_in_the_table_and_meets_the_goal(held_out: list[dict[str, str]]) -> None:
    rows = [r for r in held_out if r["gpu"] == "gb200_sxm"]
    assert len(rows) > 200, "no GB200 rows: bench/fidelity.py must ask AIC for its system gb200"
    assert {r["backend"] for r in rows} == set(sim.BACKENDS)
    ttft, itl = _errors(rows)
    for name, errs in (("ttft", ttft), ("itl", itl)):
        assert np.median(errs) <= GOAL_MEDIAN, (name, np.median(errs))
        assert np.percentile(errs, 90) <= GOAL_P90, (name, np.percentile(errs, 90))
