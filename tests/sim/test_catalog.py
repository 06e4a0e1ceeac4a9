"""The GPU and model catalogs, and that a SKU is profiled with its own catalog figures."""

from typing import Any

import pytest

from dgdr.domain.hardware import resolve_hardware
from dgdr.domain.spec import GPU_SKUS, DGDRSpec
from sim import gpus, models
from sim._catalog import gpu_named
from sim._hfconfig import find_model
from sim._naive import naive_plan
from sim._resolve import resolve
from sim._roofline import HBM_UTILISATION, usable_bytes

REQUIRED_MODELS = {
    "Qwen/Qwen3-0.6B",
    "Qwen/Qwen3-8B",
    "Qwen/Qwen3-32B",
    "meta-llama/Llama-3.1-8B",
    "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.1-70B",
    "meta-llama/Llama-3.3-70B-Instruct",
    "Qwen/Qwen2.5-0.5B-Instruct",
}


def test_every_sku_is_in_the_catalog_with_a_source() -> None:
    catalog = gpus()
    assert len(GPU_SKUS) == 17
    assert set(catalog) == set(GPU_SKUS)
    for gpu in catalog.values():
        assert gpu.source.startswith("https://")
        assert gpu.dense_bf16_tflops > 0 and gpu.memory_gb > 0
        assert gpu.memory_bandwidth_gbps > 0 and gpu.interconnect_gbps > 0
        assert gpu.interconnect in {"nvlink", "pcie", "infinity_fabric"}


def test_models_cover_the_required_ids_and_parameter_counts_are_plausible() -> None:
    catalog = models()
    assert set(catalog) >= REQUIRED_MODELS
    expected_billions = {
        "Qwen/Qwen3-0.6B": 0.6,
        "Qwen/Qwen3-8B": 8.2,
        "Qwen/Qwen3-32B": 32.8,
        "meta-llama/Llama-3.1-8B": 8.0,
        "meta-llama/Llama-3.1-70B": 70.6,
        "Qwen/Qwen2.5-0.5B-Instruct": 0.49,
    }
    for model_id, billions in expected_billions.items():
        assert abs(catalog[model_id].params / 1e9 - billions) / billions < 0.05, model_id


def test_lookups_accept_case_and_product_names() -> None:
    assert find_model("qwen/qwen3-0.6b").id == "Qwen/Qwen3-0.6B"
    assert gpu_named("NVIDIA-H100-80GB-HBM3").id == "h100_sxm"
    assert gpu_named("H200").id == gpu_named("h200-SXM").id == "h200_sxm"
    with pytest.raises(ValueError, match="h100_sxm and h100_pcie"):  # ambiguous: SXM or PCIe
        gpu_named("H100")


# What the default simulated cluster discovers (`dgdr.app.simcluster`): H200 nodes, H200 memory.
H200_CLUSTER: dict[str, Any] = {
    "gpuSku": "h200_sxm",
    "numGpusPerNode": 8,
    "totalGpus": 32,
    "vramMb": 143771,
}


@pytest.mark.parametrize("sku", GPU_SKUS)
def test_a_sku_without_vram_mb_is_profiled_with_its_own_catalog_memory(sku: str) -> None:
    spec = DGDRSpec.model_validate({"model": "Qwen/Qwen3-8B", "hardware": {"gpuSku": sku}})
    hardware, errors = resolve_hardware(spec, H200_CLUSTER)
    assert hardware is not None and not errors
    own = gpus()[sku].memory_gb * 1e9
    hbm = gpus()[sku].memory_gb * 2**30  # the catalog's "GB" are GiB to the KV capacity rule
    if sku == "h200_sxm":  # the cluster's own GPU: its measured memory wins over the catalog's
        own = hbm = H200_CLUSTER["vramMb"] * 2**20
    setup = resolve(spec, hardware)
    assert setup.gpu.id == sku
    assert usable_bytes(setup.gpu, setup.vram_mb) == pytest.approx(HBM_UTILISATION * hbm)
    naive = DGDRSpec.model_validate({"model": "acme/unknown-8B", "hardware": {"gpuSku": sku}})
    assert naive_plan(naive, hardware).vram_bytes == pytest.approx(own)
