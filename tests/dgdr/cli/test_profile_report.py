"""`dgdr profile`'s comparison of the best configs of each mode ranks them as the profile did."""

from __future__ import annotations

from typing import Any

from dgdr.cli.profile_report import mode_comparison


def _config(mode: str, gpus: int, per_gpu: float, budget: int | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "mode": mode,
        "backend": "trtllm",
        "tensorParallelSize": 1,
        "replicas": gpus,
        "prefillTensorParallelSize": 1,
        "prefillWorkers": 1,
        "decodeTensorParallelSize": 1,
        "decodeWorkers": gpus - 1,
        "totalGpus": gpus,
        "batchSize": 64,
        "tokensPerSecondPerGpu": per_gpu,
        "tokensPerSecondPerUser": 50.0,
        "ttftMs": 100.0,
        "itlMs": 10.0,
        "meetsSla": True,
    }
    if budget is not None:
        config |= {"budgetGpus": budget, "tokensPerSecondPerBudgetGpu": per_gpu * gpus / budget}
    return config


def test_a_config_leaving_gpus_idle_is_compared_per_gpu_of_the_budget_and_says_so() -> None:
    # disagg is faster per GPU it uses (1200) but leaves 4 of 16 GPUs idle: 900 per budget GPU
    agg = _config("agg", 16, 1000.0, budget=16) | {"selected": True}
    disagg = _config("disagg", 12, 1200.0, budget=16)
    _, lines = mode_comparison({"agg": {"best": agg}, "disagg": {"best": disagg}}, agg)
    assert "Chosen: agg at 1000 tokens/s/GPU (1.11x the best disagg's 900)" in lines
    idle = [line for line in lines if "idle" in line]
    assert idle == [
        "The best disaggregated config leaves 4 of the 16 GPUs idle; its tokens/s/GPU counts "
        "them (1200 per GPU it uses)."
    ]


def test_without_a_budget_figure_configs_compare_per_gpu_used() -> None:
    agg = _config("agg", 8, 1000.0, budget=None) | {"selected": True}
    disagg = _config("disagg", 6, 800.0, budget=None)
    _, lines = mode_comparison({"agg": {"best": agg}, "disagg": {"best": disagg}}, agg)
    assert lines == ["Chosen: agg at 1000 tokens/s/GPU (1.25x the best disagg's 800)"]
