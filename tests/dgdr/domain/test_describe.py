"""One description of every domain event: Event type, Dynamo's reason, a message people can act on."""

from __future__ import annotations

from typing import get_args

import pytest

from dgdr.domain.describe import Description, describe
from dgdr.domain.model import (
    EVENT_TYPES,
    AutoApplyEnabled,
    Created,
    Deleted,
    DeploymentCreated,
    DeploymentDegraded,
    DeploymentDeleted,
    DeploymentFailed,
    DeploymentObserved,
    DeploymentReady,
    DeploymentStarted,
    Event,
    ProfilingCompleted,
    ProfilingFailed,
    ProfilingProgressed,
    ProfilingStarted,
    SpecUpdated,
    Validated,
    ValidationFailed,
)
from tests.dgdr.domain.builders import DGD, JOB, PARETO, RESOLVED_HW, SELECTED, SPEC, VALID_MESSAGE

TTFT_ERROR = {"field": "spec.sla.ttft", "message": "must be > 0"}

# (event, Event type, reason, noteworthy): one row per event type, more for the reason rules.
CASES: list[tuple[Event, str, str, bool]] = [
    (Created(spec=SPEC), "Normal", "Created", False),
    (Validated(generation=1, hardware=RESOLVED_HW, message=VALID_MESSAGE), "Normal", "Initialized",
     True),
    (ValidationFailed(generation=1, errors=[TTFT_ERROR]), "Warning", "ValidationFailed", True),
    (SpecUpdated(spec=SPEC, generation=2), "Normal", "SpecUpdated", True),
    (ProfilingStarted(generation=1, job_name=JOB), "Normal", "ProfilingJobCreated", True),
    (ProfilingProgressed(sub_phase="SweepingPrefill", message="prefill: 4 TP candidates"),
     "Normal", "SweepingPrefill", True),
    (ProfilingProgressed(sub_phase="Done", message="profiling done"), "Normal", "Completed", True),
    (ProfilingFailed(sub_phase="SelectingConfig", message="nothing fits"), "Warning",
     "SelectingConfigFailed", True),
    (ProfilingFailed(message="the profiler crashed"), "Warning", "ProfilingFailed", True),
    (ProfilingCompleted(dgd_name=DGD, selected_config=SELECTED, pareto=PARETO, message="TP2"),
     "Normal", "SpecGenerated", True),
    (AutoApplyEnabled(spec=SPEC, generation=2), "Normal", "AutoApplyEnabled", True),
    (DeploymentStarted(dgd_name=DGD), "Normal", "Deploying", True),
    (DeploymentCreated(dgd_name=DGD), "Normal", "DeploymentCreated", True),
    (DeploymentObserved(state="pending", replicas=2, available_replicas=1), "Normal",
     "DeploymentObserved", False),
    (DeploymentReady(replicas=2, available_replicas=2), "Normal", "DeploymentReady", True),
    (DeploymentDegraded(state="failed", replicas=2, available_replicas=0), "Warning",
     "DeploymentDegraded", True),
    (DeploymentDeleted(dgd_name=DGD), "Warning", "DeploymentDeleted", True),
    (DeploymentFailed(reason="DeploymentConflict", message="a DGD of that name exists"),
     "Warning", "DeploymentConflict", True),
    (DeploymentFailed(reason="", message="rejected"), "Warning", "DeploymentFailed", True),
    (Deleted(), "Normal", "Deleted", False),
]  # fmt: skip


def test_every_event_type_has_a_case() -> None:
    assert {event.type for event, *_ in CASES} == set(EVENT_TYPES)
    union = get_args(get_args(Event)[0])
    assert {cls.__name__ for cls in union} == set(EVENT_TYPES)


@pytest.mark.parametrize(
    ("event", "event_type", "reason", "noteworthy"),
    CASES,
    ids=[f"{event.type}-{reason}" for event, _, reason, _ in CASES],
)
def test_type_reason_and_whether_it_is_told(
    event: Event, event_type: str, reason: str, noteworthy: bool
) -> None:
    described = describe(event)
    assert (described.type, described.reason, described.noteworthy) == (
        event_type,
        reason,
        noteworthy,
    )
    assert described.message.strip(), "every event says something"


def test_warnings_are_exactly_the_failures_and_the_degradation() -> None:
    warnings = {event.type for event, *_ in CASES if describe(event).type == "Warning"}
    assert warnings == {
        "ValidationFailed",
        "ProfilingFailed",
        "DeploymentDegraded",
        "DeploymentDeleted",
        "DeploymentFailed",
    }


def test_a_failed_validation_names_every_field() -> None:
    other = {"field": "spec.workload.concurrency", "message": "keep only one"}
    described = describe(ValidationFailed(generation=1, errors=[TTFT_ERROR, other]))
    assert described.message == (
        "spec.sla.ttft: must be > 0; spec.workload.concurrency: keep only one"
    )


def test_messages_carry_what_the_event_knows() -> None:
    assert JOB in describe(ProfilingStarted(generation=1, job_name=JOB)).message
    assert describe(ProfilingFailed(sub_phase="Initializing", message="OOM")).message == "OOM"
    # Dynamo's Event wording first, then what we know
    assert describe(Validated(generation=1, hardware=RESOLVED_HW, message="x")).message == (
        "DGDR initialized successfully; hardware: 8 x h100_sxm (8 per node)"
    )
    assert describe(Validated(generation=1, hardware={}, message=VALID_MESSAGE)).message == (
        f"DGDR initialized successfully; {VALID_MESSAGE}"
    )
    for event in (DeploymentStarted(dgd_name=DGD), DeploymentCreated(dgd_name=DGD),
                  DeploymentDeleted(dgd_name=DGD)):  # fmt: skip
        assert DGD in describe(event).message
    completed = ProfilingCompleted(dgd_name=DGD, selected_config={}, message="TP2, 1 replica")
    assert describe(completed).message == (
        f"DynamoGraphDeployment spec generated successfully ({DGD}); TP2, 1 replica"
    )
    ready = describe(DeploymentReady(replicas=3, available_replicas=2)).message
    assert "2/3" in ready
    degraded = describe(DeploymentDegraded(state="pending", replicas=3, available_replicas=1))
    assert "pending" in degraded.message and "1/3" in degraded.message
    assert describe(SpecUpdated(spec=SPEC, generation=7)).message.count("7") == 1


def test_deployment_created_in_dynamos_words() -> None:
    described = describe(DeploymentCreated(dgd_name=DGD))
    assert described == Description(
        "Normal", "DeploymentCreated", f"DynamoGraphDeployment {DGD} created successfully"
    )
