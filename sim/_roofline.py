"""Roofline latency estimates for a dense decoder-only model, vectorised over (TP, batch).

Owns: the performance model and its constants. For a worker of `tp` GPUs serving `batch` concurrent
sequences of `isl` prompt and `osl` output tokens in aggregated mode (continuous batching):

- prefill of one prompt: compute-bound, `2·params·isl` linear FLOPs plus the causal attention term
  `2·layers·isl²·heads·head_dim`, at `PREFILL_COMPUTE_EFF` of dense bf16 peak; never faster than
  reading the weights once. TTFT = that prefill plus, when other sequences are running, the wait for
  their in-flight step.
- one decode step: memory-bound, the worker's weights (sharded over TP) plus every sequence's KV
  cache (average context `isl + osl/2`) read at `DECODE_MEMORY_EFF` of peak bandwidth; never faster
  than its FLOPs allow. Aggregated serving also runs the prompts of newly admitted sequences
  inside decode steps: in steady state `batch/osl` prompts per step, amortised into the step.
  ITL = step time.
- tensor parallelism: two all-reduces of the step's activations per layer, ring algorithm over the
  intra-node link (half the catalog's bidirectional figure, at `LINK_EFF`), plus a fixed latency
  each.
- a fixed per-step overhead (scheduling, kernel launches):
  `STEP_OVERHEAD_MS + layers·LAYER_OVERHEAD_MS`.
- memory: weights/TP + KV for `isl + osl` tokens per sequence must fit in `HBM_UTILISATION` of HBM;
  the batch per worker is capped by that KV capacity and by `MAX_BATCH`.

The efficiencies and overheads are assumptions, not measurements: this is a first-order estimate
that ranks configurations, not a benchmark. All backends share the model (no backend-specific
kernels).

Failure semantics: pure arithmetic on finite positive inputs; a (TP, batch) point that does not
fit is masked out (`fits` False), never NaN. No exceptions are raised for any valid catalog entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._catalog import Gpu, ModelArch

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

PREFILL_COMPUTE_EFF = 0.5
DECODE_MEMORY_EFF = 0.7
DECODE_COMPUTE_EFF = 0.5
LINK_EFF = 0.7
HBM_UTILISATION = 0.9
STEP_OVERHEAD_MS = 1.5
LAYER_OVERHEAD_MS = 0.02
ALLREDUCE_LATENCY_US = {"nvlink": 8.0, "infinity_fabric": 12.0, "pcie": 25.0}
MAX_BATCH = 1024  # vLLM's largest default max_num_seqs
BATCH_GRID = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)


def usable_bytes(gpu: Gpu, vram_mb: float | None = None) -> float:
    """Bytes per GPU the engine may use: `HBM_UTILISATION` of HBM (vramMb, MiB, wins if given)."""
    total = vram_mb * 2**20 if vram_mb else gpu.memory_gb * 1e9
    return HBM_UTILISATION * total


def kv_bytes_per_token_per_gpu(model: ModelArch, tp: IntArray) -> FloatArray:
    """KV heads are sharded over TP and replicated when TP exceeds their number; an MLA latent
    cache is replicated on every TP rank."""
    if model.is_mla:
        return np.full(np.shape(tp), float(model.kv_bytes_per_token), dtype=np.float64)
    heads = np.ceil(model.num_key_value_heads / tp)
    per_head = 2 * model.num_hidden_layers * model.head_dim * 2
    return np.asarray(heads * per_head, dtype=np.float64)


def _allreduce_ms(model: ModelArch, gpu: Gpu, tp: IntArray, tokens: FloatArray) -> FloatArray:
    tpf = tp.astype(np.float64)
    message = tokens * model.hidden_size * 2.0
    link = gpu.interconnect_gbps / 2.0 * 1e9 * LINK_EFF
    per_call = ALLREDUCE_LATENCY_US[gpu.interconnect] * 1e-3 + (
        2.0 * (tpf - 1.0) / tpf * message / link * 1e3
    )
    return np.where(tp > 1, 2.0 * model.num_hidden_layers * per_call, 0.0)


def _overhead_ms(model: ModelArch) -> float:
    return STEP_OVERHEAD_MS + LAYER_OVERHEAD_MS * model.num_hidden_layers


def _roofline_ms(
    flops: FloatArray, bytes_: FloatArray, gpu: Gpu, compute_eff: float, memory_eff: float
) -> FloatArray:
    compute = flops / (gpu.dense_bf16_tflops * 1e12 * compute_eff)
    memory = bytes_ / (gpu.memory_bandwidth_gbps * 1e9 * memory_eff)
    return np.maximum(compute, memory) * 1e3


def prefill_ms(model: ModelArch, gpu: Gpu, tp: IntArray, isl: FloatArray | float) -> FloatArray:
    """Time to prefill one prompt of `isl` tokens on a TP group (broadcasts over tp and isl)."""
    tpf = np.asarray(tp, dtype=np.float64)
    tokens = np.asarray(isl, dtype=np.float64)
    L, hd = model.num_hidden_layers, model.num_attention_heads * model.head_dim
    flops = (
        2.0 * L * model.active_layer_params * tokens
        + 2.0 * model.lm_head_params
        + 2.0 * L * tokens**2 * hd
    ) / tpf
    bytes_ = model.weight_bytes / tpf + tokens * kv_bytes_per_token_per_gpu(model, tp)
    compute = _roofline_ms(flops, bytes_, gpu, PREFILL_COMPUTE_EFF, DECODE_MEMORY_EFF)
    return compute + _allreduce_ms(model, gpu, tp, tokens) + _overhead_ms(model)


def decode_step_ms(
    model: ModelArch, gpu: Gpu, tp: IntArray, batch: FloatArray, isl: float, osl: float
) -> FloatArray:
    """One continuous-batching step with `batch` running sequences (prompts amortised in)."""
    tpf = np.asarray(tp, dtype=np.float64)
    b = np.asarray(batch, dtype=np.float64)
    L, hd = model.num_hidden_layers, model.num_attention_heads * model.head_dim
    context = isl + osl / 2.0
    admitted = b / osl  # prompts prefilled per step in steady state
    tokens = b + admitted * isl
    flops = (
        2.0 * L * model.active_layer_params * tokens
        + 2.0 * model.lm_head_params * (b + admitted)
        + 4.0 * L * b * context * hd
        + admitted * 2.0 * L * isl**2 * hd
    ) / tpf
    kv_tok = kv_bytes_per_token_per_gpu(model, tp)
    bytes_ = model.weight_bytes / tpf + kv_tok * (b * context + admitted * isl + b)
    compute = _roofline_ms(flops, bytes_, gpu, DECODE_COMPUTE_EFF, DECODE_MEMORY_EFF)
    return compute + _allreduce_ms(model, gpu, tp, tokens) + _overhead_ms(model)


@dataclass(frozen=True)
class Grid:
    """Estimates for every (TP, batch) point; rows are TP values, columns batch sizes."""

    tp: IntArray  # (T,)
    batch: IntArray  # (T, B); the last column is each TP's KV-capacity batch
    fits: BoolArray  # (T, B)
    max_batch: IntArray  # (T,) sequences that fit in KV cache per worker (0: weights do not fit)
    weights_gb_per_gpu: FloatArray  # (T,)
    kv_gb_per_sequence_per_gpu: FloatArray  # (T,)
    ttft_ms: FloatArray  # (T, B)
    itl_ms: FloatArray  # (T, B)


def evaluate(
    model: ModelArch, gpu: Gpu, tps: list[int], isl: int, osl: int, vram_mb: float | None = None
) -> Grid:
    """Roofline estimates over TP candidates x batch sizes up to each worker's KV capacity."""
    tp = np.asarray(tps, dtype=np.int64)
    weights = model.weight_bytes / tp.astype(np.float64)
    kv_seq = kv_bytes_per_token_per_gpu(model, tp) * float(isl + osl)
    free = usable_bytes(gpu, vram_mb) - weights
    max_batch = np.clip(np.floor(np.maximum(free, 0.0) / kv_seq), 0, MAX_BATCH).astype(np.int64)
    grid = np.broadcast_to(np.asarray(BATCH_GRID, dtype=np.int64), (len(tps), len(BATCH_GRID)))
    batch = np.concatenate([grid, np.maximum(max_batch, 1)[:, None]], axis=1)
    fits = batch <= max_batch[:, None]
    # The capacity column only counts when it is not already a grid value (np.isin would import
    # numpy.ma lazily, ~100 ms on a cold start).
    fits[:, -1] &= np.array([int(m) not in BATCH_GRID for m in max_batch], dtype=np.bool_)
    col_tp = tp[:, None]
    step = decode_step_ms(model, gpu, col_tp, batch.astype(np.float64), float(isl), float(osl))
    wait = step * (batch - 1) / batch
    ttft = prefill_ms(model, gpu, col_tp, float(isl)) + wait
    finite = np.isfinite(ttft) & np.isfinite(step)
    return Grid(
        tp=tp,
        batch=batch,
        fits=fits & finite,
        max_batch=max_batch,
        weights_gb_per_gpu=weights / 1e9,
        kv_gb_per_sequence_per_gpu=kv_seq / 1e9,
        ttft_ms=np.where(finite, ttft, 0.0),
        itl_ms=np.where(finite, step, 0.0),
    )


def tp_candidates(model: ModelArch, max_tp: int) -> tuple[list[int], list[int]]:
    """Powers of two up to `max_tp`: (usable, skipped because they do not divide the heads)."""
    usable: list[int] = []
    skipped: list[int] = []
    for k in range(int(math.log2(max(max_tp, 1))) + 1):
        tp = 2**k
        (usable if model.num_attention_heads % tp == 0 else skipped).append(tp)
    return usable, skipped
