"""The profiling worker: steps recorded while the profile runs, typed spec from the state, only a
`ProfilingError` recorded as the user's failure, a bug raised for redelivery."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import structlog

import sim
import sim._runner
from dgdr.app.handler import CommandHandler
from dgdr.app.reactors import ProfilingWorker
from dgdr.domain.errors import ProfilingError
from dgdr.domain.model import Apply, StartProfiling
from events.envelope import AggregateId, Envelope
from events.store import InMemoryEventStore
from tests.support import manifest

AT = "2026-01-01T00:00:00.000Z"


class TracingStore(InMemoryEventStore):
    """Writes each appended event type to a shared trace."""

    def __init__(self, trace: list[str]) -> None:
        super().__init__()
        self.trace = trace

    async def append(
        self, aggregate: AggregateId, envelopes: list[Envelope], *, expected: int, commit_id: str
    ) -> int:
        seq = await super().append(aggregate, envelopes, expected=expected, commit_id=commit_id)
        for env in envelopes:
            self.trace.append(f"{env.type} {env.payload.get('subPhase', '')}".strip())
        return seq


@dataclass
class JobMessage:
    """A delivered job as the worker reads it (a plain value; the consumer is not under test)."""

    data: bytes
    subject: str = "dgdr.job.default.p"
    in_progress_calls: int = 0

    async def in_progress(self) -> None:
        self.in_progress_calls += 1


async def profiling(trace: list[str], **spec: Any) -> tuple[TracingStore, ProfilingWorker, str]:
    store = TracingStore(trace)
    handler = CommandHandler(store)
    out = await handler.handle(
        "default", "p", Apply(id="r", at=AT, spec=manifest("p", **spec)["spec"])
    )
    assert out.uid is not None
    started = StartProfiling(id="s", at=AT, generation=1, job_name="profile-p")
    assert (await handler.handle("default", "p", started)).events == ("ProfilingStarted",)
    return store, ProfilingWorker(CommandHandler(store)), out.uid


def job(uid: str) -> JobMessage:
    body = {"namespace": "default", "name": "p", "uid": uid, "generation": 1, "spec": {}}
    return JobMessage(json.dumps(body).encode())


def traced_profile(trace: list[str], then: Callable[..., Any] = sim._runner.profile) -> Any:
    def profile(*args: Any, **kwargs: Any) -> Any:
        try:
            return then(*args, **kwargs)
        finally:
            trace.append("profile returned")

    return profile


async def types(store: InMemoryEventStore) -> list[str]:
    return [e.type for c in await store.history("default", "p") for e in c.envelopes]


@pytest.mark.timeout(30)
async def test_each_step_is_recorded_while_the_profile_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trace: list[str] = []
    store, worker, uid = await profiling(trace)
    monkeypatch.setattr(sim._runner, "profile", traced_profile(trace))
    msg = job(uid)
    await worker.on_message(msg)
    returned = trace.index("profile returned")
    steps = [t for t in trace[:returned] if t.startswith("ProfilingProgressed")]
    assert steps == [
        "ProfilingProgressed SweepingPrefill",
        "ProfilingProgressed SweepingDecode",
        "ProfilingProgressed SelectingConfig",
        "ProfilingProgressed GeneratingDGD",
    ]
    assert trace[returned + 1 :] == ["ProfilingCompleted", "DeploymentStarted"]
    assert msg.in_progress_calls >= 4
    times = [e.time for c in await store.history("default", "p") for e in c.envelopes]
    assert times == sorted(times)


@pytest.mark.timeout(30)
async def test_a_profiling_error_is_the_users_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    trace: list[str] = []
    store, worker, uid = await profiling(trace)

    def unmeetable(*args: Any, progress: Any, **kwargs: Any) -> Any:
        progress("SweepingPrefill", "sweeping")
        raise ProfilingError("SweepingDecode", "no config fits in 8 GPUs")

    monkeypatch.setattr(sim._runner, "profile", unmeetable)
    await worker.on_message(job(uid))
    assert (await types(store))[-2:] == ["ProfilingProgressed", "ProfilingFailed"]
    failed = (await store.history("default", "p"))[-1].envelopes[0]
    assert failed.payload == {"subPhase": "SweepingDecode", "message": "no config fits in 8 GPUs"}


@pytest.mark.timeout(30)
async def test_a_bug_is_logged_and_raised_for_redelivery_not_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trace: list[str] = []
    store, worker, uid = await profiling(trace)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug in the profiler")

    monkeypatch.setattr(sim._runner, "profile", broken)
    with structlog.testing.capture_logs() as logs, pytest.raises(ZeroDivisionError):
        await worker.on_message(job(uid))
    assert "ProfilingFailed" not in await types(store)
    (logged,) = [e for e in logs if e["log_level"] == "error"]
    assert logged["exc_info"] is True and logged["uid"] == uid
    # the redelivered job, once the bug is gone, completes the profile
    monkeypatch.setattr(sim._runner, "profile", sim.profile)
    await worker.on_message(job(uid))
    assert (await types(store))[-2:] == ["ProfilingCompleted", "DeploymentStarted"]


@pytest.mark.timeout(30)
async def test_a_job_for_another_generation_or_incarnation_is_dropped() -> None:
    trace: list[str] = []
    store, worker, uid = await profiling(trace)
    before = await types(store)
    await worker.on_message(job("another-uid"))
    stale = json.loads(job(uid).data)
    stale["generation"] = 2
    await worker.on_message(JobMessage(json.dumps(stale).encode()))
    assert await types(store) == before


@pytest.mark.timeout(30)
async def test_a_redelivered_job_replays_its_steps_without_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trace: list[str] = []
    store, worker, uid = await profiling(trace)

    def killed_half_way(*args: Any, progress: Any, **kwargs: Any) -> Any:
        progress("Initializing", "starting")
        progress("SweepingPrefill", "sweeping")
        progress("SweepingDecode", "sweeping decode")
        raise ZeroDivisionError("the worker died here")

    monkeypatch.setattr(sim._runner, "profile", killed_half_way)
    with pytest.raises(ZeroDivisionError):
        await worker.on_message(job(uid))
    assert (await types(store))[-1] == "ProfilingProgressed"
    monkeypatch.setattr(sim._runner, "profile", sim.profile)
    with structlog.testing.capture_logs() as logs:
        await worker.on_message(job(uid))  # replays Initializing..SweepingDecode, then goes on
    assert (await types(store))[-2:] == ["ProfilingCompleted", "DeploymentStarted"]
    assert [e for e in logs if e["log_level"] == "warning"] == []
    replayed = [e for e in logs if e["event"] == "profiling report is stale; ignored"]
    assert replayed, "the replayed steps are logged at debug"


@pytest.mark.timeout(30)
async def test_a_message_that_is_not_a_job_is_dropped_with_a_warning() -> None:
    trace: list[str] = []
    store, worker, _ = await profiling(trace)
    before = await types(store)
    with structlog.testing.capture_logs() as logs:
        for data in (b"\x00garbage", b"[]", b'{"namespace": "default"}', b'{"namespace": 1, '
                     b'"name": "p", "uid": "u", "generation": 1}'):  # fmt: skip
            await worker.on_message(JobMessage(data))  # returns: acknowledged, not redelivered
    assert await types(store) == before
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "message on the jobs stream is not a job; dropped"
    ] * 4
