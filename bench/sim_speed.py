"""Speed of sim's hot paths, as ratios to baselines measured in the same run (not a test: timings
depend on the machine and its load, so no test asserts them).

For each path below it prints the time per call (the fastest of `--repeats` samples: the one
least disturbed by other load on the machine) and its ratio to a fixed reference
workload (pure Python and numpy, timed in the same process, in turn with the paths), so runs on
different machines compare. With `--baseline REV` it also times the same
paths with the `sim` of git revision REV (exported to a temporary directory and timed in a
subprocess, sample for sample in turn with this tree's) and prints this tree's time over REV's:
the number to read when a change must not slow sim down.

Paths: one `sim.estimate` point (DeepSeek-V3 TP 8 EP 8, batch 64, osl 4000; the former test's
budget: 5 ms a call), `sim.profile` of Qwen3-8B with `backend: auto` on 8 x H100 (the former
test's budget: 100 ms), `sim.profile` of DeepSeek-R1 on 16 x H100 (multinode workers), and the
heaviest searches (issue 12's "a profile still takes under 50 ms"): Qwen3-30B-A3B on 32 x H200
and on 32 x B200 (a MoE model small enough for every TP, EP and DEP layout: about 6,000
disaggregated candidates over three backends) and DeepSeek-V3 on 16 x H200.

    uv run python bench/sim_speed.py [--repeats 15] [--baseline main] [--save]

`--save` writes the output to bench/results/sim_speed.txt. Exit status 0 unless an argument is
wrong or REV cannot be exported.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_PATH = ROOT / "bench" / "results" / "sim_speed.txt"
PACKAGES = ("dgdr", "events", "projections", "sim", "k8s")
BUDGET_MS = {"estimate": 5.0, "profile auto Qwen3-8B 8xH100": 100.0}


def _paths() -> dict[str, tuple[Callable[[], Any], int]]:
    """name -> (one call, calls per timing sample)."""
    import sim
    from dgdr.domain.hardware import ResolvedHardware
    from dgdr.domain.spec import DGDRSpec

    def hardware(sku: str, total: int) -> ResolvedHardware:
        return ResolvedHardware.from_dict({"gpuSku": sku, "totalGpus": total, "numGpusPerNode": 8})

    auto = DGDRSpec.model_validate({"model": "Qwen/Qwen3-8B"})
    moe = DGDRSpec.model_validate(
        {
            "model": "deepseek-ai/DeepSeek-R1",
            "backend": "sglang",
            "workload": {"isl": 2000, "osl": 200},
        }
    )
    small_moe = DGDRSpec.model_validate({"model": "Qwen/Qwen3-30B-A3B"})
    deepseek = DGDRSpec.model_validate({"model": "deepseek-ai/DeepSeek-V3"})
    h100x8, h100x16 = hardware("h100_sxm", 8), hardware("h100_sxm", 16)
    h200x32, b200x32 = hardware("h200_sxm", 32), hardware("b200_sxm", 32)
    h200x16 = hardware("h200_sxm", 16)
    return {
        "estimate": (
            lambda: sim.estimate(
                "deepseek-ai/DeepSeek-V3", "h200_sxm", tp=8, ep=8, batch_size=64, osl=4000
            ),
            50,
        ),
        "profile auto Qwen3-8B 8xH100": (lambda: sim.profile(auto, h100x8, name="b"), 1),
        "profile DeepSeek-R1 16xH100": (lambda: sim.profile(moe, h100x16, name="b"), 1),
        "profile Qwen3-30B-A3B 32xH200": (lambda: sim.profile(small_moe, h200x32, name="b"), 1),
        "profile Qwen3-30B-A3B 32xB200": (lambda: sim.profile(small_moe, b200x32, name="b"), 1),
        "profile DeepSeek-V3 16xH200": (lambda: sim.profile(deepseek, h200x16, name="b"), 1),
    }


def _reference() -> None:
    """A fixed mix of interpreter and numpy work, the two costs sim's paths are made of."""
    import numpy as np

    total = 0
    for i in range(20_000):
        total += i * i % 7
    grid = np.linspace(1.0, 2.0, 4096).reshape(64, 64)
    for _ in range(20):
        grid = np.sqrt(grid @ grid.T / 64.0)


