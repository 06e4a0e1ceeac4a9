"""`sim._moe_kernels`: the measured MoE kernel regressions reach the step time where AIConfigurator
0.12's tables have them, and nowhere else.

The AIC figures are `sim._aic.AicEstimator.point(..., mode="static")` (trtllm, Qwen3-30B-A3B on
H100, TP 4 x EP 4, 1000/1000), probed on 2026-11-30: TPOT 12.4 ms at 192 sequences, 31.2 at 256,
50.6 at 320, 44.9 at 384, 19.0 at 512. The smooth roofline alone said 13.7 at 256 and 14.9 at 384,
and a decode worker sized at 256 kept 0.47x the throughput of AIC's best pick.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim import _catalog, _dep, _estimate, estimate
from sim._moe_kernels import excess_ms, kernel_excess

QWEN_MOE = "Qwen/Qwen3-30B-A3B"
AIC_TPOT = [(192, 12.4), (256, 31.2), (320, 50.6), (384, 44.9), (512, 19.0)]


@pytest.mark.parametrize(("batch", "aic_tpot"), AIC_TPOT)
def test_decode_follows_aic_through_the_measured_kernel_regression(
    batch: int, aic_tpot: float
) -> None:
    e = estimate(
        QWEN_MOE, "h100_sxm", backend="trtllm", tp=4, ep=4, batch_size=batch, isl=1000, osl=1000
    )
    assert abs(e.itl_ms / aic_tpot - 1.0) <= 0.15, (batch, e.itl_ms, aic_tpot)


def test_a_regression_is_a_bump_not_a_trend() -> None:
    """Between measured counts the excess ramps linearly; past the regression it is gone."""
    curve = kernel_excess(_catalog.models()[QWEN_MOE], "h100_sxm", "trtllm", 1, 4)
    assert curve is not None
    at, excess = curve
    peak = int(np.argmax(excess))
    assert excess[peak] > 0.3  # ms per layer: 0.73 at 320 tokens
    assert excess_ms(curve, np.array([at[0], at[-1], 1.0, 16384.0])).tolist() == [0, 0, 0, 0]
    mid = (at[peak - 1] + at[peak]) / 2.0
    assert excess_ms(curve, np.array([mid]))[0] == pytest.approx(
        (excess[peak - 1] + excess[peak]) / 2.0
    )


def test_dep_workers_route_all_their_ranks_tokens_through_the_kernel() -> None:
    """AIC's DEP 4 estimate (dep_fidelity, 1000/1000) jumps 12.6 -> 31.9 ms from 32 to 64 sequences
    per rank: 256 tokens routed, EP 4, the regression above."""
    model, gpu = _catalog.models()[QWEN_MOE], _catalog.gpus()["h100_sxm"]
    plan = _dep.dep_plan(model, gpu, "trtllm", 4)
    assert plan.moe_excess is not None
    at32, at64 = (float(_dep.dep_step_ms(plan, 4 * b, 1500.0)) for b in (32, 64))
    assert at64 / at32 > 2.0, (at32, at64)
    assert abs(at64 / 31.9 - 1.0) <= 0.2, at64


@pytest.mark.parametrize(
    ("model", "gpu", "backend", "expert_tp", "ep"),
    [
        ("Qwen/Qwen3-32B", "h100_sxm", "trtllm", 1, 1),  # dense
        (QWEN_MOE, "v100_sxm", "trtllm", 1, 4),  # no AIC table for this GPU
        (QWEN_MOE, "h100_sxm", "trtllm", 4, 1),  # expert TP 4: a smooth measured curve
    ],
)
def test_no_excess_where_nothing_was_measured_slower(
    model: str, gpu: str, backend: str, expert_tp: int, ep: int
) -> None:
    assert kernel_excess(_catalog.models()[model], gpu, backend, expert_tp, ep) is None


def test_plans_carry_their_workers_kernel_shape() -> None:
    model, gpu = _catalog.models()[QWEN_MOE], _catalog.gpus()["h100_sxm"]
    assert _estimate._plan(model, gpu, "trtllm", 4, 1, 4).moe_excess is not None
    assert _estimate._plan(model, gpu, "trtllm", 4, 1, 1).moe_excess is None


def test_an_estimate_says_what_the_measured_kernel_adds() -> None:
    """`dgdr estimate` shows it: 48 MoE layers x 0.35 ms at 256 tokens routed; none at 192."""
    at = {
        b: estimate(QWEN_MOE, "h100_sxm", tp=4, ep=4, batch_size=b, isl=1000, osl=1000)
        for b in (192, 256)
    }
    assert at[192].moe_kernel_excess_ms == 0.0
    assert at[256].moe_kernel_excess_ms == pytest.approx(48 * 0.34974, rel=1e-3)
    assert at[256].itl_ms - at[192].itl_ms > at[256].moe_kernel_excess_ms
