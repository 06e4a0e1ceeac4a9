"""`bench/aic_ceiling`: the sweep finds the best config within the SLA by the judge it is given,
stops a layout at its first miss, and offers only layouts that fit the budget."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aic_ceiling", BENCH / "aic_ceiling.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("aic_ceiling", module)
    spec.loader.exec_module(module)
    return module


aic_ceiling = _load()
SHAPE = re.compile(r"agg TP(\d+)EP(\d+)PP(\d+)DP(\d+) bs(\d+)")


class Judge:
    """A made-up estimator: TPOT grows with the batch per GPU, DEP 8 is the fastest layout,
    PP 4 cannot run; records every shape asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, shape: str) -> dict[str, Any]:
        self.asked.append(shape)
        match = SHAPE.fullmatch(shape)
        assert match, shape
        tp, ep, pp, dp, batch = map(int, match.groups())
        if pp == 4:
            return {"error": "RuntimeError: OOM"}
        speed = 2.0 if (dp == 8 and ep == 8) else 1.0
        tpot = 10.0 + batch / (tp * speed)
        return {"ttft": 100.0, "tpot": tpot, "cluster": speed * batch * 1000.0 / tpot / tp}


def test_the_best_config_within_the_sla_is_found() -> None:
    judge = Judge()
    found = aic_ceiling.ceiling(judge, 16, True, 500.0, 30.0)
    # DEP 8: tpot = 10 + b/2 <= 30 up to b = 40, so the largest grid batch is 32.
    assert found["shape"] == "agg TP1EP8PP1DP8 bs32"
    assert found["tried"] == len(judge.asked)


def test_a_layout_stops_at_its_first_miss() -> None:
    judge = Judge()
    aic_ceiling.ceiling(judge, 16, True, 500.0, 30.0)
    tp1 = [s for s in judge.asked if s.startswith("agg TP1EP1PP1DP1 ")]
    # TP 1: tpot = 10 + b, 16 is the last batch within 30 ms and 24 the first beyond.
    assert tp1[-1].endswith(" bs24") and len(tp1) == aic_ceiling.BATCHES.index(24) + 1
    pp4 = [s for s in judge.asked if "PP4" in s]
    assert pp4 and all(s.endswith(" bs1") for s in pp4)


def test_nothing_within_the_sla_gives_no_shape() -> None:
    found = aic_ceiling.ceiling(Judge(), 8, False, 50.0, 5.0)
    assert found["shape"] == "" and found["cluster"] == 0.0 and found["tried"] > 0


def test_layouts_fit_the_budget_and_dep_is_for_moe_only() -> None:
    for budget in (8, 16, 32):
        for moe in (False, True):
            layouts = list(aic_ceiling.agg_layouts(budget, moe))
            assert all(tp * pp * dp <= budget for tp, _ep, pp, dp in layouts)
            assert any(dp == budget for _tp, _ep, _pp, dp in layouts) is moe
            if not moe:
                assert all(ep == 1 for _tp, ep, _pp, _dp in layouts)
