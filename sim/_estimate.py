"""`estimate()`: one (model, GPU, backend, TP/PP/EP, batch, isl, osl) point, dense, MoE and MLA.

Owns: the per-forward-pass latency model, the per-GPU memory model and argument checking for the
public `sim.estimate`. The efficiency factors and overheads are per backend (`BACKENDS`: first-order
assumptions) and, where `sim/data/calibration.json` has them, per (backend, GPU) values fitted to
AIConfigurator's measured-silicon database by `bench/calibrate.py` (`backend_profile`: the GPU's
fit, else the backend's `*` fit for GPUs without AIC data, else the assumption). The calibrated
profile may separate prefill from decode GEMM efficiency, attention from GEMM, KV from weight reads,
and adds a communication scale; the agg scheduler constants are AIC's (see Modes). Every efficiency is at most 1,
so the roofline limits hold. The run-time path reads only the JSON; it never imports AIC.

Parallelism. A worker has `tp * pp` GPUs: `pp` pipeline stages of `tp` GPUs each. Attention and
dense MLPs (and DeepSeek's shared experts) are tensor-parallel over the stage's `tp` GPUs. Routed
experts are spread over the same `tp` GPUs as `ep` expert groups x `tp/ep` expert-TP shards (TRT-LLM's
`moe_ep_size * moe_tp_size == tp_size`), so `ep` must divide `tp` and the number of experts. Expert
weights per GPU are therefore all experts / tp whatever `ep` is; `ep` changes the communication.
Layers split over stages as ceil(layers / pp) on the bottleneck stage.

One stage forward over `T` new tokens (all figures per GPU, numpy-broadcast over T / context):
- GEMMs: `2 * active params * T / tp` FLOPs (MoE: attention + dense/shared + top-k experts; the
  lm_head only for the sequences' last tokens) at `COMPUTE_EFF` of the dense bf16 peak (times
  `gemm_width_eff`: a shard of hidden / tp columns fills the GPU less as tp grows), or of the fp8
  peak when the checkpoint is fp8 and the GPU has fp8 (mxfp4 experts compute at bf16: W4A16), never
  faster than reading the weights at `MEMORY_EFF` of HBM bandwidth. Weights read: attention, dense
  and shared weights / tp, plus the routed experts the batch touches (`sim._routing`: the
  skewed, power-law spread of tokens over experts that AIConfigurator times its MoE kernels
  with, under which a batch touches fewer experts than a uniform spread would and the busiest
  rank carries more of the load). The routed experts are a roofline of their own (grouped
  GEMMs) at `moe_eff` times the GEMM compute efficiency and `moe_read_eff` (else `moe_eff`)
  times the weight-read efficiency, added to the dense
  part's, for the busiest of the `ep` ranks (the step waits for it: its touched experts and its
  token-expert assignments, `sim._routing`); experts split `tp/ep` ways lose efficiency with
  the shard's width (`expert_shard_eff`: narrow GEMMs, measured 1.4-3x slower per byte). Where
  AIConfigurator's measured kernel for the worker's expert shape ran slower at the step's routed
  tokens than at a larger count, that excess is added per MoE layer (`sim._moe_kernels`). MLA's
  projections are a roofline of their own at `mla_eff` (also applied to MLA's attention FLOPs):
  the down-projections (q_a, kv_a) are replicated on every TP rank, the up- and output
  projections split over tp. GEMMs at the fp8 peak reach `fp8_eff` of it on top (calibrated no
  lower than 0.5: never slower than bf16).
- attention: FLOPs per (query, key) pair per layer `2 * heads * (d_qk + d_v)` over tp (MLA prefill:
  d_qk = nope + rope, d_v = v_head_dim; MLA decode in the absorbed form: d_qk = kv_lora + rope,
  d_v = kv_lora), causal prefill `isl * (isl + 1) / 2` pairs per prompt; KV read/written per token
  `layers * kv elements * 2 B` (GQA: ceil(kv_heads / tp) heads per GPU; MLA: the
  `kv_lora_rank + qk_rope_head_dim` latent, replicated on every TP rank); bf16 peak, same roofline.
- communication: per layer a ring all-reduce of `T * hidden * 2 B` after attention and after the
  MLP over `tp`: AIConfigurator's measured latency for that message and TP size where
  `sim/data/allreduce.json` has the (backend, GPU) (`bench/allreduce_table.py`; TRT-LLM; log-log
  interpolation), else `2 (tp-1)/tp * bytes` at half the bidirectional link figure times
  `LINK_EFF`, plus a fixed latency per call, times `comm_scale`. A TP group larger than the NVLink
  domain (`nvlink_domain`: the node, or GB200's rack) rings over the scale-out NICs instead
  (`scaleout_links`, at `SCALEOUT_EFF`, plus `SCALEOUT_LATENCY_US`, without `comm_scale`); its
  all-to-alls and the hand-offs of pipeline stages on different nodes take the NIC figures too
  (`_link_of`), still times `comm_scale`. MoE layers with `ep > 1` replace the MLP all-reduce by an
  all-to-all dispatch + combine of `2 * T * k * hidden * act_bytes * (ep-1)/ep**2` bytes per GPU
  (each EP rank routes its 1/ep share of the tokens; act_bytes 1 for fp8 models, else 2) plus an
  all-reduce over the `tp/ep` expert-TP group when that is > 1. The all-to-all is scaled by `a2a_scale` and
  `comm_scale` (as are the pipeline hand-offs).
- overhead: a per-step `step_overhead_ms` plus `layer_overhead_ms` per layer, plus
  `mla_layer_overhead_ms` per MLA layer and `moe_layer_overhead_ms` per MoE layer (per backend;
  `BackendProfile.layers_overhead_ms`).

Pipeline: a worker's `b` sequences are `pp` micro-batches of `b / pp` in flight at once (fewer
when `b < pp`), as TRT-LLM's executor keeps them (`max_batch_size` per micro-batch, `pp` of them
active) and as AIConfigurator 0.12 counts them (`run_agg`/`run_static`: concurrency and
throughput x `pp`, probed 2026-11-30: DeepSeek-V3 TP 8 x PP 2 at its batch 16 is 32 sequences).
A micro-batch passes every stage in turn, `pp * stage(b / pp) + (pp-1) * handoff`, where a
handoff sends its activations to the next stage (fixed latency + bytes at the one-way link
rate); meanwhile the other micro-batches occupy the other stages. So every sequence gets a token
per pass (ITL), the worker emits `b` tokens per pass, and the same holds for prefill. `batch_size`
is always the worker's sequences in flight; per GPU the KV cache holds its stage's layers for all
of them. The search uses pipelining only for models that do not fit one node.

Modes.
- static: TTFT = prefill of all `batch_size` prompts; ITL = mean decode step over the `osl - 1`
  steps as context grows from isl + 1 to isl + osl - 1 (at most `MAX_ITL_SAMPLES` evenly spaced
  steps are evaluated); tokens/s/GPU = batch * osl / (TTFT + (osl-1) ITL) / GPUs.
- agg (steady-state in-flight batching at concurrency `batch_size` = b, AIConfigurator 0.12's
  mean-field schedule from `run_agg` with one prompt per step): of a request's `osl` iterations,
  b are mixed steps (one prompt of `isl` tokens prefilled beside b - 1 decodes at the mean context
  `isl + osl/2`; `mixed_step_ms`) and `osl - b` decode-only steps of b sequences. ITL = the mean
  step over those iterations (TRT-LLM/SGLang leave `agg_tpot_mix_discount` mixed steps out);
  TTFT = (mixed step + the backend's per-layer prefill dispatch) times its queueing factor
  `min(agg_queue_base + agg_queue_per_seq * b + agg_queue_per_doubling * log2 b, agg_queue_cap)`
  (prompts arriving together wait for each other's prefill; the constants are AIC's per backend,
  see `BACKENDS`). tokens/s/GPU = b (osl - 1) output tokens over the time of all the steps, the
  mixed ones ITL leaves out included (AIC's run_agg; vLLM: at most b (osl - 1) per request
  latency), / GPUs (ITL is reported as 0 when osl is 1). The lm_head is charged to the
  bottleneck stage.
  `agg_ms` computes this vectorised over batch; `sim.profile`'s (TP, batch) grid calls it too, so
  profile() and estimate(mode="agg") report the same figures for the same point.

Memory per GPU: `sim._memory` (the backend's own rule for its KV cache: TRT-LLM's fraction of the
memory left after weights and reserves, vLLM's and SGLang's of the total). `max_batch_size`
sequences of `isl + osl` tokens fit in it; `fits` when `batch_size <= max_batch_size`;
`memory_gb` is weights + reserves + the batch's KV.

Not modelled here: attention DP (DEP workers are `sim._dep`'s, used by the profile's search, not
by `estimate`), fp8 KV cache, routing skew beyond uniform top-k, gpt-oss sliding-window layers,
speculative decoding / MTP, chunked context (several prompts per mixed step).

Failure semantics: bad arguments raise `EstimateError` (a `ValueError`) naming the argument and the
valid values; for valid arguments every output is finite.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dgdr.domain.errors import EstimateError
from dgdr.domain.spec import GPU_SKUS

from ._catalog import (
    BYTES_PER_PARAM,
    Gpu,
    ModelArch,
    catalog_model,
    gpu_named,
    models,
    nvlink_domain,
    scaleout_links,
)
from ._memory import activation_reserve_bytes, kv_room_bytes
from ._moe_kernels import Excess, excess_ms, kernel_excess
from ._routing import busiest_rank, routing_alpha

FloatArray = NDArray[np.float64]

MODES = ("static", "agg")
LINK_EFF = 0.7  # fraction of the one-way link bandwidth reached by collectives
ALLREDUCE_LATENCY_US = {"nvlink": 8.0, "infinity_fabric": 12.0, "pcie": 25.0}
# a collective whose group leaves the NVLink domain: the scale-out network's per-call latency
# (RDMA round trips of a ring or tree over the NICs) on top of the ring's bytes at SCALEOUT_EFF of
# the NIC rate; fitted by eye to AIC 0.12's TP 16 figures for Llama-3.1-70B on two H100 nodes
# (about 3 ms per 64 MB all-reduce, 60-90 us per 0.3 MB one), not scaled by the NVLink fit's
# `comm_scale`
SCALEOUT_LATENCY_US = 50.0
SCALEOUT_EFF = 0.85
MAX_ITL_SAMPLES = 1024


@dataclass(frozen=True)
class BackendProfile:
    """Per-backend scaling of the roofline. The four positional fields are the built-in
    assumptions; the optional ones refine them (None: fall back to the coarser field) and are set
    by the calibration against AIC's measured-silicon database (`sim/data/calibration.json`)."""

    compute_eff: float  # fraction of peak tensor FLOP/s reached by GEMMs (decode steps)
    memory_eff: float  # fraction of peak HBM bandwidth reached by weight reads
    step_overhead_ms: float  # scheduler + sampling + launch per decode step
    layer_overhead_ms: float  # per decoder layer per decode step (kernel launches, norms, rope)
    prefill_compute_eff: float | None = None  # GEMMs in prefill (None: compute_eff)
    attn_eff: float | None = None  # attention FLOPs (None: compute_eff)
    kv_memory_eff: float | None = None  # KV-cache reads (None: memory_eff)
    prefill_overhead_ms: float | None = None  # per prefill pass (None: step_overhead_ms)
    prefill_layer_overhead_ms: float | None = None  # per layer per prefill (None: layer_...)
    moe_eff: float | None = None  # routed-expert GEMMs and reads, relative to the rest (None: 1)
    moe_read_eff: float | None = None  # routed-expert weight reads alone (None: moe_eff)
    fp8_eff: float | None = None  # fp8 GEMMs, relative to the fp8 peak x GEMM eff (None: 1)
    a2a_scale: float = 1.0  # MoE all-to-all dispatch + combine, on top of comm_scale
    mla_eff: float | None = None  # MLA attention block (projections + core), relative (None: 1)
    mla_layer_overhead_ms: float = 0.0  # per MLA layer per pass (its extra kernels)
    moe_layer_overhead_ms: float = 0.0  # per MoE layer per pass (router, permute, unpermute)
    # expert-TP shards (ep < tp) of n = moe_intermediate / (tp / ep) columns run at
    # n / (n + expert_shard_cols) of a whole expert's efficiency (0: no loss)
    expert_shard_cols: float = 0.0
    # GEMMs whose per-GPU width is w = hidden / tp reach w / (w + gemm_shard_cols) of the GEMM
    # efficiency (0: no loss): narrower tensor-parallel shards fill the GPU less
    gemm_shard_cols: float = 0.0
    comm_scale: float = 1.0  # multiplies all-reduce / all-to-all / hand-off times
    # DEP workers (`sim._dep`: attention DP x wide EP run other kernels than a TP worker: DeepEP-
    # style dispatch, grouped expert GEMMs over many experts, all-heads MLA), fitted on DEP points
    # per model family (`bench/calibrate_dep.py`, `dep_profile`); None / 1.0: as a TP worker
    dep_moe_eff: float | None = None  # routed experts in a DEP decode step (None: moe_eff)
    dep_prefill_moe_eff: float | None = None  # the same in a prefill or mixed pass
    dep_attn_eff: float | None = None  # attention FLOPs and KV reads on a DEP rank, relative
    dep_a2a_scale: float = 1.0  # DEP all-to-all within the NVLink domain, on top of comm_scale
    dep_internode_a2a_scale: float = 1.0  # the same over the scale-out NICs (DEP across nodes)
    # agg scheduler (AIConfigurator 0.12's run_agg, per backend; set in BACKENDS, not fitted):
    # TTFT = (mixed step + agg_dispatch_ms_per_layer * layers)
    #        * min(agg_queue_base + agg_queue_per_seq * b + agg_queue_per_doubling * log2 b, cap)
    agg_queue_base: float = 1.85
    agg_queue_per_seq: float = 0.05
    agg_queue_per_doubling: float = 0.0
    agg_queue_cap: float = 4.0
    agg_dispatch_ms_per_layer: float = 0.0
    agg_tpot_mix_discount: float = 3.0  # mixed steps left out of ITL's average (TRT-LLM drain)
    agg_mix_decodes_per_osl: bool = True  # at b >= osl a mixed step decodes b // (b/osl) requests
    agg_littles_cap: bool = False  # throughput at most b (osl - 1) / request latency (vLLM)

    def effs(self, decode: bool) -> tuple[float, float, float, float]:
        """(GEMM FLOP/s eff, attention FLOP/s eff, weight-read eff, KV-read eff)."""
        gemm = self.compute_eff if decode else (self.prefill_compute_eff or self.compute_eff)
        return (
            gemm,
            self.attn_eff or self.compute_eff,
            self.memory_eff,
            self.kv_memory_eff or self.memory_eff,
        )

    def layers_overhead_ms(self, model: ModelArch, layers: float, decode: bool) -> float:
        """Fixed cost of `layers` decoder layers of `model` in one pass: the per-layer overhead,
        plus the MLA and MoE layers' own (their share of `layers`)."""
        share = layers / model.num_hidden_layers
        return (
            layers * self.overheads(decode)[1]
            + (layers if model.is_mla else 0.0) * self.mla_layer_overhead_ms
            + model.moe_layers * share * self.moe_layer_overhead_ms
        )

    def overheads(self, decode: bool) -> tuple[float, float]:
        """(per pass ms, per layer ms)."""
        if decode:
            return self.step_overhead_ms, self.layer_overhead_ms
        step = self.prefill_overhead_ms
        layer = self.prefill_layer_overhead_ms
        return (
            self.step_overhead_ms if step is None else step,
            self.layer_overhead_ms if layer is None else layer,
        )


