"""Fit `sim.estimate`'s efficiency factors and overheads to AIC SILICON figures.

Reads the raw table of `bench/fidelity.py` (bench/results/fidelity.csv), fits one `BackendProfile`
per (backend, GPU) on the rows of the `train` split by robust least squares on log(sim / AIC) of
TTFT and ITL (scipy, dev-only), scores train and held-out (`test`) rows before and after, and writes
`sim/data/calibration.json` with provenance and the held-out error band per model family and mode
(`error_band`, quantiles of log(sim / AIC): what the search's SLA margin reads). A backend's `*`
profile (for GPUs without AIC data) is the per-field median over its fitted GPUs; a backend without
AIC data gets the median over every fitted profile. Fields only one architecture's rows constrain
(`ONLY_FOR`: MLA's, MoE's, fp8 checkpoints') are taken, in a group without such rows (no
DeepSeek-V3 fits an H100 node), from the median of its backend's groups that have them.

    UV_PROJECT_ENVIRONMENT=/tmp/aic-env uv run --group calibration python bench/calibrate.py

The DEP workers' own fields (`dep_*`) are fitted by `bench/calibrate_dep.py` on top of these
profiles: this script keeps them, and that one is to be rerun after it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import fidelity  # noqa: E402

import sim  # noqa: E402
from sim import _estimate  # noqa: E402
from sim._aic import AIC_MODELS  # noqa: E402

OUT = ROOT / "sim" / "data" / "calibration.json"
# (field, lower, upper, start)
PARAMS: tuple[tuple[str, float, float, float], ...] = (
    ("compute_eff", 0.05, 1.0, 0.5),
    ("memory_eff", 0.05, 1.0, 0.7),
    ("step_overhead_ms", 0.0, 20.0, 1.0),
    ("layer_overhead_ms", 0.0, 0.5, 0.02),
    ("prefill_compute_eff", 0.05, 1.0, 0.5),
    ("attn_eff", 0.02, 1.0, 0.4),
    ("kv_memory_eff", 0.05, 1.0, 0.7),
    ("prefill_overhead_ms", 0.0, 20.0, 1.0),
    ("prefill_layer_overhead_ms", 0.0, 2.0, 0.02),
    ("comm_scale", 0.05, 20.0, 1.0),
    ("moe_eff", 0.05, 1.0, 0.7),
    ("moe_read_eff", 0.05, 1.0, 0.7),  # routed-expert weight reads (MoE rows only)
    ("fp8_eff", 0.5, 1.0, 0.7),  # fp8 GEMMs never slower than bf16 ones
    ("a2a_scale", 0.05, 20.0, 1.0),
    ("mla_eff", 0.05, 1.0, 0.7),  # MLA attention block (DeepSeek rows only)
    ("mla_layer_overhead_ms", 0.0, 0.5, 0.02),  # per MLA layer (DeepSeek rows only)
    ("moe_layer_overhead_ms", 0.0, 0.5, 0.01),  # per MoE layer (MoE rows only)
    ("expert_shard_cols", 0.0, 4096.0, 64.0),  # expert-TP shard width loss (MoE EP < TP rows)
    ("gemm_shard_cols", 0.0, 4096.0, 32.0),  # TP shard width loss of the GEMMs
)
# fields only rows of one architecture constrain: a group without such rows takes the backend's
# median over the groups that have them (not the fit's untouched start value)
ONLY_FOR = {
    "mla_eff": "mla",
    "mla_layer_overhead_ms": "mla",
    "moe_layer_overhead_ms": "moe",
    "moe_read_eff": "moe",
    "expert_shard_cols": "moe",
    "fp8_eff": "fp8",  # no fp8 checkpoint fits an H100 node: unconstrained there, it drifted 0.82-1.0
}


def profile_from(x: np.ndarray, backend: str) -> _estimate.BackendProfile:
    fields: dict[str, Any] = {name: float(v) for (name, *_), v in zip(PARAMS, x, strict=True)}
    return dataclasses.replace(_estimate.BACKENDS[backend], **fields)


def residuals(rows: list[dict[str, Any]]) -> np.ndarray:
    fidelity.score_sim(rows)
    sim_v = np.array([[r["sim_ttft_ms"], r["sim_itl_ms"]] for r in rows])
    aic_v = np.array([[r["aic_ttft_ms"], r["aic_itl_ms"]] for r in rows])
    return np.asarray(np.log(sim_v / aic_v).ravel())


def fit_group(args: tuple[str, str, list[dict[str, Any]]]) -> tuple[str, str, dict[str, float]]:
    from scipy.optimize import least_squares  # type: ignore[import-untyped]

    backend, gpu, rows = args
    _estimate.CALIBRATED.clear()

    def fun(x: np.ndarray) -> np.ndarray:
        _estimate.CALIBRATED[(backend, gpu)] = profile_from(x, backend)
        return residuals(rows)

    lo = np.array([p[1] for p in PARAMS])
    hi = np.array([p[2] for p in PARAMS])
    x0 = np.clip(np.array([p[3] for p in PARAMS]), lo, hi)
    res = least_squares(
        fun, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.15, max_nfev=60, diff_step=1e-3
    )
    return (
        backend,
        gpu,
        {name: round(float(v), 5) for (name, *_), v in zip(PARAMS, res.x, strict=True)},
    )


def _has(kind: str, rows: list[dict[str, Any]]) -> bool:
    archs = [sim.models()[r["model"]] for r in rows]
    attr = {"mla": "is_mla", "moe": "is_moe", "fp8": "fp8_compute"}[kind]
    return any(getattr(m, attr) for m in archs)


def fill_unconstrained(
    fitted: list[tuple[str, str, dict[str, float]]],
    groups: dict[tuple[str, str], list[dict[str, Any]]],
) -> list[tuple[str, str, dict[str, float]]]:
    """A group whose train rows hold no model of a field's architecture (`ONLY_FOR`: no MLA model
    fits an H100 node) takes that field from the median of its backend's groups that do."""
    out = []
    for backend, gpu, fields in fitted:
        fields = dict(fields)
        for name, kind in ONLY_FOR.items():
            if _has(kind, groups[(backend, gpu)]):
                continue
            donors = [f[name] for b, g, f in fitted if b == backend and _has(kind, groups[(b, g)])]
            if donors:
                fields[name] = round(float(np.median(donors)), 5)
        out.append((backend, gpu, fields))
    return out


