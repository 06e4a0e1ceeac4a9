"""`python -m k8s.emulator --job-runner MODULE:FUNCTION` plugs dgdr's profiler into the emulator; the
runner writes each sub-phase as the profile reaches it and fails the Job on an error or a bug."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import structlog

import sim
import sim._runner
from k8s.emulated_jobs import run_profiling_job
from k8s.emulator.__main__ import load_runner
from tests.support import manifest


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


class RecordingStore:
    """The two calls the Job runner makes on the emulator's store, written to a shared trace."""

    def __init__(self, trace: list[str]) -> None:
        self.trace = trace
        self.outputs: list[dict[str, str]] = []
        self.statuses: list[dict[str, Any]] = []

    async def apply(self, body: dict[str, Any], field_manager: str) -> dict[str, Any]:
        self.outputs.append(body["data"])
        self.trace.append(f"output {body['data']['phase']}")
        return body

    async def update_status(
        self, group: str, version: str, plural: str, namespace: str, name: str, status: Any
    ) -> dict[str, Any]:
        self.statuses.append(status)
        return status  # type: ignore[no-any-return]


def profiling_job_for(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "default",
            "name": "profile-t",
            "labels": {"app": "dynamo-profiler", "dgdr.nvidia.com/name": "t"},
            "annotations": {"dgdr.nvidia.com/uid": "uid-t"},
        },
        "spec": {"template": {"spec": {"containers": [{"args": ["--config", json.dumps(spec)]}]}}},
    }


def traced(trace: list[str], then: Callable[..., Any]) -> Callable[..., Any]:
    def profile(*args: Any, **kwargs: Any) -> Any:
        try:
            return then(*args, **kwargs)
        finally:
            trace.append("profile returned")

    return profile


@pytest.mark.timeout(30)
async def test_each_sub_phase_is_written_while_the_profile_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trace: list[str] = []
    store = RecordingStore(trace)
    monkeypatch.setattr(sim._runner, "profile", traced(trace, sim.profile))
    await run_profiling_job(store, profiling_job_for(manifest("t")["spec"]))  # type: ignore[arg-type]
    assert trace == [
        "output Initializing",
        "output SweepingPrefill",
        "output SweepingDecode",
        "output SelectingConfig",
        "output GeneratingDGD",
        "profile returned",
        "output Done",
    ]
    assert store.outputs[-1]["profiler_status"] == "success"
    assert store.statuses[-1]["conditions"][0]["type"] == "Complete"


@pytest.mark.timeout(30)
async def test_a_profiling_error_fails_the_job_in_its_sub_phase() -> None:
    store = RecordingStore([])
    spec = {**manifest("t")["spec"], "workload": {"isl": 40000, "osl": 1000}}  # beyond the context
    await run_profiling_job(store, profiling_job_for(spec))  # type: ignore[arg-type]
    last = store.outputs[-1]
    assert (last["phase"], last["profiler_status"]) == ("Initializing", "failed")
    assert "max context" in last["profiler_error"] == last["message"]
    assert store.statuses[-1]["conditions"][0]["type"] == "Failed"


@pytest.mark.timeout(30)
async def test_a_bug_is_logged_and_fails_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    store = RecordingStore([])

    def broken(*args: Any, progress: Any, **kwargs: Any) -> Any:
        progress("SweepingPrefill", "sweeping")
        raise ZeroDivisionError("a bug in the profiler")

    monkeypatch.setattr(sim._runner, "profile", broken)
    with structlog.testing.capture_logs() as logs:
        await run_profiling_job(store, profiling_job_for(manifest("t")["spec"]))  # type: ignore[arg-type]
    last = store.outputs[-1]
    assert last["phase"] == "SweepingPrefill" and last["profiler_status"] == "failed"
    assert last["profiler_error"] == "ZeroDivisionError: a bug in the profiler"
    assert store.statuses[-1]["conditions"][0]["type"] == "Failed"
    (logged,) = [e for e in logs if e["log_level"] == "error"]
    assert logged["exc_info"] is True and logged["job"] == "profile-t"
