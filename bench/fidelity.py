"""Fidelity of `sim.estimate` against NVIDIA AIConfigurator's measured-silicon (SILICON) database.

For every point of a grid (model x GPU x backend x TP x batch x isl/osl x mode) this computes AIC's
TTFT and ITL (TPOT) with `aiconfigurator-core` 0.12.0 (the same core path as AIC's `cli estimate`:
`run_static` for mode static, `run_agg` with `ctx_tokens=isl` for agg) and `sim.estimate` for the same
point (GPUs by their catalog ids; `sim._aic` maps them to AIC's system names, e.g. gb200_sxm to
gb200), then prints the median and p90 absolute % error of TTFT and ITL per mode, overall, per
model family, per model (held-out rows) and per backend/GPU, plus the time per point of both.
Points AIC cannot do (unsupported, OOM, invalid for either estimator) are skipped and counted by
reason.

The raw table (AIC figures, the sim figures at the time of the run, timings, and the train / held-out
split used by `bench/calibrate.py`) goes to `bench/results/fidelity.csv`. `--from-csv` re-scores the
current `sim.estimate` against a saved table without AIC.

AIC is a dev-only dependency, imported lazily; run with:
    UV_PROJECT_ENVIRONMENT=/tmp/aic-env uv run --group calibration python bench/fidelity.py
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import itertools
import logging
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sim  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CSV_PATH = RESULTS / "fidelity.csv"
INSTALL_HINT = (
    "aiconfigurator-core is not installed; run: uv run --group calibration python "
    "bench/fidelity.py (prefix UV_PROJECT_ENVIRONMENT=<another dir> to keep .venv as it is)"
)

from sim._aic import AIC_MODELS as MODELS  # noqa: E402  (catalog id -> AIC bundled HF id)

FAMILY = {
    "Qwen/Qwen3-0.6B": "qwen3-dense",
    "Qwen/Qwen3-8B": "qwen3-dense",
    "Qwen/Qwen3-32B": "qwen3-dense",
    "meta-llama/Llama-3.1-8B": "llama3",
    "meta-llama/Llama-3.1-70B": "llama3",
    "Qwen/Qwen3-30B-A3B": "qwen3-moe",
    "deepseek-ai/DeepSeek-V3": "deepseek-mla-moe",
}
GPUS = ("h100_sxm", "h200_sxm", "b200_sxm", "gb200_sxm")  # catalog ids (sim._aic maps to AIC's)
BACKENDS = ("trtllm", "vllm", "sglang")
TPS = (1, 2, 4, 8)
BATCHES = (1, 8, 32, 128, 256, 512)  # 256 and 512: where decode GEMMs become compute-bound
SEQS = ((1000, 200), (4000, 1000), (8000, 200))
MODES = ("static", "agg")
HELD_OUT_PERCENT = 25  # points held out of the fit, chosen by a stable hash of the point


@dataclass(frozen=True)
class Point:
    model: str
    gpu: str
    backend: str
    tp: int
    ep: int
    batch: int
    isl: int
    osl: int
    mode: str

    @property
    def key(self) -> str:
        return (
            f"{self.model}|{self.gpu}|{self.backend}|{self.tp}|{self.ep}|{self.batch}|"
            f"{self.isl}|{self.osl}|{self.mode}"
        )

    @property
    def split(self) -> str:
        # hash the configuration without the mode, so a config's static and agg share a split
        base = self.key.rsplit("|", 1)[0]
        return "test" if zlib.crc32(base.encode()) % 100 < HELD_OUT_PERCENT else "train"


def grid() -> list[Point]:
    points = []
    catalog = sim.models()
    for model, gpu, backend, tp, batch, (isl, osl), mode in itertools.product(
        MODELS, GPUS, BACKENDS, TPS, BATCHES, SEQS, MODES
    ):
        arch = catalog[model]
        if model == "deepseek-ai/DeepSeek-V3" and tp < 8:
            continue  # 671 B parameters: a node of 8 GPUs or nothing
        # MoE: experts spread over the TP GPUs (EP = TP) and, for TP > 1, tensor-parallel (EP 1)
        eps = {tp, 1} if arch.is_moe and arch.num_experts % tp == 0 else {1}
        points += [Point(model, gpu, backend, tp, ep, batch, isl, osl, mode) for ep in sorted(eps)]
    return points


class Aic:
    """AIC's `cli estimate` core path, through the optional estimator in `sim._aic`."""

    def __init__(self) -> None:
        from sim._aic import AicEstimator

        self._aic = AicEstimator()
        self.load_s = self._aic.load_s

    def database(self, gpu: str, backend: str) -> Any:
        return self._aic.database(gpu, backend)

    def run(self, p: Point) -> tuple[float, float]:
        try:
            return self._aic.point(
                p.model,
                p.gpu,
                p.backend,
                tp=p.tp,
                ep=p.ep,
                moe=sim.models()[p.model].is_moe,
                batch_size=p.batch,
                isl=p.isl,
                osl=p.osl,
                mode=p.mode,
            )
        except sim.EstimateError as exc:  # out of memory, no database: the point is skipped
            if exc.argument == "batch_size":
                raise MemoryError(str(exc)) from exc
            raise LookupError(str(exc)) from exc


