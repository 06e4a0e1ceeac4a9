"""The naive fallback for a model nothing here can estimate, as Dynamo's rapid profiler falls back to
AIConfigurator's naive configuration when AIConfigurator does not support the model.

Owns: whether a model can be estimated (`can_estimate`: it is in the catalog, `spec.model` is a
path to a readable config.json, or a hub id whose config.json in the local Hugging Face cache maps
to an architecture; one there that lacks a figure, or whose layers or quantization the estimator
cannot use, leaves the model to the naive fallback, and every message says which
(`unestimated_reason`); one of an architecture that does not generate text is refused by name,
`model_refusal`), the weight size read from the model's name (`name_size`: the
parameter count it states, `235B`, `0.5B`, `135M`, `8x7B`; an active count such as `A22B`, or a
count followed by an experts tag such as Llama 4's `17B-16E`, is not the stored size; the weight
dtype it states: FP8/INT8 one byte, FP4/NVFP4/MXFP4/INT4/AWQ half a byte, else bf16), the naive
configuration (`naive_plan`: AIConfigurator's rule, the smallest power-of-two TP whose GPUs hold
1.5 x the weights, capped at one node and the budget; aggregated; `totalGpus // TP` replicas;
`backend: auto` deploys vllm, Dynamo's naive default), its DGD plan and its words: every message
says the SLA is unverified and why.

Failure semantics: `ProfilingError("Initializing", ...)` when the name states no parameter count
(AIConfigurator's naive generator refuses to guess the size of a model it cannot read either),
and when searchStrategy thorough (which simulates the model) or features.mocker (whose curves need
estimates) is asked for; `ProfilingError("SelectingConfig", ...)` when the weights alone exceed
the GPUs of the largest TP. When only the 1.5 x margin does not fit, the capped TP is deployed as
Dynamo does, and the message says so. Pure: no I/O beyond the local-path check of
`can_estimate`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from dgdr.domain.errors import ProfilingError
from dgdr.domain.hardware import ResolvedHardware
from dgdr.domain.spec import SLA, Backend, DGDRSpec, SearchStrategy

from ._catalog import Gpu, ModelArch, catalog_model, find_gpu, models
from ._dgd import WORKER_SERVICE, DgdPlan, WorkerShape, runtime_image
from ._hfcache import cached_config
from ._hfconfig import cached_model, local_config_path, model_from_config
from ._hffetch import needs_fetch
from ._message import ms
from ._modelpath import ModelDirs, local_model

NAIVE_BACKEND = "vllm"  # what `backend: auto` deploys (Dynamo's `_DEFAULT_NAIVE_BACKEND`)
MEMORY_MULTIPLIER = 1.5  # AIConfigurator's naive rule: TP x VRAM must hold 1.5 x the weights
_COUNT = re.compile(r"(?<![a-z0-9.])(a)?(?:(\d+)x)?(\d+(?:\.\d+)?)([mbt])(?![a-z0-9.])")
_EXPERTS_TAG = re.compile(r"^\d+e$")
_UNIT = {"m": 1e6, "b": 1e9, "t": 1e12}
_DTYPES = (
    ("fp8", 1.0, ("fp8", "int8", "w8a8", "w8a16", "8bit")),
    ("fp4", 0.5, ("fp4", "nvfp4", "mxfp4", "int4", "w4a16", "w4a8", "awq", "4bit")),
)


def can_estimate(model: str, model_dirs: ModelDirs = ()) -> bool:
    """Whether `profile` has the architecture of `model`: catalog id (any case), or a path to a
    config.json (or a directory holding one) that `model_dirs` allows reading
    (`sim._modelpath`). Otherwise it falls back to the naive config."""
    if catalog_model(model) is not None:
        return True
    if local_model(model, model_dirs) is None:  # a hub id: the local Hugging Face cache
        return isinstance(cached_model(model), ModelArch)
    return local_config_path(model, model_dirs) is not None


@dataclass(frozen=True)
class NameSize:
    """A model's size as its name states it."""

    params: float  # stored parameters
    dtype: str  # "bf16" | "fp8" | "fp4"
    bytes_per_param: float

    @property
    def weight_bytes(self) -> float:
        return self.params * self.bytes_per_param


