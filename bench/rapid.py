"""Speed of `sim.profile` (the whole rapid pipeline to a DGD) against AIConfigurator's default SLA search.

For each Dynamo-style spec below, in the same process and the same run, this times:

* `sim.profile(spec, hardware, ...)`: validated spec -> search -> selected config -> complete DGD;
* AIC 0.12.0's `cli_default` (the in-process equivalent of `aiconfigurator cli default`, backend
  trtllm, SILICON database, agg vs disagg), with the same model, GPUs, ISL/OSL, TTFT and ITL (TPOT).

Both are run 3 times per spec after a first (cold) call that is reported apart; the figure compared is
the median of the 3. AIC's import and its per-system database loading are timed separately (the
database is loaded before the cold call through the same process-wide cache the search uses), so
"AIC first call" = database load + cold call. It prints both times and the ratio per spec, the overall
ratio (goal: >= 50x faster), and what each picked side by side. The output is also written to
`bench/results/rapid.txt`.

AIC is a dev-only dependency (the `calibration` dependency group holds aiconfigurator-core and the
upper `aiconfigurator` package with the search), imported lazily; run with:
    UV_PROJECT_ENVIRONMENT=<another dir> uv run --group calibration \
        python bench/rapid.py
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import io
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = Path(__file__).resolve().parent / "results"
OUT_PATH = RESULTS / "rapid.txt"
INSTALL_HINT = (
    "AIConfigurator is not installed; run: uv run --group calibration python bench/rapid.py "
    "(prefix UV_PROJECT_ENVIRONMENT=<another dir> to keep .venv as it is)"
)
GOAL = 50.0
AIC_BACKEND = "trtllm"


@dataclass(frozen=True)
class Spec:
    model: str  # sim catalog id
    aic_model: str  # AIC bundled HF id (offline)
    gpu: str
    total_gpus: int = 8
    gpus_per_node: int = 8
    ttft: float = 600.0
    itl: float = 30.0
    isl: int = 4000
    osl: int = 1000

    @property
    def label(self) -> str:
        return f"{self.model} {self.total_gpus}x{self.gpu}"

    def dgdr(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "backend": AIC_BACKEND,
            "sla": {"ttft": self.ttft, "itl": self.itl},
            "workload": {"isl": self.isl, "osl": self.osl},
            "hardware": self.hardware(),
        }

    def hardware(self) -> dict[str, Any]:
        return {
            "gpuSku": self.gpu,
            "totalGpus": self.total_gpus,
            "numGpusPerNode": self.gpus_per_node,
        }


SPECS = (
    Spec("Qwen/Qwen3-32B", "Qwen/Qwen3-32B", "h200_sxm"),
    Spec("Qwen/Qwen3-8B", "Qwen/Qwen3-8B", "h100_sxm"),
    Spec("meta-llama/Llama-3.1-70B", "meta-llama/Meta-Llama-3.1-70B", "h200_sxm"),
    Spec("Qwen/Qwen3-30B-A3B", "Qwen/Qwen3-30B-A3B", "h200_sxm"),
)


@dataclass
class Timing:
    cold_s: float
    runs_s: list[float]

    @property
    def median_s(self) -> float:
        return statistics.median(self.runs_s)


def timed(fn: Callable[[], Any], repeats: int) -> tuple[Timing, Any]:
    start = time.perf_counter()
    result = fn()
    cold = time.perf_counter() - start
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - start)
    return Timing(cold, runs), result


def fmt_s(seconds: float) -> str:
    if seconds < 1e-2:
        return f"{seconds * 1e3:.2f} ms"
    if seconds < 1:
        return f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.2f} s"


# --- sim side ------------------------------------------------------------------------------------


def sim_runner(spec: Spec, backend: str = AIC_BACKEND) -> Callable[[], Any]:
    import sim
    from dgdr.domain.hardware import ResolvedHardware
    from dgdr.domain.spec import parse_spec

    parsed = parse_spec({**spec.dgdr(), "backend": backend})
    if isinstance(parsed, list):
        raise SystemExit(f"invalid spec {spec.label}: {parsed}")
    hardware = ResolvedHardware.from_dict(spec.hardware())

    def run() -> Any:
        return sim.profile(parsed, hardware, name="rapid-bench", namespace="default")

    return run


def sim_pick(result: Any) -> dict[str, str]:
    chosen = next(p["config"] for p in result.pareto if p["config"]["selected"])
    spec = result.selected_config["spec"]
    services = spec.get("components") or spec.get("services") or []
    disagg = chosen.get("mode") == "disagg"
    return {
        "mode": chosen.get("mode", "agg"),
        "parallel": (
            f"P:TP{chosen['prefillTensorParallelSize']} D:TP{chosen['decodeTensorParallelSize']}"
            if disagg
            else f"TP{chosen['tensorParallelSize']}"
        ),
        "replicas": (
            f"{chosen['prefillWorkers']}+{chosen['decodeWorkers']}"
            if disagg
            else str(chosen["replicas"])
        ),
        "batch": str(chosen["batchSize"]),
        "gpus": f"{chosen['totalGpus']}",
        "tok/s/GPU": f"{chosen['tokensPerSecondPerGpu']:.0f}",
        "tok/s/user": f"{chosen['tokensPerSecondPerUser']:.1f}",
        "TTFT ms": f"{chosen['ttftMs']:.0f}",
        "ITL ms": f"{chosen['itlMs']:.1f}",
        "DGD": f"{len(services)} components",
    }


# --- AIC side ------------------------------------------------------------------------------------


class Aic:
    """AIC's `cli default` search in-process, with its stdout and logging kept out of the report."""

    def __init__(self) -> None:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from aiconfigurator.cli.api import cli_default
            from aiconfigurator.sdk.perf_database import (
                get_database_view,
                get_latest_database_version,
            )
        self.import_s = time.perf_counter() - start
        self._default = cli_default
        self._view = get_database_view
        self._latest = get_latest_database_version
        self.load_s: dict[str, float] = {}
        self.version = importlib.metadata.version("aiconfigurator")

    def load_database(self, gpu: str) -> None:
        """Load (system, trtllm) SILICON tables into the process cache the search reads from."""
        if gpu in self.load_s:
            return
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            version = self._latest(system=gpu, backend=AIC_BACKEND)
            self._view(gpu, AIC_BACKEND, version, database_mode="SILICON")
        self.load_s[gpu] = time.perf_counter() - start

    def runner(self, spec: Spec) -> Callable[[], Any]:
        def run() -> Any:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                return self._default(
                    model_path=spec.aic_model,
                    total_gpus=spec.total_gpus,
                    system=spec.gpu,
                    backend=AIC_BACKEND,
                    isl=spec.isl,
                    osl=spec.osl,
                    ttft=spec.ttft,
                    tpot=spec.itl,
                )

        return run


