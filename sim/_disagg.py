"""Disaggregated candidates: prefill workers and decode workers on separate GPUs, rate-matched.

Owns: the prefill engine figures per TP (batch-1 TTFT at `isl`, as Dynamo's profiler measures
prefill), the decode engine figures per (TP, batch) (a pure decode step at the mean context
`isl + osl/2`, no prefill mixed in), and the (prefill TP, decode TP, decode batch) combinations with
their worker counts. Rate matching is AIConfigurator's: a unit of `p` prefill and `d` decode workers
serves `min(p x prefill seq/s x 0.9, d x decode seq/s x 0.92)`; for each combination the unit with
the best throughput per GPU (ties: fewer GPUs) among `MAX_WORKERS` x `MAX_WORKERS` is kept, then
replicated over the GPU budget, or as often as the requested load needs (never beyond the budget).
Without a load to match, "per GPU" is per GPU of the budget: a unit whose copies leave GPUs idle
serves less per budget GPU than one that tiles the budget (as `sim._search.rank_key` ranks, and
AIConfigurator).
DEP workers (`dps` > 1, `sim._dep`): a prefill worker serves one prompt per rank at once, a
decode worker's batch sizes are `dp` x the grid per rank.
TTFT = the prefill engine's latency times `PREFILL_QUEUE_FACTOR` (queueing in front of the
prefill workers at the rate-matched load) plus the KV transfer of the prompt from the prefill to
the decode worker (`kv_transfer_ms`). The prefill latency and the decode step carry AIConfigurator
0.12's disaggregated latency corrections (`PREFILL_LATENCY_CORRECTION` 1.1,
`DECODE_LATENCY_CORRECTION` 1.08: what its search and `cli estimate` apply to a disaggregated
worker, for its observed gap to real systems), in the latencies and in the rates matched from
them; the planner's profile curves (`sim._planner`) stay the engine's own figures.

Queueing: AIConfigurator 0.12 multiplies disaggregated prefill TTFT by 1.8 in its search and
picking (`_AUTOSCALE_TTFT_CORRECTION_FACTOR`, aiconfigurator 0.12.0 sdk/picking.py:39 and
sdk/sweep.py:75, applied in sdk/inference_session.py:280 and :767). Its derivation: N batches of
`lc` requests arriving per prefill worker wait `(lc (lc + 1)/2 + lc (N - 1)) / lc / N` prefills on
average, `lc/20 + 0.95` for N = 10, about 1.8 for lc = 15..20. We use the same factor, so that a
pick AIC checks sees the same TTFT. KV transfer: the prompt's KV (`isl` tokens, each prefill GPU
sends its shard in parallel) over NVLink at `LINK_EFF` of the one-way rate when a prefill and a
decode worker fit in one node, else over the GPU's scale-out NIC (`kv_transfer_links` in
sim/data/gpus.json), plus a fixed latency. AIC does not model the transfer; it is a few ms for
dense models over NVLink and tens of ms for long prompts over the network.

Failure semantics: pure arithmetic; combinations that do not fit (weights + reserve + KV) or that
do not fit the budget are dropped, never NaN. An empty list means no disaggregated config fits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from dgdr.domain.spec import SLA, Workload

from ._catalog import Gpu, ModelArch, nvlink_domain, scaleout_links
from ._dep import DepPlan, dep_plan, dep_prefill_all_ranks_ms, dep_step_ms
from ._estimate import (
    LINK_EFF,
    _Plan,
    _plan,
    decode_step_ms,
    prefill_ms,
)
from ._margin import EdgeFactors, ErrorBand, edge_factors
from ._roofline import BATCH_GRID, kv_free_bytes, sequences_fitting
from ._search import (
    Candidate,
    Evaluated,
    candidates_from_columns,
    edge_ratios,
    reported_columns,
    sla_ratio,
    worth_ranking,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

MAX_WORKERS = 8
PREFILL_EFFICIENCY = 0.9  # AIConfigurator's rate-matching derating for prefill workers
DECODE_EFFICIENCY = 0.92  # and for decode workers
PREFILL_QUEUE_FACTOR = 1.8  # AIConfigurator 0.12's _AUTOSCALE_TTFT_CORRECTION_FACTOR (docstring)
# AIConfigurator 0.12's per-phase latency corrections of disaggregated workers (cli/api.py
# DEFAULT_PREFILL/DECODE_LATENCY_CORRECTION_SCALE, Task's prefill/decode_latency_correction): its
# search and `cli estimate` scale the prefill engine's latency and the decode step by these
PREFILL_LATENCY_CORRECTION = 1.1
DECODE_LATENCY_CORRECTION = 1.08
KV_TRANSFER_LATENCY_MS = 0.05  # per request: NIXL handshake and descriptor exchange, first order


def _worker_gpus(plan: _Plan | DepPlan) -> int:
    return plan.tp * plan.pp if isinstance(plan, _Plan) else plan.width


def kv_transfer_ms(prefill: _Plan | DepPlan, decode: _Plan | DepPlan, isl: float) -> float:
    """Time to move one prompt's KV from a prefill worker to a decode worker (see the docstring;
    a DEP prefill rank holds its prompt's whole KV on its one GPU)."""
    gpu = prefill.gpu
    if _worker_gpus(prefill) + _worker_gpus(decode) <= nvlink_domain(gpu):
        bytes_per_s = gpu.interconnect_gbps / 2.0 * 1e9 * LINK_EFF
    else:
        bytes_per_s = scaleout_links(gpu.id)[0] * 1e9 * LINK_EFF
    return KV_TRANSFER_LATENCY_MS + prefill.kv_bytes_per_token * isl / bytes_per_s * 1e3


