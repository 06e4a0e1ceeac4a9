"""`dgdr wait --for`: parsing its forms, and deciding met / pending / impossible from a status."""

from __future__ import annotations

from typing import Any

import pytest

from dgdr.domain.phases import PHASES
from dgdr.domain.waiting import (
    Outcome,
    WaitFor,
    parse_wait_for,
    reachable_phases,
    verdict,
)

CONDITIONS = ("Succeeded", "Validation", "Profiling", "SpecGenerated", "DeploymentReady")


def obj(phase: str, *conditions: tuple[str, str], rv: int = 7, **status: Any) -> dict[str, Any]:
    conds = [{"type": t, "status": s, "reason": "R", "message": "M"} for t, s in conditions]
    return {
        "metadata": {"name": "x", "resourceVersion": str(rv)},
        "status": {"phase": phase, "conditions": conds, **status},
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("phase=Deployed", WaitFor("phase", "Deployed")),
        ("condition=Succeeded", WaitFor("condition", "Succeeded", "True")),
        (
            "condition=succeeded=false",
            WaitFor("condition", "Succeeded", "False"),
        ),  # kubectl folds case
        ("condition=DeploymentReady=Unknown", WaitFor("condition", "DeploymentReady", "Unknown")),
        ("delete", WaitFor("delete")),
        ("resourceVersion=12", WaitFor("resourceVersion", value="12")),
    ],
)
def test_the_forms_of_for(text: str, expected: WaitFor) -> None:
    assert parse_wait_for(text, CONDITIONS) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("phase=deployed", "did you mean Deployed?"),  # a phase is an enum: exact case
        ("phase=Foo", "use one of " + ", ".join(PHASES)),
        ("condition=Ready", "not a condition of a DGDR: use one of Succeeded"),
        ("condition=Succeeded=Maybe", "use one of True, False, Unknown"),
        ("color=blue", "phase=<Phase>, condition=<Type>"),
        ("resourceVersion=x", "not a wait condition"),
        ("phase=", "not a wait condition"),
    ],
)
def test_a_wrong_for_names_what_is_valid(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("?", r"\?")):
        parse_wait_for(text, CONDITIONS)


def test_what_a_phase_can_still_become_without_a_new_spec() -> None:
    assert reachable_phases("Failed") == {"Failed"}
    assert reachable_phases("Deployed") == {"Deployed", "Deploying", "Failed"}
    assert reachable_phases("Ready") == {"Ready", "Deploying", "Deployed", "Failed"}
    assert reachable_phases("Profiling", "SweepingDecode") == {
        "Profiling", "Ready", "Deploying", "Deployed", "Failed",
    }  # fmt: skip
    assert reachable_phases("Pending") == set(PHASES)


def test_a_phase_is_met_pending_or_impossible() -> None:
    assert verdict(obj("Deployed"), WaitFor("phase", "Deployed")).outcome is Outcome.MET
    assert verdict(obj("Deploying"), WaitFor("phase", "Deployed")).outcome is Outcome.PENDING
    assert verdict(obj("Deployed"), WaitFor("phase", "Deploying")).outcome is Outcome.PENDING
    failed = obj("Failed", ("Succeeded", "False"))
    found = verdict(failed, WaitFor("phase", "Deployed"))
    assert found.outcome is Outcome.IMPOSSIBLE
    assert found.why == "Failed (R: M): it cannot become Deployed without a new spec"
    assert verdict(obj("Deployed"), WaitFor("phase", "Ready")).outcome is Outcome.IMPOSSIBLE


def test_a_condition_is_met_by_its_status_and_impossible_once_nothing_changes() -> None:
    deployed = obj("Deployed", ("Succeeded", "True"), ("DeploymentReady", "True"))
    assert verdict(deployed, WaitFor("condition", "Succeeded", "True")).outcome is Outcome.MET
    assert (
        verdict(deployed, WaitFor("condition", "Succeeded", "False")).outcome is Outcome.PENDING
    )  # a Deployed DGDR can still fail
    failed = obj("Failed", ("Succeeded", "False"))
    assert verdict(failed, WaitFor("condition", "Succeeded", "False")).outcome is Outcome.MET
    assert verdict(failed, WaitFor("condition", "Succeeded", "True")).outcome is Outcome.IMPOSSIBLE
    # a condition the status does not have yet is pending while the DGDR can move on
    profiling = obj("Profiling", profilingPhase="SweepingPrefill")
    assert verdict(profiling, WaitFor("condition", "SpecGenerated")).outcome is Outcome.PENDING


def test_a_resource_version_and_a_status_not_projected_yet() -> None:
    assert (
        verdict(obj("Pending", rv=7), WaitFor("resourceVersion", value="7")).outcome is Outcome.MET
    )
    assert (
        verdict(obj("Pending", rv=6), WaitFor("resourceVersion", value="7")).outcome
        is Outcome.PENDING
    )
    assert verdict({"metadata": {}}, WaitFor("phase", "Deployed")).outcome is Outcome.PENDING
