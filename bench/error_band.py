"""The estimator's error band per model family and mode, from the calibration table; writes
`sim/data/error_band.json` (read by `sim._margin`).

For every row of `bench/results/fidelity.csv` (AIC SILICON vs `sim.estimate` at the same point) of a
layout the search uses (`searched_layout`: not the expert-TP rows of MoE models) it re-scores the
current `sim.estimate` and takes, per (family, mode) with family from `sim._margin.family` (dense,
moe, mla-moe) and mode agg/static, the `QUANTILE`th percentile of log(AIC / sim) for TTFT and ITL,
reported as the fraction exp(p) - 1, floored at 0: how optimistic the estimate is at that
percentile. 75, not 90, since 2026-11-30: on `bench/picks.py`'s 45 specs AIC judged every pick to
meet the SLA at p90, p80 and p75 alike, while the p90 margin cost throughput (median 0.964 of AIC's
best at p90, 0.969 at p80, 0.970 at p75; p50 let 5 of 45 miss). A "*" backend or family pools
their rows (the band of one the table lacks). Rerun it after any change to the estimator or its
calibration (no AIC needed):
    uv run python bench/error_band.py
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibrate_dep import split as dep_split  # noqa: E402
from dep_fidelity import DISAGG_PATH as DEP_DISAGG_PATH  # noqa: E402
from dep_fidelity import OUT_PATH as DEP_PATH  # noqa: E402
from dep_fidelity import backend_of, prefill_points  # noqa: E402
from dep_fidelity import ours as dep_ours  # noqa: E402
from fidelity import CSV_PATH, read_csv, score_sim  # noqa: E402

import sim  # noqa: E402
from sim._margin import BAND_FILE, DEP_PREFIX, MODES, family  # noqa: E402
from sim._roofline import expert_parallel  # noqa: E402

OUT_PATH = ROOT / "sim" / "data" / BAND_FILE
QUANTILE = 75


def searched_layout(row: dict[str, Any]) -> bool:
    """A row of a layout `sim.profile` searches: a catalog model, and for a MoE model its experts
    spread over the TP GPUs where they divide (`sim._roofline.expert_parallel`). The band is what
    the search's picks may be off by; expert-TP rows (EP 1 at TP > 1), which it never picks, are
    the estimator's least certain and would widen it for every pick."""
    model = sim.models().get(row["model"])
    return model is not None and row["ep"] == expert_parallel(model, row["tp"])


def band(rows: list[dict[str, Any]], metric: str) -> float:
    logs = np.log([r[f"aic_{metric}_ms"] / r[f"sim_{metric}_ms"] for r in rows])
    return round(max(0.0, float(np.expm1(np.percentile(logs, QUANTILE)))), 3)


