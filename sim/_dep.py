"""Attention data parallelism with wide expert parallelism ("DEP") for MoE models.

Owns: which DEP worker layouts are searched, the latency and memory model of a DEP worker, and
the words that compare the best DEP config with the best one without attention DP.

A DEP worker of `width` GPUs (`Candidate.tp`, so every GPU count elsewhere stays `tp * pp`) runs
attention data-parallel over `dp = width` ranks (attention TP 1): each rank holds the attention,
dense-MLP, shared-expert, router, embedding and lm_head weights in full and its own share of the
sequences (`batch / dp`) with their KV cache; the routed experts are spread `ep = width` ways (each
GPU holds `num_experts / ep` experts of every MoE layer). AIConfigurator 0.12 searches the same
shape (`attention_dp_size` x `moe_ep_size`, `tp_size` 1) for trtllm, sglang and vllm; Dynamo's
profiler deploys it with SGLang `--tp N --dp N --enable-dp-attention`, vLLM
`--tensor-parallel-size 1 --data-parallel-size N --enable-expert-parallel`, TRT-LLM
`enable_attention_dp` (`sim._dgd_backends`).

One step on one GPU (per-rank `T` new tokens, the worker's `dp * T`), the roofline of
`sim._estimate` with its calibrated profile (`dep_profile`), whose `dep_*` fields (fitted on DEP
points by `bench/calibrate_dep.py`, per backend, GPU and model family; for the decode and prefill
workers of a disaggregated config, on such workers: `dep_plan(..., decode_worker=True)`,
`prefill_worker=True`) price what a DEP rank
runs differently from a TP worker: its routed experts (`dep_moe_eff`, `dep_prefill_moe_eff` in place of
`moe_eff`), its attention (`dep_attn_eff`) and its all-to-all within the NVLink domain
(`dep_a2a_scale`) and across nodes (`dep_internode_a2a_scale`). The efficiency factors multiply
the TP profile's and are fitted above 1 in places; the rates they give are capped at the GPU's
peak FLOP/s and HBM bandwidth (`_at_most_peak`), so the roofline holds:
- GEMMs, each a roofline (compute or weight reads, whichever is slower) at `sim._estimate`'s
  efficiencies (fp8_eff for fp8 GEMMs): the non-expert weights (read in full) over the rank's `T`
  tokens and the lm_head over its sequences; the busiest rank's experts over the tokens routed to
  them and the experts they touch among its `E/ep` (`sim._routing`, AIC's skewed workload) at
  `moe_eff`, plus the measured kernel's excess at the worker's routed tokens where AIC's table has
  one (`sim._moe_kernels`). MLA runs at the plain efficiencies, not `mla_eff`: that is fitted on
  TP 8 points (16 heads per GPU), and AIC 0.12 times a DEP rank's all-heads MLA faster (DeepSeek-V3
  on H200, DEP 8 at 1-32 sequences per rank: ITL within 0.8-1.1x of AIC's with the plain
  efficiencies, 1.0-1.8x with `mla_eff`).
- attention over the rank's sequences only, heads unsharded, KV of the rank's sequences.
- communication per MoE layer: an all-to-all dispatch and combine (activations at the
  checkpoint's width, fp8 or bf16, as AIC's tables time them) of the rank's `T * top_k` token
  copies, `(ep-1)/ep` of them remote, over NVLink within the NVLink domain (`A2A_LINK_EFF` of the
  one-way link) and over the scale-out NICs (`INTER_NODE_A2A_EFF` of the GPU's NIC,
  `sim._catalog.scaleout_links`) for the share of ranks outside it, whichever is slower, plus a
  latency per dispatch and per combine (the constants match AIC's tables). No all-reduce:
  attention TP is 1 and the combine returns each token's expert output to its rank.
- overheads: the backend's per-step and per-layer overheads (MLA and MoE layers their own), as a
  TP worker's.
Ranks run in lockstep (the MoE layers synchronise them), so a step is the busiest rank's time:
its expert GEMMs and reads are `sim._routing.busiest_rank`'s (the power-law workload AIC times
MoE kernels with, the busiest of the `ep` ranks).

Agg (in-flight batching, `sim._estimate.in_flight` per rank): each rank decodes `batch / dp`
sequences at the mean context, and a mixed pass prefills one prompt on every rank next to their
decodes, priced as prefill as a TP worker's mixed pass is (`dep_mixed_step_ms`; priced at decode
efficiencies it put TTFT at 2x AIC's at 8000-token prompts); TTFT is that pass times the backend's
queueing factor at the rank's batch. A disaggregated DEP prefill worker runs one prompt per rank at
once: its TTFT is that pass with no decodes, its rate `dp` prompts per TTFT.

Memory per GPU: non-expert and vocabulary weights in full + routed experts / ep + the activation
reserve + KV of the rank's sequences; a worker holds `dp` times one rank's sequences.

Failure semantics: pure arithmetic on catalog figures; a layout whose weights do not fit gets KV
capacity 0 (masked by the callers), never NaN. Dense models get no DEP layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._catalog import BYTES_PER_PARAM, Gpu, ModelArch, nvlink_domain, scaleout_links
from ._estimate import (
    ALLREDUCE_LATENCY_US,
    BackendProfile,
    InFlight,
    _attn_dims,
    activation_bytes,
    dep_profile,
    gemm_width_eff,
    in_flight,
    linear_tflops,
)
from ._margin import family
from ._memory import activation_reserve_bytes
from ._moe_kernels import Excess, excess_ms, kernel_excess
from ._routing import busiest_rank, routing_alpha

FloatArray = NDArray[np.float64]

MAX_DEP_WIDTH = 32  # AIC 0.12 searches DEP workers of up to 16 (32 with wide EP) GPUs
# The all-to-all as AIC 0.12's measured-silicon tables have it (trtllm, h200_sxm, DeepSeek-V3,
# one 4000-token prompt and batch 4-8 per rank; `context_moe_{pre,post}_dispatch` and
# `generation_moe_overlap`): within a node it reaches A2A_LINK_EFF of the one-way NVLink figure;
# between NVLink domains INTER_NODE_A2A_EFF of the GPU's one-way scale-out NIC (4.8 GB/s of H200's
# 50; AIC's DEP 16 on B200, whose NIC it takes at 100 GB/s, follows the same fraction) with
# INTER_NODE_LATENCY_US per dispatch or combine.
A2A_LINK_EFF = 0.35
INTER_NODE_A2A_EFF = 0.096
INTER_NODE_LATENCY_US = 120.0


def dep_widths(model: ModelArch, total_gpus: int) -> list[int]:
    """DEP worker widths to search: powers of two from 2 up to the budget (and `MAX_DEP_WIDTH`)
    whose width divides the routed experts; none for a dense model."""
    if not model.is_moe:
        return []
    out: list[int] = []
    width = 2
    while width <= min(total_gpus, MAX_DEP_WIDTH):
        if model.num_experts % width == 0:
            out.append(width)
        width *= 2
    return out


@dataclass(frozen=True)
class DepPlan:
    """Per-GPU quantities of one DEP worker (`dp` attention ranks, experts spread `ep` ways)."""

    model: ModelArch
    gpu: Gpu
    backend: BackendProfile
    backend_id: str  # "trtllm", "vllm" or "sglang": the engine's memory rule (`sim._memory`)
    width: int  # GPUs of the worker
    dp: int
    ep: int
    non_expert_bytes: float  # attention, dense MLP, shared experts, routers (replicated)
    expert_bytes_each: float  # one routed expert of one layer
    head_bytes: float  # lm_head read per step
    weights_bytes: float  # per GPU
    kv_bytes_per_token: float  # per GPU: the rank's own sequences
    linear_tflops: float
    act_bytes: float
    nvlink_domain: int
    scaleout_gbps: float  # one-way scale-out NIC per GPU (`sim._catalog.scaleout_links`)
    moe_excess: Excess | None  # the measured MoE kernel's regressions (`sim._moe_kernels`)


def dep_plan(
    model: ModelArch,
    gpu: Gpu,
    backend: str,
    width: int,
    *,
    decode_worker: bool = False,
    prefill_worker: bool = False,
) -> DepPlan:
    """A DEP worker of `width` GPUs: attention DP `width`, EP `width`; `decode_worker` or
    `prefill_worker`: a disaggregated config's decode or prefill worker, priced by the factors
    fitted on such workers (`sim._estimate.dep_profile`)."""
    role = "disagg" if decode_worker else "prefill" if prefill_worker else "agg"
    dp = ep = width
    non_expert = model.non_expert_body_params * model.body_weight_bytes_per_param
    expert_each = model.expert_params * model.expert_weight_bytes_per_param
    experts_all = model.moe_layers * model.num_experts * expert_each / ep
    head = model.lm_head_params * float(BYTES_PER_PARAM)
    return DepPlan(
        model=model,
        gpu=gpu,
        backend=dep_profile(backend, gpu.id, family(model), role=role),
        backend_id=backend,
        width=width,
        dp=dp,
        ep=ep,
        non_expert_bytes=non_expert,
        expert_bytes_each=expert_each,
        head_bytes=head,
        weights_bytes=non_expert + experts_all + model.vocab_weight_bytes,
        kv_bytes_per_token=float(model.kv_bytes_per_token),
        linear_tflops=linear_tflops(model, gpu),
        act_bytes=activation_bytes(model),
        nvlink_domain=nvlink_domain(gpu),
        scaleout_gbps=scaleout_links(gpu.id)[0],
        moe_excess=kernel_excess(model, gpu.id, backend, 1, ep),
    )


def _a2a_ms(plan: DepPlan, tokens: FloatArray) -> FloatArray:
    """Dispatch + combine of one MoE layer for a rank with `tokens` new tokens, times the
    profile's `dep_a2a_scale` within the NVLink domain, `dep_internode_a2a_scale` across nodes."""
    m, be = plan.model, plan.backend
    remote = (plan.ep - 1) / plan.ep
    copies = tokens * m.num_experts_per_tok * m.hidden_size * remote
    per_gpu = copies * 2.0 * plan.act_bytes  # dispatch and combine, at the checkpoint's width
    intra = per_gpu / (plan.gpu.interconnect_gbps / 2.0 * 1e9 * A2A_LINK_EFF)
    latency = ALLREDUCE_LATENCY_US[plan.gpu.interconnect]
    scale = be.dep_a2a_scale
    if plan.ep > plan.nvlink_domain:
        outside = (plan.ep - plan.nvlink_domain) / (plan.ep - 1)
        inter = per_gpu * outside / (plan.scaleout_gbps * INTER_NODE_A2A_EFF * 1e9)
        intra = np.maximum(intra * (1.0 - outside), inter)
        latency = max(latency, INTER_NODE_LATENCY_US)
        scale = be.dep_internode_a2a_scale
    return np.asarray((2.0 * latency * 1e-3 + intra * 1e3) * scale, dtype=np.float64)


