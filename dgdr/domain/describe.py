"""One description of a stored DGDR event for people: Event type, reason and message.

Owns: `describe(event)`, the single mapping from a domain event to what `dgdr describe`, `dgdr
history`, the Kubernetes Events behind `kubectl describe` and the failure and progress reasons of the
status conditions show. Reasons follow Dynamo's operator: its Event reasons where it records an Event
for that step (`Initialized`, `ProfilingJobCreated`, `SpecGenerated`, `DeploymentCreated`, ...), its
condition reasons where it records none (a profiling sub-phase, `Completed` for `Done`,
`<SubPhase>Failed`, `Deploying`). Messages start with its wording where it has one ("DGDR initialized
successfully", "DynamoGraphDeployment spec generated successfully"), our detail after "; ".

A stored message that is not folded is described by `describe_damage` (Warning `HistoryDamaged`).

`noteworthy` is False for bookkeeping (`Created`, `DeploymentObserved`, `Deleted`): no Kubernetes
Event, not in a describe story, still a row of `dgdr history`. Pure; never raises. The `match` ends in
`assert_never`, so a new event type is a mypy error until it is described here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, assert_never

from dgdr.domain.model import (
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

# Dynamo's controller wording for the Events it records on these steps.
INITIALIZED = "DGDR initialized successfully"
SPEC_GENERATED = "DynamoGraphDeployment spec generated successfully"

# The reason of a stored message that is not folded, in `dgdr history` and the status condition.
HISTORY_DAMAGED = "HistoryDamaged"

EventType = Literal["Normal", "Warning"]
NORMAL: EventType = "Normal"
WARNING: EventType = "Warning"


@dataclass(frozen=True)
class Description:
    """What a Kubernetes Event for the stored event says; see `noteworthy` in the module docstring."""

    type: EventType
    reason: str
    message: str
    noteworthy: bool = True


def validation_errors(event: ValidationFailed) -> str:
    """Every field error of a failed validation, `field: message`, joined by `; `."""
    return "; ".join(f"{e['field']}: {e['message']}" for e in event.errors)


def profiling_progress_reason(sub_phase: str) -> str:
    return "Completed" if sub_phase == "Done" else sub_phase


def profiling_failure_reason(sub_phase: str | None) -> str:
    return f"{sub_phase}Failed" if sub_phase else "ProfilingFailed"


def _initialized(event: Validated) -> str:
    """Dynamo's "DGDR initialized successfully", then the hardware the profile will run on."""
    hw = event.resolved
    if hw is None:
        return f"{INITIALIZED}; {event.message}"
    return (
        f"{INITIALIZED}; hardware: {hw.total_gpus} x {hw.gpu_sku.value} "
        f"({hw.num_gpus_per_node} per node)"
    )


def _replicas(available: int, replicas: int) -> str:
    return f"{available}/{replicas} replicas available"


def describe_damage(reason: str, subject: str, raw: str) -> Description:
    """A stored message that is not folded (`events.integrity`): why, where, and its bytes as
    `raw` (already escaped and truncated)."""
    return Description(
        WARNING, HISTORY_DAMAGED, f"not folded: {reason}; stored on {subject}: {raw!r}"
    )


def describe(event: Event) -> Description:
    """How people are told about `event` (see the module docstring for the wording rules)."""
    match event:
        case Created():
            model = event.spec.get("model")
            message = f"DGDR created (generation {event.generation}) for {model}"
            return Description(NORMAL, "Created", message, noteworthy=False)
        case Validated():
            return Description(NORMAL, "Initialized", _initialized(event))
        case ValidationFailed():
            return Description(WARNING, "ValidationFailed", validation_errors(event))
        case SpecUpdated():
            return Description(
                NORMAL, "SpecUpdated", f"Spec generation {event.generation} accepted"
            )
        case ProfilingStarted():
            return Description(
                NORMAL, "ProfilingJobCreated", f"Profiling job {event.job_name} created"
            )
        case ProfilingProgressed():
            return Description(NORMAL, profiling_progress_reason(event.sub_phase), event.message)
        case ProfilingFailed():
            reason = event.reason or profiling_failure_reason(event.sub_phase)
            return Description(WARNING, reason, event.message)
        case ProfilingCompleted():
            message = f"{SPEC_GENERATED} ({event.dgd_name})"
            if event.message:
                message = f"{message}; {event.message}"
            return Description(NORMAL, "SpecGenerated", message)
        case AutoApplyEnabled():
            message = (
                f"autoApply turned on (generation {event.generation}): deploying the generated DGD"
            )
            return Description(NORMAL, "AutoApplyEnabled", message)
        case DeploymentStarted():
            return Description(NORMAL, "Deploying", f"Deploying DGD {event.dgd_name}")
        case DeploymentCreated():
            message = f"DynamoGraphDeployment {event.dgd_name} created successfully"
            return Description(NORMAL, "DeploymentCreated", message)
        case DeploymentObserved():
            message = f"DGD is {event.state}: {_replicas(event.available_replicas, event.replicas)}"
            return Description(NORMAL, "DeploymentObserved", message, noteworthy=False)
        case DeploymentReady():
            message = f"DGD is ready: {_replicas(event.available_replicas, event.replicas)}"
            return Description(NORMAL, "DeploymentReady", message)
        case DeploymentDegraded():
            message = (
                f"DGD degraded from Ready to {event.state}: "
                f"{_replicas(event.available_replicas, event.replicas)}"
            )
            return Description(WARNING, "DeploymentDegraded", message)
        case DeploymentDeleted():
            message = (
                f"DGD {event.dgd_name} was deleted. DGDR will not recreate it. Delete this DGDR "
                "and create a new one to redeploy."
            )
            return Description(WARNING, "DeploymentDeleted", message)
        case DeploymentFailed():
            return Description(WARNING, event.reason or "DeploymentFailed", event.message)
        case Deleted():
            return Description(
                NORMAL, "Deleted", "DGDR deleted (its DGD is kept)", noteworthy=False
            )
        case _:
            assert_never(event)
