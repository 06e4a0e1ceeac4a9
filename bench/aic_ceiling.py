"""The most a pick judged by AIC's `cli_estimate` can reach on one spec: AIC's own estimate, swept.

`bench/picks.py` divides our pick's throughput, as `cli_estimate` judges it, by the best figure of
AIC's SLA search. The two are AIC's own numbers from two code paths, and they can disagree on the
same config: for cross-node expert parallelism AIC's agg search substitutes single-node all-to-all
measurements (its `_moe_comm_fallbacks`, e.g. "requested EP32/node4; using EP8/node1 silicon
data"), while its agg estimate of the exact config takes another path. Where a ratio falls below
the issue's floor, this sweep asks whether any config could have done better by the judge's own
rule.

`ceiling` tries every aggregated layout AIC takes that fits the budget (attention TP 1-8 x PP 1-32,
MoE EP 1 or equal to TP; for MoE also TP 1 x attention DP = EP 2-32), each at batch sizes from 1
up, stopping a layout at its first batch that misses the SLA or that AIC cannot run (larger
batches only lengthen both TTFT and TPOT). It returns the highest throughput per GPU of the budget
within the SLA and how many configs it tried. Disaggregated configs are not swept: AIC's disagg
search and its disagg estimate agree (checked on its picks), so `picks.aic_confirmed_best` already
holds the disaggregated ceiling.

It needs AIC only through `judge` (a shape string, as `aic_judge._aic_shape` writes it, to AIC's
estimate or {"error": ...}), so it is free of AIC imports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

BATCHES = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 160, 192, 256, 320, 384, 512)


def agg_layouts(budget: int, moe: bool) -> Iterator[tuple[int, int, int, int]]:
    """(attention TP, MoE EP, PP, attention DP) of every aggregated layout that fits `budget`."""
    for tp in (1, 2, 4, 8):
        for pp in (1, 2, 4, 8, 16, 32):
            if tp * pp > budget:
                continue
            yield tp, 1, pp, 1
            if moe and tp > 1:
                yield tp, tp, pp, 1
    if moe:
        for dp in (2, 4, 8, 16, 32):
            if dp <= budget:
                yield 1, dp, 1, dp


def ceiling(
    judge: Callable[[str], dict[str, Any]], budget: int, moe: bool, ttft: float, itl: float
) -> dict[str, Any]:
    """The best agg config by `judge` within (ttft, itl): {"cluster", "shape", "ttft", "tpot",
    "tried"}; "cluster" is 0.0 and "shape" empty when none meets the SLA."""
    best: dict[str, Any] = {"cluster": 0.0, "shape": "", "ttft": 0.0, "tpot": 0.0}
    tried = 0
    for tp, ep, pp, dp in agg_layouts(budget, moe):
        for batch in BATCHES:
            shape = f"agg TP{tp}EP{ep}PP{pp}DP{dp} bs{batch}"
            found = judge(shape)
            tried += 1
            if "error" in found or found["ttft"] > ttft or found["tpot"] > itl:
                break
            if found["cluster"] > best["cluster"]:
                best = {"shape": shape, **found}
    return {**best, "tried": tried}
