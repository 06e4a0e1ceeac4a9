"""Hardware resolution: the GPU facts a profile runs on, from the spec over what the cluster reported.

Pure. Owns `ResolvedHardware` (the typed facts every later step uses: the decider's state, the
profiler, the DGD) and `resolve_hardware`. A fact the spec states wins over a discovered one; both are
validated by the spec's own `Hardware` model, so a raw product name a cluster reports
(`NVIDIA-H100-80GB-HBM3`) is mapped to its SKU in exactly one place (a spec that names one is refused
at admission, as the CRD's enum refuses it). A missing GPU SKU is a `FieldError` naming
`spec.hardware.gpuSku` and its valid values, never a guess; GPUs per node default to 8 (a DGX/HGX
node) and the total to one node. Discovered facts are used only for the SKU they were discovered
for: a spec naming another SKU gets none of them (as Dynamo restricts discovery to the nodes of
the spec's SKU), so a missing `vramMb` stays None and the profiler takes that SKU's memory from its
catalog, never the cluster's other GPU's. The `Validated` event records `ResolvedHardware.to_dict()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from dgdr.domain.spec import GPU_SKUS, DGDRSpec, FieldError, GpuSku, Hardware, errors_from

DEFAULT_GPUS_PER_NODE = 8


@dataclass(frozen=True)
class ResolvedHardware:
    gpu_sku: GpuSku
    num_gpus_per_node: int
    total_gpus: int
    vram_mb: float | None = None
    interconnect: str | None = None
    rdma: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """The camelCase facts as events and jobs carry them (None fields left out)."""
        facts = {
            "gpuSku": self.gpu_sku.value,
            "numGpusPerNode": self.num_gpus_per_node,
            "totalGpus": self.total_gpus,
            "vramMb": self.vram_mb,
            "interconnect": self.interconnect,
            "rdma": self.rdma,
        }
        return {k: v for k, v in facts.items() if v is not None}

    @classmethod
    def from_dict(cls, facts: dict[str, Any]) -> ResolvedHardware:
        """Facts as `to_dict` wrote them (a stored event, a job); a missing fact is a ValueError."""
        hardware = Hardware.model_validate(facts)
        if hardware.gpu_sku is None or hardware.total_gpus is None:
            raise ValueError(f"resolved hardware lacks gpuSku or totalGpus: {facts}")
        return cls(
            gpu_sku=hardware.gpu_sku,
            num_gpus_per_node=hardware.num_gpus_per_node or DEFAULT_GPUS_PER_NODE,
            total_gpus=hardware.total_gpus,
            vram_mb=hardware.vram_mb,
            interconnect=hardware.interconnect,
            rdma=hardware.rdma,
        )


def resolve_hardware(
    spec: DGDRSpec, discovered: dict[str, Any]
) -> tuple[ResolvedHardware | None, list[FieldError]]:
    """The spec's hardware facts over what the cluster reported; every missing or unusable fact is
    named (a discovered fact under `cluster.`, with the node label it came from)."""
    given = spec.effective_hardware
    try:
        found = Hardware.model_validate({k: v for k, v in discovered.items() if v is not None})
    except ValidationError as exc:
        return None, errors_from(exc, "cluster.nodeLabels.")
    sku = given.gpu_sku or found.gpu_sku
    if sku is None:
        return None, [
            FieldError(
                "spec.hardware.gpuSku",
                "no GPU SKU given and none discovered on the cluster: set spec.hardware.gpuSku to one "
                f"of {', '.join(GPU_SKUS)}",
            )
        ]
    if found.gpu_sku is not sku:
        # What was discovered describes another GPU: none of it is this SKU's (Dynamo restricts
        # discovery to the nodes of the spec's SKU), so its memory is the catalog's for this SKU.
        found = Hardware()
    per_node = given.num_gpus_per_node or found.num_gpus_per_node or DEFAULT_GPUS_PER_NODE
    return (
        ResolvedHardware(
            gpu_sku=sku,
            num_gpus_per_node=per_node,
            total_gpus=given.total_gpus or found.total_gpus or per_node,
            vram_mb=given.vram_mb or found.vram_mb,
            interconnect=given.interconnect or found.interconnect,
            rdma=given.rdma if given.rdma is not None else found.rdma,
        ),
        [],
    )
