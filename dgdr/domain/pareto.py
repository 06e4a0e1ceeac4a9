"""What a row of a profile's Pareto front says about how it was ranked.

A row's `config` carries `tokensPerSecondPerGpu` (per GPU the config uses) and, when the profile
judged configs against the whole GPU budget (no load to match), `budgetGpus` and
`tokensPerSecondPerBudgetGpu` (idle GPUs of the budget count against a config). The pick and the
front were ranked by the second when it is there: whoever orders, trims or compares rows (the
status projection, `dgdr profile`, `dgdr describe`) uses `ranked_throughput` so it agrees with
the pick. Pure; a row without a numeric figure has none (None), never a made-up 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PER_BUDGET_GPU = "tokensPerSecondPerBudgetGpu"
PER_GPU_USED = "tokensPerSecondPerGpu"


def ranked_throughput(config: Mapping[str, Any]) -> float | None:
    """Tokens/s per GPU as the profile ranked the config: per GPU of the budget when it was
    judged against one, else per GPU used; None when the row carries neither as a number."""
    for key in (PER_BUDGET_GPU, PER_GPU_USED):
        value = config.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def idle_gpus(config: Mapping[str, Any]) -> int:
    """GPUs of the budget the config leaves idle (0 when it was not judged against a budget)."""
    budget, used = config.get("budgetGpus"), config.get("totalGpus")
    if isinstance(budget, int) and isinstance(used, int) and budget > used:
        return budget - used
    return 0
