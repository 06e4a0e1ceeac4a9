"""`bench/error_band`: the disaggregated DEP bands count every held-out worker of their kind."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import error_band  # noqa: E402
from calibrate_dep import split  # noqa: E402
from dep_fidelity import prefill_points  # noqa: E402


def test_the_prefill_band_counts_every_held_out_prefill_worker() -> None:
    # Scoring the decode points marks them "static" in place; the prefill workers must still be
    # drawn from all of them (they were drawn from the train quarter's only, once).
    raw = error_band._raw(error_band.DEP_DISAGG_PATH)
    held_out = [p for p in prefill_points(raw) if split(p) == "test"]
    decode = [r for r in raw if split(r) == "test"]
    band = error_band.dep_bands(error_band.DEP_PATH, error_band.DEP_DISAGG_PATH)["*/dep-*"]
    assert len(held_out) > 20
    assert band["static"]["n_ttft"] == len(held_out)
    assert band["static"]["n_itl"] == len(decode)
