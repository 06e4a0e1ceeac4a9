"""The request-level simulation of a disaggregated deployment."""

from __future__ import annotations

import pytest

from sim import EstimateError, estimate, simulate_disagg

MODEL, GPU = "Qwen/Qwen3-8B", "h200_sxm"


def test_a_lone_request_sees_prefill_then_pure_decode_latencies() -> None:
    r = simulate_disagg(
        MODEL, GPU, prefill_tp=2, decode_tp=1, isl=2000, osl=200, concurrency=1, requests=10
    )
    assert r.requests == 10 and r.peak_running == 1
    prefill = estimate(MODEL, GPU, backend="vllm", tp=2, batch_size=1, isl=2000, osl=1)
    assert r.ttft_ms["p50"] == pytest.approx(prefill.ttft_ms, rel=1e-6)
    step = estimate(MODEL, GPU, backend="vllm", tp=1, batch_size=1, isl=2100, osl=2).itl_ms
    assert r.itl_ms["p50"] == pytest.approx(step, rel=1e-6)


def test_too_few_prefill_workers_show_up_as_ttft_and_more_fix_it() -> None:
    def run(prefill_workers: int) -> float:
        return simulate_disagg(
            MODEL,
            GPU,
            prefill_workers=prefill_workers,
            decode_workers=2,
            max_batch=64,
            isl=4000,
            osl=100,
            request_rate=20,
            requests=300,
        ).ttft_ms["p90"]

    assert run(1) > 3 * run(4)


def test_decode_slots_are_a_hard_limit_and_the_closed_loop_holds() -> None:
    r = simulate_disagg(
        MODEL,
        GPU,
        prefill_workers=2,
        decode_workers=2,
        max_batch=8,
        isl=1000,
        osl=100,
        concurrency=40,
        requests=300,
    )
    assert r.requests == 300 and r.peak_running <= 8


def test_deterministic_and_arguments_are_named() -> None:
    kwargs = {"isl": 1000, "osl": 50, "request_rate": 5.0, "requests": 100, "seed": 3}
    assert simulate_disagg(MODEL, GPU, **kwargs) == simulate_disagg(MODEL, GPU, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(EstimateError) as err:
        simulate_disagg(MODEL, GPU, prefill_workers=0, request_rate=1.0)
    assert err.value.argument == "prefill_workers"