def _sample_s(fn: Callable[[], Any], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


class _Baseline:
    """The same paths with the packages of git revision `rev`, in a subprocess that takes one
    sample per request (a path name on stdin, seconds per call on stdout)."""

    def __init__(self, rev: str) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="sim-speed-")
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev, *PACKAGES], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", self._tmp.name], input=archive, check=True)
        self._child = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--root", self._tmp.name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def sample(self, name: str) -> float:
        assert self._child.stdin is not None and self._child.stdout is not None
        self._child.stdin.write(name + "\n")
        self._child.stdin.flush()
        return float(self._child.stdout.readline())

    def close(self) -> None:
        if self._child.stdin is not None:
            self._child.stdin.close()
        self._child.wait(timeout=60)
        self._tmp.cleanup()


def _serve() -> None:
    """The `--serve` side of `_Baseline`: warm every path up, then sample on request."""
    paths = {"reference": (_reference, 20), **_paths()}
    for fn, _ in paths.values():
        fn()
    for line in sys.stdin:
        fn, number = paths[line.strip()]
        print(_sample_s(fn, number), flush=True)


def measure(
    repeats: int, baseline: _Baseline | None
) -> tuple[dict[str, float], dict[str, float] | None]:
    """Seconds per call of the reference and of each path (the fastest sample), here and in the
    baseline, sampled in turn so that a change of load hits them alike; one warm-up call each
    first."""
    paths = {"reference": (_reference, 20), **_paths()}
    here: dict[str, list[float]] = {name: [] for name in paths}
    there: dict[str, list[float]] = {name: [] for name in paths}
    for fn, _ in paths.values():
        fn()
    for _ in range(repeats):
        for name, (fn, number) in paths.items():
            here[name].append(_sample_s(fn, number))
            if baseline is not None:
                there[name].append(baseline.sample(name))
    fastest = {name: min(runs) for name, runs in here.items()}
    if baseline is None:
        return fastest, None
    return fastest, {name: min(runs) for name, runs in there.items()}


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.2f} ms"


def report(
    current: dict[str, float], baseline: dict[str, float] | None, rev: str, repeats: int
) -> list[str]:
    ref = current["reference"]
    load = os.getloadavg()[0]
    lines = [
        f"bench/sim_speed.py: fastest of {repeats} samples per call; python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, load average {load:.2f}; "
        f"reference workload {_ms(ref).strip()}",
        f"  {'path':32s} {'time':>11s} {'/ reference':>12s}"
        + (f" {'/ ' + rev:>14s}" if baseline else "")
        + f" {'former budget':>14s}",
    ]
    for name, seconds in current.items():
        if name == "reference":
            continue
        row = f"  {name:32s} {_ms(seconds)} {seconds / ref:11.1f}x"
        if baseline:
            row += f" {seconds / baseline[name]:13.2f}x"
        budget = BUDGET_MS.get(name)
        row += f" {f'{budget:g} ms' if budget else '-':>14s}"
        lines.append(row)
    if baseline:
        lines.append(
            f"  (/ {rev}: this tree's time over {rev}'s, sampled in turn; < 1 is faster; "
            f"{rev}'s reference workload {_ms(baseline['reference']).strip()})"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timing samples per path")
    parser.add_argument("--baseline", metavar="REV", help="also time the sim of git revision REV")
    parser.add_argument("--save", action="store_true", help=f"write the output to {OUT_PATH}")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    sys.path.insert(0, str(args.root))
    if args.serve:
        _serve()
        return 0
    baseline = _Baseline(args.baseline) if args.baseline else None
    try:
        current, before = measure(args.repeats, baseline)
    finally:
        if baseline is not None:
            baseline.close()
    lines = report(current, before, args.baseline or "", args.repeats)
    print("\n".join(lines))
    if args.save:
        OUT_PATH.write_text("\n".join(lines) + "\n")
        print(f"saved: {OUT_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
