"""Domain vocabulary: the commands a DGDR accepts, the events it records, and its decision state.

Owns: every event type (one per machine trigger; `TRIGGER` names the edge it performs), every command
type, `Rejection`, and the immutable `State` that `evolve` builds. All are plain data (pydantic, frozen);
nothing here decides or does I/O. Event payloads are JSON-safe and versioned by the envelope
(`events.envelope`), which carries ids, time, causation and correlation.

Typed views travel next to the raw dicts: an `Apply` carries its spec parsed (a `DGDRSpec`, or every
`FieldError`) by the edge that built it; the events that record a spec carry that `DGDRSpec` (None for
an invalid spec) and `Validated` its `ResolvedHardware`. These views are not part of the stored
payload; an event read back from the store derives them from the payload once, when it is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from dgdr.domain.hardware import ResolvedHardware
from dgdr.domain.machine import ABSENT, DELETED, split_state
from dgdr.domain.spec import DGDRSpec, FieldError, parse_spec

# How a pick stands against the SLA (the profiler's verdict, `sim.SlaVerdict`'s values).
SlaVerdict = Literal["met", "missed", "unverified"]

# --------------------------------------------------------------------------------------------- events


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    TRIGGER: ClassVar[str]

    @property
    def trigger(self) -> str:
        return self.TRIGGER


class _SpecEvent(_Event):
    """An event that records a spec; `parsed` is its `DGDRSpec`, None when the spec is invalid."""

    spec: dict[str, Any]
    parsed: DGDRSpec | None = Field(default=None, exclude=True, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, dict) and "parsed" not in data and "spec" in data:
            parsed = parse_spec(data["spec"])
            data = {**data, "parsed": parsed if isinstance(parsed, DGDRSpec) else None}
        return data


class Created(_SpecEvent):
    TRIGGER = "created"
    type: Literal["Created"] = "Created"
    generation: int = 1
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Validated(_Event):
    TRIGGER = "validated"
    type: Literal["Validated"] = "Validated"
    generation: int
    hardware: dict[str, Any]
    message: str
    # None only for facts that do not resolve (never written by the decider).
    resolved: ResolvedHardware | None = Field(default=None, exclude=True, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _resolve(cls, data: Any) -> Any:
        if isinstance(data, dict) and "resolved" not in data and "hardware" in data:
            try:
                resolved: ResolvedHardware | None = ResolvedHardware.from_dict(data["hardware"])
            except ValueError:
                resolved = None
            data = {**data, "resolved": resolved}
        return data


class ValidationFailed(_Event):
    TRIGGER = "validation_failed"
    type: Literal["ValidationFailed"] = "ValidationFailed"
    generation: int
    errors: list[dict[str, str]]


class SpecUpdated(_SpecEvent):
    TRIGGER = "spec_updated"
    type: Literal["SpecUpdated"] = "SpecUpdated"
    generation: int
    # The annotations applied with the new spec when they changed; None when unchanged (and in
    # events stored before this field existed).
    annotations: dict[str, str] | None = None


class ProfilingStarted(_Event):
    TRIGGER = "profiling_started"
    type: Literal["ProfilingStarted"] = "ProfilingStarted"
    generation: int
    job_name: str = Field(alias="jobName")
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ProfilingProgressed(_Event):
    TRIGGER = "profiling_progressed"  # concrete trigger depends on sub_phase, see `trigger`
    type: Literal["ProfilingProgressed"] = "ProfilingProgressed"
    sub_phase: str = Field(alias="subPhase")
    message: str
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @property
    def trigger(self) -> str:
        return f"profiling_progressed_to_{self.sub_phase}"


class ProfilingFailed(_Event):
    TRIGGER = "profiling_failed"
    type: Literal["ProfilingFailed"] = "ProfilingFailed"
    sub_phase: str | None = Field(default=None, alias="subPhase")
    message: str
    # Why, when it is not the sub-phase's failure (`SLANotMet`: the SLA is required and missed);
    # None reads as `<subPhase>Failed` (and in events stored before this field existed).
    reason: str | None = None
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ProfilingCompleted(_Event):
    TRIGGER = "profiling_completed"
    type: Literal["ProfilingCompleted"] = "ProfilingCompleted"
    dgd_name: str = Field(alias="dgdName")
    selected_config: dict[str, Any] = Field(alias="selectedConfig")
    pareto: list[dict[str, Any]] = Field(default_factory=list)
    message: str
    # Whether the pick meets the SLA as estimated: "met", "missed", or "unverified" when the model
    # could not be estimated (Dynamo's naive fallback); absent from events stored before it existed.
    sla_verdict: SlaVerdict | None = Field(default=None, alias="slaVerdict")
    # The verdict in words ("SLA missed: TTFT 79.2 ms > 1.00 ms (+7820%), ..."); None when the
    # profiler gave none (and in events stored before this field existed).
    sla_summary: str | None = Field(default=None, alias="slaSummary")
    # Objects created with the DGD (the planner's ConfigMaps); absent from events stored before
    # they existed, which read as none.
    additional_resources: list[dict[str, Any]] = Field(
        default_factory=list, alias="additionalResources"
    )
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class AutoApplyEnabled(_SpecEvent):
    TRIGGER = "auto_apply_enabled"
    type: Literal["AutoApplyEnabled"] = "AutoApplyEnabled"
    generation: int


class DeploymentStarted(_Event):
    TRIGGER = "deployment_started"
    type: Literal["DeploymentStarted"] = "DeploymentStarted"
    dgd_name: str = Field(alias="dgdName")
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class DeploymentCreated(_Event):
    TRIGGER = "deployment_created"
    type: Literal["DeploymentCreated"] = "DeploymentCreated"
    dgd_name: str = Field(alias="dgdName")
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class _Replicas(_Event):
    replicas: int = 0
    available_replicas: int = Field(default=0, alias="availableReplicas")
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class DeploymentObserved(_Replicas):
    TRIGGER = "deployment_observed"
    type: Literal["DeploymentObserved"] = "DeploymentObserved"
    state: str


class DeploymentReady(_Replicas):
    TRIGGER = "deployment_ready"
    type: Literal["DeploymentReady"] = "DeploymentReady"


class DeploymentDegraded(_Replicas):
    TRIGGER = "deployment_degraded"
    type: Literal["DeploymentDegraded"] = "DeploymentDegraded"
    state: str


class DeploymentDeleted(_Event):
    TRIGGER = "deployment_deleted"
    type: Literal["DeploymentDeleted"] = "DeploymentDeleted"
    dgd_name: str = Field(alias="dgdName")
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class DeploymentFailed(_Event):
    TRIGGER = "deployment_failed"
    type: Literal["DeploymentFailed"] = "DeploymentFailed"
    reason: str
    message: str


class Deleted(_Event):
    TRIGGER = "deleted"
    type: Literal["Deleted"] = "Deleted"


Event = Annotated[
    Created
    | Validated
    | ValidationFailed
    | SpecUpdated
    | ProfilingStarted
    | ProfilingProgressed
    | ProfilingFailed
    | ProfilingCompleted
    | AutoApplyEnabled
    | DeploymentStarted
    | DeploymentCreated
    | DeploymentObserved
    | DeploymentReady
    | DeploymentDegraded
    | DeploymentDeleted
    | DeploymentFailed
    | Deleted,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_TYPES: tuple[str, ...] = (
    "Created", "Validated", "ValidationFailed", "SpecUpdated", "ProfilingStarted",
    "ProfilingProgressed", "ProfilingFailed", "ProfilingCompleted", "AutoApplyEnabled",
    "DeploymentStarted", "DeploymentCreated", "DeploymentObserved", "DeploymentReady",
    "DeploymentDegraded", "DeploymentDeleted", "DeploymentFailed", "Deleted",
)  # fmt: skip


def event_from_payload(event_type: str, payload: dict[str, Any]) -> Event:
    return EVENT_ADAPTER.validate_python({**payload, "type": event_type})


# Fields added after their events were first stored, left out of the payload while unset: an event
# that does not use one is stored as before (and still reads with code that predates the field).
_LEFT_OUT_WHEN_UNSET = frozenset({"reason", "slaSummary", "annotations"})


def event_payload(event: Event) -> dict[str, Any]:
    data = event.model_dump(mode="json", by_alias=True)
    data.pop("type")
    return {k: v for k, v in data.items() if v is not None or k not in _LEFT_OUT_WHEN_UNSET}


# ------------------------------------------------------------------------------------------- commands


class _Command(BaseModel):
    """`id` makes a command idempotent; `at` is when it was issued (RFC 3339, UTC, from the edge)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    at: str
    correlation_id: str | None = None


