"""The status projection: a pure fold of stored events into the DGDR object as `kubectl get -o json`
would show it, with Dynamo's v1beta1 status shape (design §3.4).

`project(obj, envelope, seq)` folds one event into the previous object (None before `Created`) and
returns the new object, or None once the DGDR is deleted. It reads only the event and the object, so
folding the same history always gives the same object, byte for byte through `encode`. Condition
`lastTransitionTime` changes only when that condition's status changes. `metadata.resourceVersion` is
the stream sequence of the last commit folded in.

`phase`, `profilingPhase` and the `Succeeded` condition follow the lifecycle machine
(`dgdr.domain.machine`): the state the status shows, then the event's trigger, give the next state.
Only the other conditions, the messages and the event's data are written per event type; failure and
progress reasons are the event's description (`dgdr.domain.describe`), as `dgdr describe` and
Kubernetes Events show them. A pick that misses the SLA (condition `SLAMet` False, its message the
profiler's verdict) is noted on `Succeeded` in Ready and Deployed: "Deployment is healthy; SLA
missed: TTFT ... (closest achievable config)". Condition wording is Dynamo's controller's: Validation True
`ValidationPassed` "DGDR spec validation passed"; Profiling True `ProfilingCompleted` "Profiling job
completed successfully" (then our profiler's summary after "; "); SpecGenerated True "DynamoGraphDeployment
spec generated successfully"; in Failed, `Succeeded` shows the first False condition of Validation,
Profiling, SpecGenerated, DeploymentReady, its message prefixed "Validation failed: ", "Profiling
failed: ", "Spec generation failed: " or "Deployment failed: ".

The status size is bounded: `profilingResults.pareto` (Dynamo's field, deprecated upstream) holds at
most `PARETO_STATUS_ROWS` configs of the profiler's front: the selected one and those with the most
tokens/s per GPU, in the front's order (`status_pareto`). When the front is longer, the Profiling
condition's message ends "status.profilingResults.pareto holds K of the N Pareto configs (all of
them: dgdr describe)"; the whole front stays in the stored ProfilingCompleted event, which `dgdr
describe` and `dgdr history -o json` show.

Failure: an unknown event type raises ValueError; an event the machine does not allow from the state
the status shows raises `InvalidHistory`; the projector verifies each commit (`events.integrity`)
before it folds it, and shows one it did not fold with `mark_damaged`.
"""

from __future__ import annotations

from typing import Any, assert_never

from dgdr.domain import machine
from dgdr.domain.describe import HISTORY_DAMAGED, describe
from dgdr.domain.errors import InvalidHistory
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
from dgdr.domain.pareto import ranked_throughput
from dgdr.domain.spec import API_VERSION, KIND
from events import codec
from events.envelope import Damage, Envelope

CONDITION_ORDER = (
    "Succeeded",
    "Validation",
    "Profiling",
    "SLAMet",
    "SpecGenerated",
    "DeploymentReady",
    "HistoryIntact",
)
_CONDITION_RANK = {ctype: rank for rank, ctype in enumerate(CONDITION_ORDER)}
# Our condition, present only once a stored message of the DGDR could not be folded (`mark_damaged`).
HISTORY_INTACT = "HistoryIntact"
# Our condition beside Dynamo's: whether the pick meets the SLA as the profiler estimated it (Unknown
# when nothing could estimate the model and Dynamo's naive configuration was picked).
SLA_CONDITION: dict[str, tuple[str, str]] = {
    "met": ("True", "SLAMet"),
    "missed": ("False", "SLAMissed"),
    "unverified": ("Unknown", "SLAUnverified"),
}

