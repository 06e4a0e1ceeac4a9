"""SLA check, replica sizing, config selection and the Pareto front over a roofline grid.

Owns: turning a `Grid` into candidates (one per fitting (TP, batch) point, with replicas sized to
the GPU budget or to the requested load), checking them against the SLA, picking one, and computing
the non-dominated set (maximise the throughput a config is ranked by and tokens/s per user).
A search ranks thousands of (mostly disaggregated) candidates: they are made from numpy columns
(`candidates_from_columns`, with their rounded figures), the best is found by `best_ranked` and
the front by a numpy sort, each equal to what the plain Python rule gives.

Picking: for each (TP, EP) the best SLA-meeting batch by `rank_key`, then `rank_key` among those
and the disaggregated candidates: the highest throughput per GPU of the budget (default mode: GPUs
a config leaves idle count against it, as AIConfigurator ranks; published as
`tokensPerSecondPerBudgetGpu`), or, when a load is given
(load-match mode), the config that serves it with the fewest GPUs. `sla.optimizationType` steers
the pick among the SLA-meeting configs (after the share of a given load served): `latency` takes
the lowest end-to-end latency (TTFT + (osl - 1) x ITL), `throughput` the highest throughput per
GPU, also in load-match mode (replicas still sized to the load). If nothing meets the SLA, the
config with the smallest worst-case ratio actual/target is picked and `Pick.met` is False,
whatever the objective. `rank_key` is that rule as a sort key, so picks from different backends
compare the same way.
Replicas: `totalGpus // TP`, or, when `requestRate`/`concurrency` is given, the fewest that serve
it, never more than the budget allows.

Failure semantics: `search` raises `ProfilingError("SelectingConfig", ...)` with the numbers when no
TP candidate can hold the weights plus one sequence's KV cache. Every float it returns is finite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dgdr.domain.errors import ProfilingError
from dgdr.domain.spec import SLA, OptimizationType, Workload

from ._catalog import Gpu, ModelArch
from ._estimate import backend_profile
from ._margin import EdgeFactors, ErrorBand, edge_factors
from ._roofline import HBM_UTILISATION, Grid, usable_bytes


@dataclass(frozen=True)
class Candidate:
    backend: str
    tp: int
    batch: int
    replicas: int
    ttft_ms: float
    itl_ms: float
    e2e_ms: float
    tokens_per_s_per_gpu: float
    tokens_per_s_per_user: float
    requests_per_s: float  # all replicas together
    meets_sla: bool
    worst_ratio: float  # max over SLA targets of actual / target
    # Disaggregated configs: tp/batch/replicas describe the decode workers, these the prefill ones.
    mode: str = "agg"
    prefill_tp: int = 0
    prefill_workers: int = 0
    # Load-match picking (requestRate or concurrency given): the share of that load served.
    load_match: bool = False
    served: float = 1.0
    ep: int = 1  # expert-parallel size of the (decode) worker (MoE)
    prefill_ep: int = 1
    # Pipeline stages of an aggregated worker (multinode only); `batch` is the worker's, `pp`
    # micro-batches of `batch / pp` in flight (`sim._estimate.micro_batches`).
    pp: int = 1
    # Attention data-parallel ranks of the (decode) / prefill worker: > 1 is a DEP worker
    # (`sim._dep`: `tp` GPUs, attention TP tp/dp, experts spread `ep` ways); `batch` is the
    # worker's, `batch / dp` per rank.
    dp: int = 1
    prefill_dp: int = 1
    # Worst actual/target ratio at the estimator's pessimistic edge (`sim._margin`); None: no band.
    edge_ratio: float | None = None
    # The GPU budget the config is judged against when no load is to be matched (`totalGpus`):
    # GPUs it leaves idle count against it, as AIConfigurator ranks. 0: judged per GPU it uses
    # (load-match sizes replicas to the load; an autoscale start is scaled by the Planner).
    budget_gpus: int = 0

    @property
    def tokens_per_s_per_budget_gpu(self) -> float:
        """What the config is ranked by: tokens/s per GPU of the budget (idle GPUs count), or
        per GPU used when it is not judged against a budget (`budget_gpus` 0)."""
        return _per_budget_gpu(self.tokens_per_s_per_gpu, self.gpus, self.budget_gpus)

    @property
    def reported(self) -> tuple[float, float, int]:
        """(tokens/s per user, the throughput ranked by, GPUs) with the figures rounded as
        `to_json` reports them: what `rank_key` and `pareto_front` compare, worked out once per
        candidate (the search ranks thousands of disaggregated ones several times; kept in the
        instance's dict, outside the dataclass fields, so equality and hashing ignore it)."""
        figures: tuple[float, float, int] | None = self.__dict__.get("_reported")
        if figures is None:
            gpus = self.gpus
            figures = (
                _r(self.tokens_per_s_per_user),
                _r(_per_budget_gpu(self.tokens_per_s_per_gpu, gpus, self.budget_gpus)),
                gpus,
            )
            self.__dict__["_reported"] = figures
        return figures

    @property
    def has_margin(self) -> bool:
        """Meets the SLA even at the estimator's pessimistic edge (no band: as estimated)."""
        return self.meets_sla and (self.edge_ratio is None or self.edge_ratio <= 1.0)

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.replicas + self.prefill_tp * self.prefill_workers

    def to_json(self, selected: bool) -> dict[str, Any]:
        if self.mode == "disagg":
            shape: dict[str, Any] = {
                "prefillTensorParallelSize": self.prefill_tp,
                "prefillExpertParallelSize": self.prefill_ep,
                "prefillWorkers": self.prefill_workers,
                "decodeTensorParallelSize": self.tp,
                "decodeExpertParallelSize": self.ep,
                "decodeWorkers": self.replicas,
            }
            if self.prefill_dp > 1:
                shape["prefillAttentionDataParallelSize"] = self.prefill_dp
            if self.dp > 1:
                shape["decodeAttentionDataParallelSize"] = self.dp
        else:
            shape = {
                "tensorParallelSize": self.tp,
                "expertParallelSize": self.ep,
                "pipelineParallelSize": self.pp,
                "gpusPerReplica": self.tp * self.pp,
                "replicas": self.replicas,
            }
            if self.dp > 1:
                shape["attentionDataParallelSize"] = self.dp
        return {
            "mode": self.mode,
            "backend": self.backend,
            **shape,
            "totalGpus": self.gpus,
            "batchSize": self.batch,
            "ttftMs": _r(self.ttft_ms),
            "itlMs": _r(self.itl_ms),
            "e2eLatencyMs": _r(self.e2e_ms),
            "tokensPerSecondPerGpu": _r(self.tokens_per_s_per_gpu),
            "tokensPerSecondPerUser": _r(self.tokens_per_s_per_user),
            **(
                {
                    "budgetGpus": self.budget_gpus,
                    "tokensPerSecondPerBudgetGpu": _r(self.tokens_per_s_per_budget_gpu),
                }
                if self.budget_gpus
                else {}
            ),
            "requestsPerSecond": _r(self.requests_per_s),
            "meetsSla": self.meets_sla,
            "selected": selected,
        }


def candidates_from_columns(columns: Mapping[str, list[Any]]) -> list[Candidate]:
    """One `Candidate` per row of `columns` (field name -> one value per candidate; every field of
    `Candidate`, in any order): equal to `Candidate(**row)`, made without the frozen dataclass's
    per-field assignments, and with `Candidate.reported` worked out in numpy (a search makes
    thousands of disaggregated candidates). A name that is not a field, or a field left out, is
    a ValueError naming them."""
    names = tuple(columns)
    if set(names) != _CANDIDATE_FIELDS:
        raise ValueError(
            f"candidates_from_columns: fields {sorted(set(names) ^ _CANDIDATE_FIELDS)} unknown "
            "or missing (give each field of Candidate once)"
        )

    user, value, gpus = reported_columns(columns)
    reported = zip(user.tolist(), value.tolist(), gpus.tolist(), strict=True)
    new = object.__new__
    made: list[Candidate] = []
    for row, figures in zip(zip(*columns.values(), strict=True), reported, strict=True):
        c = new(Candidate)
        c.__dict__.update(zip(names, row, strict=True))
        c.__dict__["_reported"] = figures
        made.append(c)
    return made


def reported_columns(
    columns: Mapping[str, Any],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """`Candidate.reported` of many candidates at once: (tokens/s per user, the throughput ranked
    by, GPUs), the first two rounded as `to_json` reports them, from `columns` (field name -> a
    value per candidate, or one value for all: `tp`, `pp`, `replicas`, `prefill_tp`,
    `prefill_workers`, `budget_gpus`, `tokens_per_s_per_gpu`, `tokens_per_s_per_user`)."""

    def ints(name: str) -> NDArray[np.int64]:
        return np.asarray(columns[name], dtype=np.int64)

    gpus = ints("tp") * ints("pp") * ints("replicas") + ints("prefill_tp") * ints("prefill_workers")
    per_gpu = np.asarray(columns["tokens_per_s_per_gpu"], dtype=np.float64)
    budget = ints("budget_gpus")
    value = np.where(budget > 0, per_gpu * gpus / np.maximum(budget, 1), per_gpu)
    user = np.asarray(columns["tokens_per_s_per_user"], dtype=np.float64)
    return round_like_python(user, 3), round_like_python(value, 3), gpus


def round_like_python(x: NDArray[np.float64], digits: int) -> NDArray[np.float64]:
    """`[round(v, digits) for v in x]` as an array: numpy's `round` rounds `v * 10**digits`,
    whose own rounding can tip a value that sits (within a few ulps) on a half the other way
    than Python's correctly rounded `round`; those few, and any too large to scale exactly, are
    rounded by Python."""
    scale = 10.0**digits
    scaled = x * scale
    out = np.rint(scaled) / scale
    half_off = np.abs(np.abs(scaled - np.trunc(scaled)) - 0.5)
    suspect = (half_off <= 8 * np.spacing(np.abs(scaled)) + 1e-9) | ~(np.abs(scaled) < 2.0**52)
    for k in np.flatnonzero(suspect).tolist():
        out[k] = round(float(x[k]), digits)
    return out


_CANDIDATE_FIELDS = frozenset(f.name for f in fields(Candidate))


class Evaluated(list[Candidate]):
    """Candidates kept out of `evaluated` made (`worth_ranking` left the others out): what counts
    of configs evaluated report (`evaluated_count`)."""

    def __init__(self, kept: list[Candidate], evaluated: int) -> None:
        super().__init__(kept)
        self.evaluated = evaluated


def evaluated_count(candidates: Sequence[Candidate]) -> int:
    """How many configs `candidates` stands for (an `Evaluated` list may hold fewer)."""
    return candidates.evaluated if isinstance(candidates, Evaluated) else len(candidates)


def worth_ranking(
    user: NDArray[np.float64],
    value: NDArray[np.float64],
    worst: NDArray[np.float64],
    group: NDArray[np.int64],
) -> NDArray[np.bool_]:
    """The candidates a default ranking could put first or a Pareto front could hold, whatever
    subset of whole `group`s it looks at; left out: those whose (tokens/s per user, throughput
    ranked by), as reported (rounded like `to_json`), another of their group strictly dominates.
    A group is
    a set of candidates every pool filters alike (SLA met, margin, DEP: `_pick`, `compare_modes`
    and `dep_note` filter by these), so the dominating one is in every pool the other is in.
    Why that is safe: the default `rank_key` orders a tier by throughput then tokens/s per user,
    and `pareto_front` keeps a config only above the throughput of every faster-per-user one;
    ties on both figures are all kept (the later keys and pool order decide among them). Among
    SLA misses (`worst` > 1) the ranking starts with the worst ratio (rounded to 3 decimals): the
    misses at their group's smallest ratio are kept too. Not for a ranking with an objective or
    a load to match (their keys start elsewhere)."""
    n = user.size
    # Dense ranks: exact equality of the reported figures, and integers to offset by group.
    user_rank = np.unique(user, return_inverse=True)[1].astype(np.int64)
    value_rank = np.unique(value, return_inverse=True)[1].astype(np.int64)
    order = np.lexsort((-value_rank, -user_rank, group))  # per group: fastest per user first
    g, u, v = group[order], user_rank[order], value_rank[order]
    first = np.ones(n, dtype=bool)  # the first of each (group, equal user) block
    first[1:] = (g[1:] != g[:-1]) | (u[1:] != u[:-1])
    block = np.cumsum(first) - 1
    block_max = v[first]  # sorted by throughput within a block: its first is its max
    # The highest throughput of the faster blocks of the same group: offset by group so that a
    # running maximum never reaches back into an earlier group (those come out negative).
    offset = g[first] * (n + 1)
    running = np.maximum.accumulate(offset + block_max)
    before = np.concatenate(([-1], running[:-1])) - offset
    dominated = np.empty(n, dtype=bool)
    dominated[order] = (v < block_max[block]) | (before[block] >= block_max[block])
    misses = worst > 1.0
    if misses.any():
        rounded = round_like_python(worst, 3)
        for k in np.unique(group[misses]).tolist():
            idx = np.flatnonzero(misses & (group == k))
            dominated[idx[rounded[idx] == rounded[idx].min()]] = False
    return ~dominated


def _per_budget_gpu(per_gpu_used: float, gpus: int, budget_gpus: int) -> float:
    return per_gpu_used * gpus / budget_gpus if budget_gpus else per_gpu_used


def sla_ratio(sla: SLA, ttft: Any, itl: Any, e2e: Any) -> Any:
    """The worst actual/target ratio over the SLA's targets (`e2eLatency` alone when set); <= 1
    meets it. Scalars or numpy arrays alike."""
    if sla.e2e_latency is not None:
        return e2e / sla.e2e_latency
    return np.maximum(ttft / (sla.ttft or np.inf), itl / (sla.itl or np.inf))


def rank_key(c: Candidate, objective: OptimizationType | None = None) -> tuple[float, ...]:
    """The picking rule as a sort key (smallest wins). "Throughput" below is tokens/s per GPU of
    the budget when no load is to be matched (idle GPUs count against a config, as
    AIConfigurator ranks: `Candidate.tokens_per_s_per_budget_gpu`), per GPU used otherwise.
    SLA-meeting configs first: with a load (load-match, as Dynamo's) the one serving most of it
    with the fewest GPUs, then the highest throughput; without (default) the highest throughput,
    then fewer GPUs, then smaller TP, then (disaggregated) the prefill engine with the fewest
    GPU-ms per prompt (the most headroom: a DEP prefill engine serves one prompt per rank at
    once). `objective` (`sla.optimizationType`) replaces what follows the load served: `latency`
    the lowest end-to-end latency, then the highest throughput; `throughput` the highest
    throughput, then fewer GPUs. Otherwise the smallest worst-case ratio actual/target. Figures
    are compared as reported (rounded like `to_json`), and equal throughput goes to the faster
    per-user config, so the pick is on the published Pareto front whenever it meets the SLA."""
    user, value, gpus = c.reported
    user, value = -user, -value
    served = -round(c.served, 6) if c.load_match else 0.0
    tier = 0.0 if c.has_margin else 0.5  # SLA-meeting: with margin (`edge_ratio`) first
    if c.meets_sla and objective is OptimizationType.LATENCY:
        return (tier, served, _r(c.e2e_ms), value, float(gpus))
    if c.meets_sla and objective is OptimizationType.THROUGHPUT:
        return (tier, served, value, user, float(gpus))
    if c.meets_sla and c.load_match:
        return (tier, served, float(gpus), value, user)
    if c.meets_sla:
        return (tier, value, user, float(gpus), float(c.tp), _prefill_cost(c))
    # A miss 0.1% smaller is not worth half the throughput: compare misses to 3 decimals.
    return (1.0, round(c.worst_ratio, 3), value, user, float(c.tp))


def best_ranked(pool: Sequence[Candidate], objective: OptimizationType | None = None) -> Candidate:
    """`min(pool, key=rank_key)` (the first of equal keys), with the full key worked out only for
    the candidates that tie on what it compares first: the SLA tier, and in the default ranking
    (no objective, no load to match) the throughput as reported. An empty pool is a ValueError."""
    if not pool:
        raise ValueError("best_ranked: no candidate to rank")
    tiers = np.fromiter(
        (0.0 if c.has_margin else 0.5 if c.meets_sla else 1.0 for c in pool),
        dtype=np.float64,
        count=len(pool),
    )
    finalists = np.flatnonzero(tiers == tiers.min()).tolist()
    default = objective is None and not any(pool[k].load_match for k in finalists)
    if tiers.min() < 1.0 and default:  # the key starts (tier, -throughput as reported, ...)
        value = np.array([pool[k].reported[1] for k in finalists])
        finalists = [k for k, top in zip(finalists, value == value.max(), strict=True) if top]
    return min((pool[k] for k in finalists), key=partial(rank_key, objective=objective))


def _prefill_cost(c: Candidate) -> float:
    """GPU-ms per prompt of a disaggregated config's prefill engine (0 for agg): equal
    throughput goes to the prefill engine with more headroom."""
    if c.mode != "disagg":
        return 0.0
    return _r(c.ttft_ms * c.prefill_tp / c.prefill_dp)


def _replicas(workload: Workload, rps_replica: Any, batch: Any, budget: Any) -> tuple[Any, Any]:
    """(replicas, share of the load served) per aggregated grid point: enough replicas for the
    workload's request rate or concurrency (1 to `budget`), or the whole budget without one."""
    if workload.request_rate is not None:
        replicas = np.ceil(workload.request_rate / rps_replica)
    elif workload.concurrency is not None:
        replicas = np.ceil(workload.concurrency / batch)
    else:
        replicas = budget.astype(np.float64)
    replicas = np.clip(replicas, 1, budget).astype(np.int64)
    if workload.request_rate is not None:
        served = np.minimum(1.0, rps_replica * replicas / workload.request_rate)
    elif workload.concurrency is not None:
        served = np.minimum(1.0, batch * replicas / workload.concurrency)
    else:
        served = np.ones_like(batch)
    return replicas, served


def edge_ratios(sla: SLA, ttft: Any, itl: Any, osl: int, factors: EdgeFactors) -> Any:
    """`sla_ratio` of the figures at the pessimistic edge of their error band (arrays that
    broadcast with `factors`, `sim._margin.edge_factors`); infinite (no margin) where the band
    is too wide to pick by."""
    t, i = ttft * factors.ttft, itl * factors.itl
    return np.where(factors.unmeasured, np.inf, sla_ratio(sla, t, i, t + (osl - 1) * i))


def _r(x: float) -> float:
    return round(float(x), 3)


@dataclass(frozen=True)
class Pick:
    chosen: Candidate
    met: bool
    per_tp: dict[tuple[int, int, int, int], Candidate]  # best SLA-meeting per (TP, EP, PP, DP)
    pareto: list[Candidate]
    evaluated: int
    candidates: list[Candidate]  # every aggregated candidate evaluated


def _fit_error(
    model: ModelArch, gpu: Gpu, grid: Grid, isl: int, osl: int, vram_mb: float | None
) -> ProfilingError:
    i = int(np.argmax(grid.tp))
    tp = int(grid.tp[i])
    per_gpu = usable_bytes(gpu, vram_mb) / 1e9
    hbm = per_gpu / HBM_UTILISATION
    need = grid.weights_gb_per_gpu[i] + grid.reserve_gb_per_gpu + grid.kv_gb_per_sequence_per_gpu[i]
    return ProfilingError(
        "SelectingConfig",
        f"{model.id} does not fit: it needs {model.weight_bytes / 1e9:.1f} GB of "
        f"{model.weight_dtype} weights "
        f"+ {grid.kv_gb_per_sequence_per_gpu[i] * tp:.2f} GB of KV cache for one "
        f"{isl + osl}-token sequence + {grid.reserve_gb_per_gpu:.1f} GB of activations per GPU, "
        f"i.e. {need:.1f} GB per GPU at TP {tp}, but only "
        f"{per_gpu:.1f} GB per GPU is usable ({HBM_UTILISATION:.0%} of {hbm:.0f} GB on {gpu.id}; "
        f"{per_gpu * tp:.1f} GB over {tp} GPU(s), the largest TP within numGpusPerNode and "
        "totalGpus): use more GPUs per node, a larger GPU or a shorter isl+osl",
    )


def search(
    model: ModelArch,
    gpu: Gpu,
    grid: Grid,
    sla: SLA,
    workload: Workload,
    total_gpus: int,
    vram_mb: float | None = None,
    *,
    backend: str = "vllm",
    disagg: list[Candidate] | None = None,
    band: ErrorBand | None = None,
    dep_band: ErrorBand | None = None,
) -> Pick:
    """Evaluate every fitting grid point against the SLA and pick the configuration to deploy;
    `band`: the estimator's error band for these (aggregated) configs, None for none;
    `dep_band`: that of the DEP rows (`band` when None)."""
    isl, osl = workload.isl, workload.osl
    rows, cols = np.nonzero(grid.fits)
    if rows.size == 0:
        raise _fit_error(model, gpu, grid, isl, osl, vram_mb)
    tp = grid.tp[rows]
    ep = grid.ep[rows]
    pp = grid.pp[rows]
    dp = grid.dp[rows]
    width = tp * pp  # GPUs per worker
    batch = grid.batch[rows, cols]
    ttft = grid.ttft_ms[rows, cols]
    itl = grid.itl_ms[rows, cols]
    e2e = ttft + (osl - 1) * itl
    bf = batch.astype(np.float64)
    decoding = decoding_requests(
        bf, dp * pp, osl, backend_profile(backend, gpu.id).agg_mix_decodes_per_osl
    )
    thpt_gpu = grid.tokens_per_s[rows, cols] / width
    per_user = 1e3 / itl
    rps_replica = decoding / (e2e / 1e3)

    ratio = sla_ratio(sla, ttft, itl, e2e)
    meets = ratio <= 1.0
    edge = (
        None
        if band is None
        else edge_ratios(sla, ttft, itl, osl, edge_factors(band, dep_band, dp > 1))
    )

    replicas, served = _replicas(workload, rps_replica, bf, total_gpus // width)
    load_match = workload.request_rate is not None or workload.concurrency is not None

    n = rows.size

    def ints(x: Any) -> list[int]:
        return np.broadcast_to(x, (n,)).astype(np.int64).tolist()  # type: ignore[no-any-return]

    def floats(x: Any) -> list[float]:
        return np.broadcast_to(x, (n,)).astype(np.float64).tolist()  # type: ignore[no-any-return]

    candidates = candidates_from_columns(
        {
            "backend": [backend] * n,
            "tp": ints(tp),
            "batch": ints(batch),
            "replicas": ints(replicas),
            "ttft_ms": floats(ttft),
            "itl_ms": floats(itl),
            "e2e_ms": floats(e2e),
            "tokens_per_s_per_gpu": floats(thpt_gpu),
            "tokens_per_s_per_user": floats(per_user),
            "requests_per_s": floats(rps_replica * replicas),
            "meets_sla": np.broadcast_to(meets, (n,)).tolist(),
            "worst_ratio": floats(ratio),
            "mode": ["agg"] * n,
            "prefill_tp": [0] * n,
            "prefill_workers": [0] * n,
            "load_match": [load_match] * n,
            "served": floats(served),
            "ep": ints(ep),
            "prefill_ep": [1] * n,
            "pp": ints(pp),
            "dp": ints(dp),
            "prefill_dp": [1] * n,
            "edge_ratio": [None] * n if edge is None else floats(edge),
            "budget_gpus": [0 if load_match else total_gpus] * n,
        }
    )
    # The KV-capacity column can repeat a grid batch size: keep one of each (layout, batch).
    unique = {(c.tp, c.ep, c.pp, c.dp, c.batch): c for c in candidates}
    candidates = [unique[key] for key in sorted(unique)]

    return _pick(candidates, disagg or [], sla)


def decoding_requests(batch: Any, slots: Any, osl: int, per_osl: bool) -> Any:
    """Requests an aggregated worker of `batch` sequences decodes per step, in the estimator's
    in-flight schedule (`sim._estimate.in_flight`), run per slot (`slots`: its attention DP ranks,
    or its pipeline's micro-batches): every step admits one prompt per slot, so once a slot
    holds `osl` or more sequences every step is a mixed step and (TRT-LLM, SGLang: `per_osl`)
    only `b // (b / osl)` of its `b` decode in it, about `osl`; the rest wait for their prefill.
    All of them otherwise. A replica's requests/s are these per request latency (its tokens/s
    are the grid's, `sim._estimate.in_flight`)."""
    per_slot = batch / slots
    saturated = per_osl & (per_slot >= osl)
    decodes = np.floor(per_slot / (per_slot / max(osl, 1)))
    return np.where(saturated, decodes * slots, batch)


def _pick(candidates: list[Candidate], disagg: list[Candidate], sla: SLA) -> Pick:
    """The config to deploy among the aggregated `candidates` and the disaggregated ones: the best
    SLA-meeting one by `rank_key` (the best per layout kept), else the closest miss; and the
    front it is published with (of the configs with margin when the pick has margin)."""
    objective = sla.optimization_type
    key_of = partial(rank_key, objective=objective)
    per_tp: dict[tuple[int, int, int, int], Candidate] = {}
    best: dict[tuple[int, int, int, int], tuple[float, ...]] = {}
    for c in candidates:
        if not c.meets_sla:
            continue
        layout, rank = (c.tp, c.ep, c.pp, c.dp), key_of(c)
        if layout not in per_tp or rank < best[layout]:
            per_tp[layout], best[layout] = c, rank
    split = [c for c in disagg if c.meets_sla]
    if per_tp or split:
        chosen = best_ranked([*per_tp.values(), *split], objective)
        pool = [c for c in candidates if c.meets_sla] + split
        if chosen.has_margin:
            pool = [c for c in pool if c.has_margin]
    else:
        chosen = best_ranked([*candidates, *disagg], objective)
        pool = candidates + disagg
    return Pick(
        chosen=chosen,
        met=bool(per_tp or split),
        per_tp=per_tp,
        pareto=pareto_front(pool),
        evaluated=len(candidates) + evaluated_count(disagg),
        candidates=candidates,
    )


def pareto_front(pool: list[Candidate]) -> list[Candidate]:
    """Non-dominated candidates (maximise tokens/s/user and the throughput `rank_key` ranks by:
    tokens/s per GPU of the budget, or per GPU used when not judged against one), fastest/user
    first. Dominance is judged on the figures as reported (rounded like `to_json`), so the
    published front is non-dominated as read."""
    if not pool:
        return []
    reported = np.array([c.reported for c in pool], dtype=np.float64).reshape(len(pool), 3)
    user, per_gpu, gpus = reported.T
    tp = np.fromiter((c.tp for c in pool), dtype=np.float64, count=len(pool))
    # Fastest per user first, then the highest throughput, fewer GPUs, smaller TP (stable, as
    # `sorted`); on the front: each config with more throughput than every one before it.
    order = np.lexsort((tp, gpus, -per_gpu, -user))
    ranked = per_gpu[order]
    before = np.maximum.accumulate(np.concatenate(([-np.inf], ranked[:-1])))
    return [pool[k] for k in order[ranked > before].tolist()]