class Apply(_Command):
    """`spec` as the user wrote it; `parsed` is that spec parsed once by the edge that built the
    command (a `DGDRSpec`, or every field error), derived here when the builder did not pass it."""

    kind: Literal["Apply"] = "Apply"
    spec: dict[str, Any]
    parsed: DGDRSpec | list[FieldError] = Field(default_factory=list, exclude=True, repr=False)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    discovered_hardware: dict[str, Any] = Field(default_factory=dict)
    # Why the profiler cannot take `spec.model` (the edge asks the profiler); None when it can.
    model_refusal: str | None = None
    # The service requires SLAs unless a DGDR says otherwise (`dgdr.domain.sla`).
    require_sla_default: bool = False

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, dict) and "parsed" not in data and "spec" in data:
            data = {**data, "parsed": parse_spec(data["spec"])}
        return data


class Delete(_Command):
    kind: Literal["Delete"] = "Delete"


class StartProfiling(_Command):
    kind: Literal["StartProfiling"] = "StartProfiling"
    generation: int
    job_name: str


class ReportProfilingProgress(_Command):
    kind: Literal["ReportProfilingProgress"] = "ReportProfilingProgress"
    generation: int
    sub_phase: str
    message: str


class ReportProfilingFailure(_Command):
    kind: Literal["ReportProfilingFailure"] = "ReportProfilingFailure"
    generation: int
    sub_phase: str | None
    message: str


