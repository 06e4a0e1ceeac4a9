"""The request-level discrete-event simulation of an aggregated deployment."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import EstimateError, estimate, simulate

MODEL, GPU = "Qwen/Qwen3-0.6B", "h200_sxm"


def test_a_lone_request_sees_the_roofline_latencies() -> None:
    r = simulate(MODEL, GPU, isl=2000, osl=200, concurrency=1, requests=20)  # one at a time
    alone = estimate(MODEL, GPU, backend="vllm", batch_size=1, isl=2000, osl=1)
    assert r.requests == 20 and r.peak_running == 1
    assert r.ttft_ms["p50"] == pytest.approx(alone.ttft_ms, rel=1e-6)
    step = estimate(MODEL, GPU, backend="vllm", batch_size=1, isl=2100, osl=2).itl_ms
    assert r.itl_ms["p50"] == pytest.approx(step, rel=1e-6)


def test_more_load_means_longer_queues() -> None:
    light = simulate(MODEL, GPU, max_batch=8, isl=2000, osl=200, request_rate=5, requests=300)
    heavy = simulate(MODEL, GPU, max_batch=8, isl=2000, osl=200, request_rate=80, requests=300)
    assert heavy.ttft_ms["p99"] > light.ttft_ms["p99"]
    assert heavy.mean_running > light.mean_running


def test_the_kv_limit_and_the_closed_loop_hold() -> None:
    r = simulate(
        MODEL, GPU, replicas=2, max_batch=16, isl=1000, osl=100, concurrency=64, requests=400
    )
    assert r.requests == 400 and r.peak_running <= 16
    assert r.mean_running > 8  # 64 users keep both replicas' 16 slots nearly full


def test_same_seed_same_result_and_arguments_are_named() -> None:
    a = simulate(MODEL, GPU, isl=1000, osl=50, request_rate=20, requests=100, seed=7)
    assert a == simulate(MODEL, GPU, isl=1000, osl=50, request_rate=20, requests=100, seed=7)
    with pytest.raises(EstimateError, match="request_rate"):
        simulate(MODEL, GPU, request_rate=1, concurrency=2)
    with pytest.raises(EstimateError, match="max_batch"):
        simulate(MODEL, GPU, max_batch=0, concurrency=1)


@settings(max_examples=25, deadline=None)
@given(
    rate=st.floats(0.5, 200),
    replicas=st.integers(1, 4),
    max_batch=st.integers(1, 64),
    osl=st.integers(1, 64),
)
def test_percentiles_are_finite_and_ordered(
    rate: float, replicas: int, max_batch: int, osl: int
) -> None:
    r = simulate(
        MODEL,
        GPU,
        replicas=replicas,
        max_batch=max_batch,
        isl=500,
        osl=osl,
        request_rate=rate,
        requests=60,
    )
    for stats in (r.ttft_ms, r.itl_ms):
        assert all(math.isfinite(v) and v >= 0 for v in stats.values())
        assert stats["p50"] <= stats["p90"] <= stats["p99"]
    assert r.peak_running <= max_batch and r.requests == 60


def test_percentiles_of_a_known_distribution() -> None:
    from sim._des import percentiles

    got = percentiles([float(v) for v in range(1, 1001)])  # uniform 1..1000
    assert got == pytest.approx({"p50": 500.5, "p90": 900.1, "p99": 990.01})


def test_a_closed_loop_at_the_size_it_fills_is_not_one_lockstep_wave() -> None:
    # 2 replicas x 64 slots, 128 users: the load a pick of batch 64 is sized for. Users that all
    # start at once with equal isl/osl finish together and come back together, so every request
    # saw one of a few queue positions and p90 == p99; staggered as a steady state, the tail
    # (a prompt queued behind others, a decode stalled by a prefill) shows above p90.
    r = simulate(MODEL, GPU, replicas=2, max_batch=64, isl=3000, osl=300, concurrency=128,
                 requests=512)  # fmt: skip
    assert r.ttft_ms["p99"] > r.ttft_ms["p90"] > r.ttft_ms["p50"]
    assert r.itl_ms["p99"] > r.itl_ms["p50"]
    alone = simulate(MODEL, GPU, max_batch=64, isl=3000, osl=300, concurrency=1, requests=5)
    assert r.warmup_s > 0 and alone.warmup_s > 0
