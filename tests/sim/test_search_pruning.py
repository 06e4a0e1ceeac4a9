"""`sim._search.worth_ranking`: the disaggregated candidates left out of a default search are never
what a default ranking puts first or a Pareto front holds, whichever filtered pool is ranked; and
whole profiles come out the same with and without the pruning."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim._sweep as sweep_module
from dgdr.domain.hardware import ResolvedHardware
from sim import profile
from sim._search import (
    Candidate,
    Evaluated,
    best_ranked,
    candidates_from_columns,
    evaluated_count,
    pareto_front,
    round_like_python,
    worth_ranking,
)


def rows_with(worst: list[float]) -> st.SearchStrategy[tuple[Any, ...]]:
    """Candidates' figures, few distinct ones, so that ties (the delicate part) are common."""
    return st.tuples(
        st.sampled_from([10.0, 20.0, 20.0004, 30.0]),  # tokens/s per user
        st.sampled_from([100.0, 150.0, 150.0002, 200.0]),  # tokens/s per GPU
        st.sampled_from(worst),  # worst actual/target ratio
        st.sampled_from([None, 0.8, 1.1]),  # ratio at the band's edge
        st.sampled_from([1, 2]),  # decode attention DP
        st.sampled_from([1, 2]),  # decode TP
        st.sampled_from([1, 2]),  # replicas
    )


ROW = rows_with([0.5, 0.9, 1.0, 1.0004, 1.2, 2.0])
MISS = rows_with([1.0004, 1.0006, 1.2, 2.0])  # nothing meets the SLA: the closest miss ranks first


def make(rows: list[tuple[Any, ...]]) -> list[Candidate]:
    n = len(rows)
    user, per_gpu, worst, edge, dp, tp, replicas = (list(col) for col in zip(*rows, strict=True))
    return candidates_from_columns(
        {
            "backend": ["vllm"] * n,
            "tp": tp,
            "batch": [8] * n,
            "replicas": replicas,
            "ttft_ms": [100.0] * n,
            "itl_ms": [1e3 / u for u in user],
            "e2e_ms": [1000.0] * n,
            "tokens_per_s_per_gpu": per_gpu,
            "tokens_per_s_per_user": user,
            "requests_per_s": [1.0] * n,
            "meets_sla": [w <= 1.0 for w in worst],
            "worst_ratio": worst,
            "mode": ["disagg"] * n,
            "prefill_tp": [1] * n,
            "prefill_workers": [1] * n,
            "load_match": [False] * n,
            "served": [1.0] * n,
            "ep": [1] * n,
            "prefill_ep": [1] * n,
            "pp": [1] * n,
            "dp": dp,
            "prefill_dp": [1] * n,
            "edge_ratio": edge,
            "budget_gpus": [8] * n,
        }
    )


def kept(pool: list[Candidate]) -> list[Candidate]:
    def col(f: Any) -> np.ndarray[Any, Any]:
        return np.array([f(c) for c in pool], dtype=np.float64)

    group = np.array(
        [4 * c.meets_sla + 2 * c.has_margin + (c.dp > 1) for c in pool], dtype=np.int64
    )
    keep = worth_ranking(
        round_like_python(col(lambda c: c.tokens_per_s_per_user), 3),
        round_like_python(col(lambda c: c.tokens_per_s_per_budget_gpu), 3),
        col(lambda c: c.worst_ratio),
        group,
    )
    return [c for c, k in zip(pool, keep.tolist(), strict=True) if k]


FILTERS = {
    "all": lambda c: True,
    "met": lambda c: c.meets_sla,
    "margin": lambda c: c.has_margin,
    "dep": lambda c: c.dp > 1,
    "plain met": lambda c: c.dp == 1 and c.meets_sla,
}


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.lists(ROW, min_size=1, max_size=40), st.lists(MISS, min_size=1, max_size=12)),
    st.sampled_from(sorted(FILTERS)),
)
def test_the_pruned_pool_ranks_and_fronts_as_the_whole_one(
    rows: list[tuple[Any, ...]], which: str
) -> None:
    full = make(rows)
    pruned = kept(full)
    wanted = FILTERS[which]
    whole = [c for c in full if wanted(c)]
    part = [c for c in pruned if wanted(c)]
    assert bool(whole) == bool(part)
    if whole:
        assert best_ranked(part) is best_ranked(whole)
        assert [id(c) for c in pareto_front(part)] == [id(c) for c in pareto_front(whole)]


def test_dominated_candidates_are_left_out_and_counted() -> None:
    full = make([(30.0, 200.0, 0.5, None, 1, 1, 1), (20.0, 150.0, 0.5, None, 1, 1, 1)])
    assert kept(full) == full[:1]
    listed = Evaluated(kept(full), len(full))
    assert (len(listed), evaluated_count(listed), evaluated_count(full)) == (1, 2, 2)


SPECS = [
    ("Qwen/Qwen3-30B-A3B", "h200_sxm", 32, "auto", 1000, 1000, 200, 31.7),
    ("deepseek-ai/DeepSeek-V3", "b200_sxm", 16, "trtllm", 4000, 500, 1500, 40),
    ("Qwen/Qwen3-8B", "h100_sxm", 16, "auto", 8000, 200, 873, 17),
    ("meta-llama/Llama-3.1-70B", "h200_sxm", 16, "sglang", 4000, 500, 300, 10),  # misses
]


@pytest.mark.parametrize("spec", SPECS, ids=[f"{s[0]}-{s[3]}" for s in SPECS])
def test_a_profile_is_the_same_with_and_without_pruning(
    spec: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, gpu, total, backend, isl, osl, ttft, itl = spec
    hw = ResolvedHardware.from_dict({"gpuSku": gpu, "totalGpus": total, "numGpusPerNode": 8})
    body = {
        "model": model,
        "backend": backend,
        "sla": {"ttft": ttft, "itl": itl},
        "workload": {"isl": isl, "osl": osl},
    }

    def run() -> str:
        r = profile(body, hw, name="p")
        return json.dumps([r.message, r.pareto, r.selected_config, r.modes], sort_keys=True)

    pruned = run()
    monkeypatch.setattr(sweep_module, "_default_ranking", lambda setup: False)
    assert run() == pruned