def aic_pick(result: Any, exp: str, total_gpus: int) -> dict[str, str]:
    df = result.best_configs.get(exp)
    if df is None or df.empty:
        return {"mode": f"{exp}: none"}
    row = df.iloc[0]
    replicas = total_gpus // int(row["num_total_gpus"])
    common = {
        "replicas": str(replicas),
        "gpus": str(replicas * int(row["num_total_gpus"])),
        "tok/s/GPU": f"{row['tokens/s/gpu_cluster']:.0f}",  # AIC ranks by this
        "tok/s/user": f"{row['tokens/s/user']:.1f}",
        "TTFT ms": f"{row['ttft']:.0f}",
        "ITL ms": f"{row['tpot']:.1f}",
        "DGD": "not generated",
    }
    if exp == "agg":
        ep = int(row["moe_ep"])
        return {
            "mode": "agg",
            "parallel": f"TP{int(row['tp'])}" + (f" EP{ep}" if ep > 1 else ""),
            "batch": str(int(row["bs"])),
            **common,
        }
    return {
        "mode": "disagg",
        "parallel": (
            f"P {int(row['(p)workers'])}xTP{int(row['(p)tp'])} + "
            f"D {int(row['(d)workers'])}xTP{int(row['(d)tp'])}"
        ),
        "batch": f"P {int(row['(p)bs'])} / D {int(row['(d)bs'])}",
        **common,
    }


# --- report --------------------------------------------------------------------------------------


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)


