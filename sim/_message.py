"""The words of a profile: number formats, the SLA verdict and its margin, the deployment shape, the load note,
which backend `auto` picked, and the one-line result message `sim.profile` returns.

Owns the wording only; every figure comes from the stages. Pure functions of their arguments, no
failure modes for the finite figures the search produces.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from dgdr.domain.spec import SLA, OptimizationType, Workload

from ._margin import BAND_QUANTILE, WIDEST_USABLE, ErrorBand
from ._search import Candidate, Pick, best_ranked

_QUANTILE_WORD = f"p{BAND_QUANTILE}" if BAND_QUANTILE is not None else "(unmeasured: no band file)"


def ms(x: float) -> str:
    """A latency (or any figure) with about three significant digits."""
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


num = ms


def target_words(label: str, actual: float, target: float) -> str:
    if actual <= target:
        return f"{label} {ms(actual)} ms <= {ms(target)} ms"
    pct = (actual / target - 1.0) * 100.0
    shown = f"{pct:.0f}" if pct >= 10 else f"{pct:.1f}" if pct >= 0.1 else "<0.1"
    return f"{label} {ms(actual)} ms > {ms(target)} ms (+{shown}%)"


def sla_summary(c: Candidate, sla: SLA, met: bool) -> str:
    """`SLA met: ...` or `SLA missed: ...` with each target and by how much it is missed."""
    if sla.e2e_latency is not None:
        parts = [target_words("e2eLatency", c.e2e_ms, sla.e2e_latency)]
    else:
        parts = [
            target_words("TTFT", c.ttft_ms, sla.ttft or math.inf),
            target_words("ITL", c.itl_ms, sla.itl or math.inf),
        ]
    if met:
        return "SLA met: " + ", ".join(parts)
    return "SLA missed: " + ", ".join(parts) + " (closest achievable config)"


def _under(label: str, actual: float, target: float) -> str:
    return f"{label} {ms(actual)} ms ({(1.0 - actual / target) * 100.0:.0f}% under the {ms(target)} ms SLA)"


def margin_note(c: Candidate, sla: SLA, band: ErrorBand, backend: str) -> str | None:
    """How much margin an SLA-meeting pick has against the estimator's error band (None for a
    miss): each target's headroom, the band, and whether the pick keeps the SLA at the band's
    pessimistic edge or (no config does) only as estimated."""
    if not c.meets_sla:
        return None
    if sla.e2e_latency is not None:
        room = _under("e2eLatency", c.e2e_ms, sla.e2e_latency)
    else:
        parts = [
            _under(label, actual, target)
            for label, actual, target in (("TTFT", c.ttft_ms, sla.ttft), ("ITL", c.itl_ms, sla.itl))
            if target is not None
        ]
        room = ", ".join(parts)
    mode = "disaggregated workers" if c.mode == "disagg" else "aggregated serving"
    error = (
        f"the estimator's {_QUANTILE_WORD} error for {band.subject} on {backend} ({mode}) is "
        f"TTFT +{band.ttft * 100.0:.0f}%, ITL +{band.itl * 100.0:.0f}%"
    )
    if not band.usable:
        return (
            f"margin: {room}; {error}: too wide to pick by (beyond "
            f"+{WIDEST_USABLE * 100.0:.0f}%), so picked on the estimate itself (the SLA may be "
            "missed in practice)"
        )
    if c.has_margin:
        return f"margin: {room}; {error}: the SLA holds at that edge"
    return (
        f"margin: {room}; {error}, and no config meets the SLA at that edge: picked on the "
        "estimate itself (the SLA may be missed in practice)"
    )


def shape(c: Candidate) -> str:
    """The deployment shape in words: `agg TP 2 x 4 replica(s)`, `agg TP 4 EP 4 x 2 replica(s)`,
    `agg DEP 16 (attention DP 16 x EP 16) x 1 replica(s)` or
    `disagg prefill TP 1 x 2 + decode TP 2 x 3`."""

    def par(tp: int, ep: int, pp: int = 1, dp: int = 1) -> str:
        if dp > 1:
            return f"DEP {tp} (attention DP {dp} x EP {ep})"
        return f"TP {tp}" + (f" EP {ep}" if ep > 1 else "") + (f" PP {pp}" if pp > 1 else "")

    if c.mode == "disagg":
        return (
            f"disagg prefill {par(c.prefill_tp, c.prefill_ep, 1, c.prefill_dp)} x "
            f"{c.prefill_workers} + decode {par(c.tp, c.ep, 1, c.dp)} x {c.replicas}"
        )
    return f"agg {par(c.tp, c.ep, c.pp, c.dp)} x {c.replicas} replica(s)"


def objective_note(objective: OptimizationType, met: bool) -> str:
    """What `sla.optimizationType` chose, or that it could not choose (no config meets the SLA)."""
    rule = {
        OptimizationType.LATENCY: "the lowest end-to-end latency",
        OptimizationType.THROUGHPUT: "the highest tokens/s per GPU",
    }[objective]
    if met:
        return f"optimizationType {objective.value}: {rule} among the configs that meet the SLA"
    return (
        f"optimizationType {objective.value}: no config meets the SLA, so the closest one was "
        f"picked rather than {rule}"
    )


def load_note(workload: Workload, c: Candidate, total_gpus: int) -> str | None:
    """What the requested load needs (None without one); `c.served` is the share the search
    found it serves."""
    if workload.request_rate is not None:
        what = f"requestRate {workload.request_rate:g} req/s"
    elif workload.concurrency is not None:
        what = f"concurrency {workload.concurrency:g}"
    else:
        return None
    if c.mode == "disagg":
        note = f"{what}: {c.prefill_workers} prefill + {c.replicas} decode worker(s)"
        if c.served >= 1.0:
            return note
        return f"{note} within {total_gpus} GPUs: {c.served:.0%} of the load served"
    budget = total_gpus // (c.tp * c.pp)
    if workload.request_rate is not None:
        needed = math.ceil(workload.request_rate / (c.requests_per_s / c.replicas))
    else:
        needed = math.ceil((workload.concurrency or 0) / c.batch)
    if needed <= budget:
        return f"{what} needs {needed} replica(s)"
    return (
        f"{what} needs {needed} replicas but {total_gpus} GPUs allow {budget}: "
        f"{c.served:.0%} of the load served"
    )


def auto_note(
    picks: Mapping[str, Pick],
    ranked: Sequence[str],
    searched: Sequence[str],
    *,
    skipped_backends: bool,
) -> str:
    """Which backend `auto` picked (the first of `ranked`) and by how much it beat the runner-up;
    with `skipped_backends`, the backends of `searched` that could not fit the model."""
    won = picks[ranked[0]].chosen
    unfit = [b for b in searched if b not in picks]
    tail = f"; {', '.join(unfit)} cannot fit the model" if skipped_backends and unfit else ""
    if len(ranked) < 2:
        return f"backend auto: {ranked[0]} won (the only backend that fits{tail})"
    second = picks[ranked[1]].chosen
    if won.meets_sla and second.meets_sla:
        lead = (won.tokens_per_s_per_gpu / second.tokens_per_s_per_gpu - 1.0) * 100.0
        why = (
            f"{num(won.tokens_per_s_per_gpu)} vs {num(second.tokens_per_s_per_gpu)} tok/s/GPU "
            f"for {second.backend}, +{lead:.1f}%"
        )
    elif won.meets_sla:
        why = (
            f"{num(won.tokens_per_s_per_gpu)} tok/s/GPU within the SLA; {second.backend}'s "
            f"closest config misses it by {(second.worst_ratio - 1.0) * 100.0:.0f}%"
        )
    else:
        why = (
            f"closest to the SLA: worst target at {won.worst_ratio:.2f}x vs "
            f"{second.worst_ratio:.2f}x for {second.backend}"
        )
    return f"backend auto: {won.backend} won ({why}{tail})"


def result_message(
    c: Candidate,
    *,
    backend: str,
    gpu_id: str,
    total_gpus: int,
    sla: SLA,
    workload: Workload,
    notes: Sequence[str],
    verdict: str | None = None,
) -> str:
    """The one-line result: what was picked and its figures, the SLA verdict (`verdict` when the
    pick was judged otherwise than by its estimate: thorough's measured one), the load note, then
    `notes` in order."""
    per_worker = "decode " if c.mode == "disagg" else ""
    micro = f" ({c.pp} micro-batches of {c.batch // c.pp})" if c.pp > 1 else ""
    head = (
        f"Picked {backend} {shape(c)} ({c.gpus}/{total_gpus} {gpu_id} GPUs), batch "
        f"{c.batch}/{per_worker}worker{micro}, {num(c.tokens_per_s_per_gpu)} tok/s/GPU, "
        f"{num(c.tokens_per_s_per_user)} tok/s/user (roofline estimate)"
    )
    load = load_note(workload, c, total_gpus)
    verdict = verdict or sla_summary(c, sla, c.meets_sla)
    return "; ".join([head, verdict, *([load] if load else []), *notes])


def dep_note(
    chosen: Candidate, pool: Sequence[Candidate], objective: OptimizationType | None
) -> str:
    """Whether DEP (attention DP x wide EP) was picked and why, from the configs of the pick's
    backend (`pool`, with and without attention DP) ranked by the search's rule for
    `objective` (`best_ranked`)."""
    dep = [c for c in pool if c.dp > 1 or c.prefill_dp > 1]
    plain = [c for c in pool if c.dp == 1 and c.prefill_dp == 1]
    if not dep:
        return "DEP (attention DP x EP) considered: no DEP layout fits the weights and KV cache"
    best_dep = best_ranked(dep, objective)
    uses_dep = chosen.dp > 1 or chosen.prefill_dp > 1
    if uses_dep:
        other = best_ranked(plain, objective) if plain else None
        if other is None:
            return "DEP (attention DP x EP) picked: no layout without attention DP fits"
        if not other.meets_sla:
            return (
                f"DEP (attention DP x EP) picked: no layout without attention DP meets the SLA "
                f"(closest: {shape(other)}, worst target at {other.worst_ratio:.2f}x)"
            )
        ratio = chosen.tokens_per_s_per_gpu / other.tokens_per_s_per_gpu
        return (
            f"DEP (attention DP x EP) picked: {ratio:.2f}x the tok/s/GPU of the best config "
            f"without attention DP ({shape(other)}, {num(other.tokens_per_s_per_gpu)} tok/s/GPU)"
        )
    if not best_dep.meets_sla:
        return (
            f"DEP (attention DP x EP) considered, not picked: no DEP config meets the SLA "
            f"(closest: {shape(best_dep)}, worst target at {best_dep.worst_ratio:.2f}x)"
        )
    described = (
        f"the best DEP config ({shape(best_dep)}, {num(best_dep.tokens_per_s_per_gpu)} tok/s/GPU)"
    )
    if chosen.has_margin and not best_dep.has_margin:
        why = (
            "its estimator's error band is too wide to claim a margin"
            if best_dep.edge_ratio == math.inf
            else "not at the pessimistic edge of its estimator's error band"
        )
        return (
            f"DEP (attention DP x EP) considered, not picked: {described} meets the SLA only as "
            f"estimated ({why}); the pick meets it at the edge of its own"
        )
    ratio = best_dep.tokens_per_s_per_gpu / chosen.tokens_per_s_per_gpu
    return (
        f"DEP (attention DP x EP) considered, not picked: {described} ranks below the pick "
        f"({ratio:.2f}x its tok/s/GPU)"
    )
