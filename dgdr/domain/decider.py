"""The DGDR decider: pure `decide`, `evolve` and `initial_state`, consulting the lifecycle machine.

Owns every business rule: what a command means in each phase, which events it records, and when it is
refused. `decide` never mutates and never does I/O; every event it returns is an edge of
`dgdr.domain.machine.EDGES` from the state the previous event left (checked as it builds the list), so a
decision can never record an illegal transition. `evolve` holds no rules: it folds one event into the
state and raises `InvalidHistory` only if a stored history contains an edge the machine does not have.

An `Apply` is first judged as Dynamo admits it (`dgdr.domain.admission.review_apply`: the CRD's
schema, our documented bounds, thorough with backend auto on create, a spec change while Profiling,
Deploying or Deployed): a refusal is a `Rejection` marked `invalid` and records nothing. A spec that
passes admission but fails the later rules (`dgdr.domain.spec.semantic_errors`, an unknown model,
hardware that does not resolve) is recorded with `ValidationFailed` (phase Failed), as Dynamo's
controller fails a stored DGDR.

A profiling result whose pick misses the SLA completes profiling (the closest config deploys, the
status says the SLA is missed), unless the DGDR requires its SLA (`dgdr.domain.sla`: the
annotation as last applied with a spec): then profiling fails with reason `SLANotMet` and nothing is
deployed. An annotation change alone (the same spec) records nothing and is not looked at.

Idempotency is a domain rule: a command whose id is remembered as applied decides `[]`, and so does a
command that would change nothing (a re-applied identical spec, a repeated observation). Profiling
progress only goes forward (`PROFILING_PHASES`' order): a report of a sub-phase the DGDR has already
passed is from before (a job redelivered after a restart replays its steps) and is refused `Stale`,
like a report for another generation; only a sub-phase the machine does not know is
`InvalidTransition`. One exception to "nothing changes", because a conflict is not permanent: a
DGDR that failed because a DGD of its name belongs to someone else (`DeploymentConflict`) and is
applied again with the same spec deploys again (`DeploymentStarted` from Failed, the generated DGD
kept): the conflict may be gone (that DGD deleted), and if it is not, the deployment fails again
with the same reason.

The memory of applied ids (`State.applied`) is bounded: it keeps only the ids that can still recur,
in three parts, so it never holds more than `MAX_REMEMBERED` ids however long the history:
- user requests (the commands that record `Created`, `SpecUpdated`, `AutoApplyEnabled`, `Validated`,
  `ValidationFailed`, `Deleted`, or `DeploymentStarted` from Failed): the last `REQUEST_MEMORY`. A request id recurs only when an
  unacknowledged request is redelivered; the requests of one name run in order, so only the requests
  that arrived while it was unacknowledged (within an ack wait) can be recorded in between. An older
  one that still came back is decided by its content: an identical spec is a no-op.
- profiling commands (`ProfilingStarted`, `ProfilingProgressed`, `ProfilingFailed`,
  `ProfilingCompleted`, `DeploymentStarted`) of the current generation: at most a start, one report
  per sub-phase and a result or a failure. Their ids name the generation, and a command for another
  generation is refused as stale, so a new generation forgets them.
- observations of the deployment (`DeploymentCreated`, `...Observed`, `...Ready`, `...Degraded`,
  `...Deleted`, `...Failed`): only the last. Their ids are what was observed, so a repeat of the last
  observation is recognised; an earlier one that comes back (a DGD that recovers after degrading) is a
  new observation and is decided by its content. A new generation forgets it too (a redeployed DGD
  may be observed exactly as the last one was).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, assert_never

from dgdr.domain import machine
from dgdr.domain.admission import review_apply
from dgdr.domain.errors import InvalidHistory
from dgdr.domain.hardware import resolve_hardware
from dgdr.domain.model import (
    Apply,
    AutoApplyEnabled,
    Command,
    Created,
    Delete,
    Deleted,
    DeploymentCreated,
    DeploymentDegraded,
    DeploymentDeleted,
    DeploymentFailed,
    DeploymentObserved,
    DeploymentReady,
    DeploymentStarted,
    Event,
    ObserveDeployment,
    ProfilingCompleted,
    ProfilingFailed,
    ProfilingProgressed,
    ProfilingStarted,
    Rejection,
    ReportProfilingFailure,
    ReportProfilingProgress,
    ReportProfilingResult,
    SpecUpdated,
    StartProfiling,
    State,
    Validated,
    ValidationFailed,
)
from dgdr.domain.phases import PROFILING_PHASES
from dgdr.domain.sla import (
    SLA_NOT_MET,
    sla_not_met_message,
    sla_required,
    with_service_default,
)
from dgdr.domain.spec import DGDRSpec, FieldError

REQUEST_MEMORY = 32
# the requests, a start, one report per sub-phase but the first, a result or failure, the
# request that turned autoApply on (its DeploymentStarted), and the last observation
MAX_REMEMBERED = REQUEST_MEMORY + 1 + (len(PROFILING_PHASES) - 1) + 1 + 1 + 1

_REQUEST_EVENTS = (Created, SpecUpdated, AutoApplyEnabled, Validated, ValidationFailed, Deleted)
_PROFILING_EVENTS = (
    ProfilingStarted,
    ProfilingProgressed,
    ProfilingFailed,
    ProfilingCompleted,
    DeploymentStarted,
)


def initial_state() -> State:
    return State()


def decide(state: State, command: Command) -> list[Event] | Rejection:
    if command.id in state.applied:
        return []
    if state.is_terminal:
        return Rejection("Deleted", "this DGDR was deleted; apply it again to create a new one")
    match command:
        case Apply():
            events = _decide_apply(state, command)
        case Delete():
            events = [Deleted()] if state.exists else _not_found()
        case StartProfiling():
            events = _decide_start_profiling(state, command)
        case ReportProfilingProgress():
            events = _decide_progress(state, command)
        case ReportProfilingFailure():
            events = _in_profiling(state, command.generation) or [
                ProfilingFailed(
                    sub_phase=command.sub_phase or state.profiling_phase, message=command.message
                )
            ]
        case ReportProfilingResult():
            events = _decide_result(state, command)
        case ObserveDeployment():
            events = _decide_observation(state, command)
        case _:
            assert_never(command)
    if isinstance(events, Rejection):
        return events
    _check_edges(state, events)
    return events


def evolve(state: State, event: Event, command_id: str | None = None) -> State:
    dest = machine.next_state(state.machine_state, event.trigger)
    if dest is None:
        raise InvalidHistory(f"{event.type} is not allowed in state {state.machine_state}")
    return replace(
        state, machine_state=dest, **_remember(state, event, command_id), **_changes(state, event)
    )


def _changes(state: State, event: Event) -> dict[str, Any]:
    """The fields `event` sets (besides the machine state and the idempotency memory)."""
    match event:
        case Created():
            return dict(
                spec=event.spec,
                parsed_spec=event.parsed,
                generation=event.generation,
                annotations=event.annotations,
            )
        case AutoApplyEnabled():
            return dict(spec=event.spec, parsed_spec=event.parsed, generation=event.generation)
        case SpecUpdated():
            return dict(
                annotations=state.annotations if event.annotations is None else event.annotations,
                spec=event.spec,
                parsed_spec=event.parsed,
                generation=event.generation,
                profiling_phase=None,
                job_name=None,
                dgd_name=None,
                selected_config=None,
                additional_resources=(),
                deployment_created=False,
                deployment_state=None,
                replicas=0,
                available_replicas=0,
            )
        case Validated():
            return dict(
                validated_generation=event.generation,
                hardware=event.hardware,
                resolved_hardware=event.resolved,
            )
        case ValidationFailed():
            return {}
        case ProfilingStarted():
            return dict(job_name=event.job_name, profiling_phase="Initializing")
        case ProfilingProgressed():
            return dict(profiling_phase=event.sub_phase)
        case ProfilingFailed():
            return dict(profiling_phase=event.sub_phase)
        case ProfilingCompleted():
            return dict(
                profiling_phase=None,
                dgd_name=event.dgd_name,
                selected_config=event.selected_config,
                additional_resources=tuple(event.additional_resources),
            )
        case DeploymentStarted():
            return dict(dgd_name=event.dgd_name)
        case DeploymentCreated():
            return dict(deployment_created=True)
        case DeploymentObserved() | DeploymentDegraded():
            return dict(
                deployment_state=event.state,
                replicas=event.replicas,
                available_replicas=event.available_replicas,
                deployment_created=True,
            )
        case DeploymentReady():
            return dict(
                deployment_state="successful",
                replicas=event.replicas,
                available_replicas=event.available_replicas,
                deployment_created=True,
            )
        case DeploymentDeleted():
            return dict(
                dgd_name=None,
                deployment_state=None,
                replicas=0,
                available_replicas=0,
                deployment_created=False,
            )
        case DeploymentFailed() | Deleted():
            return {}
        case _:
            assert_never(event)


def _remember(state: State, event: Event, command_id: str | None) -> dict[str, Any]:
    """The idempotency memory's fields after `event` (the module docstring says what is kept)."""
    changes: dict[str, Any] = {}
    generation_commands = state.generation_commands
    if isinstance(event, Created | SpecUpdated | AutoApplyEnabled):
        generation_commands = changes["generation_commands"] = frozenset()
        changes["last_observation"] = None
    if command_id is None:
        return changes
    retried = isinstance(event, DeploymentStarted) and state.phase == "Failed"  # a request
    if isinstance(event, _REQUEST_EVENTS) or retried:
        if command_id not in state.recent_requests:
            recent = (*state.recent_requests, command_id)
            changes["recent_requests"] = recent[-REQUEST_MEMORY:]
    elif isinstance(event, _PROFILING_EVENTS):
        changes["generation_commands"] = generation_commands | {command_id}
    else:
        changes["last_observation"] = command_id
    return changes


