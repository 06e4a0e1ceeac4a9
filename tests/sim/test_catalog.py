from dgdr.domain.spec import GPU_SKUS
from sim import gpus, models
from sim._catalog import gpu_named
from sim._hfconfig import find_model

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
    found = gpu_named("NVIDIA-H100-80GB-HBM3")
    assert found is not None and found.id == "h100_sxm"
    assert gpu_named("H100") is None  # ambiguous: SXM or PCIe