SUCCEEDED: dict[str, tuple[str, str, str]] = {
    "Pending": ("False", "Pending", "DGDR is pending"),
    "Profiling": ("False", "Profiling", "Profiling is in progress"),
    "Ready": ("True", "SpecGenerated", "Profiling complete, spec available"),
    "Deploying": ("False", "Deploying", "Deployment is in progress"),
    "Deployed": ("True", "Deployed", "Deployment is healthy"),
    "Failed": ("False", "Failed", "DGDR has failed"),
}
# Where `Succeeded` (the phase message) also says that the pick misses the SLA.
SLA_NOTED_PHASES = ("Ready", "Deployed")
# The Pareto configs a status holds at most (Dynamo's field, deprecated upstream: its controller no
# longer fills it). The whole front stays in the stored ProfilingCompleted event.
PARETO_STATUS_ROWS = 5
# What a new generation of the spec starts without: its profiling and deployment are still to come.
PER_GENERATION = (
    "profilingPhase",
    "profilingJobName",
    "dgdName",
    "profilingResults",
    "deploymentInfo",
)
DGD_DELETED = "Deployment was deleted by user. Create a new DGDR to redeploy."
# Dynamo's controller wording (dynamographdeploymentrequest_controller.go).
VALIDATION_PASSED = ("ValidationPassed", "DGDR spec validation passed")
PROFILING_SUCCEEDED = "Profiling job completed successfully"
SPEC_GENERATED = "DynamoGraphDeployment spec generated successfully"
# In Failed, `Succeeded` surfaces the first False condition in this order, its message prefixed.
FAILURE_PREFIXES = (
    ("Validation", "Validation failed: "),
    ("Profiling", "Profiling failed: "),
    ("SpecGenerated", "Spec generation failed: "),
    ("DeploymentReady", "Deployment failed: "),
)


def _selected(row: dict[str, Any]) -> bool:
    config = row.get("config")
    return isinstance(config, dict) and config.get("selected") is True


def _throughput(row: dict[str, Any]) -> float:
    config = row.get("config")
    value = ranked_throughput(config) if isinstance(config, dict) else None
    return float("-inf") if value is None else value