# The agg scheduler fields follow aiconfigurator_core 0.12.0 sdk/backends: the base defaults
# (base_backend.py `_ttft_queuing_factor` min(2 + (b - 3)/20, 4), `_tpot_mix_steps` for TRT-LLM
# and SGLang max(1, mix - 3)) and vLLM's overrides (vllm_backend.py: queuing 1 + log2(b)/8 capped
# at 2, a prefill dispatch of 0.8 ms per layer, every mixed step in TPOT, b - 1 decodes per step,
# throughput capped by Little's law).
_VLLM_AGG: dict[str, Any] = {
    "agg_queue_base": 1.0,
    "agg_queue_per_seq": 0.0,
    "agg_queue_per_doubling": 0.125,
    "agg_queue_cap": 2.0,
    "agg_dispatch_ms_per_layer": 0.8,
    "agg_tpot_mix_discount": 0.0,
    "agg_mix_decodes_per_osl": False,
    "agg_littles_cap": True,
}
BACKENDS: dict[str, BackendProfile] = {
    "trtllm": BackendProfile(0.55, 0.75, 1.0, 0.015),
    "vllm": BackendProfile(0.5, 0.7, 1.5, 0.02, **_VLLM_AGG),
    "sglang": BackendProfile(0.5, 0.72, 1.3, 0.02),
}

