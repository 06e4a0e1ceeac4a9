"""Shared builders for the pure domain tests: commands, canonical histories and given/when/then.

Nothing here does I/O. Every command gets a fresh id unless one is passed, so histories built twice
never collide through the idempotency rule by accident.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dgdr.domain.decider import decide, evolve, initial_state
from dgdr.domain.model import (
    Apply,
    Command,
    Delete,
    Event,
    ObserveDeployment,
    Rejection,
    ReportProfilingFailure,
    ReportProfilingProgress,
    ReportProfilingResult,
    SlaVerdict,
    StartProfiling,
    State,
)

AT = "2025-06-01T12:00:00Z"
NAME = "qwen"
NAMESPACE = "team-a"
DGD = f"{NAME}-dgd"
JOB = f"profile-{NAME}"
SKU_HW = {"gpuSku": "h100_sxm"}
RESOLVED_HW = {"gpuSku": "h100_sxm", "numGpusPerNode": 8, "totalGpus": 8}
VALID_MESSAGE = "Spec is valid; hardware: 8 x h100_sxm (8 per node)"

SPEC: dict[str, Any] = {"model": "Qwen/Qwen3-0.6B", "hardware": SKU_HW}
"""autoApply left out: the default (true) deploys after profiling."""
MANUAL: dict[str, Any] = {**SPEC, "autoApply": False}
AUTO: dict[str, Any] = {**SPEC, "autoApply": True}
OTHER: dict[str, Any] = {**SPEC, "model": "Qwen/Qwen3-8B"}
# Passes admission, fails the later validation (stored, Failed): e2eLatency excludes ttft.
INVALID: dict[str, Any] = {**SPEC, "sla": {"ttft": 100, "e2eLatency": 5000}}
# Refused at admission on create (Dynamo's webhook): thorough needs a concrete backend.
THOROUGH_AUTO: dict[str, Any] = {**SPEC, "searchStrategy": "thorough"}
# Refused at admission (the CRD's schema): a string is not a boolean.
SCHEMA_INVALID: dict[str, Any] = {**SPEC, "autoApply": "false"}
NO_SKU: dict[str, Any] = {"model": "Qwen/Qwen3-0.6B"}

SELECTED: dict[str, Any] = {
    "apiVersion": "nvidia.com/v1alpha1",
    "kind": "DynamoGraphDeployment",
    "metadata": {"name": DGD},
}
PARETO: list[dict[str, Any]] = [{"ttft": 120.0, "itl": 12.0, "throughputPerGpu": 900.0}]

_ids = itertools.count(1)


def new_id() -> str:
    return f"cmd-{next(_ids)}"


def apply(
    spec: dict[str, Any] = SPEC,
    *,
    id: str | None = None,
    discovered: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
) -> Apply:
    return Apply(
        id=id or new_id(),
        at=AT,
        spec=spec,
        labels=labels or {},
        discovered_hardware=discovered or {},
    )


def delete(*, id: str | None = None) -> Delete:
    return Delete(id=id or new_id(), at=AT)


def start(generation: int = 1, job: str = JOB, *, id: str | None = None) -> StartProfiling:
    return StartProfiling(id=id or new_id(), at=AT, generation=generation, job_name=job)


def progress(
    sub_phase: str, generation: int = 1, message: str | None = None, *, id: str | None = None
) -> ReportProfilingProgress:
    return ReportProfilingProgress(
        id=id or new_id(),
        at=AT,
        generation=generation,
        sub_phase=sub_phase,
        message=message or f"now {sub_phase}",
    )


def fail(
    sub_phase: str | None = None,
    generation: int = 1,
    message: str = "profiler crashed",
    *,
    id: str | None = None,
) -> ReportProfilingFailure:
    return ReportProfilingFailure(
        id=id or new_id(), at=AT, generation=generation, sub_phase=sub_phase, message=message
    )


def result(
    generation: int = 1,
    dgd: str = DGD,
    message: str = "picked TP2",
    *,
    id: str | None = None,
    sla_verdict: SlaVerdict | None = None,
) -> ReportProfilingResult:
    return ReportProfilingResult(
        id=id or new_id(),
        at=AT,
        generation=generation,
        dgd_name=dgd,
        selected_config=SELECTED,
        pareto=PARETO,
        message=message,
        sla_verdict=sla_verdict,
    )


def observe(
    observed: str,
    dgd: str = DGD,
    replicas: int = 1,
    available: int = 1,
    *,
    id: str | None = None,
) -> ObserveDeployment:
    return ObserveDeployment(
        id=id or new_id(),
        at=AT,
        dgd_name=dgd,
        observed=observed,  # type: ignore[arg-type,unused-ignore]
        replicas=replicas,
        available_replicas=available,
    )


# ------------------------------------------------------------------------------ canonical histories


def history(phase: str) -> list[Command]:
    """A fresh command history that leaves a DGDR in `phase` (a phase or a named variant)."""
    builders: dict[str, Callable[[], list[Command]]] = {
        "Pending": lambda: [apply()],
        "Profiling": lambda: [apply(), start()],
        "Ready": lambda: [apply(MANUAL), start(), result()],
        "Deploying": lambda: [apply(), start(), result()],
        "DeployingCreated": lambda: [apply(), start(), result(), observe("pending", available=0)],
        "Deployed": lambda: [apply(), start(), result(), observe("successful")],
        "Failed": lambda: [apply(INVALID)],
        "FailedProfiling": lambda: [apply(), start(), progress("SweepingPrefill"), fail()],
        "FailedDeleted": lambda: [apply(), start(), result(), observe("successful"),
                                  observe("deleted")],
        "FailedConflict": lambda: [apply(), start(), result(), observe("conflict")],
    }  # fmt: skip
    return builders[phase]()


COMMAND_TYPES = (
    Apply,
    Delete,
    StartProfiling,
    ReportProfilingProgress,
    ReportProfilingFailure,
    ReportProfilingResult,
    ObserveDeployment,
)

LIVE_VARIANTS = (
    "Pending",
    "Profiling",
    "Ready",
    "Deploying",
    "DeployingCreated",
    "Deployed",
    "Failed",
    "FailedProfiling",
    "FailedDeleted",
    "FailedConflict",
)


def run(
    items: list[Command | Event] | tuple[Command | Event, ...], state: State | None = None
) -> tuple[State, list[tuple[Event, str | None]]]:
    """Fold commands (decided, must be accepted) and raw events into a state and its history."""
    s = state or initial_state()
    recorded: list[tuple[Event, str | None]] = []
    for item in items:
        if isinstance(item, COMMAND_TYPES):
            decision = decide(s, item)
            assert not isinstance(decision, Rejection), f"history step {item!r} -> {decision}"
            for event in decision:
                s = evolve(s, event, item.id)
                recorded.append((event, item.id))
        else:
            s = evolve(s, item)
            recorded.append((item, None))
    return s, recorded


# ----------------------------------------------------------------------------- given / when / then


@dataclass(frozen=True)
class When:
    state: State
    command: Command
    decision: list[Event] | Rejection

    def then(self, *expected: Event) -> State:
        """The decision is exactly these events; returns the state they lead to."""
        assert self.decision == list(expected), f"decided {self.decision}"
        s = self.state
        for event in expected:
            s = evolve(s, event, self.command.id)
        return s

    def then_types(self, *types: str) -> State:
        assert not isinstance(self.decision, Rejection), f"rejected: {self.decision}"
        assert [e.type for e in self.decision] == list(types)
        s = self.state
        for event in self.decision:
            s = evolve(s, event, self.command.id)
        return s

    def then_nothing(self) -> State:
        assert self.decision == [], f"decided {self.decision}"
        return self.state

    def then_rejected(self, reason: str, *fragments: str) -> Rejection:
        assert isinstance(self.decision, Rejection), f"accepted: {self.decision}"
        assert self.decision.reason == reason, self.decision
        for fragment in fragments:
            assert fragment in self.decision.message, self.decision.message
        return self.decision


@dataclass(frozen=True)
class Given:
    state: State

    def when(self, command: Command) -> When:
        return When(self.state, command, decide(self.state, command))


def given(*items: Command | Event | list[Command]) -> Given:
    flat: list[Command | Event] = []
    for item in items:
        if isinstance(item, list):
            flat.extend(item)
        else:
            flat.append(item)
    return Given(run(flat)[0])