def _rank_ms(
    plan: DepPlan,
    tokens: FloatArray,
    worker_tokens: FloatArray,
    seqs: FloatArray,
    pairs: FloatArray,
    kv_tokens: FloatArray,
    decode: bool,
) -> FloatArray:
    """One forward on one rank: its `tokens` new tokens of `seqs` sequences (`pairs` attention
    pairs, `kv_tokens` KV read or written) while the worker routes `worker_tokens` in all."""
    m, gpu, be = plan.model, plan.gpu, plan.backend
    gemm_eff, attn_eff, weight_eff, kv_eff = be.effs(decode)
    fp8 = plan.linear_tflops > gpu.dense_bf16_tflops  # as sim._estimate: fp8 GEMMs at fp8_eff
    peak_linear = (
        plan.linear_tflops
        * 1e12
        * gemm_eff
        * ((be.fp8_eff or 1.0) if fp8 else 1.0)
        * gemm_width_eff(be, m, 1)  # attention TP 1: whole-width GEMMs
    )
    bw = gpu.memory_bandwidth_gbps * 1e9 * weight_eff
    dense_flops = 2.0 * (m.non_expert_body_params * tokens + m.lm_head_params * seqs)
    gemm_s = np.maximum(dense_flops / peak_linear, (plan.non_expert_bytes + plan.head_bytes) / bw)
    if m.num_experts:  # the busiest rank's experts, at the DEP workers' moe_eff
        moe_eff = (be.dep_moe_eff if decode else be.dep_prefill_moe_eff) or be.moe_eff or 1.0
        k, alpha = m.num_experts_per_tok, routing_alpha(m.is_mla)
        assignments, local = busiest_rank(m.num_experts, k, worker_tokens, plan.ep, alpha)
        expert_flops = 2.0 * m.moe_layers * m.expert_params * assignments / plan.ep
        expert_bytes = m.moe_layers * local / plan.ep * plan.expert_bytes_each
        gemm_s = gemm_s + np.maximum(
            expert_flops / _at_most_peak(peak_linear * moe_eff, plan.linear_tflops * 1e12),
            expert_bytes / _at_most_peak(bw * moe_eff, gpu.memory_bandwidth_gbps * 1e9),
        )
        gemm_s = gemm_s + m.moe_layers * excess_ms(plan.moe_excess, worker_tokens) * 1e-3
    attn_flops = 2.0 * m.num_attention_heads * _attn_dims(m, decode) * m.num_hidden_layers * pairs
    dep_attn = be.dep_attn_eff or 1.0
    peak_attn, peak_bw = gpu.dense_bf16_tflops * 1e12, gpu.memory_bandwidth_gbps * 1e9
    attn_s = np.maximum(
        attn_flops / _at_most_peak(peak_attn * attn_eff * dep_attn, peak_attn),
        kv_tokens * plan.kv_bytes_per_token / _at_most_peak(peak_bw * kv_eff * dep_attn, peak_bw),
    )
    comm = m.moe_layers * _a2a_ms(plan, tokens)
    overhead = be.layers_overhead_ms(m, m.num_hidden_layers, decode)
    return np.asarray(
        (gemm_s + attn_s) * 1e3 + be.comm_scale * comm + overhead,
        dtype=np.float64,
    )


