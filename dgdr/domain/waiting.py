"""What `dgdr wait --for=...` waits for, and whether a DGDR's status meets it, can still meet it, or
never will without a new spec (kubectl's `wait` conditions, plus dgdr's phases).

    parse_wait_for("condition=Succeeded", conditions)   # WaitFor("condition", "Succeeded", "True")
    verdict(status_object, wait_for)                      # Verdict(MET | PENDING | IMPOSSIBLE, why)

The forms: `phase=<Phase>` (exact case: Dynamo's phases are an enum), `condition=<Type>` or
`condition=<Type>=<True|False|Unknown>` (type and status compared case-insensitively, as kubectl
compares them), `delete`, `resourceVersion=<n>`. What a phase can still become is computed from the
lifecycle machine's edges (`dgdr.domain.machine.EDGES`) without a new spec or a delete: a Failed DGDR
stays Failed; a Deployed one can degrade (Deploying) or fail, never become Ready again.

Failure semantics: `parse_wait_for` raises `ValueError` with a one-line message listing what is valid;
`verdict` is total (a status without a phase is PENDING: not projected yet).
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from dgdr.domain.phases import PHASES

WaitKind = Literal["phase", "condition", "delete", "resourceVersion"]
CONDITION_STATUSES = ("True", "False", "Unknown")
FORMS = "phase=<Phase>, condition=<Type>[=True|False|Unknown], delete or resourceVersion=<n>"
# A new spec (or a delete) can take any DGDR anywhere: "reachable" means without one.
_NEEDS_THE_USER = frozenset({"spec_updated", "deleted", "created"})
# ... and so does the one edge a re-apply of the same spec takes: a DGDR Failed on a
# DeploymentConflict deploys again only when applied again (`dgdr.domain.decider`).
_NEEDS_A_REAPPLY = frozenset({("Failed", "deployment_started")})


@dataclass(frozen=True)
class WaitFor:
    kind: WaitKind
    name: str = ""  # the phase or the condition type (as the status spells it, for conditions)
    value: str = ""  # the condition status, or the resourceVersion

    def __str__(self) -> str:
        match self.kind:
            case "delete":
                return "delete"
            case "condition":
                return f"condition={self.name}={self.value}"
            case "phase":
                return f"phase={self.name}"
        return f"resourceVersion={self.value}"


class Outcome(enum.Enum):
    MET = "met"
    PENDING = "pending"
    IMPOSSIBLE = "impossible"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    why: str = ""  # for IMPOSSIBLE: the phase and what the status says


def _one_of(value: str, valid: Sequence[str], what: str) -> str:
    """`value` as `valid` spells it (case-insensitively), or ValueError naming the valid ones."""
    for candidate in valid:
        if candidate.lower() == value.lower():
            return candidate
    raise ValueError(f"{value!r} is not a {what}: use one of {', '.join(valid)}")


def parse_phase(value: str) -> str:
    if value in PHASES:
        return value
    close = [p for p in PHASES if p.lower() == value.lower()]
    close = close or difflib.get_close_matches(value, PHASES, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise ValueError(f"{value!r} is not a phase{hint}: use one of {', '.join(PHASES)}")


def parse_wait_for(text: str, conditions: Sequence[str]) -> WaitFor:
    """`--for`'s value as a `WaitFor`; `conditions` are the condition types a DGDR's status has."""
    key, _, rest = text.strip().partition("=")
    if key == "delete" and not rest:
        return WaitFor("delete")
    if key == "phase" and rest:
        return WaitFor("phase", parse_phase(rest))
    if key == "condition" and rest:
        ctype, _, cstatus = rest.partition("=")
        name = _one_of(ctype, conditions, "condition of a DGDR")
        return WaitFor("condition", name, _one_of(cstatus or "True", CONDITION_STATUSES, "status"))
    if key == "resourceVersion" and rest.isdigit():
        return WaitFor("resourceVersion", value=rest)
    raise ValueError(f"--for={text} is not a wait condition: use {FORMS}")


@cache
def reachable_phases(phase: str, sub_phase: str | None = None) -> frozenset[str]:
    """The phases a DGDR in `phase` (and profiling `sub_phase`) can reach, itself included,
    by the machine's edges that need neither a new spec, a re-apply nor a delete."""
    # Imported here: building the machine's edges at import would cost every `dgdr` command.
    from dgdr.domain.machine import EDGES, join_state, split_state

    seen = {join_state(phase, sub_phase)}
    todo = list(seen)
    while todo:
        state = todo.pop()
        for (source, trigger), dest in EDGES.items():
            if (
                source == state
                and trigger not in _NEEDS_THE_USER
                and (source, trigger) not in _NEEDS_A_REAPPLY
                and dest not in seen
            ):
                seen.add(dest)
                todo.append(dest)
    return frozenset(split_state(state)[0] for state in seen)


def condition_of(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    for c in obj.get("status", {}).get("conditions", []):
        if c.get("type") == ctype:
            return dict(c)
    return {}


def failure_summary(obj: dict[str, Any]) -> str:
    """`<Phase> (<reason>: <message>)`, from the `Succeeded` condition: what a failed wait prints."""
    phase = obj.get("status", {}).get("phase", "-")
    cond = condition_of(obj, "Succeeded")
    why = ": ".join(p for p in (cond.get("reason", ""), cond.get("message", "")) if p)
    return f"{phase} ({why})" if why else str(phase)


def verdict(obj: dict[str, Any], wait_for: WaitFor) -> Verdict:
    """Whether the DGDR `obj` (as `kubectl get -o json` shows it) meets `wait_for`, may still, or
    cannot without a new spec. `delete` is decided by the caller (the object is gone or not)."""
    status = obj.get("status", {})
    phase = status.get("phase")
    if wait_for.kind == "resourceVersion":
        met = int(obj.get("metadata", {}).get("resourceVersion", 0)) >= int(wait_for.value)
        return Verdict(Outcome.MET if met else Outcome.PENDING)
    if not phase or wait_for.kind == "delete":
        return Verdict(Outcome.PENDING)
    reachable = reachable_phases(phase, status.get("profilingPhase"))
    if wait_for.kind == "phase":
        if phase == wait_for.name:
            return Verdict(Outcome.MET)
        if wait_for.name in reachable:
            return Verdict(Outcome.PENDING)
        return Verdict(
            Outcome.IMPOSSIBLE,
            f"{failure_summary(obj)}: it cannot become {wait_for.name} without a new spec",
        )
    if condition_of(obj, wait_for.name).get("status") == wait_for.value:
        return Verdict(Outcome.MET)
    if reachable == {phase}:  # nothing changes any more without a new spec
        return Verdict(
            Outcome.IMPOSSIBLE, f"{failure_summary(obj)}: it stays so without a new spec"
        )
    return Verdict(Outcome.PENDING)