def install(profiles: dict[str, dict[str, Any]]) -> None:
    _estimate.CALIBRATED.clear()
    for key, fields in profiles.items():
        backend, _, gpu = key.partition("/")
        _estimate.CALIBRATED[(backend, gpu)] = dataclasses.replace(
            _estimate.BACKENDS[backend], **fields
        )


KIND = {  # coarse class of each family, for models outside the grid
    "qwen3-dense": "dense",
    "llama3": "dense",
    "qwen3-moe": "moe",
    "deepseek-mla-moe": "mla-moe",
}


def _band(sel: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(sel)}
    for metric in ("ttft", "itl"):
        q = np.log([r[f"sim_{metric}_ms"] / r[f"aic_{metric}_ms"] for r in sel])
        out[metric] = {
            name: round(float(np.percentile(q, pct)), 4)
            for name, pct in (("p10", 10), ("median", 50), ("p90", 90))
        }
    return out


def error_bands(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Held-out quantiles of log(sim / AIC) per family, per kind and overall, per mode."""
    test = [r for r in rows if r["split"] == "test"]
    bands: dict[str, Any] = {
        "_doc": (
            "Held-out (split 'test') error band of sim.estimate against AIC SILICON after the fit: "
            "quantiles p10 / median / p90 of q = ln(sim / AIC) per '<group>/<mode>' (mode static "
            "or agg), for TTFT and ITL, with the row count n. q < 0: sim optimistic. AIC's figure "
            "lies above sim * exp(-p10) for 10% of points, so sim * exp(-p10) is the band's "
            "pessimistic edge for a latency. Groups: the model families of bench/fidelity.py "
            "('families' lists their models), their kinds (dense, moe, mla-moe: for models "
            "outside the grid) and 'all'. Families with few held-out rows (see n) are noisy."
        ),
        "families": {
            fam: sorted(m for m, f in fidelity.FAMILY.items() if f == fam)
            for fam in sorted(set(fidelity.FAMILY.values()))
        },
        "kinds": KIND,
    }
    for mode in fidelity.MODES:
        in_mode = [r for r in test if r["mode"] == mode]
        groups: dict[str, list[dict[str, Any]]] = {"all": in_mode}
        for r in in_mode:
            fam = fidelity.FAMILY[r["model"]]
            groups.setdefault(fam, []).append(r)
            groups.setdefault(KIND[fam], []).append(r)
        for name, sel in sorted(groups.items()):
            bands[f"{name}/{mode}"] = _band(sel)
    return bands


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="fit sim's constants to AIC SILICON")
    ap.add_argument("--csv", type=Path, default=fidelity.CSV_PATH)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    try:
        import scipy  # type: ignore[import-untyped]
    except ImportError:
        print(fidelity.INSTALL_HINT.replace("fidelity.py", "calibrate.py"), file=sys.stderr)
        return 2
    rows = fidelity.read_csv(args.csv)
    _estimate.CALIBRATED.clear()
    fidelity.score_sim(rows)
    before = fidelity.report(rows, "BEFORE (built-in assumptions)")

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r["split"] == "train":
            groups.setdefault((r["backend"], r["gpu"]), []).append(r)
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        fitted = list(pool.map(fit_group, [(b, g, rs) for (b, g), rs in sorted(groups.items())]))
    print(
        f"\nfit: {len(fitted)} groups in {time.perf_counter() - start:.0f} s (scipy {scipy.__version__})"
    )
    fitted = fill_unconstrained(fitted, groups)
    profiles: dict[str, dict[str, float]] = {}
    for backend, gpu, fields in fitted:
        profiles[f"{backend}/{gpu}"] = fields
        print(f"  {backend}/{gpu}: {fields}")
    names = [p[0] for p in PARAMS]
    for backend in sorted({b for b, _, _ in fitted}):
        mine = [f for b, _, f in fitted if b == backend]
        profiles[f"{backend}/*"] = {
            n: round(float(np.median([f[n] for f in mine])), 5) for n in names
        }
    if "sglang" not in {b for b, _, _ in fitted} and fitted:
        allf = [f for _, _, f in fitted]
        profiles["sglang/*"] = {n: round(float(np.median([f[n] for f in allf])), 5) for n in names}

    install(profiles)
    fidelity.score_sim(rows)
    after = fidelity.report(rows, "AFTER (fitted on train, scored on train and held-out test)")
    scipy_v = scipy.__version__
    doc = {
        "_doc": (
            "Efficiency factors and overheads of sim.estimate (BackendProfile fields, see "
            "sim/_estimate.py) fitted to NVIDIA AIConfigurator's measured-silicon database by "
            "bench/calibrate.py from bench/results/fidelity.csv. Keys: backend/gpu ('*': any "
            "other GPU, the per-field median over the fitted GPUs)."
        ),
        "provenance": {
            "aic_version": "aiconfigurator-core 0.12.0 (database_mode SILICON)",
            "date": dt.date.today().isoformat(),
            "fit": f"scipy {scipy_v} least_squares soft_l1 on log(sim/AIC), TTFT and ITL",
            "grid": {
                "models": list(AIC_MODELS),
                "gpus": list(fidelity.GPUS),
                "backends": list(fidelity.BACKENDS),
                "tp": list(fidelity.TPS),
                "batch": list(fidelity.BATCHES),
                "isl_osl": [list(s) for s in fidelity.SEQS],
                "modes": list(fidelity.MODES),
                "points_compared": len(rows),
                "held_out_percent": fidelity.HELD_OUT_PERCENT,
            },
            "error_before": {k: v for k, v in before.items() if "/" in k},
            "error_after": {k: v for k, v in after.items() if "/" in k},
        },
        "error_band": error_bands(rows),
        "profiles": profiles,
    }
    keep_dep_fit(args.out, doc)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"\nwrote {args.out}")
    return 0


def keep_dep_fit(path: Path, doc: dict[str, Any]) -> None:
    """Carry the DEP fields `bench/calibrate_dep.py` wrote into `path` over to `doc`: they are
    fitted on other points, on top of these profiles, so rerun it after this fit."""
    if not path.exists():
        return
    old = json.loads(path.read_text())
    if "dep_profiles" not in old:
        return
    doc["dep_profiles"] = old["dep_profiles"]
    doc["provenance"]["dep_fit"] = old["provenance"].get("dep_fit", {})
    print("kept the DEP profiles of bench/calibrate_dep.py: rerun it, it fits on these profiles")


if __name__ == "__main__":
    raise SystemExit(main())
