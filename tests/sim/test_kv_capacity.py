"""The per-GPU KV capacity rule against AIConfigurator 0.12's memory accounting (TRT-LLM).

AIC (and TRT-LLM) give the KV cache `free_gpu_memory_fraction` of the memory left after weights,
activations and runtime buffers, on HBM counted in GiB (an "80 GB" H100 has 80 GiB). The figures
below are the largest agg batch `aiconfigurator.cli.api.cli_estimate` (0.12.0, trtllm, SILICON)
accepts before it reports OOM, probed on 2026-11-30 over batches 4, 6, 8, ..., 16, 20, 24, 32, 48, 64:
our capacity must be at least 80% of AIC's (we used to fit 6 where AIC fits 16) and never above
the batch at which AIC reports OOM (a pick AIC cannot run is worse than a smaller one).
"""

import pytest

from sim import estimate

# (model, gpu, tp, isl, osl, largest batch AIC accepts, smallest probed batch AIC rejects)
AIC_CAPACITY = [
    ("meta-llama/Llama-3.1-70B", "b200_sxm", 1, 8000, 200, 16, 20),
    ("meta-llama/Llama-3.1-70B", "h200_sxm", 2, 8000, 200, 48, 64),
    ("Qwen/Qwen3-32B", "h100_sxm", 1, 4000, 500, 12, 14),
    ("Qwen/Qwen3-8B", "h100_sxm", 1, 8000, 200, 48, 64),
]


@pytest.mark.parametrize(("model", "gpu", "tp", "isl", "osl", "aic_ok", "aic_oom"), AIC_CAPACITY)
def test_kv_capacity_is_close_to_aics_and_never_above_its_oom(
    model: str, gpu: str, tp: int, isl: int, osl: int, aic_ok: int, aic_oom: int
) -> None:
    e = estimate(model, gpu, backend="trtllm", tp=tp, batch_size=1, isl=isl, osl=osl, mode="agg")
    assert 0.8 * aic_ok <= e.max_batch_size < aic_oom, (model, gpu, e.max_batch_size)


def test_kv_budget_is_a_fraction_of_the_memory_left_after_weights() -> None:
    """Halving the free memory (same HBM, heavier weights per GPU) more than halves the KV
    capacity only through the fixed reserve: the fraction applies to what is left, not to HBM."""
    small = estimate(
        "Qwen/Qwen3-8B", "h100_sxm", backend="trtllm", tp=1, batch_size=1, isl=1000, osl=1000
    )
    big = estimate(
        "Qwen/Qwen3-32B", "h100_sxm", backend="trtllm", tp=1, batch_size=1, isl=1000, osl=1000
    )
    hbm = 80 * 2**30 / 1e9
    for e in (small, big):
        free = hbm - e.weights_gb - (e.memory_gb - e.weights_gb - e.kv_cache_gb)
        kv_seq = e.kv_cache_gb  # batch 1
        assert e.max_batch_size == pytest.approx(0.9 * 0.985 * 0.98 * free / kv_seq, abs=1.0)
