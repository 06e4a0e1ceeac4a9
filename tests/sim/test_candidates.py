"""The search's fast paths over thousands of candidates: `candidates_from_rows` must make exactly
what `Candidate(...)` makes and refuse rows that leave a field out; `best_ranked` must pick what
`min(pool, key=rank_key)` picks (the first of equal keys), whatever the objective and SLA tier."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from dgdr.domain.spec import OptimizationType
from sim._search import (
    Candidate,
    best_ranked,
    candidates_from_columns,
    pareto_front,
    rank_key,
    round_like_python,
)

ROW: dict[str, Any] = {
    "backend": "vllm",
    "tp": 2,
    "batch": 16,
    "replicas": 3,
    "ttft_ms": 120.5,
    "itl_ms": 9.25,
    "e2e_ms": 4000.0,
    "tokens_per_s_per_gpu": 812.3456,
    "tokens_per_s_per_user": 108.1081,
    "requests_per_s": 1.5,
    "meets_sla": True,
    "worst_ratio": 0.8,
    "mode": "disagg",
    "prefill_tp": 1,
    "prefill_workers": 2,
    "load_match": False,
    "served": 1.0,
    "ep": 2,
    "prefill_ep": 1,
    "pp": 1,
    "dp": 1,
    "prefill_dp": 1,
    "edge_ratio": 0.9,
    "budget_gpus": 16,
}


@pytest.mark.parametrize("budget_gpus", [0, 16])
def test_columns_make_the_candidates_the_constructor_makes(budget_gpus: int) -> None:
    # Throughputs on a half of the last reported digit, where numpy's rounding can differ.
    rows = [
        {**ROW, "budget_gpus": budget_gpus, "tokens_per_s_per_gpu": per_gpu, "replicas": r}
        for per_gpu, r in [(812.3456, 3), (2.675, 1), (1.0005, 2), (0.0625, 5), (1e-3 / 2, 4)]
    ]
    columns = {name: [row[name] for row in rows] for name in reversed(ROW)}  # any order
    made = candidates_from_columns(columns)
    built = [Candidate(**row) for row in rows]
    assert made == built
    assert [hash(c) for c in made] == [hash(c) for c in built]
    assert [c.to_json(True) for c in made] == [c.to_json(True) for c in built]
    assert [c.reported for c in made] == [c.reported for c in built]
    assert [rank_key(c) for c in made] == [rank_key(c) for c in built]
    assert pareto_front(made) == pareto_front(built)


@pytest.mark.parametrize("names", [tuple(ROW)[1:], (*ROW, "tensor_parallel")])
def test_columns_must_name_every_field_once(names: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="give each field of Candidate once"):
        candidates_from_columns({name: [] for name in names})


def test_rounding_like_python_on_halves_and_at_random() -> None:
    rng = np.random.default_rng(7)
    halves = (np.arange(0, 200_000) + 0.5) / 1000  # 0.0005, 0.0015, ...: all on a half
    values = np.concatenate(
        [halves, halves * 1e3, rng.uniform(0, 1e6, 20_000), 10 ** rng.uniform(-6, 9, 20_000)]
    )
    expected = [round(v, 3) for v in values.tolist()]
    assert round_like_python(values, 3).tolist() == expected


def _variant(**changes: Any) -> Candidate:
    return Candidate(**{**ROW, "budget_gpus": 0, **changes})


# Judged per GPU used (no budget), so that configs of different sizes tie on throughput.
POOL = [
    _variant(meets_sla=False, worst_ratio=1.2, edge_ratio=1.3),
    _variant(edge_ratio=1.1),  # meets the SLA without margin: ranks below any with margin
    _variant(tokens_per_s_per_gpu=800.0, tokens_per_s_per_user=150.0),
    # The same throughput as reported, slower per user (fewer GPUs would win a tie).
    _variant(tokens_per_s_per_gpu=812.3458, tokens_per_s_per_user=100.0, tp=4, replicas=1),
    _variant(tokens_per_s_per_gpu=812.3461, tokens_per_s_per_user=90.0, prefill_tp=2),
    _variant(),  # ties the first one above on every figure: the first of equal keys wins
    _variant(tokens_per_s_per_gpu=812.3456, tokens_per_s_per_user=108.1081),
]


@pytest.mark.parametrize("objective", [None, *OptimizationType])
@pytest.mark.parametrize("load_match", [False, True])
@pytest.mark.parametrize("meeting", [True, False])
def test_best_ranked_is_the_first_of_the_smallest_rank_key(
    objective: OptimizationType | None, load_match: bool, meeting: bool
) -> None:
    pool = [replace(c, load_match=load_match, served=0.5 + c.tp / 10) for c in POOL]
    if not meeting:
        pool = [replace(c, meets_sla=False, worst_ratio=1.5) for c in pool]
    ranked = sorted(range(len(pool)), key=lambda k: rank_key(pool[k], objective))
    assert best_ranked(pool, objective) is pool[ranked[0]]
    assert (
        best_ranked(pool[::-1], objective)
        is pool[::-1][min(range(len(pool)), key=lambda k: rank_key(pool[::-1][k], objective))]
    )
