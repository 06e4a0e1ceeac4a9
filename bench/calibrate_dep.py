"""Fit the DEP workers' own factors of `sim._dep` to AIC's estimates of DEP workers.

A DEP worker (attention DP x wide EP) runs other kernels than the TP worker the main calibration
(`bench/calibrate.py`) fits: DeepEP-style dispatch and combine, grouped GEMMs over many local
experts, all-heads attention per rank. AIC 0.12 times them from its own tables, per backend; with
the TP profile alone, `sim._dep` put SGLang's and vLLM's DeepSeek-V3 DEP 8 on H200 at about half
AIC's TTFT and ITL (4000/500, 32 sequences per rank: SGLang ours 1299 / 58 ms, AIC 4266 / 123).

Reads `bench/results/dep_fidelity.jsonl` (`bench/dep_fidelity.py`: AIC's `cli_estimate` per point;
rows without a backend are trtllm) and `bench/results/dep_disagg_fidelity.jsonl` (the same workers
as disaggregated decode workers, `--disagg`: their ITL alone; and, from the same file, the
disaggregated prefill workers, `prefill_points`: their TTFT alone) and fits, per (backend, GPU, model
family as `sim._margin.family` names it: mla-moe, moe, mode), five fields of the `BackendProfile`
(`dep_moe_eff`, `dep_prefill_moe_eff`, `dep_attn_eff`, `dep_a2a_scale` within the NVLink domain,
`dep_internode_a2a_scale` across nodes) by robust least squares on log(sim / AIC) of TTFT and ITL
over the `train` split, as `bench/calibrate.py` does (scipy, dev-only), each field pulled weakly
towards 1 (`PRIOR`). A quarter of the points (a stable hash of the point) is held out and scored
against the TP profile alone and after. They go into `sim/data/calibration.json` under
`dep_profiles` ("backend/gpu/family"; "backend/*/family", the per-field median over the backend's
GPUs, for the others; the same with "/disagg" for the decode workers and "/prefill" for the
prefill workers), read by
`sim._estimate.dep_profile`, with provenance under `provenance.dep_fit`.

The prefill workers of a disaggregated config are a mode of their own too: AIC 0.12's disaggregated
estimate times a DEP prefill worker's all-to-all across nodes with DeepEP's single-node tables (its
search reports the substitution), its aggregated estimate by another path; on 2026-11-30 the
aggregated factors put DEP 16 prefill workers (2 nodes) at 3.4-7.0x AIC's disaggregated TTFT and
one-node ones at 0.85-1.58x.

The decode workers of a disaggregated config are a mode of their own: on 2026-11-30 one set of
factors fitted on both kinds of points put the aggregated held-out TTFT from 3.9% / 16.5% to 6.9% /
25.1% (median / p90) and still left the decode workers at 6.7% / 28.3%; aggregated points at long
prompts are mostly their mixed prefill steps, which leaves the pure decode step loose (the
aggregated factors alone put the decode workers at 10.8% / 52.5%). Groups compared on the
aggregated points, held out, TTFT / ITL: one set per backend (four fields) 17.3% / 62.5%, 11.1% /
33.6%; per backend and GPU 11.8% / 39.2%, 9.5% / 26.8%; per backend, GPU and family 3.9% / 18.6%,
5.9% / 17.6% (a family's fit comes from one model of it here, DeepSeek-V3 or Qwen3-30B-A3B: the
held-out points are other points of the same model).
Run it after `bench/calibrate.py` (which keeps these); then `bench/error_band.py`.

    UV_PROJECT_ENVIRONMENT=/tmp/aic-env uv run --group calibration python bench/calibrate_dep.py
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import itertools
import json
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dep_fidelity import DISAGG_PATH as DISAGG_POINTS  # noqa: E402
from dep_fidelity import OUT_PATH as POINTS  # noqa: E402
from dep_fidelity import backend_of, mode_of, ours, prefill_points  # noqa: E402

from sim._catalog import gpu_named, models  # noqa: E402
from sim._dep import dep_plan  # noqa: E402
from sim._estimate import DEP_FIELDS, BackendProfile  # noqa: E402
from sim._margin import family  # noqa: E402

OUT = ROOT / "sim" / "data" / "calibration.json"
FIELDS = (
    "dep_moe_eff",
    "dep_prefill_moe_eff",
    "dep_attn_eff",
    "dep_a2a_scale",
    "dep_internode_a2a_scale",
)
assert set(FIELDS) == DEP_FIELDS, "fit every DEP field of BackendProfile"
BOUNDS = {  # (low, high): efficiencies relative to the TP profile's, the all-to-all a multiplier
    "dep_moe_eff": (0.1, 3.0),
    "dep_prefill_moe_eff": (0.05, 3.0),
    "dep_attn_eff": (0.1, 5.0),
    "dep_a2a_scale": (0.1, 20.0),
    "dep_internode_a2a_scale": (0.1, 20.0),
}
HELD_OUT = 4  # one point in HELD_OUT is held out
# The fields' defaults, which price a DEP worker as its TP profile does.
AS_TP: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(BackendProfile) if f.name in DEP_FIELDS
}
# Weight of log(field) as a residual: each field is pulled towards 1 (the efficiencies: the GEMM or
# attention efficiency itself; the all-to-all: the link model) as much as one point's 100 * PRIOR %
# error pulls it away, so a field few points constrain (the across-node all-to-all of a group with
# only in-node DEP points) is not fitted to noise.
PRIOR = 0.1


def split(p: dict[str, Any]) -> str:
    key = f"{backend_of(p)}|{p['model']}|{p['gpu']}|{p['w']}|{p['isl']}|{p['b']}"
    if mode_of(p) != "agg":  # the agg points' keys predate the disaggregated ones
        key += f"|{mode_of(p)}"
    return "test" if zlib.crc32(key.encode()) % HELD_OUT == 0 else "train"


def log_errors(rows: list[dict[str, Any]], fields: dict[str, Any] | None) -> np.ndarray:
    """log(sim / AIC) of TTFT and ITL per point, in pairs; NaN for a disaggregated decode
    worker's TTFT and a prefill worker's ITL (not compared: `bench/dep_fidelity.ours`)."""
    out = []
    for p in rows:
        ttft, itl = ours(p, fields)
        out += [np.log(ttft / p["aic_ttft"]), np.log(itl / p["aic_itl"])]
    return np.asarray(out)


def summary(log_errs: np.ndarray) -> dict[str, float]:
    """Absolute error in %, median and p90, of TTFT and ITL (`log_errors`' pairs, NaN left out)."""
    if not log_errs.size:
        return {}
    err = np.abs(np.expm1(log_errs)).reshape(-1, 2) * 100.0
    out: dict[str, float] = {}
    for name, column in (("ttft", err[:, 0]), ("itl", err[:, 1])):
        column = column[~np.isnan(column)]
        if column.size:
            out[f"{name}_median"] = round(float(np.median(column)), 1)
            out[f"{name}_p90"] = round(float(np.percentile(column, 90)), 1)
    return {**out, "points": len(err)}


def fit(rows: list[dict[str, Any]], start: dict[str, float]) -> dict[str, float]:
    from scipy.optimize import least_squares  # type: ignore[import-untyped]

    lo = np.log([BOUNDS[f][0] for f in FIELDS])
    hi = np.log([BOUNDS[f][1] for f in FIELDS])
    x0 = np.clip(np.log([start[f] for f in FIELDS]), lo + 1e-6, hi - 1e-6)

    def fun(x: np.ndarray) -> np.ndarray:
        errors = log_errors(rows, dict(zip(FIELDS, np.exp(x).tolist(), strict=True)))
        prior = PRIOR * x  # a field the points leave free stays near 1
        return np.concatenate([np.nan_to_num(errors), prior])  # a NaN: TTFT not compared

    res = least_squares(
        fun, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.15, max_nfev=80, diff_step=1e-3
    )
    return {f: round(float(v), 5) for f, v in zip(FIELDS, np.exp(res.x), strict=True)}


def key_of(r: dict[str, Any]) -> tuple[str, str, str, str]:
    """A point's fit group: backend, GPU, model family (`sim._margin.family`), mode (agg; disagg
    or prefill: the decode or prefill workers of a disaggregated config,
    `sim._estimate.dep_profile`)."""
    return backend_of(r), r["gpu"], family(models()[r["model"]]), mode_of(r)


def profile_key(backend: str, gpu: str, fam: str, mode: str) -> str:
    """The key of `calibration.json`'s `dep_profiles`: "backend/gpu/family[/disagg|/prefill]"."""
    return "/".join((backend, gpu, fam) if mode == "agg" else (backend, gpu, fam, mode))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--points", type=Path, default=POINTS)
    ap.add_argument("--disagg-points", type=Path, default=DISAGG_POINTS)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    rows = [
        row
        for path in (args.points, args.disagg_points)
        if path.exists()
        for line in path.read_text().splitlines()
        if line.strip() and "error" not in (row := json.loads(line))
    ]
    rows += prefill_points(rows)
    data = json.loads(args.out.read_text())
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(key_of(r), []).append(r)
    fitted: dict[tuple[str, str, str, str], dict[str, float]] = {}
    for key, group in sorted(groups.items()):
        train = [r for r in group if split(r) == "train"]
        moe_eff = dep_plan(
            models()[group[0]["model"]], gpu_named(key[1]), key[0], 2
        ).backend.moe_eff
        start = {**dict.fromkeys(FIELDS, 1.0), "dep_moe_eff": moe_eff or 1.0}
        start["dep_prefill_moe_eff"] = start["dep_moe_eff"]
        fitted[key] = fit(train, start)
        print(f"{profile_key(*key)}: {len(train)} train points -> {fitted[key]}")
    profiles = {profile_key(*k): f for k, f in sorted(fitted.items())}
    for backend, fam, mode in sorted({(b, f, m) for b, _, f, m in fitted}):  # others: median
        per_gpu = [f for (b, _, m, o), f in fitted.items() if (b, m, o) == (backend, fam, mode)]
        profiles[profile_key(backend, "*", fam, mode)] = {
            k: round(float(np.median([f[k] for f in per_gpu])), 5) for k in FIELDS
        }
    data["dep_profiles"] = profiles
    for fields in data["profiles"].values():  # a former fit's fields on the TP profiles
        for k in FIELDS:
            fields.pop(k, None)

    def fitted_errors(sel: list[dict[str, Any]]) -> np.ndarray:
        return np.concatenate([log_errors([r], fitted[key_of(r)]) for r in sel] or [np.zeros(0)])

    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for backend in [*sorted({backend_of(r) for r in rows}), "all"]:
        for mode, part in itertools.product(("agg", "disagg", "prefill"), ("train", "test")):
            sel = [
                r
                for r in rows
                if split(r) == part and mode_of(r) == mode and backend in ("all", backend_of(r))
            ]
            name = f"{backend}/{part}" if mode == "agg" else f"{backend}/{mode}/{part}"
            before[name] = summary(log_errors(sel, AS_TP))
            after[name] = summary(fitted_errors(sel))
            print(f"{name:20s} before {before[name]}")
            print(f"{name:20s} after  {after[name]}")
    from scipy import __version__ as scipy_v  # type: ignore[import-untyped]

    data["provenance"]["dep_fit"] = {
        "points": [
            str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
            for path in (args.points, args.disagg_points)
            if path.exists()
        ],
        "fields": list(FIELDS),
        "groups": "backend / GPU / model family (sim._margin.family) / mode (agg; disagg: "
        "decode workers of a disaggregated config; prefill: its prefill workers)",
        "fit": f"scipy {scipy_v} least_squares soft_l1 on log(sim/AIC), TTFT and ITL "
        "(ITL only for disaggregated decode workers, TTFT only for their prefill workers)",
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