def fold(events: list[tuple[Event, str | None]], state: State | None = None) -> State:
    """evolve over a history of (event, causing command id)."""
    s = state or initial_state()
    for event, command_id in events:
        s = evolve(s, event, command_id)
    return s


# ------------------------------------------------------------------------------------------- helpers


def _check_edges(state: State, events: list[Event]) -> None:
    """Every decided event must be a machine edge from where the previous one left (only the
    machine state decides that, so chaining states is enough). A failure is a decider bug."""
    current = state.machine_state
    for event in events:
        dest = machine.next_state(current, event.trigger)
        if dest is None:
            raise InvalidHistory(f"decided {event.type} in state {current}: not a machine edge")
        current = dest


def _not_found() -> Rejection:
    return Rejection("NotFound", "no such DGDR")


def _decide_apply(state: State, command: Apply) -> list[Event] | Rejection:
    verdict = review_apply(
        command.spec,
        command.parsed,
        old_spec=state.spec if state.exists else None,
        old_phase=state.phase,
        annotations=command.annotations,
    )
    if not verdict.allowed:
        return Rejection(verdict.reason, verdict.message, verdict.errors, invalid=True)
    # The events are built from the command's fields, validated when the command was (user input)
    # or made by the service since, so not validated again (`model_construct`).
    parsed = command.parsed if isinstance(command.parsed, DGDRSpec) else None
    applied = with_service_default(command.annotations, command.require_sla_default)
    if not state.exists:
        created: Event = Created.model_construct(
            spec=command.spec,
            parsed=parsed,
            generation=1,
            labels=command.labels,
            annotations=applied,
        )
        return [created, *_validation(1, command)]
    if command.spec == state.spec:
        if _failed_by_conflict(state):
            return [DeploymentStarted(dgd_name=state.dgd_name or "")]
        return []
    phase = state.phase
    generation = state.generation + 1
    if phase == "Ready" and _only_auto_apply_turned_on(state, command, parsed):
        return [
            AutoApplyEnabled.model_construct(
                spec=command.spec, parsed=parsed, generation=generation
            ),
            DeploymentStarted.model_construct(dgd_name=state.dgd_name or ""),
        ]
    annotations = None if applied == state.annotations else applied
    return [
        SpecUpdated.model_construct(
            spec=command.spec, parsed=parsed, generation=generation, annotations=annotations
        ),
        *_validation(generation, command),
    ]


