"""`python -m k8s.emulator --job-runner MODULE:FUNCTION` plugs dgdr's profiler into the emulator."""

from __future__ import annotations

import subprocess
import sys

from k8s.emulated_jobs import run_profiling_job
from k8s.emulator.__main__ import load_runner


def test_the_runner_is_loaded_by_name() -> None:
    assert load_runner("k8s.emulated_jobs:run_profiling_job") is run_profiling_job
    assert load_runner(None) is None


def test_an_unknown_runner_is_a_clear_error() -> None:
    # A subprocess: main() configures structlog for the whole process.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "k8s.emulator",
            "--port",
            "0",
            "--job-runner",
            "k8s.emulated_jobs:nope",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "--job-runner k8s.emulated_jobs:nope" in done.stderr
