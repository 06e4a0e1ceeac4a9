"""How a step's tokens spread over a MoE model's routed experts: the experts it touches and the load
of the busiest expert-parallel rank, which a step waits for.

The workload is the one AIConfigurator's measured MoE kernels were timed with, since its figures
are what the estimator is checked against: each of the `E` experts draws a weight from a power
law `p(x) ~ x**-alpha` on `[1, 0.8 T]` when the `T * k` token-expert assignments outnumber the
experts, else on `[0.01, 2]`; expert i gets `round(T * k * x_i / sum(x))` assignments, and what
rounding loses goes one each to the largest counts first, then to untouched experts (on any
rank). The EP rank with the most assignments is the one timed. `alpha` is 1.01 for DeepSeek-style
MLA-MoE models and 1.2 for other MoE models, as in AIConfigurator 0.12 (`workload_distribution`
"power_law"). Under it a batch touches fewer experts than a uniform spread would (DeepSeek-V3 at
32 tokens: 113 of 256, against 163), so less expert weight is read per step, and the busiest rank
carries more than its share (at 1024 tokens on 8 ranks: 1.4x the mean, against 1.04x).

Expectations in closed form (numpy-broadcast over `tokens`), checked against a sampled workload
in the tests: an expert is touched when its count rounds to at least 1, i.e. its weight is at
least `0.5 E mean(x) / (T k)`; what rounding loses is the mass below that threshold less what
rounding up to 1 adds; the busiest of `ep` ranks lies `max_rank_factor(ep)` standard deviations
above the mean of a rank's `E / ep` experts (a sum of independent counts: nearly normal once it
matters), and holds at least its touched experts' mean counts. Functions return whole-model
figures, `ep` times the busiest rank's, so callers divide by `ep` as for a balanced spread.

Pure functions of their arguments; no I/O, no failure modes beyond numpy's.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

MLA_MOE_ALPHA = 1.01  # AIC's DeepSeek family (and the other MLA-MoE models it knows)
MOE_ALPHA = 1.2  # AIC's generic MoE model (Qwen3-MoE, Mixtral, gpt-oss)


def max_rank_factor(ranks: int) -> float:
    """Expected maximum of `ranks` standard normals (Blom's approximation; 0 for one rank): how
    many standard deviations the busiest of `ranks` expert-parallel ranks lies above the mean."""
    if ranks <= 1:
        return 0.0
    return NormalDist().inv_cdf((ranks - 0.375) / (ranks + 0.25))


def routing_alpha(is_mla: bool) -> float:
    """The power-law exponent of the workload for a model of this kind."""
    return MLA_MOE_ALPHA if is_mla else MOE_ALPHA


class Busiest(NamedTuple):
    """The busiest EP rank's token-expert assignments and distinct experts, times `ep`."""

    assignments: FloatArray
    experts: FloatArray


class _Workload:
    """The power law's moments for `tokens` (one array of T), and what follows from them: the
    share of experts touched, what rounding loses per expert, the spread of an expert's count."""

    def __init__(self, num_experts: int, top_k: int, tokens: ArrayLike, alpha: float) -> None:
        t = np.asarray(tokens, dtype=np.float64)
        heavy = t * top_k > num_experts
        lo = np.where(heavy, 1.0, 0.01)
        hi = np.where(heavy, np.maximum(0.8 * t, 1.0 + 1e-6), 2.0)
        g0, g1, g2 = 1.0 - alpha, 2.0 - alpha, 3.0 - alpha  # E[x**n] integrands' exponents
        lo0, hi0, lo1, hi1 = lo**g0, hi**g0, lo**g1, hi**g1
        norm = g0 / (hi0 - lo0)
        mean = norm * (hi1 - lo1) / g1
        second = norm * (hi**g2 - lo**g2) / g2
        # an expert's count per unit of weight (no tokens: as good as none, without a 1/0)
        scale = np.maximum(t, 1e-9) * top_k / (num_experts * mean)
        # weights whose count rounds to 1 (or more), and to 2 (or more)
        half, three_halves = np.clip(0.5 / scale, lo, hi), np.clip(1.5 / scale, lo, hi)
        half0, half1 = half**g0, half**g1
        three0, three1 = three_halves**g0, three_halves**g1
        self.share = np.clip(norm * (hi0 - half0) / g0, 0.0, 1.0)
        dropped = scale * norm * (half1 - lo1) / g1  # counts below 1/2: lost
        raised = norm * ((three0 - half0) / g0 - scale * (three1 - half1) / g1)  # up to 1
        self.loss = np.maximum(dropped - raised, 0.0)
        self.count_sd = scale * np.sqrt(np.maximum(second - mean * mean, 0.0))

    def touched(self, num_experts: int, tokens: ArrayLike) -> FloatArray:
        """Expected distinct experts touched: those whose count rounds to 1 or more, or the
        experts what rounding lost is handed to, when more."""
        by_rounding = num_experts * self.share
        refilled = np.minimum(num_experts * self.loss, num_experts)
        some = np.asarray(tokens, dtype=np.float64) > 0
        return np.asarray(np.where(some, np.maximum(by_rounding, refilled), 0.0))


def touched_experts(num_experts: int, top_k: int, tokens: ArrayLike, alpha: float) -> FloatArray:
    """Expected distinct experts that `tokens` tokens routed top-k touch."""
    if num_experts == 0:
        return np.zeros_like(np.asarray(tokens, dtype=np.float64))
    return _Workload(num_experts, top_k, tokens, alpha).touched(num_experts, tokens)


def busiest_rank(num_experts: int, top_k: int, tokens: ArrayLike, ep: int, alpha: float) -> Busiest:
    """The busiest of `ep` ranks: its distinct experts (a rank's share of the touched ones,
    binomial spread), and its token-expert assignments (the spread of a rank's sum of counts,
    and no fewer than its touched experts at the mean count of a touched expert, which decides it
    while few experts are touched); both times `ep`."""
    total = np.asarray(tokens, dtype=np.float64) * top_k
    if num_experts == 0:
        return Busiest(total, np.zeros_like(total))
    w = _Workload(num_experts, top_k, tokens, alpha)
    touched = w.touched(num_experts, tokens)
    if ep <= 1:
        return Busiest(total, touched)
    share, per_rank, z = touched / num_experts, num_experts / ep, max_rank_factor(ep)
    spread = per_rank * share + z * np.sqrt(per_rank * share * (1.0 - share))
    experts = ep * np.minimum(spread, per_rank)
    per_touched = np.divide(total, touched, out=np.zeros_like(total), where=touched > 0)
    sums = total + ep * z * math.sqrt(per_rank) * w.count_sd
    return Busiest(np.asarray(np.maximum(sums, experts * per_touched)), np.asarray(experts))