def _failed_by_conflict(state: State) -> bool:
    """Failed while Deploying before its DGD was created: only a `DeploymentConflict` does that
    (a deleted DGD clears `dgd_name`; a failed profiling or validation has no generated DGD)."""
    return (
        state.phase == "Failed"
        and state.selected_config is not None
        and bool(state.dgd_name)
        and not state.deployment_created
    )


def _auto_apply(spec: DGDRSpec | None) -> bool:
    """autoApply as validated (default true); an invalid spec never deploys."""
    return spec is not None and spec.auto_apply


def _only_auto_apply_turned_on(state: State, command: Apply, parsed: DGDRSpec | None) -> bool:
    def rest(spec: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in spec.items() if k != "autoApply"}

    return (
        rest(state.spec) == rest(command.spec)
        and not _auto_apply(state.parsed_spec)
        and _auto_apply(parsed)
    )


def _validation(generation: int, command: Apply) -> list[Event]:
    """The validation's event. Built from what validation made (the parsed spec, the resolved
    hardware, field errors), so not validated again (`model_construct`)."""
    parsed = command.parsed
    if isinstance(parsed, list):
        return [_failed(generation, parsed)]
    if command.model_refusal is not None:
        return [_failed(generation, [FieldError("spec.model", command.model_refusal)])]
    hardware, errors = resolve_hardware(parsed, command.discovered_hardware)
    if hardware is None:
        return [_failed(generation, errors)]
    return [
        Validated.model_construct(
            generation=generation,
            hardware=hardware.to_dict(),
            resolved=hardware,
            message=(
                f"Spec is valid; hardware: {hardware.total_gpus} x {hardware.gpu_sku.value} "
                f"({hardware.num_gpus_per_node} per node)"
            ),
        )
    ]