def name_size(model: str) -> NameSize | None:
    """The stored parameters and weight dtype `model`'s name states; None without a count."""
    name = model.strip().rstrip("/").rsplit("/", 1)[-1].lower()
    tokens = re.split(r"[-_./]", name)
    counts: list[float] = []
    for m in _COUNT.finditer(name):
        after = name[m.end() :].lstrip("-_")
        if m.group(1) or _EXPERTS_TAG.match(re.split(r"[-_./]", after)[0] if after else ""):
            continue  # an active count: `A22B`, or Llama 4's `17B-16E`
        experts = int(m.group(2) or 1)
        counts.append(experts * float(m.group(3)) * _UNIT[m.group(4)])
    if not counts:
        return None
    dtype, width = "bf16", 2.0
    for label, size, names in _DTYPES:
        if any(t in names for t in tokens):
            dtype, width = label, size
            break
    return NameSize(params=max(counts), dtype=dtype, bytes_per_param=width)


@dataclass(frozen=True)
class NaivePlan:
    backend: str
    gpu: Gpu
    tp: int
    replicas: int
    required_tp: int  # the TP the 1.5 x rule asks for, before the cap
    max_tp: int  # one node, within the budget
    vram_bytes: float  # per GPU
    size: NameSize
    total_gpus: int
    notes: tuple[str, ...] = ()
    # Why nothing estimates the model (`unestimated_reason`).
    reason: str = ""


def unestimated_reason(model: str) -> str:
    """Why nothing estimates `model`, which `can_estimate` says of it: not in the catalog and no
    config.json, or the config.json found in the local Hugging Face cache, and what in it the
    estimator cannot use (`sim._hfconfig.model_from_config`'s reason)."""
    path = cached_config(model)
    if path is not None:
        try:
            model_from_config(path, model)
        except ProfilingError as exc:
            return f"{model} is not in the catalog and its config.json cannot be estimated ({exc})"
    return f"{model} is not in the catalog and has no config.json"


def model_refusal(
    spec: DGDRSpec, model_dirs: ModelDirs = (), *, hub_fetch: bool = False
) -> str | None:
    """Why `profile` would refuse `spec.model` at Initializing; None when it can estimate the
    model or fall back to the naive configuration. A local path `model_dirs` does not allow is
    refused without being looked at (`sim._modelpath`). With `hub_fetch` (the service may fetch
    config.json from the Hub, `sim._hffetch`) a hub id that only the Hub knows is not refused
    here: the profiling worker fetches it, and what it finds decides."""
    model = spec.model
    local = local_model(model, model_dirs)
    if local is not None and local.refusal is not None:
        return local.refusal
    cached = cached_model(model) if local is None else None
    if isinstance(cached, str):
        return cached
    if can_estimate(model, model_dirs):
        return None
    if hub_fetch and local is None and needs_fetch(model):
        return None
    if name_size(model) is None:
        return (
            f"unknown model {model!r}: it is not in the catalog, has no config.json and its "
            "name states no stored parameter count (such as 8B or 0.5B; an active count such as "
            "A22B or 17B-16E does not size the weights), so not even the naive configuration "
            f"can be sized: use one of {', '.join(sorted(models()))}, or give the "
            "path to a Hugging Face config.json (or a directory holding one)"
        )
    why = f"{model} is not in the catalog and has no config.json, so nothing estimates it"
    if spec.search_strategy is SearchStrategy.THOROUGH:
        return f"searchStrategy thorough simulates the model, and {why}: use searchStrategy rapid"
    if spec.mocker_enabled:
        return f"features.mocker needs the model's performance curves, and {why}"
    return None


def naive_plan(spec: DGDRSpec, hardware: ResolvedHardware, model_dirs: ModelDirs = ()) -> NaivePlan:
    """The naive configuration for `spec` (see the module); `spec.model` cannot be estimated."""
    refusal = model_refusal(spec, model_dirs)
    if refusal is not None:
        raise ProfilingError("Initializing", refusal)
    size = name_size(spec.model)
    assert size is not None  # model_refusal says so
    gpu = find_gpu(hardware.gpu_sku)
    vram = hardware.vram_mb * 2**20 if hardware.vram_mb else gpu.memory_gb * 1e9
    need = max(1, math.ceil(MEMORY_MULTIPLIER * size.weight_bytes / vram))
    required = 1 << (need - 1).bit_length()  # the next power of two
    max_tp = min(hardware.num_gpus_per_node, hardware.total_gpus)
    max_tp = 1 << (max_tp.bit_length() - 1)  # a power of two, as every TP searched
    if size.weight_bytes > max_tp * vram:
        raise ProfilingError(
            "SelectingConfig",
            f"{spec.model} does not fit: its name states {size.params / 1e9:g} B {size.dtype} "
            f"parameters, {size.weight_bytes / 1e9:.1f} GB of weights, more than the "
            f"{max_tp * vram / 1e9:.0f} GB of TP {max_tp} (one node, within totalGpus) on "
            f"{gpu.id}: use more GPUs per node or a larger GPU",
        )
    notes: tuple[str, ...] = ()
    if required > max_tp:
        notes = (
            f"TP {required} would hold 1.5 x the weights but one node within totalGpus allows "
            f"TP {max_tp}: the model may not fit its KV cache and activations",
        )
    tp = min(required, max_tp)
    auto = spec.backend is Backend.AUTO
    return NaivePlan(
        backend=NAIVE_BACKEND if auto else spec.backend.value,
        gpu=gpu,
        tp=tp,
        replicas=hardware.total_gpus // tp,
        required_tp=required,
        max_tp=max_tp,
        vram_bytes=vram,
        size=size,
        total_gpus=hardware.total_gpus,
        notes=notes,
        reason=unestimated_reason(spec.model),
    )


