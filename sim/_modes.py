"""Aggregated against disaggregated: the best config of each serving mode and each mode's Pareto
front, as AIConfigurator's summary sets "best agg" beside "best disagg".

Owns `compare_modes`, pure over the search's results. The best of a mode is the one the pick's
own rule (`sim._search.rank_key`, steered by `sla.optimizationType`) ranks first among every
config of that mode the searched backends produced: an SLA-meeting one when there is any, else the
closest miss (its `meetsSla` is then False). A mode with no config that fits the GPU budget (one
GPU cannot hold a prefill and a decode worker) has `best` None and an empty front. The fronts are
over every config of the mode, SLA met or not (the plot draws the SLA bounds over them).

Failure semantics: none; every figure comes from `Candidate.to_json`, so it is finite and rounded
as the report's other figures are.
"""

from __future__ import annotations

from typing import Any

from ._resolve import Setup
from ._search import Candidate, best_ranked, pareto_front

SERVING_MODES = ("agg", "disagg")


def compare_modes(
    setup: Setup,
    agg: list[Candidate],
    disagg: list[Candidate],
    chosen: Candidate,
) -> dict[str, dict[str, Any]]:
    """{"agg": {"best": config | None, "pareto": [config, ...]}, "disagg": {...}}; the config
    deployed carries `selected` True wherever it appears."""
    summary: dict[str, dict[str, Any]] = {}
    for mode, pool in zip(SERVING_MODES, (agg, disagg), strict=True):
        best = best_ranked(pool, setup.sla.optimization_type) if pool else None
        summary[mode] = {
            "best": None if best is None else best.to_json(best == chosen),
            "pareto": [c.to_json(c == chosen) for c in pareto_front(pool)],
        }
    return summary