def _at_most_peak(rate: float, peak: float) -> float:
    """A fitted rate, never above the hardware's peak: the DEP factors multiply the TP profile's
    efficiencies and may exceed 1 themselves, but the roofline holds."""
    return min(rate, peak)


def dep_prefill_all_ranks_ms(plan: DepPlan, isl: float) -> float:
    """One prompt on every rank at once (a disaggregated DEP prefill worker at full rate)."""
    return float(dep_mixed_step_ms(plan, 0.0, 0.0, isl))


def dep_step_ms(plan: DepPlan, batch: ArrayLike, context: ArrayLike) -> FloatArray:
    """One decode step of the worker's `batch` sequences (`batch / dp` per rank) at `context`."""
    b = np.asarray(batch, dtype=np.float64) / plan.dp
    ctx = np.asarray(context, dtype=np.float64)
    step = _rank_ms(plan, b, b * plan.dp, b, b * ctx, b * ctx, decode=True)
    return np.asarray(step + plan.backend.step_overhead_ms, dtype=np.float64)


def dep_mixed_step_ms(plan: DepPlan, decodes: ArrayLike, context: float, isl: float) -> FloatArray:
    """One in-flight-batching pass of the worker: every rank prefills one prompt of `isl` tokens
    while its `decodes` sequences decode one token each at `context` (broadcasts over
    `decodes`, per rank). Priced as prefill, as `sim._estimate.mixed_step_ms` prices a TP
    worker's: the prompt dominates the pass."""
    d = np.asarray(decodes, dtype=np.float64)
    tokens = np.asarray(isl + d)
    step = _rank_ms(
        plan,
        tokens,
        tokens * plan.dp,
        np.asarray(1.0 + d),
        isl * (isl + 1.0) / 2.0 + d * context,
        isl + d * context,
        decode=False,
    )
    return np.asarray(step + plan.backend.overheads(decode=False)[0], dtype=np.float64)


