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


class _Workload:
    """The power law's moments and the counts' scale for `tokens` (one array of T)."""

    def __init__(self, num_experts: int, top_k: int, tokens: ArrayLike, alpha: float) -> None:
        t = np.asarray(tokens, dtype=np.float64)
        heavy = t * top_k > num_experts
        self.lo = np.where(heavy, 1.0, 0.01)
        self.hi = np.where(heavy, np.maximum(0.8 * t, 1.0 + 1e-6), 2.0)
        self.alpha = alpha
        g1 = 1.0 - alpha
        self.norm = g1 / (self.hi**g1 - self.lo**g1)
        mean = self._moment(1, self.lo, self.hi)
        self.sd = np.sqrt(np.maximum(self._moment(2, self.lo, self.hi) - mean * mean, 0.0))
        # an expert's count per unit of weight (no tokens: as good as none, without a 1/0)
        self.scale = np.maximum(t, 1e-9) * top_k / (num_experts * mean)

    def _moment(self, order: int, lo: FloatArray, hi: FloatArray) -> FloatArray:
        """E[x**order ; lo <= x < hi] (bounds clipped to the support)."""
        g = order + 1.0 - self.alpha
        lo, hi = np.clip(lo, self.lo, self.hi), np.clip(hi, self.lo, self.hi)
        return np.asarray(self.norm * (hi**g - lo**g) / g)

    def touched_share(self) -> FloatArray:
        """P(an expert's count rounds to at least 1)."""
        share = self._moment(0, 0.5 / self.scale, self.hi)
        return np.asarray(np.clip(share, 0.0, 1.0))

    def rounding_loss(self) -> FloatArray:
        """Expected assignments per expert that rounding loses (counts below 1/2 go to 0, counts in
        [1/2, 3/2) become 1); larger counts round both ways about evenly."""
        half, three_halves = 0.5 / self.scale, 1.5 / self.scale
        dropped = self.scale * self._moment(1, self.lo, half)
        raised = self._moment(0, half, three_halves) - self.scale * self._moment(
            1, half, three_halves
        )
        return np.asarray(np.maximum(dropped - raised, 0.0))


def touched_experts(num_experts: int, top_k: int, tokens: ArrayLike, alpha: float) -> FloatArray:
    """Expected distinct experts that `tokens` tokens routed top-k touch."""
    if num_experts == 0:
        return np.zeros_like(np.asarray(tokens, dtype=np.float64))
    w = _Workload(num_experts, top_k, tokens, alpha)
    by_rounding = num_experts * w.touched_share()
    refilled = np.minimum(num_experts * w.rounding_loss(), num_experts)
    some = np.asarray(tokens, dtype=np.float64) > 0
    return np.asarray(np.where(some, np.maximum(by_rounding, refilled), 0.0))


def bottleneck_experts(
    num_experts: int, top_k: int, tokens: ArrayLike, ep: int, alpha: float
) -> FloatArray:
    """`touched_experts` as the busiest of `ep` ranks sees it, times `ep`."""
    if ep <= 1 or num_experts == 0:
        return touched_experts(num_experts, top_k, tokens, alpha)
    share = touched_experts(num_experts, top_k, tokens, alpha) / num_experts
    per_rank = num_experts / ep
    spread = per_rank * share + max_rank_factor(ep) * np.sqrt(per_rank * share * (1.0 - share))
    return np.asarray(ep * np.minimum(spread, per_rank))


def bottleneck_routed(
    num_experts: int, top_k: int, tokens: ArrayLike, ep: int, alpha: float
) -> FloatArray:
    """Token-expert assignments on the busiest of `ep` ranks, times `ep`: the spread of a rank's
    sum of counts, and no fewer than its touched experts at the mean count of a touched expert
    (what decides it while few experts are touched)."""
    total = np.asarray(tokens, dtype=np.float64) * top_k
    if ep <= 1 or num_experts == 0:
        return total
    w = _Workload(num_experts, top_k, tokens, alpha)
    spread = total + ep * max_rank_factor(ep) * math.sqrt(num_experts / ep) * w.scale * w.sd
    touched = touched_experts(num_experts, top_k, tokens, alpha)
    per_touched = np.divide(total, touched, out=np.zeros_like(total), where=touched > 0)
    busiest = bottleneck_experts(num_experts, top_k, tokens, ep, alpha) * per_touched
    return np.asarray(np.maximum(spread, busiest))