def side_by_side(out: Report, picks: dict[str, dict[str, str]]) -> None:
    fields = ("mode", "parallel", "replicas", "batch", "gpus", "tok/s/GPU", "tok/s/user")
    fields += ("TTFT ms", "ITL ms", "DGD")
    width = max(len(k) for k in picks) + 2
    header = f"    {'':{width}s}" + "".join(f"{f:>14s}" for f in fields[:1])
    header += f"  {fields[1]:26s}" + "".join(f"{f:>14s}" for f in fields[2:])
    out(header)
    for who, pick in picks.items():
        line = f"    {who:{width}s}{pick.get('mode', ''):>14s}  {pick.get('parallel', ''):26s}"
        line += "".join(f"{pick.get(f, ''):>14s}" for f in fields[2:])
        out(line)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs after the cold one")
    ap.add_argument("--only", help="only the specs whose model contains this text")
    ap.add_argument("--out", type=Path, default=OUT_PATH, help="where to save the report")
    ap.add_argument("--no-save", action="store_true", help="print only")
    args = ap.parse_args(argv)
    if importlib.util.find_spec("aiconfigurator") is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    specs = [s for s in SPECS if not args.only or args.only.lower() in s.model.lower()]
    if not specs:
        print(f"no spec matches {args.only!r}", file=sys.stderr)
        return 1

    out = Report()
    logging.disable(logging.WARNING)  # AIC logs low-fidelity fallbacks per op
    start = time.perf_counter()
    import sim  # noqa: F401  (timed: the catalogs and calibration load on first use below)

    sim_import_s = time.perf_counter() - start
    aic = Aic()
    load = os.getloadavg()
    out(
        f"bench/rapid.py: sim.profile vs AIConfigurator {aic.version} cli_default "
        f"(backend {AIC_BACKEND}, SILICON), median of {args.repeats} after a cold call"
    )
    out(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
        f"{load[0]:.2f} at start; import: sim {fmt_s(sim_import_s)}, AIC {fmt_s(aic.import_s)}"
    )

    rows = []
    for spec in specs:
        out()
        out(
            f"== {spec.label}, ISL {spec.isl} OSL {spec.osl}, TTFT <= {spec.ttft:g} ms, "
            f"ITL <= {spec.itl:g} ms"
        )
        sim_t, sim_result = timed(sim_runner(spec), args.repeats)
        fresh_db = spec.gpu not in aic.load_s
        aic.load_database(spec.gpu)
        aic_t, aic_result = timed(aic.runner(spec), args.repeats)
        ratio = aic_t.median_s / sim_t.median_s
        rows.append((spec, sim_t, aic_t, ratio))
        db_note = (
            f"database load {spec.gpu}/{AIC_BACKEND} {fmt_s(aic.load_s[spec.gpu])}"
            if fresh_db
            else f"database {spec.gpu}/{AIC_BACKEND} already loaded"
        )
        out(
            f"  sim.profile  median {fmt_s(sim_t.median_s):>9s}  "
            f"(runs {', '.join(fmt_s(x) for x in sim_t.runs_s)}; cold {fmt_s(sim_t.cold_s)})"
        )
        out(
            f"  AIC default  median {fmt_s(aic_t.median_s):>9s}  "
            f"(runs {', '.join(fmt_s(x) for x in aic_t.runs_s)}; cold {fmt_s(aic_t.cold_s)}; "
            f"{db_note})"
        )
        out(f"  ratio AIC / sim: {ratio:,.0f}x  (goal >= {GOAL:.0f}x)")
        picks = {"sim": sim_pick(sim_result)}
        chosen = aic_result.chosen_exp
        picks[f"AIC ({chosen}, chosen)"] = aic_pick(aic_result, chosen, spec.total_gpus)
        if chosen != "agg":
            picks["AIC best agg"] = aic_pick(aic_result, "agg", spec.total_gpus)
        side_by_side(out, picks)

    sim_sum = sum(r[1].median_s for r in rows)
    aic_sum = sum(r[2].median_s for r in rows)
    ratios = [r[3] for r in rows]
    geo = statistics.geometric_mean(ratios)
    out()
    out("== summary (median per spec)")
    out(f"  {'spec':44s} {'sim':>10s} {'AIC':>10s} {'ratio':>9s}")
    for spec, sim_t, aic_t, ratio in rows:
        out(
            f"  {spec.label:44s} {fmt_s(sim_t.median_s):>10s} {fmt_s(aic_t.median_s):>10s} "
            f"{ratio:>8,.0f}x"
        )
    out(
        f"  overall: sim {fmt_s(sim_sum)} vs AIC {fmt_s(aic_sum)} for {len(rows)} specs -> "
        f"{aic_sum / sim_sum:,.0f}x (geometric mean of ratios {geo:,.0f}x, min {min(ratios):,.0f}x)"
        f"; goal >= {GOAL:.0f}x: {'met' if min(ratios) >= GOAL else 'NOT met'}"
    )
    sim_first = sim_import_s + sum(r[1].cold_s for r in rows)
    aic_first = aic.import_s + sum(aic.load_s.values()) + sum(r[2].cold_s for r in rows)
    out(
        f"  first calls in a fresh process (import + database load + cold calls): sim "
        f"{fmt_s(sim_first)}, AIC {fmt_s(aic_first)} ({aic.import_s:.2f} s import, "
        f"{sum(aic.load_s.values()):.2f} s database load for {len(aic.load_s)} system(s)) -> "
        f"{aic_first / sim_first:,.0f}x"
    )
    out(
        "  note: sim.profile goes to a complete DGD; AIC's cli_default is timed without save_dir "
        "(no generator/DGD output), which favours AIC. Both search agg + disagg."
    )
    if not args.no_save:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(out.lines) + "\n")
        print(f"saved: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
