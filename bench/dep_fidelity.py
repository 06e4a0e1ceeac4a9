"""DEP workers (attention DP x wide EP) against AIConfigurator, point by point.

    UV_PROJECT_ENVIRONMENT=/tmp/aic-env uv run --group calibration python bench/dep_fidelity.py
    uv run python bench/dep_fidelity.py --from-file      # re-score the saved AIC figures, no AIC

`bench/fidelity.py`'s grid has no DEP rows (`sim.estimate` has no DEP option), so this script
compares `sim._dep.dep_agg_ms` with AIC 0.12's `cli_estimate` (SILICON, agg, TP 1 x attention DP
w x MoE EP w) for DeepSeek-V3 (DEP 8 and 16) and Qwen3-30B-A3B (DEP 2, 4 and 8) on B200, H200 and
H100, at 1000/1000, 4000/500 and 8000/200 and 1 to 256 sequences per rank, on trtllm, sglang and
vllm (`--backends`). AIC's figures go to `bench/results/dep_fidelity.jsonl` (one JSON row per
point, with its backend; a layout AIC cannot run, e.g. DeepSeek-V3 DEP 8 on H100, carries its
error instead); `--from-file` re-scores them against the current estimator. Prints TTFT and ITL
ours / AIC per (backend, model, GPU, width, workload) over the batches, then the absolute error,
median and p90, over every point. `bench/error_band.py` makes the DEP workers' error bands from
the same file.

`--disagg` measures DEP workers as disaggregated decode workers instead (`cli_estimate` mode
disagg: a DEP w prefill worker at batch 1 per rank and a DEP w decode worker at the point's batch
per rank, one of each), against what the disaggregated search prices them at: the decode
worker's ITL at every point (`sim._disagg.decode_worker_step_ms` at the mean context), the
prefill worker's TTFT, queueing and transfer included, once per worker (`prefill_points`,
`sim._disagg.first_token_ms`). The figures go to
`bench/results/dep_disagg_fidelity.jsonl` (2026-11-30: `--disagg --workers 2 --per-rank
8,16,32,64,128,256`, 810 points, 646 that AIC can run, about 25 minutes; trtllm's DeepSeek-V3
DEP 16 points asked again with `--retry-errors` at bfloat16 attention, `aic_judge.with_fmha_fallback`);
`bench/calibrate_dep.py` fits the decode workers' own factors on three quarters of them, and
the prefill workers' on the TTFT of three quarters of the distinct prefill workers
(`prefill_points`), and `bench/error_band.py` makes their bands from the rest.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aic_judge import AicWorker, estimate_kwargs, with_fmha_fallback  # noqa: E402

from sim._catalog import gpu_named, models  # noqa: E402
from sim._dep import dep_agg_ms, dep_plan  # noqa: E402
from sim._disagg import decode_worker_step_ms, first_token_ms  # noqa: E402

OUT_PATH = ROOT / "bench" / "results" / "dep_fidelity.jsonl"
DISAGG_PATH = ROOT / "bench" / "results" / "dep_disagg_fidelity.jsonl"
WIDTHS = {"deepseek-ai/DeepSeek-V3": (8, 16), "Qwen/Qwen3-30B-A3B": (2, 4, 8)}
GPUS = ("b200_sxm", "h200_sxm", "h100_sxm")
WORKLOADS = ((1000, 1000), (4000, 500), (8000, 200))
PER_RANK = (1, 4, 8, 12, 16, 32, 64, 128, 256)
BACKENDS = ("trtllm", "sglang", "vllm")


def points(
    backends: tuple[str, ...] = BACKENDS, per_rank: tuple[int, ...] = PER_RANK, mode: str = "agg"
) -> list[dict[str, Any]]:
    extra = {"mode": mode} if mode != "agg" else {}  # the agg file's rows predate the field
    return [
        {"backend": be, "model": m, "gpu": g, "w": w, "isl": isl, "osl": osl, "b": b, **extra}
        for be in backends
        for m, widths in WIDTHS.items()
        for g in GPUS
        for w in widths
        for isl, osl in WORKLOADS
        for b in per_rank
    ]


def aic_point(p: dict[str, Any]) -> dict[str, Any]:
    from aiconfigurator.cli.api import cli_estimate

    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            r = with_fmha_fallback(
                cli_estimate,
                model_path=p["model"],
                system_name=p["gpu"],
                backend_name=backend_of(p),
                isl=p["isl"],
                osl=p["osl"],
                **aic_layout(p),
            )
    except Exception as exc:  # AIC cannot run the layout (memory, a missing table)
        return {**p, "error": f"{type(exc).__name__}: {str(exc)[:80]}"}
    return {**p, "aic_ttft": float(r.ttft), "aic_itl": float(r.tpot)}


def aic_layout(p: dict[str, Any]) -> dict[str, Any]:
    """`cli_estimate`'s mode and worker arguments for a point: one DEP w worker at the point's
    batch per rank (agg), or a DEP w prefill worker at batch 1 and that decode worker (disagg)."""
    w = p["w"]
    decode = AicWorker(tp=1, ep=w, pp=1, dp=w, batch=p["b"])
    if mode_of(p) == "agg":
        return estimate_kwargs("agg", [decode], moe=True)
    prefill = AicWorker(tp=1, ep=w, pp=1, dp=w, batch=1)
    return estimate_kwargs("disagg", [prefill, decode], moe=True)


def mode_of(p: dict[str, Any]) -> str:
    return str(p.get("mode", "agg"))


def backend_of(p: dict[str, Any]) -> str:
    """A point's backend (the first file's rows, all trtllm, do not name it)."""
    return str(p.get("backend", "trtllm"))


def prefill_points(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The prefill workers of the disaggregated points (`--disagg`), one per (backend, model, GPU,
    width, workload) that AIC ran: mode "prefill", AIC's TTFT (its prefill worker's, queueing and
    KV transfer included; the same at every decode batch), no ITL."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        if mode_of(r) != "disagg" or "error" in r:
            continue
        key = (backend_of(r), r["model"], r["gpu"], r["w"], r["isl"], r["osl"])
        out.setdefault(key, {**r, "mode": "prefill", "b": 1, "aic_itl": float("nan")})
    return list(out.values())


def ours(p: dict[str, Any], fields: dict[str, Any] | None = None) -> tuple[float, float]:
    """(TTFT, ITL) of `sim._dep` at the point; `fields` over its profile's (the DEP fit's trials,
    `bench/calibrate_dep.py`). A disaggregated decode worker's point has no TTFT of ours (NaN), a
    prefill worker's (`prefill_points`) no ITL: its TTFT is what the disaggregated search prices
    (`sim._disagg`: the prefill latency x AIC's correction x its queueing factor, plus the KV
    transfer)."""
    mode = mode_of(p)
    model, gpu = models()[p["model"]], gpu_named(p["gpu"])
    plan = dep_plan(
        model,
        gpu,
        backend_of(p),
        p["w"],
        decode_worker=mode == "disagg",
        prefill_worker=mode == "prefill",
    )
    if fields:
        plan = dataclasses.replace(plan, backend=dataclasses.replace(plan.backend, **fields))
    if mode == "prefill":
        decoder = dep_plan(model, gpu, backend_of(p), p["w"], decode_worker=True)
        return first_token_ms(plan, decoder, float(p["isl"])), float("nan")
    if mode == "disagg":
        context = float(p["isl"]) + p["osl"] / 2.0
        step = decode_worker_step_ms(plan, np.array([float(p["b"] * p["w"])]), context)
        return float("nan"), float(step[0])
    o = dep_agg_ms(plan, np.array([float(p["b"] * p["w"])]), float(p["isl"]), float(p["osl"]))
    return float(o.ttft_ms[0]), float(o.itl_ms[0])


def report(rows: list[dict[str, Any]]) -> None:
    groups: dict[tuple[str, str, str, int, int], list[tuple[float, float]]] = {}
    for r in rows:
        if "error" in r:
            continue
        ttft, itl = ours(r)
        key = (backend_of(r), r["model"].split("/")[-1], r["gpu"], r["w"], r["isl"])
        groups.setdefault(key, []).append((ttft / r["aic_ttft"], itl / r["aic_itl"]))
    errors = []
    for (backend, model, gpu, w, isl), ratios in groups.items():
        t = " ".join(f"{x:.2f}" for x, _ in ratios)
        i = " ".join(f"{y:.2f}" for _, y in ratios)
        print(f"{backend:<6} {model:<16} {gpu:<9} DEP{w:<3} isl {isl:<5} TTFT {t} | ITL {i}")
        errors.extend(ratios)
    logs = np.abs(np.log(np.array(errors)))
    med, p90 = np.expm1(np.nanmedian(logs, axis=0)), np.expm1(np.nanpercentile(logs, 90, axis=0))
    print(
        f"{len(errors)} points (of {len(rows)}; the rest AIC cannot run): absolute error, "
        f"median / p90: TTFT {med[0] * 100:.1f}% / {p90[0] * 100:.1f}%, "
        f"ITL {med[1] * 100:.1f}% / {p90[1] * 100:.1f}%"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from-file", action="store_true", help="re-score the saved AIC figures")
    ap.add_argument("--out", type=Path, help=f"default {OUT_PATH.name} ({DISAGG_PATH.name})")
    ap.add_argument(
        "--disagg", action="store_true", help="DEP workers as disaggregated decode workers"
    )
    ap.add_argument(
        "--retry-errors",
        action="store_true",
        help="ask AIC again for the saved points that carry an error, keep the rest",
    )
    ap.add_argument("--workers", type=int, default=1, help="AIC processes")
    ap.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated")
    ap.add_argument(
        "--per-rank",
        default=",".join(map(str, PER_RANK)),
        help="sequences per rank, comma-separated",
    )
    args = ap.parse_args()
    out = args.out or (DISAGG_PATH if args.disagg else OUT_PATH)
    if args.from_file or args.retry_errors:
        rows = [json.loads(line) for line in out.read_text().splitlines() if line]
        if args.retry_errors:
            again = [i for i, r in enumerate(rows) if "error" in r]
            todo = [{k: v for k, v in rows[i].items() if k != "error"} for i in again]
            for i, row in zip(again, ask(todo, args.workers), strict=True):
                rows[i] = row
            out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        per_rank = tuple(int(b) for b in args.per_rank.split(","))
        todo = points(tuple(args.backends.split(",")), per_rank, "disagg" if args.disagg else "agg")
        rows = ask(todo, args.workers)
        out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report(rows)


def ask(todo: list[dict[str, Any]], workers: int) -> list[dict[str, Any]]:
    """AIC's figures for the points, in order, `workers` processes at once."""
    rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(workers) as pool:
        for row in pool.map(aic_point, todo, chunksize=4):
            rows.append(row)
            if len(rows) % 50 == 0:
                print(f"{len(rows)} of {len(todo)} points", file=sys.stderr, flush=True)
    return rows


if __name__ == "__main__":
    main()
