"""resolve_hardware: the spec's facts over the discovered ones, and discovered facts only for the
SKU they describe."""

from __future__ import annotations

from typing import Any

from dgdr.domain.hardware import DEFAULT_GPUS_PER_NODE, ResolvedHardware, resolve_hardware
from dgdr.domain.spec import DGDRSpec, GpuSku

H200_NODES: dict[str, Any] = {
    "gpuSku": "h200_sxm",
    "numGpusPerNode": 4,
    "totalGpus": 16,
    "vramMb": 143771,
    "interconnect": "nvlink",
    "rdma": True,
}


def _resolve(hardware: dict[str, Any], discovered: dict[str, Any]) -> ResolvedHardware:
    spec = DGDRSpec.model_validate({"model": "m", "hardware": hardware})
    resolved, errors = resolve_hardware(spec, discovered)
    assert resolved is not None, errors
    return resolved


def test_discovered_facts_fill_what_the_spec_leaves_out_for_the_same_sku() -> None:
    for given in ({}, {"gpuSku": "h200_sxm"}):
        resolved = _resolve(given, H200_NODES)
        assert resolved.to_dict() == H200_NODES


def test_a_spec_naming_another_sku_takes_none_of_the_discovered_facts() -> None:
    resolved = _resolve({"gpuSku": "l4"}, H200_NODES)
    assert resolved == ResolvedHardware(
        gpu_sku=GpuSku.L4,
        num_gpus_per_node=DEFAULT_GPUS_PER_NODE,
        total_gpus=DEFAULT_GPUS_PER_NODE,
        vram_mb=None,  # the profiler takes L4's memory from its catalog
    )


def test_the_spec_wins_over_discovery() -> None:
    given = {"gpuSku": "h200_sxm", "vramMb": 100000, "totalGpus": 8, "rdma": False}
    resolved = _resolve(given, H200_NODES)
    assert (resolved.vram_mb, resolved.total_gpus, resolved.rdma) == (100000, 8, False)
    assert resolved.num_gpus_per_node == 4