def disagg_candidates(
    model: ModelArch,
    gpu: Gpu,
    backend: str,
    tps: list[int],
    sla: SLA,
    workload: Workload,
    total_gpus: int,
    vram_mb: float | None = None,
    eps: list[int] | None = None,
    dps: list[int] | None = None,
    band: ErrorBand | None = None,
    dep_band: ErrorBand | None = None,
    *,
    default_ranking: bool = False,
) -> list[Candidate]:
    """Every fitting disaggregated combination, best worker ratio each (see the module docstring);
    with `band` (the estimator's error band for these workers, `sim._margin`; `dep_band` for DEP
    workers, `band` when None) each candidate's `edge_ratio`. `default_ranking`: the caller ranks
    them only by the default rule and Pareto fronts (no objective, no load to match, no planner
    or thorough shortlist), so only those `sim._search.worth_ranking` keeps are made, in an
    `Evaluated` list counting them all (a search makes thousands, most of them dominated)."""
    isl, osl = workload.isl, workload.osl
    if total_gpus < 2 or not tps:
        return []
    eps = eps or [1] * len(tps)
    dps = dps or [1] * len(tps)
    plans, decoders = _layouts(model, gpu, backend, tps, eps, dps)
    ranks = np.asarray(dps, dtype=np.float64)
    prefill_fits, max_batch = _kv_capacity(plans, gpu, vram_mb, ranks, isl, osl)
    all_batches = np.asarray(BATCH_GRID, dtype=np.float64)[None, :] * ranks[:, None]
    # Only the layouts that fit are combined: prefill rows `pi`, decode rows `di`.
    pi = np.flatnonzero(prefill_fits)
    di = np.flatnonzero(all_batches[:, 0] <= max_batch)
    if pi.size == 0 or di.size == 0:
        return []
    ttft, first_token, batches, step = _engine_figures(
        plans, decoders, pi, di, all_batches, isl, osl
    )
    decode_fits = batches <= max_batch[di, None]

    tp = np.asarray(tps, dtype=np.int64)
    p_tp, d_tp = tp[pi], tp[di]
    load_match = workload.request_rate is not None or workload.concurrency is not None
    workers, unit_rps, unit_gpus, best, feasible = _rate_matched(
        ranks[pi] * 1e3 / ttft,
        batches / (osl * step / 1e3),
        p_tp,
        d_tp,
        decode_fits,
        total_gpus,
        per_budget=not load_match,
    )
    e2e_of = first_token[:, :, None] + (osl - 1) * step[None, :, :]
    ratios = np.broadcast_to(
        sla_ratio(sla, first_token[:, :, None], step[None, :, :], e2e_of), e2e_of.shape
    )  # (P, D, B)
    dep = np.asarray(dps) > 1
    edge = (
        None if band is None else _edges(sla, band, dep_band, dep, pi, di, first_token, step, osl)
    )
    # Every feasible (prefill layout p, decode layout d, batch b) with its best unit (i, j),
    # as flat arrays; Python objects are made once, at the end.
    p, d, b = np.nonzero(feasible)
    i, j = np.divmod(best[p, d, b], MAX_WORKERS)
    n_p, n_d = workers[i], workers[j]
    rps = unit_rps[p, d, b, i, j]
    gpus = unit_gpus[p, d, i, j]
    batch = batches[d, b].astype(np.int64)
    units = _units(workload, rps, n_d * batch, total_gpus // gpus)
    itl, ratio = step[d, b], ratios[p, d, b]
    dp_of, ep_of = np.asarray(dps), np.asarray(eps)
    flat: dict[str, NDArray[Any]] = {
        "tp": d_tp[d],
        "batch": batch,
        "replicas": n_d * units,
        "ttft_ms": first_token[p, d],
        "itl_ms": itl,
        "e2e_ms": e2e_of[p, d, b],
        "tokens_per_s_per_gpu": rps * units * osl / (gpus * units),
        "tokens_per_s_per_user": 1e3 / itl,
        "requests_per_s": rps * units,
        "meets_sla": ratio <= 1.0,
        "worst_ratio": ratio,
        "prefill_tp": p_tp[p],
        "prefill_workers": n_p * units,
        "served": _served(workload, rps * units, n_d * batch * units),
        "ep": ep_of[di[d]],
        "prefill_ep": ep_of[pi[p]],
        "dp": dp_of[di[d]],
        "prefill_dp": dp_of[pi[p]],
    }
    if edge is not None:
        flat["edge_ratio"] = edge[p, d, b]
    budget = 0 if load_match else total_gpus
    return _made(flat, backend, load_match, budget, default_ranking=default_ranking)


def _edges(
    sla: SLA,
    band: ErrorBand,
    dep_band: ErrorBand | None,
    dep: NDArray[np.bool_],
    pi: IntArray,
    di: IntArray,
    first_token: FloatArray,
    step: FloatArray,
    osl: int,
) -> FloatArray:
    """The (P, D, B) SLA ratios at the error band's pessimistic edge: TTFT at the prefill
    worker's band, ITL at the decode worker's (`dep_band`, else `band`, for DEP workers: `dep`
    per layout)."""
    prefill = edge_factors(band, dep_band, dep[pi])
    decode = edge_factors(band, dep_band, dep[di])
    factors = EdgeFactors(
        prefill.ttft[:, None, None],
        decode.itl[None, :, None],
        prefill.unmeasured[:, None, None] | decode.unmeasured[None, :, None],
    )
    ratios = edge_ratios(sla, first_token[:, :, None], step[None, :, :], osl, factors)
    return np.asarray(ratios, dtype=np.float64)


def _made(
    flat: dict[str, NDArray[Any]],
    backend: str,
    load_match: bool,
    budget: int,
    *,
    default_ranking: bool,
) -> list[Candidate]:
    """The candidates of `flat` (a field's value per candidate), those `_worth_ranking` keeps
    under the default ranking (in an `Evaluated` list that counts them all)."""
    evaluated = flat["tp"].size
    if default_ranking and evaluated:
        keep = _worth_ranking(flat, budget)
        flat = {k: v[keep] for k, v in flat.items()}
    n = flat["tp"].size
    made = candidates_from_columns(
        {
            **{k: v.tolist() for k, v in flat.items()},
            "backend": [backend] * n,
            "mode": ["disagg"] * n,
            "load_match": [load_match] * n,
            "pp": [1] * n,
            "edge_ratio": flat["edge_ratio"].tolist() if "edge_ratio" in flat else [None] * n,
            "budget_gpus": [budget] * n,
        }
    )
    return Evaluated(made, evaluated) if default_ranking else made


def _worth_ranking(flat: dict[str, NDArray[Any]], budget: int) -> NDArray[np.bool_]:
    """`sim._search.worth_ranking` of the flat candidates, with the figures as reported."""
    user, value, _ = reported_columns({**flat, "pp": 1, "budget_gpus": budget})
    return worth_ranking(
        user,
        value,
        flat["worst_ratio"],
        _groups(flat["worst_ratio"], flat.get("edge_ratio"), flat["dp"], flat["prefill_dp"]),
    )


def _groups(
    ratio: FloatArray, edge: FloatArray | None, decode_dp: IntArray, prefill_dp: IntArray
) -> NDArray[np.int64]:
    """The pool filters a candidate passes, as one number (`sim._search.worth_ranking`): SLA met,
    met with margin (`Candidate.has_margin`), DEP (attention DP on either side)."""
    meets = ratio <= 1.0
    margin = meets & (True if edge is None else edge <= 1.0)
    dep = (decode_dp > 1) | (prefill_dp > 1)
    return (4 * meets + 2 * margin + dep).astype(np.int64)


def _kv_capacity(
    plans: list[_Plan | DepPlan],
    gpu: Gpu,
    vram_mb: float | None,
    ranks: FloatArray,
    isl: int,
    osl: int,
) -> tuple[NDArray[np.bool_], FloatArray]:
    """Per layout: whether a prefill worker holds one prompt's KV, and how many sequences of
    `isl + osl` tokens a decode worker holds (`kv_free_bytes` per rank, `sequences_fitting`)."""
    free = np.array([kv_free_bytes(p, gpu, vram_mb) for p in plans])
    kv_token = np.array([p.kv_bytes_per_token for p in plans])
    per_rank = sequences_fitting(free, kv_token * (isl + osl), ranks)
    return free >= kv_token * isl, per_rank * ranks


def _rate_matched(
    prefill_rps: FloatArray,
    decode_rps: FloatArray,
    p_tp: IntArray,
    d_tp: IntArray,
    decode_fits: NDArray[np.bool_],
    total_gpus: int,
    *,
    per_budget: bool,
) -> tuple[IntArray, FloatArray, IntArray, IntArray, NDArray[np.bool_]]:
    """For every (prefill layout, decode layout, batch): the best unit of prefill and decode
    workers within the budget by requests/s per GPU (ties: fewer GPUs); `per_budget`: per GPU of
    the budget, the unit copied as often as it fits (the GPUs its copies leave idle count
    against it, as in `sim._search.rank_key`). Returns (worker counts,
    unit rps over (P, D, B, Wp, Wd), unit GPUs over (P, D, Wp, Wd), the best (Wp, Wd) flattened
    (P, D, B), and which (P, D, B) have any unit)."""
    workers = np.arange(1, MAX_WORKERS + 1, dtype=np.int64)
    # Axes: prefill layout (P), decode layout (D), batch (B), prefill workers (Wp), decode
    # workers (Wd).
    p_rps = prefill_rps[:, None, None, None, None]
    d_rps = decode_rps[None, :, :, None, None]
    pw = workers[None, None, None, :, None]
    dw = workers[None, None, None, None, :]
    unit_rps = np.minimum(p_rps * pw * PREFILL_EFFICIENCY, d_rps * dw * DECODE_EFFICIENCY)
    # What depends on the unit's GPUs only is worked out over (P, D, Wp, Wd), then broadcast.
    unit_gpus = p_tp[:, None, None, None] * workers[:, None] + d_tp[None, :, None, None] * workers
    in_budget = (unit_gpus <= total_gpus)[:, :, None]
    ok = decode_fits[None, :, :, None, None] & in_budget & np.isfinite(unit_rps)
    if per_budget:
        per_gpu = unit_rps * (total_gpus // unit_gpus)[:, :, None] / total_gpus
    else:
        per_gpu = unit_rps / unit_gpus[:, :, None]
    score = np.where(ok, per_gpu - (1e-12 * unit_gpus)[:, :, None], -np.inf)
    flat = score.reshape(p_tp.size, d_tp.size, decode_rps.shape[1], -1)
    best = flat.argmax(axis=-1)  # (P, D, B): the best (Wp, Wd) unit, flattened
    feasible = flat.max(axis=-1) > -np.inf
    return workers, unit_rps, unit_gpus, best, feasible


def _layouts(
    model: ModelArch, gpu: Gpu, backend: str, tps: list[int], eps: list[int], dps: list[int]
) -> tuple[list[_Plan | DepPlan], list[_Plan | DepPlan]]:
    """Each layout's plan as a prefill worker, and as a decode worker (the same but for DEP
    layouts, whose prefill and decode workers are priced by factors of their own, `sim._dep`)."""
    plans: list[_Plan | DepPlan] = [
        _plan(model, gpu, backend, t, 1, e)
        if d == 1
        else dep_plan(model, gpu, backend, t, prefill_worker=True)
        for t, e, d in zip(tps, eps, dps, strict=True)
    ]
    decoders: list[_Plan | DepPlan] = [
        p if isinstance(p, _Plan) else dep_plan(model, gpu, backend, p.width, decode_worker=True)
        for p in plans
    ]
    return plans, decoders


def _engine_figures(
    plans: list[_Plan | DepPlan],
    decoders: list[_Plan | DepPlan],
    pi: IntArray,
    di: IntArray,
    all_batches: FloatArray,
    isl: int,
    osl: int,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(prefill engine latency (P,), first-token time (P, D): queueing and the KV transfer,
    decode batch sizes (D, B), decode step (D, B)) of prefill layouts `pi` (`plans`) and decode
    layouts `di` (`decoders`: the same layouts, DEP ones priced as decode workers)."""
    ttft = np.array([prefill_engine_ms(plans[k], float(isl)) for k in pi])  # (P,)
    transfer = np.array(
        [[kv_transfer_ms(plans[p], plans[d], float(isl)) for d in di] for p in pi]
    )  # (P, D)
    first_token = PREFILL_QUEUE_FACTOR * ttft[:, None] + transfer  # (P, D)
    batches = all_batches[di]  # (D, B)
    ctx = float(isl) + osl / 2.0
    step = np.stack([decode_worker_step_ms(decoders[k], batches[i], ctx) for i, k in enumerate(di)])
    return ttft, first_token, batches, step


def prefill_engine_ms(plan: _Plan | DepPlan, isl: float) -> float:
    """A prefill worker's engine latency for one prompt of `isl` tokens, with AIC's correction
    (a DEP prefill worker prefills one prompt per rank at once, `sim._dep`)."""
    if isinstance(plan, _Plan):
        return PREFILL_LATENCY_CORRECTION * prefill_ms(plan, 1.0, isl)
    return PREFILL_LATENCY_CORRECTION * dep_prefill_all_ranks_ms(plan, isl)


def first_token_ms(prefill: _Plan | DepPlan, decode: _Plan | DepPlan, isl: float) -> float:
    """A disaggregated config's TTFT as the search prices it: the prefill engine's latency x
    the queueing factor, plus the KV transfer to the decode worker (module docstring)."""
    return PREFILL_QUEUE_FACTOR * prefill_engine_ms(prefill, isl) + kv_transfer_ms(
        prefill, decode, isl
    )


def decode_worker_step_ms(plan: _Plan | DepPlan, batch: FloatArray, context: float) -> FloatArray:
    """A decode worker's step at `batch` sequences (broadcasts) and the mean `context`, with
    AIC's decode correction."""
    if isinstance(plan, _Plan):
        return DECODE_LATENCY_CORRECTION * decode_step_ms(plan, batch, context)
    return DECODE_LATENCY_CORRECTION * dep_step_ms(plan, batch, context)


def _served(workload: Workload, rps: FloatArray, slots: IntArray) -> FloatArray:
    """The share of the requested load (rate or concurrency) `rps` and `slots` serve; 1 without."""
    if workload.request_rate is not None:
        return np.minimum(1.0, rps / workload.request_rate)
    if workload.concurrency is not None:
        return np.minimum(1.0, slots / workload.concurrency)
    return np.ones_like(rps)


def _units(
    workload: Workload, unit_rps: FloatArray, unit_slots: IntArray, budget: IntArray
) -> IntArray:
    """Copies of each unit: as many as the requested load needs, else the budget allows (at
    least 1, never beyond the budget)."""
    if workload.request_rate is not None:
        needed = np.ceil(workload.request_rate / unit_rps)
    elif workload.concurrency is not None:
        needed = np.ceil(workload.concurrency / unit_slots)
    else:
        needed = budget
    return np.maximum(1, np.minimum(needed, budget)).astype(np.int64)
