import numpy as np
import pytest

import sim
from dgdr.domain.spec import GpuSku
from sim._catalog import find_gpu
from sim._estimate import _plan, decode_step_ms, prefill_ms
from sim._hfconfig import find_model
from sim._roofline import MAX_BATCH, evaluate, tp_candidates


def test_bigger_tp_lowers_itl_at_batch_one() -> None:
    model, gpu = find_model("Qwen/Qwen3-8B"), find_gpu(GpuSku.H100_SXM)
    itl = [
        float(decode_step_ms(_plan(model, gpu, "vllm", tp, 1, 1), 1.0, 4500.0))
        for tp in (1, 2, 4, 8)
    ]
    assert np.all(np.diff(itl) < 0), itl


def test_ttft_grows_with_isl() -> None:
    model, gpu = find_model("meta-llama/Llama-3.1-8B"), find_gpu(GpuSku.A100_SXM)
    plan = _plan(model, gpu, "vllm", 2, 1, 1)
    ttft = [prefill_ms(plan, 1.0, isl) for isl in (128.0, 1024.0, 4096.0, 16384.0, 65536.0)]
    assert np.all(np.diff(ttft) > 0), ttft


def test_itl_grows_with_batch_and_grid_respects_kv_capacity() -> None:
    model, gpu = find_model("Qwen/Qwen3-0.6B"), find_gpu(GpuSku.H200_SXM)
    grid = evaluate(model, gpu, "vllm", [1, 2, 4, 8], 4000, 1000)
    for row in range(4):
        fits = grid.fits[row]
        assert np.all(grid.batch[row][fits] <= grid.max_batch[row])
        order = np.argsort(grid.batch[row][fits])
        assert np.all(np.diff(grid.itl_ms[row][fits][order]) >= 0)
    assert np.all(np.isfinite(grid.ttft_ms)) and np.all(np.isfinite(grid.itl_ms))


@pytest.mark.parametrize(
    ("model", "sku", "backend"),
    [
        ("Qwen/Qwen3-0.6B", "h200_sxm", "vllm"),
        ("Qwen/Qwen3-32B", "h100_sxm", "trtllm"),
        ("Qwen/Qwen3-30B-A3B", "b200_sxm", "sglang"),
        ("meta-llama/Llama-3.1-70B", "a100_sxm", "vllm"),
    ],
)
def test_grid_is_estimate_agg_point_for_point(model: str, sku: str, backend: str) -> None:
    arch, gpu = find_model(model), find_gpu(GpuSku(sku))
    grid = evaluate(arch, gpu, backend, [1, 2, 4, 8], 3000, 500)
    rows, cols = np.nonzero(grid.fits)
    assert rows.size
    for r, c in zip(rows, cols, strict=True):
        tp, batch = int(grid.tp[r]), int(grid.batch[r, c])
        e = sim.estimate(arch, gpu, backend, tp=tp, batch_size=batch, isl=3000, osl=500, mode="agg")
        assert e.fits and grid.max_batch[r] == min(e.max_batch_size, MAX_BATCH)
        assert grid.ttft_ms[r, c] == pytest.approx(e.ttft_ms, rel=1e-9)
        assert grid.itl_ms[r, c] == pytest.approx(e.itl_ms, rel=1e-9)


def test_tp_candidates_must_divide_attention_heads() -> None:
    usable, skipped = tp_candidates(find_model("Qwen/Qwen2.5-0.5B-Instruct"), 8)
    assert usable == [1, 2] and skipped == [4, 8]
    assert tp_candidates(find_model("Qwen/Qwen3-8B"), 6) == ([1, 2, 4], [])
