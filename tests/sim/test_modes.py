"""The best config of each serving mode and each mode's front (`ProfileResult.modes`)."""

from __future__ import annotations

from typing import Any

from dgdr.domain.hardware import ResolvedHardware
from dgdr.domain.spec import DGDRSpec
from sim import models, profile
from sim._margin import ErrorBand, error_band

H200x8 = ResolvedHardware.from_dict({"gpuSku": "h200_sxm", "totalGpus": 8, "numGpusPerNode": 8})


def _profile(**sla: float) -> dict[str, dict[str, Any]]:
    spec = DGDRSpec.model_validate(
        {
            "model": "Qwen/Qwen3-0.6B",
            "backend": "vllm",
            "sla": sla,
            "workload": {"isl": 3000, "osl": 500},
        }
    )
    return profile(spec, H200x8, name="m", namespace="ns").modes


def _at_edge(config: dict[str, Any], band: ErrorBand) -> tuple[float, float]:
    ttft, itl = band.edge(config["ttftMs"], config["itlMs"])
    return float(ttft), float(itl)


def _within(figures: tuple[float, float], targets: tuple[float, float]) -> bool:
    return all(f <= t for f, t in zip(figures, targets, strict=True))


def test_each_mode_has_its_best_sla_meeting_config_on_its_own_front() -> None:
    modes = _profile(ttft=300, itl=20)
    for mode, summary in modes.items():
        best, front = summary["best"], summary["pareto"]
        assert best is not None and best["mode"] == mode and best["meetsSla"]
        assert all(p["mode"] == mode for p in front)
        # The best: the highest throughput among the configs that keep the SLA at the
        # estimator's error band (`sim._margin`), when any does.
        band = error_band(
            models()["Qwen/Qwen3-0.6B"], "vllm", "static" if mode == "disagg" else "agg"
        )
        meeting = [p for p in front if p["meetsSla"]]
        margin = [p for p in meeting if _within(_at_edge(p, band), (300, 20))] or meeting
        assert best["tokensPerSecondPerGpu"] == max(p["tokensPerSecondPerGpu"] for p in margin)
        users = [p["tokensPerSecondPerUser"] for p in front]
        assert users == sorted(users, reverse=True)  # a front: faster per user, slower per GPU
        # ranked per GPU of the budget (a disaggregated unit may leave GPUs idle)
        gpus = [p["tokensPerSecondPerBudgetGpu"] for p in front]
        assert gpus == sorted(gpus)
    # the pick (highest tokens/s per GPU) is the better of the two bests, flagged as deployed
    picked = max((s["best"] for s in modes.values()), key=lambda b: b["tokensPerSecondPerGpu"])
    assert picked["selected"] and sum(bool(s["best"]["selected"]) for s in modes.values()) == 1


def test_a_mode_that_meets_no_target_offers_its_closest_miss() -> None:
    modes = _profile(ttft=25, itl=20)  # only a disaggregated prefill worker reaches 25 ms
    agg, disagg = modes["agg"]["best"], modes["disagg"]["best"]
    assert not agg["meetsSla"] and disagg["meetsSla"] and disagg["selected"]
    # the closest miss by TTFT (ITL is met everywhere here), off the throughput front if need be
    assert 25 < agg["ttftMs"] <= min(p["ttftMs"] for p in modes["agg"]["pareto"])
    assert agg["itlMs"] <= 20