def sim_point(p: Point) -> sim.Estimate:
    return sim.estimate(
        p.model,
        p.gpu,
        backend=p.backend,
        tp=p.tp,
        ep=p.ep,
        batch_size=p.batch,
        isl=p.isl,
        osl=p.osl,
        mode=p.mode,
    )


def collect(limit: int | None, known: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """AIC's figures for the grid's points (the first `limit`), leaving out the `known` keys."""
    if importlib.util.find_spec("aiconfigurator_core") is None:
        print(INSTALL_HINT, file=sys.stderr)
        raise SystemExit(2)
    logging.disable(logging.WARNING)  # AIC logs fallbacks per op
    aic = Aic()
    points = grid()[:limit] if limit else grid()
    points = [p for p in points if p.key not in known]
    rows: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    for i, p in enumerate(points):
        try:
            est = sim_point(p)
        except sim.EstimateError as exc:
            skipped[f"sim: {exc.argument}"] = skipped.get(f"sim: {exc.argument}", 0) + 1
            continue
        aic.database(p.gpu, p.backend)  # load time is reported apart
        start = time.perf_counter()
        try:
            ttft, itl = aic.run(p)
        except MemoryError:
            skipped["AIC: OOM"] = skipped.get("AIC: OOM", 0) + 1
            continue
        except Exception as exc:
            reason = f"AIC: {type(exc).__name__}"
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        aic_ms = (time.perf_counter() - start) * 1e3
        if not (ttft > 0 and itl > 0 and np.isfinite(ttft) and np.isfinite(itl)):
            skipped["AIC: non-positive result"] = skipped.get("AIC: non-positive result", 0) + 1
            continue
        rows.append(
            {
                **p.__dict__,
                "split": p.split,
                "aic_ttft_ms": round(ttft, 4),
                "aic_itl_ms": round(itl, 5),
                "aic_point_ms": round(aic_ms, 3),
                "sim_fits": int(est.fits),
            }
        )
        if (i + 1) % 500 == 0:
            print(f"  {i + 1}/{len(points)} points", file=sys.stderr)
    print(f"grid: {len(points)} points, {len(rows)} compared, {sum(skipped.values())} skipped")
    for reason, n in sorted(skipped.items()):
        print(f"  skipped {n:5d}: {reason}")
    for (gpu, backend), s in sorted(aic.load_s.items()):
        print(f"  AIC database load {gpu}/{backend}: {s:.2f} s")
    return rows


def read_csv(path: Path) -> list[dict[str, Any]]:
    ints = ("tp", "ep", "batch", "isl", "osl", "sim_fits")
    floats = ("aic_ttft_ms", "aic_itl_ms", "aic_point_ms")
    with path.open() as fh:
        rows: list[dict[str, Any]] = list(csv.DictReader(fh))
    for r in rows:
        for k in ints:
            r[k] = int(r[k])
        for k in floats:
            r[k] = float(r[k])
    return rows


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = [k for k in rows[0] if not k.startswith("sim_") or k == "sim_fits"]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def point_of(r: dict[str, Any]) -> Point:
    return Point(
        r["model"],
        r["gpu"],
        r["backend"],
        r["tp"],
        r["ep"],
        r["batch"],
        r["isl"],
        r["osl"],
        r["mode"],
    )


def score_sim(rows: list[dict[str, Any]]) -> float:
    """Fill sim_ttft_ms / sim_itl_ms with the current estimator; return ms per point."""
    start = time.perf_counter()
    for r in rows:
        est = sim_point(point_of(r))
        r["sim_ttft_ms"], r["sim_itl_ms"] = est.ttft_ms, est.itl_ms
    return (time.perf_counter() - start) * 1e3 / max(len(rows), 1)


def errors(rows: list[dict[str, Any]], metric: str) -> np.ndarray:
    sim_v = np.array([r[f"sim_{metric}_ms"] for r in rows])
    aic_v = np.array([r[f"aic_{metric}_ms"] for r in rows])
    return np.asarray(np.abs(sim_v - aic_v) / aic_v * 100.0)


def report(rows: list[dict[str, Any]], title: str) -> dict[str, float]:
    """Print the error table; return the headline figures (overall, per mode)."""
    print(f"\n{title}  (abs % error vs AIC SILICON; goal on held-out rows: median <= 8, p90 <= 25)")
    print(
        f"{'group':38s} {'n':>5s} {'TTFT med':>9s} {'TTFT p90':>9s} {'ITL med':>8s} {'ITL p90':>8s}"
    )
    headline: dict[str, float] = {}

    def line(label: str, sel: list[dict[str, Any]]) -> None:
        if not sel:
            return
        t, i = errors(sel, "ttft"), errors(sel, "itl")
        figs = (np.median(t), np.percentile(t, 90), np.median(i), np.percentile(i, 90))
        print(
            f"{label:38s} {len(sel):5d} {figs[0]:9.1f} {figs[1]:9.1f} {figs[2]:8.1f} {figs[3]:8.1f}"
        )
        for name, v in zip(("ttft_median", "ttft_p90", "itl_median", "itl_p90"), figs, strict=True):
            headline[f"{label.strip()}.{name}"] = round(float(v), 1)

    for split in ("all", "train", "test"):
        for mode in ("all", *MODES):
            sel = [r for r in rows if split in ("all", r["split"]) and mode in ("all", r["mode"])]
            line(f"{split}/{mode}", sel)
    print("per model family (all splits):")
    for fam in sorted(set(FAMILY.values())):
        for mode in MODES:
            line(
                f"  {fam}/{mode}",
                [r for r in rows if FAMILY[r["model"]] == fam and r["mode"] == mode],
            )
    print("per model (held-out rows):")
    for model in MODELS:
        for mode in MODES:
            line(
                f"  {model.split('/')[-1]}/{mode}",
                [r for r in rows if (r["model"], r["mode"], r["split"]) == (model, mode, "test")],
            )
    print("per backend / GPU (all splits):")
    for backend, gpu in itertools.product(BACKENDS, GPUS):
        line(f"  {backend}/{gpu}", [r for r in rows if (r["backend"], r["gpu"]) == (backend, gpu)])
    return headline


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--from-csv", type=Path, help="re-score sim against a saved table (no AIC)")
    ap.add_argument("--limit", type=int, help="only the first N grid points (smoke test)")
    ap.add_argument("--csv", type=Path, default=CSV_PATH, help="where to save the raw table")
    ap.add_argument(
        "--extend",
        action="store_true",
        help="keep the rows of --csv and ask AIC only for the grid points it lacks",
    )
    args = ap.parse_args(argv)
    if args.from_csv:
        rows = read_csv(args.from_csv)
    else:
        kept = read_csv(args.csv) if args.extend and args.csv.exists() else []
        rows = kept + collect(args.limit, frozenset(point_of(r).key for r in kept))
        if not rows:
            print("no comparable points", file=sys.stderr)
            return 1
        write_csv(rows, args.csv)
        print(f"raw table: {args.csv} ({len(rows)} rows)")
    sim_ms = score_sim(rows)
    report(rows, f"sim.estimate (calibration: {sim.calibration_source()})")
    aic_ms = np.array([r["aic_point_ms"] for r in rows])
    print(
        f"\ntime per point: AIC median {np.median(aic_ms):.2f} ms (mean {aic_ms.mean():.2f} ms, "
        f"database load excluded), sim {sim_ms:.3f} ms; ratio {np.median(aic_ms) / sim_ms:.0f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
