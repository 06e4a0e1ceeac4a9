import numpy as np

from sim._catalog import find_gpu, find_model
from sim._roofline import decode_step_ms, evaluate, prefill_ms, tp_candidates


def test_bigger_tp_lowers_itl_at_batch_one() -> None:
    model, gpu = find_model("Qwen/Qwen3-8B"), find_gpu("h100_sxm")
    tp = np.array([1, 2, 4, 8])
    itl = decode_step_ms(model, gpu, tp, np.ones(4), 4000.0, 1000.0)
    assert np.all(np.diff(itl) < 0), itl


def test_ttft_grows_with_isl() -> None:
    model, gpu = find_model("meta-llama/Llama-3.1-8B"), find_gpu("a100_sxm")
    isl = np.array([128.0, 1024.0, 4096.0, 16384.0, 65536.0])
    ttft = prefill_ms(model, gpu, np.array([2]), isl)
    assert np.all(np.diff(ttft) > 0), ttft


def test_itl_grows_with_batch_and_grid_respects_kv_capacity() -> None:
    model, gpu = find_model("Qwen/Qwen3-0.6B"), find_gpu("h200_sxm")
    grid = evaluate(model, gpu, [1, 2, 4, 8], 4000, 1000)
    for row in range(4):
        fits = grid.fits[row]
        assert np.all(grid.batch[row][fits] <= grid.max_batch[row])
        order = np.argsort(grid.batch[row][fits])
        assert np.all(np.diff(grid.itl_ms[row][fits][order]) >= 0)
    assert np.all(np.isfinite(grid.ttft_ms)) and np.all(np.isfinite(grid.itl_ms))


def test_tp_candidates_must_divide_attention_heads() -> None:
    usable, skipped = tp_candidates(find_model("Qwen/Qwen2.5-0.5B-Instruct"), 8)
    assert usable == [1, 2] and skipped == [4, 8]
    assert tp_candidates(find_model("Qwen/Qwen3-8B"), 6) == ([1, 2, 4], [])