def naive_dgd_plan(
    spec: DGDRSpec, plan: NaivePlan, name: str, namespace: str, gpus_per_node: int
) -> DgdPlan:
    """The aggregated DGD of the naive configuration."""
    return DgdPlan(
        spec=spec,
        backend=plan.backend,
        name=name,
        namespace=namespace,
        workers=WorkerShape(tp=plan.tp, replicas=plan.replicas),
        gpus_per_node=gpus_per_node,
    )


def _sized(plan: NaivePlan) -> str:
    s, gb = plan.size, plan.vram_bytes / 1e9
    bytes_ = f"{s.bytes_per_param:g} byte{'' if s.bytes_per_param == 1 else 's'}"
    rule = f"the smallest power of two with TP x {gb:.0f} GB >= 1.5 x the weights"
    tp = (
        f"TP {plan.tp}: {rule}"
        if plan.tp == plan.required_tp
        else f"TP {plan.tp}, capped from TP {plan.required_tp} ({rule})"
    )
    return (
        f"weights sized from the name: {s.params / 1e9:g} B params x {bytes_} ({s.dtype}) = "
        f"{s.weight_bytes / 1e9:.1f} GB; {tp}"
    )


def naive_initializing_message(model: str, plan: NaivePlan) -> str:
    return f"naive fallback for {model}: {plan.reason}, so no performance estimate; {_sized(plan)}"


def naive_selecting_message(plan: NaivePlan) -> str:
    return (
        f"selected the naive configuration: {plan.backend} agg TP {plan.tp} x {plan.replicas} "
        f"replica(s) ({plan.tp * plan.replicas} of {plan.total_gpus} GPUs); nothing was swept"
    )


def naive_generating_message(plan: NaivePlan, dgd_name: str, image: str | None) -> str:
    worker = WORKER_SERVICE[plan.backend]
    return (
        f"generated DGD {dgd_name}: Frontend + {worker} ({plan.replicas} x {plan.tp} GPU), "
        f"image {runtime_image(image, plan.backend)}"
    )


def _targets(sla: SLA) -> str:
    if sla.e2e_latency is not None:
        return f"e2eLatency <= {ms(sla.e2e_latency)} ms"
    return f"TTFT <= {ms(sla.ttft or math.inf)} ms, ITL <= {ms(sla.itl or math.inf)} ms"


def naive_message(spec: DGDRSpec, plan: NaivePlan, notes: list[str]) -> str:
    """The one-line result: the naive pick, why, the unverified SLA, then `notes`."""
    head = (
        f"Picked the naive configuration {plan.backend} agg TP {plan.tp} x {plan.replicas} "
        f"replica(s) ({plan.tp * plan.replicas}/{plan.total_gpus} {plan.gpu.id} GPUs), as "
        f"Dynamo's profiler for a model it cannot estimate: {plan.reason}; {_sized(plan)}"
    )
    verdict = (
        f"SLA unverified: {_targets(spec.effective_sla)} not checked, no performance estimate "
        f"exists for {spec.model}"
    )
    extra = list(plan.notes)
    if spec.backend is Backend.AUTO:
        extra.append(f"backend auto: {plan.backend} (Dynamo's naive default, nothing compared)")
    if spec.features is not None and spec.features.planner is not None:
        extra.append("features.planner left out: the planner's curves need performance estimates")
    if spec.sla is not None and spec.sla.optimization_type is not None:
        extra.append(f"optimizationType {spec.sla.optimization_type.value}: not applied (naive)")
    return "; ".join([head, verdict, *extra, *notes])