def _failed(generation: int, errors: list[FieldError]) -> ValidationFailed:
    return ValidationFailed.model_construct(
        generation=generation, errors=[e.to_dict() for e in errors]
    )


def _decide_start_profiling(state: State, command: StartProfiling) -> list[Event] | Rejection:
    if (
        state.phase != "Pending"
        or command.generation != state.validated_generation
        or (command.generation != state.generation)
    ):
        return Rejection(
            "Stale",
            f"profiling cannot start in phase {state.phase} for generation "
            f"{command.generation} (current {state.generation})",
        )
    return [ProfilingStarted(generation=command.generation, job_name=command.job_name)]


def _in_profiling(state: State, generation: int) -> Rejection | None:
    if state.phase != "Profiling" or generation != state.generation:
        return Rejection(
            "Stale",
            f"no profiling of generation {generation} is running "
            f"(phase {state.phase}, generation {state.generation})",
        )
    return None


def _decide_progress(state: State, command: ReportProfilingProgress) -> list[Event] | Rejection:
    stale = _in_profiling(state, command.generation)
    if stale:
        return stale
    if command.sub_phase == state.profiling_phase:
        return []
    if _passed(state.profiling_phase, command.sub_phase):
        return Rejection(
            "Stale",
            f"profiling is at {state.profiling_phase}, past {command.sub_phase}: a report from "
            "before (a redelivered or restarted job replaying its steps)",
        )
    event = ProfilingProgressed(sub_phase=command.sub_phase, message=command.message)
    if machine.next_state(state.machine_state, event.trigger) is None:
        return Rejection(
            "InvalidTransition",
            f"profiling cannot go from {state.profiling_phase} to {command.sub_phase}",
        )
    return [event]


def _passed(current: str | None, reported: str) -> bool:
    """Whether `reported` is a profiling sub-phase before `current` (PROFILING_PHASES' order)."""
    if current not in PROFILING_PHASES or reported not in PROFILING_PHASES:
        return False
    return PROFILING_PHASES.index(reported) < PROFILING_PHASES.index(current)


def _decide_result(state: State, command: ReportProfilingResult) -> list[Event] | Rejection:
    stale = _in_profiling(state, command.generation)
    if stale:
        return stale
    if command.sla_verdict == "missed" and sla_required(state.annotations):
        summary = command.sla_summary or "SLA missed"
        return [
            ProfilingFailed(
                sub_phase="SelectingConfig",
                reason=SLA_NOT_MET,
                message=sla_not_met_message(summary, command.message),
            )
        ]
    events: list[Event] = [
        ProfilingCompleted(
            dgd_name=command.dgd_name,
            selected_config=command.selected_config,
            pareto=command.pareto,
            message=command.message,
            additional_resources=command.additional_resources,
            sla_verdict=command.sla_verdict,
            sla_summary=command.sla_summary,
        )
    ]
    if _auto_apply(state.parsed_spec):
        events.append(DeploymentStarted(dgd_name=command.dgd_name))
    return events


def _decide_observation(state: State, command: ObserveDeployment) -> list[Event] | Rejection:
    if state.phase not in ("Deploying", "Deployed") or command.dgd_name != state.dgd_name:
        return Rejection(
            "Stale",
            f"DGD {command.dgd_name} is not being deployed by this DGDR (phase {state.phase})",
        )
    seen, n, avail = command.observed, command.replicas, command.available_replicas
    changed = (seen, n, avail) != (state.deployment_state, state.replicas, state.available_replicas)
    events: list[Event] = []
    if state.phase == "Deploying":
        if seen == "conflict":
            return [
                DeploymentFailed(
                    reason="DeploymentConflict",
                    message=f"a DynamoGraphDeployment named {command.dgd_name} already exists and is "
                    "not managed by this DGDR; delete it, or set overrides.dgd.metadata.name "
                    "to another name and apply a new DGDR",
                )
            ]
        if seen == "deleted":
            return (
                [DeploymentDeleted(dgd_name=command.dgd_name)] if state.deployment_created else []
            )
        if not state.deployment_created:
            events.append(DeploymentCreated(dgd_name=command.dgd_name))
        if seen == "successful":
            events.append(DeploymentReady(replicas=n, available_replicas=avail))
        elif seen != "created" and changed:
            events.append(DeploymentObserved(state=seen, replicas=n, available_replicas=avail))
        return events
    if seen == "deleted":
        return [DeploymentDeleted(dgd_name=command.dgd_name)]
    if seen in ("pending", "failed"):
        return [DeploymentDegraded(state=seen, replicas=n, available_replicas=avail)]
    if seen == "successful" and changed:
        return [DeploymentObserved(state=seen, replicas=n, available_replicas=avail)]
    return []
