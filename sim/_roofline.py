"""The (TP, batch) grid behind `sim.profile`: `sim.estimate`'s calibrated agg model over a grid.

Owns: the grid of operating points the rapid profiler searches and the per-worker KV capacity that
bounds it. There is one latency model: every point is `sim._estimate.agg_ms` (what
`sim.estimate(..., mode="agg")` reports) for the backend on this GPU with its calibrated constants
(`backend_profile`), at pp = ep = 1, vectorised over the batch sizes of each TP. The memory model is
`estimate`'s too (DEP rows, `dps` > 1: `sim._dep`'s model, per attention rank): the KV for
`isl + osl` tokens per sequence must fit in the backend's KV budget (`sim._memory`: TRT-LLM's
fraction of the HBM left after weights and reserves, vLLM's and SGLang's of the total; vramMb from
discovery, MiB, overrides the catalog's HBM size); the batch
per worker is capped by that KV capacity and by `MAX_BATCH` per slot (a worker, a DEP rank, or a
pipelined worker's micro-batch: AIC's batch and TRT-LLM's `max_batch_size` are per micro-batch).

Failure semantics: pure arithmetic on finite positive inputs; a (TP, batch) point that does not
fit is masked out (`fits` False), never NaN. No exceptions are raised for any valid catalog entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._catalog import Gpu, ModelArch
from ._dep import DepPlan, dep_agg_ms, dep_plan
from ._estimate import _Plan, _plan, agg_ms
from ._memory import HBM_UTILISATION, activation_reserve_bytes, hbm_bytes, kv_room_bytes

__all__ = [
    "AGG_BATCH_GRID",
    "BATCH_GRID",
    "HBM_UTILISATION",
    "MAX_BATCH",
    "Grid",
    "evaluate",
    "expert_parallel",
    "parallel_rows",
    "sequences_fitting",
    "tp_candidates",
    "usable_bytes",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

# The batch range the estimator and its error bands were measured on (`bench/fidelity.py`: up to
# 512 sequences per TP worker; `bench/dep_fidelity.py`: up to 256 per DEP rank), which is also
# where AIC's own search stops (512): no config is searched beyond it. Before this cap a
# Qwen3-30B-A3B decode worker of TP 4 EP 4 was picked at 1024 sequences, where its ITL was
# 16% under AIC's (at 512: 2%).
MAX_BATCH = 512
MAX_DEP_BATCH_PER_RANK = 256
# Per worker (per rank of a DEP worker), up to MAX_BATCH: a larger batch never fits.
BATCH_GRID = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
# Aggregated workers are searched on a finer grid (steps of 1.14-1.33x): their pick sits where the
# SLA binds, and a 1.5x step there costs up to a third of the throughput the SLA allows. The
# disaggregated search (`sim._disagg`) keeps BATCH_GRID: its decode batches are rate-matched
# against worker counts, five axes at once.
AGG_BATCH_GRID = tuple(
    sorted({*BATCH_GRID, 5, 7, 10, 14, 20, 28, 40, 56, 80, 112, 160, 224, 320, 448})
)


def usable_bytes(gpu: Gpu, vram_mb: float | None = None) -> float:
    """Bytes per GPU the engine may use: `HBM_UTILISATION` of HBM (vramMb, MiB, wins if given)."""
    return HBM_UTILISATION * hbm_bytes(gpu, vram_mb)


def kv_free_bytes(plan: _Plan | DepPlan, gpu: Gpu, vram_mb: float | None = None) -> float:
    """Bytes per GPU (per rank of a DEP worker) a worker of `plan` has for its KV cache, the one
    rule of the aggregated, disaggregated and planner searches: the backend's rule for the
    worker's layout (`sim._memory.kv_room_bytes`); a TRT-LLM DEP rank keeps
    `sim._dep.dep_max_batch`'s rule (usable HBM less weights and reserves), with which its step
    costs were checked. Negative when the weights do not fit."""
    if isinstance(plan, DepPlan):
        if plan.backend_id == "trtllm":
            reserve = activation_reserve_bytes(plan.model)
            return usable_bytes(gpu, vram_mb) - plan.weights_bytes - reserve
        # attention TP 1, as AIC 0.12 sizes SGLang's reserve for a DEP worker
        tp, pp, dp = 1, 1, plan.dp
    else:
        tp, pp, dp = plan.tp, plan.pp, 1
    return kv_room_bytes(
        plan.model, gpu, plan.weights_bytes, vram_mb, backend=plan.backend_id, tp=tp, pp=pp, dp=dp
    )


def sequences_fitting(free: FloatArray, kv_seq: FloatArray, ranks: ArrayLike = 1) -> FloatArray:
    """Whole sequences of `kv_seq` KV bytes each that `free` bytes hold (per layout and rank),
    at most `MAX_BATCH` (`MAX_DEP_BATCH_PER_RANK` on a DEP worker's ranks, `ranks` > 1); 0 where
    nothing is free."""
    cap = np.where(np.asarray(ranks) > 1, MAX_DEP_BATCH_PER_RANK, MAX_BATCH)
    return np.clip(np.floor(np.maximum(free, 0.0) / kv_seq), 0, cap)


@dataclass(frozen=True)
class Grid:
    """Estimates for every (TP, batch) point; rows are TP values, columns batch sizes."""

    tp: IntArray  # (T,)
    ep: IntArray  # (T,) expert-parallel size of each row (1: experts tensor-parallel like the rest)
    pp: IntArray  # (T,) pipeline stages of each row (a worker spans tp x pp GPUs)
    dp: IntArray  # (T,) attention data-parallel ranks of each row (>1: a DEP row, `sim._dep`)
    batch: IntArray  # (T, B); the last column is each TP's KV-capacity batch
    fits: BoolArray  # (T, B)
    max_batch: IntArray  # (T,) sequences that fit in KV cache per worker (0: weights do not fit)
    weights_gb_per_gpu: FloatArray  # (T,)
    reserve_gb_per_gpu: float  # activation reserve, the same at every TP
    kv_gb_per_sequence_per_gpu: FloatArray  # (T,)
    ttft_ms: FloatArray  # (T, B)
    itl_ms: FloatArray  # (T, B)
    tokens_per_s: FloatArray  # (T, B) output tokens/s of one worker


def evaluate(
    model: ModelArch,
    gpu: Gpu,
    backend: str,
    tps: list[int],
    isl: int,
    osl: int,
    vram_mb: float | None = None,
    eps: list[int] | None = None,
    pps: list[int] | None = None,
    dps: list[int] | None = None,
) -> Grid:
    """`estimate(mode="agg")` figures over (TP, EP) rows x batch sizes up to each worker's KV
    capacity (agg ITL is the step time, also when osl is 1). `eps` and `pps` pair with `tps` (all
    1 if not given). `dps` > 1 marks DEP rows (`sim._dep`): their batch sizes are the worker's,
    `dp` x the grid per rank; a pipelined row's are `pp` x the grid per micro-batch."""
    eps = eps or [1] * len(tps)
    pps = pps or [1] * len(tps)
    dps = dps or [1] * len(tps)
    tp = np.asarray(tps, dtype=np.int64)
    plans: list[_Plan | DepPlan] = [
        _plan(model, gpu, backend, int(t), int(p), int(e))
        if d == 1
        else dep_plan(model, gpu, backend, int(t))
        for t, e, p, d in zip(tps, eps, pps, dps, strict=True)
    ]
    weights = np.array([p.weights_bytes for p in plans], dtype=np.float64)
    kv_seq = np.array([p.kv_bytes_per_token for p in plans], dtype=np.float64) * float(isl + osl)
    ranks = np.asarray(dps, dtype=np.int64)
    stages = np.asarray(pps, dtype=np.int64)
    # The grid is per slot: a DEP rank (own KV cache) or a pipeline micro-batch (every stage's
    # GPUs hold their layers' KV for all micro-batches, `sim._estimate.micro_batches`).
    slots = ranks * stages
    free = np.array([kv_free_bytes(p, gpu, vram_mb) for p in plans], dtype=np.float64)
    per_slot = sequences_fitting(free, kv_seq * stages, ranks).astype(np.int64)
    max_batch = per_slot * slots
    base = np.asarray(AGG_BATCH_GRID, dtype=np.int64)
    grid = base[None, :] * slots[:, None]
    batch = np.concatenate([grid, np.maximum(max_batch, slots)[:, None]], axis=1)
    fits = batch <= max_batch[:, None]
    # The capacity column only counts when it is not already a grid value (np.isin would import
    # numpy.ma lazily, ~100 ms on a cold start).
    fits[:, -1] &= np.array([int(m) not in AGG_BATCH_GRID for m in per_slot], dtype=np.bool_)
    rows = [
        agg_ms(p, batch[i].astype(np.float64), float(isl), float(osl))
        if isinstance(p, _Plan)
        else dep_agg_ms(p, batch[i].astype(np.float64), float(isl), float(osl))
        for i, p in enumerate(plans)
    ]
    ttft = np.stack([r.ttft_ms for r in rows]) if rows else np.zeros(batch.shape)
    step = np.stack([r.itl_ms for r in rows]) if rows else np.zeros(batch.shape)
    rate = np.stack([r.tokens_per_s for r in rows]) if rows else np.zeros(batch.shape)
    finite = np.isfinite(ttft) & np.isfinite(step) & np.isfinite(rate)
    return Grid(
        tp=tp,
        ep=np.asarray(eps, dtype=np.int64),
        pp=np.asarray(pps, dtype=np.int64),
        dp=ranks,
        batch=batch,
        fits=fits & finite,
        max_batch=max_batch,
        weights_gb_per_gpu=weights / 1e9,
        reserve_gb_per_gpu=activation_reserve_bytes(model) / 1e9,
        kv_gb_per_sequence_per_gpu=kv_seq / 1e9,
        ttft_ms=np.where(finite, ttft, 0.0),
        itl_ms=np.where(finite, step, 0.0),
        tokens_per_s=np.where(finite, rate, 0.0),
    )


def parallel_rows(model: ModelArch, tps: list[int]) -> tuple[list[int], list[int]]:
    """(TP, EP) rows to search: each TP, a MoE model's experts spread over the same GPUs (EP = TP)
    where the experts divide evenly, else tensor-parallel with the rest (EP 1). Expert-TP shards
    are not searched next to EP = TP: AIConfigurator 0.12's measured MoE kernels time them slower
    at every token count (DeepSeek-V3 on H200: 2.9x at one token, 2.8x at 1,536; Qwen3-30B-A3B:
    1.4x), and they are the estimator's least certain rows (`expert_shard_eff`)."""
    rows_tp = list(tps)
    rows_ep = [expert_parallel(model, t) for t in tps]
    return rows_tp, rows_ep


def expert_parallel(model: ModelArch, tp: int) -> int:
    """EP of a `tp`-GPU worker of `model`: `tp` for a MoE model whose experts it divides, else 1."""
    return tp if model.is_moe and tp > 1 and model.num_experts % tp == 0 else 1


def tp_candidates(model: ModelArch, max_tp: int) -> tuple[list[int], list[int]]:
    """Powers of two up to `max_tp`: (usable, skipped because they do not divide the attention
    heads, or neither divide nor are a multiple of the KV heads, as `estimate` requires)."""
    usable: list[int] = []
    skipped: list[int] = []
    kvh = model.num_key_value_heads
    for k in range(int(math.log2(max(max_tp, 1))) + 1):
        tp = 2**k
        ok = model.num_attention_heads % tp == 0 and (model.is_mla or not (kvh % tp and tp % kvh))
        (usable if ok else skipped).append(tp)
    return usable, skipped