CALIBRATION_FILE = "calibration.json"
_FIELDS = {f.name for f in dataclasses.fields(BackendProfile)}


DEP_FIELDS = frozenset(f for f in _FIELDS if f.startswith("dep_"))


def _load_calibration() -> tuple[
    dict[tuple[str, str], BackendProfile], str, dict[tuple[str, str, str, str], dict[str, Any]]
]:
    """Fitted profiles keyed (backend, gpu id or "*"), a one-line provenance, and the DEP
    workers' fitted fields (`_dep_profiles`). A missing file means the built-in assumptions; a
    malformed one is a packaging bug and raises ValueError."""
    path = resources.files("sim") / "data" / CALIBRATION_FILE
    if not path.is_file():
        return {}, "built-in assumptions (no calibration file)", {}
    data = json.loads(path.read_text())
    out: dict[tuple[str, str], BackendProfile] = {}
    for key, fields in data["profiles"].items():
        backend, _, gpu = key.partition("/")
        unknown = set(fields) - _FIELDS
        if backend not in BACKENDS or not gpu or unknown:
            raise ValueError(f"{CALIBRATION_FILE}: bad profile {key!r} (unknown: {unknown})")
        out[(backend, gpu)] = dataclasses.replace(BACKENDS[backend], **fields)
    prov = data.get("provenance", {})
    source = f"fitted against {prov.get('aic_version', '?')} on {prov.get('date', '?')}"
    return out, source, _dep_profiles(data.get("dep_profiles", {}))


