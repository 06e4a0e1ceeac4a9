"""Fit the DEP workers' own factors of `sim._dep` to AIC's estimates of DEP workers.

A DEP worker (attention DP x wide EP) runs other kernels than the TP worker the main calibration
(`bench/calibrate.py`) fits: DeepEP-style dispatch and combine, grouped GEMMs over many local
experts, all-heads attention per rank. AIC 0.12 times them from its own tables, per backend; with
the TP profile alone, `sim._dep` put SGLang's and vLLM's DeepSeek-V3 DEP 8 on H200 at about half
AIC's TTFT and ITL (4000/500, 32 sequences per rank: SGLang ours 1299 / 58 ms, AIC 4266 / 123).

Reads `bench/results/dep_fidelity.jsonl` (`bench/dep_fidelity.py`: AIC's `cli_estimate` per point;
rows without a backend are trtllm) and fits, per (backend, GPU), five fields of the
`BackendProfile` (`dep_moe_eff`, `dep_prefill_moe_eff`, `dep_attn_eff`, `dep_a2a_scale` within
the NVLink domain, `dep_internode_a2a_scale` across nodes) by robust
least squares on log(sim / AIC) of TTFT and ITL over the `train` split, as `bench/calibrate.py`
does (scipy, dev-only). A quarter of the points (a stable hash of the point) is held out and scored
before and after (`--pool-gpus` fits one set per backend instead: on the 2026-11-30 points its
held-out error was worse, TTFT median 17.3% against 13.9%). The fields go into
`sim/data/calibration.json`'s profiles (a GPU without DEP points, and the backend's `*` profile,
take the per-field median over the backend's fitted GPUs) with provenance under
`provenance.dep_fit`.
Run it after `bench/calibrate.py`, which rewrites the profiles; then `bench/error_band.py`.

    UV_PROJECT_ENVIRONMENT=/tmp/aic-env uv run --group calibration python bench/calibrate_dep.py
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dep_fidelity import OUT_PATH as POINTS  # noqa: E402
from dep_fidelity import backend_of  # noqa: E402

from sim._catalog import gpu_named, models  # noqa: E402
from sim._dep import dep_agg_ms, dep_plan  # noqa: E402

OUT = ROOT / "sim" / "data" / "calibration.json"
FIELDS = (
    "dep_moe_eff",
    "dep_prefill_moe_eff",
    "dep_attn_eff",
    "dep_a2a_scale",
    "dep_internode_a2a_scale",
)
BOUNDS = {  # (low, high): efficiencies relative to the TP profile's, the all-to-all a multiplier
    "dep_moe_eff": (0.1, 3.0),
    "dep_prefill_moe_eff": (0.05, 3.0),
    "dep_attn_eff": (0.1, 5.0),
    "dep_a2a_scale": (0.1, 20.0),
    "dep_internode_a2a_scale": (0.1, 20.0),
}
HELD_OUT = 4  # one point in HELD_OUT is held out
# Weight of log(field) as a residual: each field is pulled towards 1 (the TP profile's figure) as
# much as one point's 100 * PRIOR % error pulls it away, so a field few points constrain (the
# all-to-all of a GPU with only in-node DEP points) is not fitted to noise.
PRIOR = 0.1


def split(p: dict[str, Any]) -> str:
    key = f"{backend_of(p)}|{p['model']}|{p['gpu']}|{p['w']}|{p['isl']}|{p['b']}"
    return "test" if zlib.crc32(key.encode()) % HELD_OUT == 0 else "train"


def predict(p: dict[str, Any], fields: dict[str, float] | None) -> tuple[float, float]:
    """(TTFT, ITL) of `sim._dep` at the point, with `fields` over its profile (None: as is)."""
    plan = dep_plan(models()[p["model"]], gpu_named(p["gpu"]), backend_of(p), p["w"])
    if fields:
        plan = dataclasses.replace(plan, backend=dataclasses.replace(plan.backend, **fields))
    out = dep_agg_ms(plan, np.array([float(p["b"] * p["w"])]), float(p["isl"]), float(p["osl"]))
    return float(out.ttft_ms[0]), float(out.itl_ms[0])


def log_errors(rows: list[dict[str, Any]], fields: dict[str, float] | None) -> np.ndarray:
    out = []
    for p in rows:
        ttft, itl = predict(p, fields)
        out += [np.log(ttft / p["aic_ttft"]), np.log(itl / p["aic_itl"])]
    return np.asarray(out)


def summary(log_errs: np.ndarray) -> dict[str, float]:
    """Absolute error in %, median and p90, of TTFT and ITL (`log_errors`' pairs)."""
    if not log_errs.size:
        return {}
    err = np.abs(np.expm1(log_errs)).reshape(-1, 2) * 100.0
    return {
        "ttft_median": round(float(np.median(err[:, 0])), 1),
        "ttft_p90": round(float(np.percentile(err[:, 0], 90)), 1),
        "itl_median": round(float(np.median(err[:, 1])), 1),
        "itl_p90": round(float(np.percentile(err[:, 1], 90)), 1),
        "points": len(err),
    }


def fit(rows: list[dict[str, Any]], start: dict[str, float]) -> dict[str, float]:
    from scipy.optimize import least_squares  # type: ignore[import-untyped]

    lo = np.log([BOUNDS[f][0] for f in FIELDS])
    hi = np.log([BOUNDS[f][1] for f in FIELDS])
    x0 = np.clip(np.log([start[f] for f in FIELDS]), lo + 1e-6, hi - 1e-6)

    def fun(x: np.ndarray) -> np.ndarray:
        errors = log_errors(rows, dict(zip(FIELDS, np.exp(x).tolist(), strict=True)))
        return np.concatenate([errors, PRIOR * x])  # a field the points leave free stays near 1

    res = least_squares(
        fun, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.15, max_nfev=80, diff_step=1e-3
    )
    return {f: round(float(v), 5) for f, v in zip(FIELDS, np.exp(res.x), strict=True)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--points", type=Path, default=POINTS)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--pool-gpus", action="store_true", help="one fit per backend over its GPUs")
    args = ap.parse_args(argv)
    rows = [json.loads(line) for line in args.points.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "error" not in r]
    data = json.loads(args.out.read_text())
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((backend_of(r), "*" if args.pool_gpus else r["gpu"]), []).append(r)
    fitted: dict[tuple[str, str], dict[str, float]] = {}
    for (backend, gpu), group in sorted(groups.items()):
        train = [r for r in group if split(r) == "train"]
        profile = dep_plan(
            models()[group[0]["model"]], gpu_named(group[0]["gpu"]), backend, 2
        ).backend
        start = {
            "dep_moe_eff": profile.moe_eff or 1.0,
            "dep_prefill_moe_eff": profile.moe_eff or 1.0,
            "dep_attn_eff": 1.0,
            "dep_a2a_scale": 1.0,
            "dep_internode_a2a_scale": 1.0,
        }
        fitted[(backend, gpu)] = fit(train, start)
        print(f"{backend}/{gpu}: {len(train)} train points -> {fitted[(backend, gpu)]}")
    for (backend, gpu), fields in fitted.items():
        data["profiles"].setdefault(f"{backend}/{gpu}", {}).update(fields)
    for backend in sorted({b for b, _ in fitted}):  # GPUs without DEP points: the median
        per_gpu = [f for (b, _), f in fitted.items() if b == backend]
        median = {k: round(float(np.median([f[k] for f in per_gpu])), 5) for k in FIELDS}
        for key, profile in data["profiles"].items():
            b, _, gpu = key.partition("/")
            if b == backend and (b, gpu) not in fitted:
                profile.update(median)

    def key_of(r: dict[str, Any]) -> tuple[str, str]:
        return (backend_of(r), "*" if args.pool_gpus else r["gpu"])

    def fitted_errors(sel: list[dict[str, Any]]) -> np.ndarray:
        return np.concatenate([log_errors([r], fitted[key_of(r)]) for r in sel] or [np.zeros(0)])

    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for backend in [*sorted({backend_of(r) for r in rows}), "all"]:
        for part in ("train", "test"):
            sel = [r for r in rows if split(r) == part and backend in ("all", backend_of(r))]
            before[f"{backend}/{part}"] = summary(log_errors(sel, None))
            after[f"{backend}/{part}"] = summary(fitted_errors(sel))
            print(f"{backend:6s} {part:5s} before {before[f'{backend}/{part}']}")
            print(f"{backend:6s} {part:5s} after  {after[f'{backend}/{part}']}")
    from scipy import __version__ as scipy_v  # type: ignore[import-untyped]

    data["provenance"]["dep_fit"] = {
        "points": str(args.points.relative_to(ROOT))
        if args.points.is_relative_to(ROOT)
        else str(args.points),
        "fields": list(FIELDS),
        "fit": f"scipy {scipy_v} least_squares soft_l1 on log(sim/AIC), TTFT and ITL",
        "held_out_percent": 100 // HELD_OUT,
        "date": dt.date.today().isoformat(),
        "error_before": before,
        "error_after": after,
    }
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
