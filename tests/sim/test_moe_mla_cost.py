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
from sim._estimate import (
    _plan,
    bottleneck_experts,
    bottleneck_routed,
    decode_step_ms,
    max_rank_factor,
    touched_experts,
)
from sim._hfconfig import find_model

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


@pytest.mark.parametrize("tokens", [1, 4, 32, 128])
def test_busiest_ep_rank_matches_a_sampled_routing(tokens: int) -> None:
    experts, top_k, ep = 256, 8, 8
    rng = np.random.default_rng(tokens)
    distinct_max, routed_max = [], []
    for _ in range(1000):
        picks = rng.random((tokens, experts)).argpartition(top_k, axis=1)[:, :top_k].ravel()
        hits = np.bincount(picks, minlength=experts).reshape(ep, experts // ep)
        distinct_max.append((hits > 0).sum(axis=1).max())
        routed_max.append(hits.sum(axis=1).max())
    est_distinct = float(bottleneck_experts(experts, top_k, tokens, ep)) / ep
    est_routed = float(bottleneck_routed(top_k, tokens, ep)) / ep
    assert est_distinct == pytest.approx(np.mean(distinct_max), rel=0.15)
    assert est_routed == pytest.approx(np.mean(routed_max), rel=0.15)
    assert float(bottleneck_experts(experts, top_k, tokens, 1)) == pytest.approx(
        float(touched_experts(experts, top_k, tokens))
    )


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
