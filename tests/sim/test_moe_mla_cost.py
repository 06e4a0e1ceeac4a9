"""The cost of MLA attention and of expert parallelism in `sim.estimate`'s roofline: the MLA
down-projections every TP rank holds in full, and the busiest expert-parallel rank that a step
waits for."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import sim
from sim._catalog import gpu_named
from sim._estimate import _plan, decode_step_ms
from sim._hfconfig import find_model
from sim._routing import (
    MLA_MOE_ALPHA,
    MOE_ALPHA,
    busiest_rank,
    max_rank_factor,
    touched_experts,
)

V3 = "deepseek-ai/DeepSeek-V3"


def test_mla_down_projections_are_replicated_on_every_tp_rank() -> None:
    v3, gpu = find_model(V3), gpu_named("h200_sxm")
    down = v3.hidden_size * (v3.q_lora_rank + v3.kv_lora_rank + v3.qk_rope_head_dim)
    one, eight = _plan(v3, gpu, "trtllm", 1, 1, 1), _plan(v3, gpu, "trtllm", 8, 1, 8)
    # 8 GPUs hold the up/output projections once and the down-projections 8 times
    attn_bytes = v3.num_hidden_layers * v3.body_weight_bytes_per_param
    assert eight.mla_bytes * 8 == pytest.approx(one.mla_bytes + 7 * down * attn_bytes)
    assert one.mla_bytes == pytest.approx(v3.attn_params * attn_bytes)
    # the other weights still split over tp
    assert eight.non_expert_bytes * 8 == pytest.approx(one.non_expert_bytes)


def test_busiest_rank_factor_is_the_expected_maximum_of_normals() -> None:
    assert max_rank_factor(1) == 0.0
    assert max_rank_factor(2) == pytest.approx(1 / math.sqrt(math.pi), abs=0.03)
    assert max_rank_factor(8) == pytest.approx(1.4236, abs=0.02)
    rng = np.random.default_rng(0)
    sampled = rng.standard_normal((20000, 16)).max(axis=1).mean()
    assert max_rank_factor(16) == pytest.approx(sampled, abs=0.03)


def power_law_counts(
    rng: np.random.Generator, tokens: int, experts: int, top_k: int, alpha: float
) -> np.ndarray:
    """One draw of AIConfigurator's MoE workload, written from its description: a power-law
    weight per expert, counts rounded in proportion, what rounding lost handed one each to the
    largest counts (then to untouched experts, in a random order)."""
    lo, hi = (1.0, 0.8 * tokens) if tokens * top_k > experts else (0.01, 2.0)
    g = 1.0 - alpha
    weights = ((hi**g - lo**g) * rng.random(experts) + lo**g) ** (1.0 / g)
    assignments = tokens * top_k
    counts = np.round(weights / weights.sum() * assignments).astype(int)
    order = np.lexsort((rng.random(experts), -counts))
    for i in range(assignments - counts.sum()):
        counts[order[i % experts]] += 1
    for i in range(counts.sum() - assignments):
        counts[
            order[-(i % experts) - 1] if counts[order[-(i % experts) - 1]] else counts.argmax()
        ] -= 1
    return counts


@pytest.mark.parametrize(
    ("experts", "top_k", "alpha"), [(256, 8, MLA_MOE_ALPHA), (128, 8, MOE_ALPHA), (8, 2, MOE_ALPHA)]
)
@pytest.mark.parametrize("tokens", [1, 4, 16, 32, 128, 1024])
def test_touched_experts_and_busiest_rank_match_a_sampled_workload(
    experts: int, top_k: int, alpha: float, tokens: int
) -> None:
    ep = 8 if experts >= 64 else 2
    rng = np.random.default_rng(tokens * experts)
    touched, distinct_max, routed_max = [], [], []
    for _ in range(300):
        counts = power_law_counts(rng, tokens, experts, top_k, alpha)
        assert counts.sum() == tokens * top_k
        touched.append((counts > 0).sum())
        by_rank = counts.reshape(ep, experts // ep)
        busiest = by_rank.sum(axis=1).argmax()
        distinct_max.append((by_rank[busiest] > 0).sum())
        routed_max.append(by_rank[busiest].sum())
    assert float(touched_experts(experts, top_k, tokens, alpha)) == pytest.approx(
        np.mean(touched), rel=0.1, abs=1.0
    )
    busiest = busiest_rank(experts, top_k, tokens, ep, alpha)
    assert float(busiest.assignments) / ep == pytest.approx(np.mean(routed_max), rel=0.15, abs=1.5)
    assert float(busiest.experts) / ep == pytest.approx(np.mean(distinct_max), rel=0.2, abs=1.5)


def test_a_skewed_workload_touches_fewer_experts_than_a_uniform_one() -> None:
    experts, top_k = 256, 8
    for tokens in (16, 32, 64, 128):
        uniform = experts * (1 - (1 - top_k / experts) ** tokens)
        assert float(touched_experts(experts, top_k, tokens, MLA_MOE_ALPHA)) < 0.85 * uniform
    assert float(touched_experts(experts, top_k, 1, MLA_MOE_ALPHA)) == pytest.approx(top_k)
    assert float(touched_experts(experts, top_k, 0, MLA_MOE_ALPHA)) == 0.0
    assert float(busiest_rank(experts, top_k, 4096, 8, MLA_MOE_ALPHA).experts) <= experts


def test_a_decode_step_waits_for_the_busiest_expert_rank() -> None:
    # batch 1 on 8 EP ranks: 8 experts land ~1 per rank on average but ~2.4 on the busiest
    v3, gpu = find_model(V3), gpu_named("h200_sxm")
    plan = _plan(v3, gpu, "trtllm", 8, 1, 8)
    step = float(decode_step_ms(plan, 1.0, 2000.0))
    mean_rank = dataclasses.replace(plan, ep=1)  # same weights, no imbalance, no all-to-all
    assert step > float(decode_step_ms(mean_rank, 1.0, 2000.0))


@pytest.mark.parametrize("backend", sorted(sim.BACKENDS))
def test_mla_and_moe_layer_overheads_are_charged_per_layer_of_their_kind(backend: str) -> None:
    profile = sim.BACKENDS[backend]
    v3, qwen = find_model(V3), find_model("Qwen/Qwen3-8B")
    extra = dataclasses.replace(profile, mla_layer_overhead_ms=0.01, moe_layer_overhead_ms=0.02)
    added = extra.layers_overhead_ms(v3, 61, True) - profile.layers_overhead_ms(v3, 61, True)
    assert added == pytest.approx(61 * 0.01 + 58 * 0.02)
    assert extra.layers_overhead_ms(qwen, 36, False) == profile.layers_overhead_ms(qwen, 36, False)
