"""`sim._search.candidates_from_rows`: the disaggregated search's fast way to make candidates must
make exactly what `Candidate(...)` makes, and refuse rows that leave a field out."""

from __future__ import annotations

from typing import Any

import pytest

from sim._search import Candidate, candidates_from_rows, pareto_front, rank_key

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


def test_rows_make_the_candidate_the_constructor_makes() -> None:
    names = tuple(reversed(ROW))  # any order of the fields
    (made,) = candidates_from_rows(names, [tuple(ROW[n] for n in names)])
    built = Candidate(**ROW)
    assert made == built
    assert hash(made) == hash(built)
    assert made.to_json(True) == built.to_json(True)
    assert rank_key(made) == rank_key(built)
    assert pareto_front([made]) == [built]


@pytest.mark.parametrize("names", [tuple(ROW)[1:], (*ROW, "tensor_parallel")])
def test_rows_must_name_every_field_once(names: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="give each field of Candidate once"):
        candidates_from_rows(names, [])