def _dep_profiles(
    section: dict[str, dict[str, Any]],
) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """The DEP workers' fitted fields (`bench/calibrate_dep.py`), keyed (backend, gpu id or "*",
    model family as `sim._margin.family` names it, "agg", "disagg" or "prefill": fitted on
    aggregated points, or on disaggregated decode or prefill workers' for those of a
    disaggregated config; the file's keys "backend/gpu/family[/disagg|/prefill]"); none when the
    file has no such section."""
    out: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for key, fields in section.items():
        backend, gpu, family, mode, *rest = [*key.split("/"), "", "", "", ""]
        unknown = set(fields) - DEP_FIELDS
        if (
            backend not in BACKENDS
            or not gpu
            or not family
            or mode not in ("", "disagg", "prefill")
            or any(rest)
            or unknown
        ):
            raise ValueError(f"{CALIBRATION_FILE}: bad DEP profile {key!r} (unknown: {unknown})")
        out[(backend, gpu, family, mode or "agg")] = {k: float(v) for k, v in fields.items()}
    return out


CALIBRATED, CALIBRATION_SOURCE, DEP_CALIBRATED = _load_calibration()


DEP_ROLES = ("agg", "disagg", "prefill")


def dep_profile(backend: str, gpu_id: str, family: str, *, role: str = "agg") -> BackendProfile:
    """`backend_profile` with the DEP fields fitted for this model family on this GPU, else for
    this family on the backend's other GPUs ("*"), else none (as a TP worker). `role`: "agg",
    fitted on aggregated workers; "disagg", on disaggregated decode workers (a DEP worker's pure
    decode step, which aggregated points, dominated by their mixed prefill steps at long
    prompts, leave loose); "prefill", on disaggregated prefill workers (AIC prices their
    all-to-all across nodes otherwise than an aggregated worker's, `bench/calibrate_dep.py`);
    a role without a fit of its own takes the aggregated one."""
    if role not in DEP_ROLES:
        raise ValueError(f"DEP role {role!r}; valid: {', '.join(DEP_ROLES)}")
    fields: dict[str, Any] = {}
    for mode in dict.fromkeys((role, "agg")):
        fields = DEP_CALIBRATED.get((backend, gpu_id, family, mode)) or DEP_CALIBRATED.get(
            (backend, "*", family, mode), {}
        )
        if fields:
            break
    return dataclasses.replace(backend_profile(backend, gpu_id), **fields)


ALLREDUCE_FILE = "allreduce.json"


def _load_allreduce() -> dict[tuple[str, str], dict[int, tuple[FloatArray, FloatArray]]]:
    """AIC's measured all-reduce latencies (`bench/allreduce_table.py`), keyed (backend, gpu id),
    then TP size: (log message bytes, log ms), ascending. A missing file means the link model."""
    path = resources.files("sim") / "data" / ALLREDUCE_FILE
    if not path.is_file():
        return {}
    out: dict[tuple[str, str], dict[int, tuple[FloatArray, FloatArray]]] = {}
    for key, per_tp in json.loads(path.read_text())["tables"].items():
        backend, _, gpu = key.partition("/")
        out[(backend, gpu)] = {
            int(tp): (
                np.log(np.array([r[0] for r in rows], dtype=np.float64)),
                np.log(np.array([r[1] for r in rows], dtype=np.float64)),
            )
            for tp, rows in per_tp.items()
        }
    return out


ALLREDUCE_TABLES = _load_allreduce()


def calibration_source() -> str:
    """Where `estimate`'s efficiency factors and overheads come from."""
    return CALIBRATION_SOURCE


def backend_profile(backend: str, gpu_id: str) -> BackendProfile:
    """The calibrated profile for this backend on this GPU, else the backend's calibrated
    default for uncalibrated GPUs, else the built-in assumption."""
    return CALIBRATED.get((backend, gpu_id)) or CALIBRATED.get((backend, "*")) or BACKENDS[backend]


ESTIMATORS = ("builtin", "aic")


@dataclass(frozen=True)
class Estimate:
    """One estimated operating point; times in ms, memory in GB (1e9 B) per GPU."""

    model: str
    gpu_sku: str
    backend: str
    mode: str
    tp: int
    pp: int
    ep: int
    batch_size: int
    isl: int
    osl: int
    num_gpus: int
    ttft_ms: float
    itl_ms: float  # 0.0 when osl == 1 (no decode step)
    request_latency_ms: float  # ttft + (osl - 1) * itl
    tokens_per_s_per_gpu: float
    tokens_per_s_per_user: float  # 1000 / itl (1000 / ttft when osl == 1)
    memory_gb: float  # weights + activation reserve + KV for batch_size * (isl + osl) tokens
    weights_gb: float
    kv_cache_gb: float
    max_batch_size: int  # sequences of isl + osl tokens whose KV fits next to the weights
    fits: bool
    # of a decode step at batch_size: what AIC's measured MoE kernel ran over its smooth curve at
    # the step's routed tokens (`sim._moe_kernels`); 0.0 where it measured none (or dense models)
    moe_kernel_excess_ms: float = 0.0


@dataclass(frozen=True)
class _Plan:
    """Per-GPU quantities of one parallel configuration (bottleneck pipeline stage)."""

    model: ModelArch
    gpu: Gpu
    backend: BackendProfile
    backend_id: str  # "trtllm", "vllm" or "sglang": the engine's memory rule (`sim._memory`)
    tp: int
    pp: int
    ep: int
    stage_layers: int
    share: float  # stage_layers / layers
    non_expert_bytes: float  # attention, dense MLP, shared experts, routers (per GPU; not MLA's)
    mla_params: float  # MLA attention projections one token multiplies on one GPU (stage)
    mla_bytes: float  # their weights on one GPU
    expert_bytes_each: float  # one routed expert of one layer, per GPU (/ tp)
    stage_moe_layers: float
    head_bytes: float  # lm_head read per decode step (per GPU)
    weights_bytes: float
    kv_bytes_per_token: float  # per GPU, stage layers
    linear_tflops: float
    act_bytes: float
    allreduce: dict[int, tuple[FloatArray, FloatArray]]  # TP size -> measured (log bytes, log ms)
    domain: int  # GPUs in one NVLink domain (`nvlink_domain`)
    scaleout_bytes_per_s: float  # one-way NIC bandwidth per GPU, at SCALEOUT_EFF
    moe_excess: Excess | None  # the measured MoE kernel's regressions (`sim._moe_kernels`)