def dep_agg_ms(plan: DepPlan, batch: ArrayLike, isl: float, osl: float) -> InFlight:
    """In-flight batching at the worker's concurrency `batch`: the schedule of
    `sim._estimate.agg_ms` (`in_flight`) per attention rank (each rank holds `batch / dp`
    sequences; a mixed step prefills one prompt per rank next to the others' decodes, and the
    all-to-all couples the ranks' steps); the tokens/s are the whole worker's (`dp` ranks)."""
    b = np.maximum(np.asarray(batch, dtype=np.float64) / plan.dp, 1.0)  # per rank
    context = isl + osl / 2.0
    rank = in_flight(
        plan.backend,
        plan.model,
        b,
        osl,
        lambda decodes: dep_mixed_step_ms(plan, decodes, context, isl),
        dep_step_ms(plan, b * plan.dp, context),
    )
    return rank._replace(tokens_per_s=rank.tokens_per_s * plan.dp)


def dep_max_batch(plan: DepPlan, usable: float, isl: int, osl: int, cap: int) -> int:
    """Sequences of `isl + osl` tokens the worker holds: `dp` x one rank's KV capacity (each rank
    at most `cap`); 0 when the weights do not fit."""
    free = usable - plan.weights_bytes - activation_reserve_bytes(plan.model)
    per_rank = math.floor(max(free, 0.0) / (plan.kv_bytes_per_token * (isl + osl)))
    return plan.dp * min(per_rank, cap)


def layout_words(tp: int, ep: int, pp: int = 1, dp: int = 1) -> str:
    """A worker layout in short: `TP8 EP8`, `TP8 PP2`, or `DEP16` (attention DP 16 x EP 16)."""
    if dp > 1:
        return f"DEP{tp}"
    return f"TP{tp}" + (f" EP{ep}" if ep > 1 else "") + (f" PP{pp}" if pp > 1 else "")