class ReportProfilingResult(_Command):
    kind: Literal["ReportProfilingResult"] = "ReportProfilingResult"
    generation: int
    dgd_name: str
    selected_config: dict[str, Any]
    pareto: list[dict[str, Any]] = Field(default_factory=list)
    message: str
    additional_resources: list[dict[str, Any]] = Field(default_factory=list)
    sla_verdict: SlaVerdict | None = None
    sla_summary: str | None = None


DeploymentObservation = Literal["created", "pending", "successful", "failed", "deleted", "conflict"]


class ObserveDeployment(_Command):
    """What the deployment target saw of the DGD: its state, replicas, and a message when it failed."""

    kind: Literal["ObserveDeployment"] = "ObserveDeployment"
    dgd_name: str
    observed: DeploymentObservation
    replicas: int = 0
    available_replicas: int = 0
    message: str = ""


Command = (
    Apply
    | Delete
    | StartProfiling
    | ReportProfilingProgress
    | ReportProfilingFailure
    | ReportProfilingResult
    | ObserveDeployment
)


@dataclass(frozen=True)
class Rejection:
    """A command the DGDR refuses: nothing is recorded; the requester gets the reason and every error.

    `invalid` marks a refusal at admission (`dgdr.domain.admission`: what Dynamo's CRD schema or
    validating webhook refuses); the requester is answered `invalid`, not `rejected`."""

    reason: str
    message: str
    errors: tuple[FieldError, ...] = ()
    invalid: bool = False


# ---------------------------------------------------------------------------------------------- state


@dataclass(frozen=True)
class State:
    """What the decider needs to know about one DGDR incarnation, folded from its events.

    `spec` and `hardware` are the dicts the events record; `parsed_spec` (None while the spec is
    invalid) and `resolved_hardware` (set by `Validated`) are their typed views. `selected_config`
    and `additional_resources` are the generated DGD and the objects created with it, from
    `ProfilingCompleted`. The idempotency memory (`applied`) is bounded; the decider's docstring
    says which command ids it keeps."""

    machine_state: str = ABSENT
    spec: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)  # as last applied with a spec
    parsed_spec: DGDRSpec | None = None
    generation: int = 0
    validated_generation: int = 0
    hardware: dict[str, Any] = field(default_factory=dict)
    resolved_hardware: ResolvedHardware | None = None
    profiling_phase: str | None = None
    job_name: str | None = None
    dgd_name: str | None = None
    selected_config: dict[str, Any] | None = None
    additional_resources: tuple[dict[str, Any], ...] = ()
    deployment_created: bool = False
    replicas: int = 0
    available_replicas: int = 0
    deployment_state: str | None = None
    # The idempotency memory, in three bounded parts (see `dgdr.domain.decider`).
    recent_requests: tuple[str, ...] = ()
    generation_commands: frozenset[str] = frozenset()
    last_observation: str | None = None

    @property
    def applied(self) -> frozenset[str]:
        """Every command id this state remembers as applied."""
        observed = (self.last_observation,) if self.last_observation else ()
        return self.generation_commands.union(self.recent_requests, observed)

    @property
    def phase(self) -> str | None:
        """The DGDR phase (one of the six), or None while Absent or once Deleted."""
        if self.machine_state in (ABSENT, DELETED):
            return None
        return split_state(self.machine_state)[0]

    @property
    def exists(self) -> bool:
        return self.machine_state not in (ABSENT, DELETED)

    @property
    def is_terminal(self) -> bool:
        return self.machine_state == DELETED
