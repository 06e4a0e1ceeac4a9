"""The profile's first stage: from what `sim.profile` was given to the `Setup` every later stage
reads (the validated spec, the model's architecture, the GPU's catalog record, the budget, the
workload and SLA in effect, the backends to search).

Owns: reading the input (a `DGDRSpec`, a spec dict or a whole manifest dict, whose metadata names
the result), taking the hardware from the spec when none is given, the architecture (from
`model_config`, the catalog, or `spec.model` as a path to a config.json where `model_dirs` allows
it, `sim._modelpath`), the one lookup of the
GPU SKU (`find_gpu` on the typed `ResolvedHardware.gpu_sku`), the context-length check, the
backends `backend: auto` searches (`AUTO_BACKENDS`), and the Initializing report.

Failure semantics: raises only `ProfilingError("Initializing", ...)`: a spec or manifest that does
not validate (every field named), no GPU SKU, an unknown model or a bad config.json, a context
longer than the model's, a `spec.model` path outside the model directories (never opened). Reads
a local config.json when one is named and allowed; no other I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dgdr.domain.errors import ProfilingError
from dgdr.domain.hardware import ResolvedHardware, resolve_hardware
from dgdr.domain.spec import SLA, Backend, DGDRSpec, Workload, parse_manifest, parse_spec

from ._catalog import Gpu, ModelArch, find_gpu
from ._hfconfig import find_model, model_from_config
from ._modelpath import ModelDirs

AUTO_BACKENDS = ("vllm", "sglang", "trtllm")  # searched for `backend: auto`; ties go to the first


@dataclass(frozen=True)
class Setup:
    """What every stage of a profile reads; `notes` are the resolve stage's own, for the result
    message."""

    spec: DGDRSpec
    name: str  # the DGDR's name and namespace: they name and label what is generated
    namespace: str
    model: ModelArch
    gpu: Gpu
    gpus_per_node: int
    total_gpus: int
    vram_mb: float | None
    workload: Workload
    sla: SLA
    backends: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def auto(self) -> bool:
        return self.spec.backend is Backend.AUTO


def read_inputs(
    spec: DGDRSpec | dict[str, Any],
    hardware: ResolvedHardware | None,
    name: str | None,
    namespace: str | None,
) -> tuple[DGDRSpec, ResolvedHardware, str, str]:
    """Whatever `profile` was given, as (spec, hardware, name, namespace); bad input raises
    `ProfilingError("Initializing", ...)` naming every field."""
    meta: dict[str, Any] = {}
    if isinstance(spec, dict):
        if "spec" in spec and "kind" in spec:  # a whole manifest
            manifest = parse_manifest(spec)
            if isinstance(manifest, list):
                raise ProfilingError("Initializing", "; ".join(map(str, manifest)))
            meta = {"name": manifest.metadata.name, "namespace": manifest.metadata.namespace}
            parsed: DGDRSpec | list[Any] = manifest.spec
        else:
            parsed = parse_spec(spec)
        if isinstance(parsed, list):
            raise ProfilingError("Initializing", "; ".join(map(str, parsed)))
        spec = parsed
    if hardware is None:
        hardware, errors = resolve_hardware(spec, {})
        if hardware is None:
            raise ProfilingError("Initializing", "; ".join(map(str, errors)))
    return (
        spec,
        hardware,
        name or meta.get("name") or "dgdr",
        namespace or meta.get("namespace") or "default",
    )


def resolve(
    spec: DGDRSpec | dict[str, Any],
    hardware: ResolvedHardware | None,
    *,
    name: str | None = None,
    namespace: str | None = None,
    model_config: str | Path | None = None,
    model_dirs: ModelDirs = (),
) -> Setup:
    """The `Setup` for `profile`'s arguments (see the module for what is checked)."""
    spec, hardware, name, namespace = read_inputs(spec, hardware, name, namespace)
    model = (
        model_from_config(Path(model_config), spec.model)
        if model_config
        else find_model(spec.model, model_dirs)
    )
    gpu = find_gpu(hardware.gpu_sku)
    notes: tuple[str, ...] = ()
    for prefix, origin in (
        ("local file ", ""),
        ("Hugging Face cache ", "the Hugging Face cache, "),
    ):
        if model.source.startswith(prefix):
            stored = "" if model.weight_dtype == "bf16" else f" ({model.weight_dtype} weights)"
            where = model.source[len(prefix) :]
            notes = (f"architecture of {spec.model}{stored} from {origin}{where}",)
    workload = spec.effective_workload
    if workload.isl + workload.osl > model.max_position_embeddings:
        raise ProfilingError(
            "Initializing",
            f"isl + osl = {workload.isl + workload.osl} tokens exceeds {model.id}'s max context "
            f"of {model.max_position_embeddings}: lower spec.workload.isl or osl",
        )
    auto = spec.backend is Backend.AUTO
    return Setup(
        spec=spec,
        name=name,
        namespace=namespace,
        model=model,
        gpu=gpu,
        gpus_per_node=hardware.num_gpus_per_node,
        total_gpus=hardware.total_gpus,
        vram_mb=hardware.vram_mb,
        workload=workload,
        sla=spec.effective_sla,
        backends=AUTO_BACKENDS if auto else (spec.backend.value,),
        notes=notes,
    )


def initializing_message(setup: Setup) -> str:
    """What is profiled: the model's size, the GPUs, the workload and the backends."""
    model = setup.model
    backends = f"auto ({', '.join(setup.backends)})" if setup.auto else setup.backends[0]
    return (
        f"rapid roofline for {model.id} ({model.params / 1e9:.2f} B params, "
        f"{model.weight_bytes / 1e9:.1f} GB bf16) on {setup.total_gpus} x {setup.gpu.id} "
        f"({setup.gpus_per_node} per node), isl {setup.workload.isl}, osl {setup.workload.osl}, "
        f"backend {backends}"
    )