def bands(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Keyed "backend/family" with "*" for any (pooled), then mode."""
    catalog = sim.models()
    for r in rows:
        r["family"] = family(catalog[r["model"]])
    out: dict[str, dict[str, dict[str, float]]] = {}
    backends = [*sorted({r["backend"] for r in rows}), "*"]
    families = [*sorted({r["family"] for r in rows}), "*"]
    for backend, fam, mode in itertools.product(backends, families, MODES):
        sel = [
            r
            for r in rows
            if backend in ("*", r["backend"]) and fam in ("*", r["family"]) and r["mode"] == mode
        ]
        if sel:
            out.setdefault(f"{backend}/{fam}", {})[mode] = {
                "ttft": band(sel, "ttft"),
                "itl": band(sel, "itl"),
                "n": len(sel),
            }
    return out


def dep_bands(path: Path, disagg_path: Path) -> dict[str, dict[str, dict[str, float]]]:
    """The DEP workers' bands, keyed "<backend>/dep-<family>" with "*" pooling backends or
    families, as `bands` keys the TP ones, re-scored against the current `sim._dep`.

    Only the points `bench/calibrate_dep.py` held out count: its fit has a set of factors per
    backend, GPU, family and mode, so the points it was fitted on understate the error.
    Aggregated serving ("agg"): from `bench/dep_fidelity.py`'s points. Disaggregated workers
    ("static", the mode the disaggregated search reads): ITL from the decode-worker points of
    `--disagg` (`disagg_path`), TTFT from their prefill workers (`prefill_points`); a key
    without disaggregated points takes its agg band."""
    rows = [r for r in _points(path) if dep_split(r) == "test"]
    for r in rows:
        r["mode"] = "agg"
    agg = bands(rows)
    raw = _raw(disagg_path) if disagg_path.exists() else []
    prefill_rows = [r for r in _scored(prefill_points(raw)) if dep_split(r) == "test"]
    disagg_rows = [r for r in _scored(raw) if dep_split(r) == "test"]
    for r in disagg_rows:
        r["mode"], r["sim_ttft_ms"] = "static", r["aic_ttft_ms"]  # TTFT is not compared
    disagg = bands(disagg_rows)
    for r in prefill_rows:
        r["mode"], r["sim_itl_ms"], r["aic_itl_ms"] = "static", 1.0, 1.0  # ITL is not compared
    prefill = bands(prefill_rows)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key, modes in agg.items():
        static = dict(modes["agg"])
        if key in disagg:
            measured = disagg[key]["static"]
            static.update(itl=measured["itl"], n_itl=measured["n"])
        if key in prefill:
            measured = prefill[key]["static"]
            static.update(ttft=measured["ttft"], n_ttft=measured["n"])
        out[key.replace("/", f"/{DEP_PREFIX}")] = {"agg": dict(modes["agg"]), "static": static}
    return out


def _raw(path: Path) -> list[dict[str, Any]]:
    """The points of a `bench/dep_fidelity.py` file that AIC could run."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if "error" not in r]


def _points(path: Path) -> list[dict[str, Any]]:
    """The points of a `bench/dep_fidelity.py` file that AIC could run, with both figures."""
    return _scored(_raw(path))


def _scored(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` with ours and AIC's figures side by side (`sim_*_ms`, `aic_*_ms`)."""
    for r in rows:
        r["backend"] = backend_of(r)
        r["sim_ttft_ms"], r["sim_itl_ms"] = dep_ours(r)
        r["aic_ttft_ms"], r["aic_itl_ms"] = r["aic_ttft"], r["aic_itl"]
    return rows


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--csv", type=Path, default=CSV_PATH)
    ap.add_argument("--dep", type=Path, default=DEP_PATH, help="DEP points (bench/dep_fidelity.py)")
    ap.add_argument(
        "--dep-disagg",
        type=Path,
        default=DEP_DISAGG_PATH,
        help="disaggregated DEP decode points (bench/dep_fidelity.py --disagg)",
    )
    ap.add_argument("--out", type=Path, default=OUT_PATH)
    args = ap.parse_args(argv)
    rows = [r for r in read_csv(args.csv) if searched_layout(r)]
    score_sim(rows)
    data: dict[str, Any] = {
        "_doc": (
            "How optimistic sim.estimate may be: per backend/model family (sim._margin.family, "
            "'*': pooled) and mode, over the rows of the layouts the search uses (a MoE model's "
            "experts spread over its TP GPUs), "
            f"exp(p{QUANTILE} of log(AIC/sim)) - 1, floored at 0, for TTFT and ITL; n = rows. "
            "'<backend>/dep-<family>': DEP workers (attention DP x wide EP), from "
            "bench/results/dep_fidelity.jsonl (aggregated serving, the points bench/calibrate_dep.py "
            "held out); 'static' (disaggregated workers): ITL from the decode-worker points of "
            "bench/results/dep_disagg_fidelity.jsonl it held out (n_itl), TTFT from their "
            "prefill workers it held out (n_ttft), else as agg. "
            "Written by bench/error_band.py; read by sim._margin."
        ),
        "provenance": {
            "table": _relative(args.csv),
            "rows": len(rows),
            "dep_points": _relative(args.dep),
            "dep_disagg_points": _relative(args.dep_disagg),
            "reference": "aiconfigurator-core 0.12.0 (database_mode SILICON)",
            "estimator": sim.calibration_source(),
            "quantile": QUANTILE,
            "date": datetime.date.today().isoformat(),
        },
        "bands": {**bands(rows), **dep_bands(args.dep, args.dep_disagg)},
    }
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    for fam, modes in data["bands"].items():
        for mode, figs in modes.items():
            print(
                f"{fam:16s} {mode:6s} n={figs['n']:5d}  TTFT +{figs['ttft']:.0%}  ITL +{figs['itl']:.0%}"
            )
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