def status_pareto(pareto: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of the Pareto front the status keeps: all of a front of at most
    `PARETO_STATUS_ROWS`; of a longer one, the selected config and the others with the most
    tokens/s per GPU as the profile ranked them (`ranked_throughput`: per GPU of the budget when
    the rows carry it) up to that many, in the front's order."""
    if len(pareto) <= PARETO_STATUS_ROWS:
        return pareto
    selected = next((i for i, row in enumerate(pareto) if _selected(row)), None)
    slower = [-_throughput(row) for row in pareto]  # each row's key once, not a call per lookup
    ranked = sorted((i for i in range(len(pareto)) if i != selected), key=slower.__getitem__)
    kept = ([selected] if selected is not None else []) + ranked
    return [pareto[i] for i in sorted(kept[:PARETO_STATUS_ROWS])]


def pareto_note(kept: int, total: int) -> str:
    """What the Profiling condition says of a front the status holds only part of."""
    return (
        f"status.profilingResults.pareto holds {kept} of the {total} Pareto configs "
        "(all of them: dgdr describe)"
    )


def encode(obj: dict[str, Any]) -> bytes:
    """The canonical bytes of an object (sorted keys, compact, `events.codec.canonical`): equal
    objects, equal bytes."""
    return codec.canonical(obj)


def set_condition(
    status: dict[str, Any],
    ctype: str,
    cstatus: str,
    reason: str,
    message: str,
    *,
    at: str,
    generation: int | None,
) -> None:
    """Condition `ctype` of `status` set, its `lastTransitionTime` kept unless its status
    changes. The list stays in `CONDITION_ORDER`: the others stay, the new one goes in at its
    place (where the old one of its type was, or before the first of a later type). Changes
    `status["conditions"]` in place: the caller owns that list (`_copy_for_fold` copies it);
    a condition itself is never changed, only replaced."""
    conditions = status.get("conditions")
    if conditions is None:
        conditions = status["conditions"] = []
    rank = _CONDITION_RANK[ctype]
    index = later = -1
    for i, c in enumerate(conditions):
        if c["type"] == ctype:
            if index >= 0:  # the type twice: not a list this function wrote
                _set_condition_anywhere(status, ctype, cstatus, reason, message, at, generation)
                return
            index = i
        elif later < 0 and _CONDITION_RANK[c["type"]] > rank:
            later = i
    if index < 0:
        conditions.insert(
            later if later >= 0 else len(conditions),
            _condition(ctype, cstatus, reason, message, None, at, generation),
        )
    elif later == index + 1 or (later < 0 and index == len(conditions) - 1):  # in order
        conditions[index] = _condition(
            ctype, cstatus, reason, message, conditions[index], at, generation
        )
    else:
        _set_condition_anywhere(status, ctype, cstatus, reason, message, at, generation)


def _condition(
    ctype: str,
    cstatus: str,
    reason: str,
    message: str,
    old: dict[str, Any] | None,
    at: str,
    generation: int | None,
) -> dict[str, Any]:
    new: dict[str, Any] = {
        "type": ctype,
        "status": cstatus,
        "reason": reason,
        "message": message,
        "lastTransitionTime": old["lastTransitionTime"] if old and old["status"] == cstatus else at,
    }
    if generation is not None:
        new["observedGeneration"] = generation
    return new


def _set_condition_anywhere(
    status: dict[str, Any],
    ctype: str,
    cstatus: str,
    reason: str,
    message: str,
    at: str,
    generation: int | None,
) -> None:
    """`set_condition` for a list out of `CONDITION_ORDER` or holding a type twice (never
    written here): every condition of the type goes, the new one takes the last one's time and
    goes in before the first of a later type."""
    rank = _CONDITION_RANK[ctype]
    rest: list[dict[str, Any]] = []
    old: dict[str, Any] | None = None
    place = -1
    for c in status.get("conditions", ()):
        if c["type"] == ctype:
            old = c
            continue
        if place < 0 and _CONDITION_RANK[c["type"]] > rank:
            place = len(rest)
        rest.append(c)
    new = _condition(ctype, cstatus, reason, message, old, at, generation)
    rest.insert(place if place >= 0 else len(rest), new)
    status["conditions"] = rest


class _Conditions:
    """Writes conditions of one status at one time for one generation."""

    __slots__ = ("at", "generation", "status")

    def __init__(self, status: dict[str, Any], at: str, generation: int) -> None:
        self.status, self.at, self.generation = status, at, generation

    def set(self, ctype: str, cstatus: str, reason: str, message: str) -> None:
        set_condition(
            self.status, ctype, cstatus, reason, message, at=self.at, generation=self.generation
        )

    def succeeded(self, reason: str | None = None, message: str | None = None) -> None:
        """`Succeeded` for the phase: its default reason and message unless the event names them.
        In Failed, as Dynamo's controller: the first False condition (`FAILURE_PREFIXES` order)
        with a message gives the reason, and its message with the condition's prefix."""
        phase = self.status["phase"]
        cstatus, default_reason, default_message = SUCCEEDED[phase]
        if phase in SLA_NOTED_PHASES and message is None:
            message = _with_sla_note(self.status, default_message)
        if phase == "Failed":
            reason, message = None, None
            found = {c["type"]: c for c in self.status.get("conditions", [])}
            for ctype, prefix in FAILURE_PREFIXES:
                c = found.get(ctype)
                if c is not None and c["status"] == "False" and c["message"]:
                    reason, message = c["reason"], prefix + c["message"]
                    break
        self.set("Succeeded", cstatus, reason or default_reason, message or default_message)

    def surface(self, ctype: str, reason: str, message: str) -> None:
        """`ctype` False for `reason`, shown on `Succeeded` too (a failure, or profiling progress)."""
        self.set(ctype, "False", reason, message)
        self.succeeded(reason, message)

    def drop(self, *types: str) -> None:
        self.status["conditions"] = [
            c for c in self.status.get("conditions", []) if c["type"] not in types
        ]


def _with_sla_note(status: dict[str, Any], message: str) -> str:
    """`message`, then the `SLAMet` condition's message when the pick misses the SLA."""
    sla = next((c for c in status.get("conditions", []) if c["type"] == "SLAMet"), None)
    if sla is None or sla["status"] != "False":
        return message
    return f"{message}; {sla['message']}"


def _enter(conditions: _Conditions, state: str) -> None:
    """Phase, profiling sub-phase and `Succeeded` for the machine state the event led to."""
    status = conditions.status
    phase, sub_phase = machine.split_state(state)
    status["phase"] = phase
    if sub_phase:
        status["profilingPhase"] = sub_phase
    elif phase != "Failed":  # cleared once profiling is over; a failure keeps it (as Dynamo does)
        status.pop("profilingPhase", None)
    conditions.succeeded()


def _copy_for_fold(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy deep enough for `_record`, which only replaces values below metadata and status
    (conditions are rebuilt by `set_condition`, never mutated), so the input stays untouched."""
    status = dict(obj["status"])
    if "conditions" in status:
        status["conditions"] = list(status["conditions"])
    return {**obj, "metadata": dict(obj["metadata"]), "status": status}


def _created(envelope: Envelope, event: Created) -> dict[str, Any]:
    agg = envelope.aggregate
    meta: dict[str, Any] = {
        "name": agg.name,
        "namespace": agg.namespace,
        "uid": agg.uid,
        "generation": event.generation,
        "creationTimestamp": envelope.time,
    }
    if event.labels:
        meta["labels"] = event.labels
    if event.annotations:
        meta["annotations"] = event.annotations
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": meta,
        "spec": event.spec,
        "status": {},
    }


_KNOWN_TYPES = frozenset(EVENT_TYPES)


def _decode(envelope: Envelope) -> Event:
    if envelope.type not in _KNOWN_TYPES:
        raise ValueError(f"the status projection does not know event type {envelope.type}")
    return envelope.fields  # the stored fields are all the fold reads (no derived view)


def project(obj: dict[str, Any] | None, envelope: Envelope, seq: int) -> dict[str, Any] | None:
    event = _decode(envelope)
    if isinstance(event, Created):
        source, new = machine.ABSENT, _created(envelope, event)
    elif obj is None or isinstance(event, Deleted):
        return None
    else:
        new = _copy_for_fold(obj)
        source = machine.join_state(new["status"]["phase"], new["status"].get("profilingPhase"))
    state = machine.next_state(source, event.trigger)
    if state is None:
        raise InvalidHistory(f"{envelope.aggregate}: {event.type} is not allowed in state {source}")
    if isinstance(event, SpecUpdated | AutoApplyEnabled):
        new["spec"], new["metadata"]["generation"] = event.spec, event.generation
    if isinstance(event, SpecUpdated) and event.annotations is not None:
        new["metadata"].pop("annotations", None)
        if event.annotations:
            new["metadata"]["annotations"] = event.annotations
    conditions = _Conditions(new["status"], envelope.time, new["metadata"]["generation"])
    _enter(conditions, state)
    _record(new["status"], event, conditions)
    new["metadata"]["resourceVersion"] = str(seq)
    return new


def _record(status: dict[str, Any], event: Event, conditions: _Conditions) -> None:
    """What the event adds to the status besides the phase: its data, conditions and messages."""
    c = conditions
    match event:
        case Created() | Deleted():
            pass
        case SpecUpdated():
            for key in PER_GENERATION:
                status.pop(key, None)
            c.drop("Profiling", "SLAMet", "SpecGenerated", "DeploymentReady")
        case AutoApplyEnabled():
            status["observedGeneration"] = event.generation
        case Validated():
            status["observedGeneration"] = event.generation
            c.set("Validation", "True", *VALIDATION_PASSED)
            c.set("Profiling", "False", "Pending", "Waiting for a profiling worker to take the job")
        case ValidationFailed():
            status["observedGeneration"] = event.generation
            failed = describe(event)
            c.surface("Validation", failed.reason, failed.message)
        case ProfilingStarted():
            status["profilingJobName"] = event.job_name
            c.set("Profiling", "False", "Initializing", f"Profiling job {event.job_name} queued")
        case ProfilingProgressed():
            c.surface("Profiling", describe(event).reason, event.message)
        case ProfilingFailed():
            if event.sub_phase:
                status["profilingPhase"] = event.sub_phase
            c.surface("Profiling", describe(event).reason, event.message)
        case ProfilingCompleted():
            status["dgdName"] = event.dgd_name
            kept = status_pareto(event.pareto)
            status["profilingResults"] = {"selectedConfig": event.selected_config, "pareto": kept}
            said = [event.message] if event.message else []
            if len(kept) < len(event.pareto):
                said.append(pareto_note(len(kept), len(event.pareto)))
            done = "; ".join([PROFILING_SUCCEEDED, *said])
            c.set("Profiling", "True", "ProfilingCompleted", done)
            if event.sla_verdict is not None:
                verdict = event.sla_summary or event.message
                c.set("SLAMet", *SLA_CONDITION[event.sla_verdict], verdict)
            c.set("SpecGenerated", "True", "SpecGenerated", SPEC_GENERATED)
            if status["phase"] in SLA_NOTED_PHASES:
                c.succeeded()  # again: the phase message notes the verdict just recorded
        case DeploymentStarted():
            status["dgdName"] = event.dgd_name
            creating = f"Creating DynamoGraphDeployment {event.dgd_name}"
            c.set("DeploymentReady", "False", "DeploymentPending", creating)
        case DeploymentCreated():
            waiting = f"DGD {event.dgd_name} created, waiting for Ready"
            c.set("DeploymentReady", "False", "DeploymentCreated", waiting)
        case DeploymentObserved() | DeploymentReady() | DeploymentDegraded():
            _record_replicas(status, event, c)
        case DeploymentDeleted():
            status.pop("dgdName", None)
            status.pop("deploymentInfo", None)
            c.surface("DeploymentReady", describe(event).reason, DGD_DELETED)
        case DeploymentFailed():
            c.surface("DeploymentReady", describe(event).reason, event.message)
        case _:
            assert_never(event)


def _record_replicas(
    status: dict[str, Any],
    event: DeploymentObserved | DeploymentReady | DeploymentDegraded,
    c: _Conditions,
) -> None:
    status["deploymentInfo"] = {
        "replicas": event.replicas,
        "availableReplicas": event.available_replicas,
    }
    dgd = status.get("dgdName", "")
    match event:
        case DeploymentReady():
            ready = f"DynamoGraphDeployment {dgd} is ready"
            c.set("DeploymentReady", "True", "DeploymentReady", ready)
        case DeploymentDegraded():
            degraded = f"Deployment degraded to {event.state}"
            c.set("DeploymentReady", "False", "DeploymentDegraded", degraded)
        case DeploymentObserved() if status["phase"] == "Deploying":
            progress = f"DGD {dgd} is in {event.state} state"
            c.set("DeploymentReady", "False", "DeploymentInProgress", progress)


def mark_damaged(obj: dict[str, Any], damage: Damage) -> dict[str, Any]:
    """`obj` with condition `HistoryIntact` False (reason `HistoryDamaged`) naming the message at
    `damage.seq` that was not folded, why, and where to look; everything else stays the last good
    fold, and `metadata.resourceVersion` moves to the damaged message (the object changed). A
    damaged message has no time anyone can trust: the condition's transition time is the last one
    the object shows, so a rebuild gives the same bytes."""
    new = _copy_for_fold(obj)
    meta = new["metadata"]
    times = [c["lastTransitionTime"] for c in new["status"].get("conditions", [])]
    at = max(times, default=meta.get("creationTimestamp", ""))
    where = f"dgdr history {meta['name']}"
    if meta["namespace"] != "default":
        where += f" -n {meta['namespace']}"
    message = (
        f"the stored message at stream sequence {damage.seq} ({damage.subject}) was not folded: "
        f"{damage.reason}. The status shows this DGDR's history without it; see `{where}`"
    )
    set_condition(
        new["status"],
        HISTORY_INTACT,
        "False",
        HISTORY_DAMAGED,
        message,
        at=at,
        generation=meta.get("generation"),
    )
    meta["resourceVersion"] = str(damage.seq)
    return new


def project_all(
    commits: list[tuple[int, list[Envelope]]], obj: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    for seq, envelopes in commits:
        for env in envelopes:
            obj = project(obj, env, seq)
    return obj