def _plan(model: ModelArch, gpu: Gpu, backend: str, tp: int, pp: int, ep: int) -> _Plan:
    L = model.num_hidden_layers
    stage_layers = math.ceil(L / pp)
    share = stage_layers / L
    body_bpp = model.body_weight_bytes_per_param
    mla = mla_params_per_gpu(model, tp) * stage_layers
    mla_split = model.attn_params * stage_layers * body_bpp if model.is_mla else 0.0
    non_expert = (model.non_expert_body_params * body_bpp * share - mla_split) / tp
    expert_each = model.expert_params * model.expert_weight_bytes_per_param / tp
    stage_moe_layers = model.moe_layers * share
    experts_all = stage_moe_layers * model.num_experts * expert_each
    head = model.lm_head_params * float(BYTES_PER_PARAM) / tp
    vocab = model.vocab_weight_bytes / tp
    if pp > 1:  # embedding on the first stage, lm_head on the last
        vocab = model.embedding_params * float(BYTES_PER_PARAM) / tp
    if model.is_mla:
        kv_elems = float(model.kv_elements_per_token_per_layer)
    else:
        kv_elems = 2.0 * math.ceil(model.num_key_value_heads / tp) * model.head_dim
    return _Plan(
        model=model,
        gpu=gpu,
        backend=backend_profile(backend, gpu.id),
        backend_id=backend,
        tp=tp,
        pp=pp,
        ep=ep,
        stage_layers=stage_layers,
        share=share,
        non_expert_bytes=non_expert,
        mla_params=mla,
        mla_bytes=mla * body_bpp,
        expert_bytes_each=expert_each,
        stage_moe_layers=stage_moe_layers,
        head_bytes=head,
        weights_bytes=non_expert + mla * body_bpp + experts_all + vocab,
        kv_bytes_per_token=stage_layers * kv_elems * BYTES_PER_PARAM,
        linear_tflops=linear_tflops(model, gpu),
        act_bytes=activation_bytes(model),
        allreduce=ALLREDUCE_TABLES.get((backend, gpu.id), {}),
        domain=nvlink_domain(gpu),
        scaleout_bytes_per_s=scaleout_links(gpu.id)[0] * 1e9 * SCALEOUT_EFF,
        moe_excess=kernel_excess(model, gpu.id, backend, tp // ep, ep),
    )


def linear_tflops(model: ModelArch, gpu: Gpu) -> float:
    """Dense TFLOP/s of the GEMMs: the fp8 tensor cores for an fp8 (or NVFP4) checkpoint on a GPU
    that has them, else bf16."""
    fp8 = model.fp8_compute and gpu.dense_fp8_tflops is not None
    return gpu.dense_fp8_tflops if fp8 and gpu.dense_fp8_tflops else gpu.dense_bf16_tflops


def activation_bytes(model: ModelArch) -> float:
    """Bytes per activation element: 1 for an fp8 (or NVFP4) checkpoint, else 2 (bf16)."""
    return 1.0 if model.fp8_compute else 2.0


def mla_params_per_gpu(model: ModelArch, tp: int) -> float:
    """MLA attention projections of one layer held by one of `tp` GPUs: the down-projections
    (q_a, kv_a) are replicated on every rank (TRT-LLM's fused_a, vLLM's and SGLang's
    ReplicatedLinear), the up- and output projections split `tp` ways. 0 for other attention."""
    if not model.is_mla:
        return 0.0
    down = model.hidden_size * (model.q_lora_rank + model.kv_lora_rank + model.qk_rope_head_dim)
    return down + (model.attn_params - down) / tp


def gemm_width_eff(be: BackendProfile, model: ModelArch, tp: int) -> float:
    """Share of the GEMM efficiency a tensor-parallel shard reaches: w / (w + `gemm_shard_cols`)
    for a per-GPU width w = hidden / tp (1 when the profile has no such loss)."""
    cols = be.gemm_shard_cols
    if cols <= 0.0:
        return 1.0
    width = model.hidden_size / tp
    return width / (width + cols)


def expert_shard_eff(be: BackendProfile, model: ModelArch, expert_tp: int) -> float:
    """Efficiency of routed-expert GEMMs split `expert_tp` ways, relative to whole experts: a
    shard of n columns reaches n / (n + `expert_shard_cols`) where a whole expert reaches
    N / (N + `expert_shard_cols`); 1 when experts are not split (EP = TP)."""
    cols = be.expert_shard_cols
    if expert_tp <= 1 or cols <= 0.0:
        return 1.0
    whole = float(model.moe_intermediate_size)
    shard = whole / expert_tp
    return (shard / (shard + cols)) / (whole / (whole + cols))


def _attn_dims(model: ModelArch, decode: bool) -> float:
    """d_qk + d_v of one head for the attention FLOPs."""
    if not model.is_mla:
        return 2.0 * model.head_dim
    if decode:  # absorbed: scores against the latent + rope key, output in the latent space
        return 2.0 * model.kv_lora_rank + model.qk_rope_head_dim
    return float(model.qk_nope_head_dim + model.qk_rope_head_dim + model.v_head_dim)


def _link_bytes_per_s(gpu: Gpu) -> float:
    return gpu.interconnect_gbps / 2.0 * 1e9 * LINK_EFF


def _allreduce_ms(plan: _Plan, group: int, message: FloatArray) -> FloatArray | float:
    """One all-reduce of `message` bytes over `group` GPUs: AIC's measured latency interpolated
    log-log (`ALLREDUCE_TABLES`, extrapolated at the end slopes' bandwidth), else the link model
    times the profile's `comm_scale`; a group larger than the NVLink domain rings over the
    scale-out NICs."""
    if group <= 1:
        return 0.0
    across = group > plan.domain
    measured = None if across else plan.allreduce.get(group)
    if measured is not None:
        log_bytes, log_ms = measured
        x = np.log(np.maximum(message, 1.0))
        inside = np.exp(np.interp(x, log_bytes, log_ms))
        # beyond the largest measured message: linear in bytes at the last point's bandwidth
        beyond = np.exp(log_ms[-1]) * np.exp(x - log_bytes[-1])
        return np.where(x > log_bytes[-1], beyond, inside)
    latency, link = _link_of(plan, group)
    ring = latency + 2.0 * (group - 1) / group * message / link * 1e3
    # `comm_scale` is fitted to the NVLink figures; the scale-out ones stand as they are
    return ring if across else plan.backend.comm_scale * ring


def _stage_ms(
    plan: _Plan,
    tokens: FloatArray,
    seqs: FloatArray,
    pairs: FloatArray,
    kv_tokens: FloatArray,
    decode: bool,
) -> FloatArray:
    """One pipeline stage's forward on one GPU: `tokens` new tokens of `seqs` sequences,
    `pairs` (query, key) attention pairs, `kv_tokens` tokens of KV read or written."""
    m, gpu, be = plan.model, plan.gpu, plan.backend
    gemm_eff, attn_eff, weight_eff, kv_eff = be.effs(decode)
    fp8 = plan.linear_tflops > gpu.dense_bf16_tflops
    peak_linear = (
        plan.linear_tflops
        * 1e12
        * gemm_eff
        * ((be.fp8_eff or 1.0) if fp8 else 1.0)
        * gemm_width_eff(be, m, plan.tp)
    )
    peak_attn = gpu.dense_bf16_tflops * 1e12 * attn_eff
    bw = gpu.memory_bandwidth_gbps * 1e9 * weight_eff
    kv_bw = gpu.memory_bandwidth_gbps * 1e9 * kv_eff

    routed_params = m.moe_layers * m.num_experts_per_tok * m.expert_params
    mla_body = m.attn_params * m.num_hidden_layers if m.is_mla else 0
    dense_params = m.active_body_params - routed_params - mla_body
    linear_flops = 2.0 * (dense_params * plan.share * tokens + m.lm_head_params * seqs) / plan.tp
    gemm_s = np.maximum(linear_flops / peak_linear, (plan.non_expert_bytes + plan.head_bytes) / bw)
    if m.num_experts:  # routed experts: grouped GEMMs at their own efficiency, busiest EP rank
        shard = expert_shard_eff(be, m, plan.tp // plan.ep)
        moe_eff = (be.moe_eff or 1.0) * shard
        read_eff = (be.moe_read_eff or be.moe_eff or 1.0) * shard
        k, alpha = m.num_experts_per_tok, routing_alpha(m.is_mla)
        assignments, touched = busiest_rank(m.num_experts, k, tokens, plan.ep, alpha)
        expert_flops = 2.0 * m.expert_params * plan.stage_moe_layers * assignments / plan.tp
        expert_bytes = plan.stage_moe_layers * touched * plan.expert_bytes_each
        gemm_s = gemm_s + np.maximum(
            expert_flops / (peak_linear * moe_eff), expert_bytes / (bw * read_eff)
        )
        gemm_s = gemm_s + plan.stage_moe_layers * excess_ms(plan.moe_excess, tokens) * 1e-3
    mla_eff = (be.mla_eff or 1.0) if m.is_mla else 1.0
    if m.is_mla:  # MLA projections: replicated down-projections, split up-projections
        mla_flops = 2.0 * plan.mla_params * tokens
        gemm_s = gemm_s + np.maximum(
            mla_flops / (peak_linear * mla_eff), plan.mla_bytes / (bw * mla_eff)
        )

    attn_flops = (
        2.0 * m.num_attention_heads * _attn_dims(m, decode) * plan.stage_layers * pairs / plan.tp
    )
    attn_s = np.maximum(
        attn_flops / (peak_attn * mla_eff), kv_tokens * plan.kv_bytes_per_token / kv_bw
    )

    message = tokens * m.hidden_size * 2.0
    layers = float(plan.stage_layers)
    moe_layers = plan.stage_moe_layers
    comm = layers * _allreduce_ms(plan, plan.tp, message)  # after attention
    if plan.ep > 1:
        comm = comm + (layers - moe_layers) * _allreduce_ms(plan, plan.tp, message)
        a2a_bytes = (
            2.0
            * tokens
            * m.num_experts_per_tok
            * m.hidden_size
            * plan.act_bytes
            * (plan.ep - 1)
            / plan.ep**2
        )
        latency, link = _link_of(plan, plan.tp)
        a2a = (2.0 * latency + a2a_bytes / link * 1e3) * be.a2a_scale
        a2a = be.comm_scale * a2a
        comm = comm + moe_layers * (a2a + _allreduce_ms(plan, plan.tp // plan.ep, message))
    else:
        comm = comm + layers * _allreduce_ms(plan, plan.tp, message)  # after the MLP
    compute_ms = (gemm_s + attn_s) * 1e3
    overhead = be.layers_overhead_ms(m, layers, decode)
    return np.asarray(compute_ms + comm + overhead, dtype=np.float64)


def _handoff_ms(plan: _Plan, tokens: FloatArray) -> FloatArray | float:
    if plan.pp <= 1:
        return 0.0
    latency, link = _link_of(plan, plan.tp * plan.pp)
    return latency + tokens * plan.model.hidden_size * 2.0 / link * 1e3


def _through_stages(plan: _Plan, stage: FloatArray, tokens: FloatArray) -> FloatArray:
    """A pass of `tokens` through every pipeline stage in turn (each `stage` ms), with a hand-off
    of its activations between consecutive stages."""
    return plan.pp * stage + (plan.pp - 1) * plan.backend.comm_scale * _handoff_ms(plan, tokens)


def _link_of(plan: _Plan, gpus: int) -> tuple[float, float]:
    """(latency ms, one-way bytes/s) of the link `gpus` GPUs of one worker talk over: the
    interconnect within the NVLink domain, the scale-out NICs beyond it."""
    if gpus > plan.domain:
        return SCALEOUT_LATENCY_US * 1e-3, plan.scaleout_bytes_per_s
    return ALLREDUCE_LATENCY_US[plan.gpu.interconnect] * 1e-3, _link_bytes_per_s(plan.gpu)


def prefill_ms(plan: _Plan, batch: float, isl: float) -> float:
    """Static prefill of `batch` prompts of `isl` tokens through every pipeline stage."""
    tokens = np.asarray(batch * isl)
    stage = _stage_ms(
        plan,
        tokens,
        np.asarray(float(batch)),
        np.asarray(batch * isl * (isl + 1.0) / 2.0),
        tokens,
        decode=False,
    )
    return float(_through_stages(plan, stage, tokens)) + plan.backend.overheads(decode=False)[0]


def decode_step_ms(
    plan: _Plan,
    batch: ArrayLike,
    context: ArrayLike,
    admitted: ArrayLike = 0.0,
    isl: float = 0.0,
) -> FloatArray:
    """One decode step of `batch` sequences at `context` tokens, with `admitted` prompts of `isl`
    tokens prefilled inside the step (in-flight batching); broadcasts over batch, context and
    admitted."""
    ctx = np.asarray(context, dtype=np.float64)
    b = np.asarray(batch, dtype=np.float64)
    new = np.asarray(admitted, dtype=np.float64)
    tokens = np.asarray(b + new * isl)
    pairs = b * ctx + new * isl * (isl + 1.0) / 2.0
    kv = b * ctx + new * isl
    stage = _stage_ms(plan, tokens, np.asarray(b + new), pairs, kv, decode=True)
    step = _through_stages(plan, stage, tokens)
    return np.asarray(step + plan.backend.step_overhead_ms, dtype=np.float64)


def mixed_step_ms(plan: _Plan, decodes: ArrayLike, context: float, isl: float) -> FloatArray:
    """One in-flight-batching forward pass: one prompt of `isl` tokens prefilled while `decodes`
    sequences decode one token each at `context` tokens (broadcasts over decodes). With no decodes
    it is `prefill_ms(plan, 1, isl)`; the pass is priced as prefill (its prompt dominates)."""
    d = np.asarray(decodes, dtype=np.float64)
    tokens = np.asarray(isl + d)
    pairs = isl * (isl + 1.0) / 2.0 + d * context
    kv = isl + d * context
    stage = _stage_ms(plan, tokens, np.asarray(1.0 + d), pairs, kv, decode=False)
    step = _through_stages(plan, stage, tokens)
    return np.asarray(step + plan.backend.overheads(decode=False)[0], dtype=np.float64)


def micro_batches(plan: _Plan, batch: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(micro-batches in flight, sequences in each) for a worker of `batch` sequences: `pp` of
    them (fewer when `batch < pp`), one when the worker is not pipelined (module docstring)."""
    b = np.maximum(np.asarray(batch, dtype=np.float64), 1.0)
    groups = np.minimum(b, float(plan.pp))
    return groups, b / groups


def agg_ms(plan: _Plan, batch: ArrayLike, isl: float, osl: float) -> InFlight:
    """Steady-state in-flight batching at concurrency `batch` (broadcasts): TTFT and ITL in ms and
    the worker's output tokens/s. The one agg model, shared by `estimate(mode="agg")` and
    `sim.profile`'s grid (and, per attention rank, by `sim._dep`), through `in_flight`; a
    pipelined worker runs it per micro-batch (`micro_batches`), all of them in flight."""
    groups, b = micro_batches(plan, batch)
    context = isl + osl / 2.0
    one = in_flight(
        plan.backend,
        plan.model,
        b,
        osl,
        lambda decodes: mixed_step_ms(plan, decodes, context, isl),
        decode_step_ms(plan, b, context),
    )
    return one._replace(tokens_per_s=one.tokens_per_s * groups)


class InFlight(NamedTuple):
    """`in_flight`'s figures, broadcast over the batch sizes."""

    ttft_ms: FloatArray
    itl_ms: FloatArray
    tokens_per_s: FloatArray  # output tokens/s of the worker (of one rank for `sim._dep`)


def in_flight(
    be: BackendProfile,
    model: ModelArch,
    b: FloatArray,
    osl: float,
    mixed_of: Callable[[FloatArray], FloatArray],
    gen: FloatArray,
) -> InFlight:
    """AIConfigurator's mean-field in-flight schedule (run_agg, ctx_tokens = isl) for `b` (>= 1)
    requests at once: over the `osl` iterations of a request, `b` are mixed steps (one prompt
    prefilled next to the other requests' decodes: `mixed_of(decodes)`) and `osl - b` decode-only
    steps (`gen`). TTFT is the mixed step (plus the backend's dispatch) times the backend's
    queueing factor: prompts arriving together wait for each other's prefill. ITL is the mean step
    over the iterations (TRT-LLM/SGLang leave the last mixed steps out: the drain at the
    context/decode boundary). Throughput counts every step, the drained mixed ones too:
    `b * (osl - 1)` tokens per `b` mixed and `osl - b` decode-only steps (at least one token per
    request when osl is 1); vLLM caps it at Little's law over the request latency."""
    iterations = max(float(osl), 1.0)
    saturated = b >= iterations  # every step carries a prompt
    # TRT-LLM/SGLang: b // (b / osl) decodes per mixed step; vLLM: b - 1
    decodes_sat = np.floor(b / (b / iterations)) if be.agg_mix_decodes_per_osl else b - 1.0
    mixed = mixed_of(np.where(saturated, decodes_sat, b - 1.0))
    first = b <= 1.0
    mix_weight = np.where(
        first, 0.0, np.where(saturated, b, np.maximum(1.0, b - be.agg_tpot_mix_discount))
    )
    gen_steps = np.where(first, iterations - 1.0, np.where(saturated, 0.0, iterations - b))
    total = mix_weight + gen_steps
    itl = np.where(total > 0, (mixed * mix_weight + gen * gen_steps) / np.maximum(total, 1.0), gen)
    queue = np.minimum(
        be.agg_queue_base + be.agg_queue_per_seq * b + be.agg_queue_per_doubling * np.log2(b),
        be.agg_queue_cap,
    )
    dispatch = be.agg_dispatch_ms_per_layer * model.num_hidden_layers
    ttft = (mixed + dispatch) * queue
    tokens = b * max(float(osl) - 1.0, 1.0)
    mix_steps = np.where(first, 1.0, b)
    elapsed = mixed * mix_steps + gen * np.maximum(iterations - mix_steps, 0.0)
    rate = tokens * 1e3 / elapsed
    if be.agg_littles_cap:
        rate = np.minimum(rate, tokens * 1e3 / (ttft + itl * max(float(osl) - 1.0, 0.0)))
    return InFlight(
        np.asarray(ttft, dtype=np.float64),
        np.asarray(itl, dtype=np.float64),
        np.asarray(rate, dtype=np.float64),
    )


def _int_arg(name: str, value: object, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise EstimateError(name, f"must be an integer >= {low}, got {value!r}")
    return int(value)


def _divisors(n: int, limit: int = 1024) -> str:
    return ", ".join(str(d) for d in range(1, min(n, limit) + 1) if n % d == 0)


def resolve_model(model: str | ModelArch) -> ModelArch:
    """A catalog model by its id (case-insensitive) for the public string argument, else
    `EstimateError` naming `model`; a `ModelArch` is used as given."""
    if isinstance(model, ModelArch):
        return model
    found = catalog_model(model) if isinstance(model, str) else None
    if found is None:
        raise EstimateError(
            "model", f"unknown model {model!r}; known models: {', '.join(sorted(models()))}"
        )
    return found


def resolve_gpu(gpu_sku: str | Gpu) -> Gpu:
    """The catalog GPU for the public string argument (a SKU id or a product name), else
    `EstimateError` naming `gpu_sku`; a `Gpu` is used as given."""
    if isinstance(gpu_sku, Gpu):
        return gpu_sku
    if not isinstance(gpu_sku, str):
        raise EstimateError(
            "gpu_sku", f"unknown GPU SKU {gpu_sku!r}; valid SKUs: {', '.join(GPU_SKUS)}"
        )
    try:
        return gpu_named(gpu_sku)
    except ValueError as exc:
        raise EstimateError("gpu_sku", str(exc)) from None


def _resolve(
    model: str | ModelArch, gpu_sku: str | Gpu, backend: str, mode: str
) -> tuple[ModelArch, Gpu]:
    arch, gpu = resolve_model(model), resolve_gpu(gpu_sku)
    if backend not in BACKENDS:
        raise EstimateError(
            "backend", f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}"
        )
    if mode not in MODES:
        raise EstimateError("mode", f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    return arch, gpu


def _check_parallel(model: ModelArch, tp: int, pp: int, ep: int) -> None:
    heads, kvh = model.num_attention_heads, model.num_key_value_heads
    if heads % tp:
        raise EstimateError(
            "tp",
            f"tp={tp} must divide {model.id}'s {heads} attention heads; valid: {_divisors(heads)}",
        )
    if not model.is_mla and kvh % tp and tp % kvh:
        raise EstimateError(
            "tp",
            f"tp={tp} must divide or be a multiple of {model.id}'s {kvh} KV heads; valid: "
            + ", ".join(
                str(d) for d in range(1, heads + 1) if heads % d == 0 and not (kvh % d and d % kvh)
            ),
        )
    if pp > model.num_hidden_layers:
        raise EstimateError(
            "pp",
            f"pp={pp} exceeds {model.id}'s {model.num_hidden_layers} layers; valid: 1..{model.num_hidden_layers}",
        )
    if ep > 1 and not model.is_moe:
        raise EstimateError("ep", f"ep={ep} but {model.id} is dense (no experts); valid: 1")
    if model.is_moe and (model.num_experts % ep or tp % ep):
        valid = [d for d in range(1, tp + 1) if tp % d == 0 and model.num_experts % d == 0]
        raise EstimateError(
            "ep",
            f"ep={ep} must divide {model.id}'s {model.num_experts} experts and tp={tp} (experts "
            f"are spread over the tp GPUs of a stage); valid: {', '.join(map(str, valid))}",
        )


def estimate(
    model: str | ModelArch,
    gpu_sku: str | Gpu,
    backend: str = "trtllm",
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    batch_size: int = 1,
    isl: int = 4000,
    osl: int = 1000,
    mode: str = "static",
    estimator: str = "builtin",
) -> Estimate:
    """Roofline estimate of one configuration (see the module docstring for the model).
    `estimator="aic"` takes TTFT and ITL from NVIDIA AIConfigurator instead (the optional `aic`
    extra, imported only then; see `sim._aic`)."""
    if estimator not in ESTIMATORS:
        raise EstimateError(
            "estimator", f"unknown estimator {estimator!r}; valid: {', '.join(ESTIMATORS)}"
        )
    arch, gpu = _resolve(model, gpu_sku, backend, mode)
    tp, pp, ep = _int_arg("tp", tp), _int_arg("pp", pp), _int_arg("ep", ep)
    batch_size = _int_arg("batch_size", batch_size)
    isl, osl = _int_arg("isl", isl), _int_arg("osl", osl)
    _check_parallel(arch, tp, pp, ep)
    if isl + osl > arch.max_position_embeddings:
        raise EstimateError(
            "isl",
            f"isl + osl = {isl + osl} exceeds {arch.id}'s max context "
            f"{arch.max_position_embeddings}; valid: isl + osl <= {arch.max_position_embeddings}",
        )

    plan = _plan(arch, gpu, backend, tp, pp, ep)
    b = float(batch_size)
    _, micro_batch = micro_batches(plan, b)
    if mode == "static":
        ttft = prefill_ms(plan, float(micro_batch), float(isl))
        steps = osl - 1
        if steps > 0:
            n = min(steps, MAX_ITL_SAMPLES)
            ctx = isl + np.linspace(1.0, float(steps), n)
            itl = float(np.mean(decode_step_ms(plan, micro_batch, ctx)))
        else:
            itl = 0.0
        latency = ttft + steps * itl
        tps_gpu = b * osl / (latency / 1e3) / (tp * pp)
    else:
        agg = agg_ms(plan, b, float(isl), float(osl))
        ttft = float(agg.ttft_ms)
        itl = float(agg.itl_ms) if osl > 1 else 0.0  # osl 1: every step is prefill only
        latency = ttft + (osl - 1) * itl
        tps_gpu = float(agg.tokens_per_s) / (tp * pp)
    per_user = 1e3 / itl if osl > 1 else 1e3 / ttft

    reserve = activation_reserve_bytes(arch)
    kv_seq = plan.kv_bytes_per_token * (isl + osl)
    kv = kv_seq * b
    memory = plan.weights_bytes + reserve + kv
    budget = max(kv_room_bytes(arch, gpu, plan.weights_bytes, backend=backend, tp=tp, pp=pp), 0.0)
    max_batch = math.floor(budget / kv_seq)
    result_builtin = Estimate(
        model=arch.id,
        gpu_sku=gpu.id,
        backend=backend,
        mode=mode,
        tp=tp,
        pp=pp,
        ep=ep,
        batch_size=batch_size,
        isl=isl,
        osl=osl,
        num_gpus=tp * pp,
        ttft_ms=ttft,
        itl_ms=itl,
        request_latency_ms=latency,
        tokens_per_s_per_gpu=tps_gpu,
        tokens_per_s_per_user=per_user,
        memory_gb=memory / 1e9,
        weights_gb=plan.weights_bytes / 1e9,
        kv_cache_gb=kv / 1e9,
        max_batch_size=max_batch,
        fits=batch_size <= max_batch,
        moe_kernel_excess_ms=float(arch.moe_layers * excess_ms(plan.moe_excess, micro_batch)),
    )
    if estimator == "aic":
        from ._aic import aic_estimate

        result: Estimate = aic_estimate(result_builtin)
        return result
    return result_builtin
