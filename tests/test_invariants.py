"""The chaos suite's judgement of phases and DGDs (tests/invariants.py) follows the documented
contract: a kept DGD is no violation, and DeploymentConflict is accepted for a Deployed expectation
only when the kept DGD of an earlier incarnation of the same name holds the DGD name."""

from __future__ import annotations

from typing import Any

from dgdr.domain.target import LABEL_NAME, LABEL_NAMESPACE, OWNER_UID
from tests.invariants import (
    Incarnation,
    Report,
    check_cluster,
    conflict_with_kept_dgd,
    phase_accepted,
)

KEY = "default.m"


def dgd(name: str, owner: str, labelled: str = "m") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {LABEL_NAME: labelled, LABEL_NAMESPACE: "default"},
            "annotations": {OWNER_UID: owner},
        }
    }


def report(*incarnations: Incarnation) -> Report:
    r = Report()
    r.incarnations[KEY] = list(incarnations)
    return r


def obj(uid: str, phase: str) -> dict[str, Any]:
    return {"metadata": {"uid": uid}, "status": {"phase": phase}}


def conflicted(uid: str = "new") -> Incarnation:
    return Incarnation(uid, dgd_name="m-dgd", failed_reason="DeploymentConflict")


def test_conflict_on_the_kept_dgd_of_an_earlier_incarnation_is_accepted() -> None:
    r = report(Incarnation("old", dgd_name="m-dgd"), conflicted())
    documented = conflict_with_kept_dgd(KEY, "new", r, [dgd("m-dgd", "old")])
    assert documented
    assert phase_accepted("Deployed", "Failed", documented)


def test_conflict_is_not_accepted_without_that_exact_cause() -> None:
    earlier = Incarnation("old", dgd_name="m-dgd")
    never_deployed = Incarnation("old")
    cases = [
        (report(earlier, conflicted()), []),  # no kept DGD at all
        (report(earlier, conflicted()), [dgd("m-dgd", "stranger")]),  # not an earlier uid
        (report(earlier, conflicted()), [dgd("m-dgd", "old", labelled="other")]),
        (report(never_deployed, conflicted()), [dgd("m-dgd", "old")]),
        (report(conflicted(), earlier), [dgd("m-dgd", "old")]),  # "old" came later
        (report(earlier, Incarnation("new", "m-dgd", "ProfilingFailed")), [dgd("m-dgd", "old")]),
    ]
    for r, dgds in cases:
        assert not conflict_with_kept_dgd(KEY, "new", r, dgds)
    assert not phase_accepted("Deployed", "Failed", False)
    assert not phase_accepted("Ready", "Failed", True)
    assert not phase_accepted(None, "Failed", True)


def test_a_dgd_outliving_its_deleted_dgdr_is_no_violation() -> None:
    r = report(Incarnation("old", dgd_name="m-dgd"))
    check_cluster([dgd("m-dgd", "old")], {}, r)
    assert r.violations == []


def test_dgds_that_break_the_contract_are_violations() -> None:
    r = report(Incarnation("live", dgd_name="m-dgd"))
    r.incarnations["default.x"] = [Incarnation("x1")]
    objects = {KEY: obj("live", "Deployed"), "default.x": obj("x1", "Deployed")}
    dgds = [
        dgd("m-dgd", "live"),
        dgd("m-dgd-2", "live"),  # a second DGD with the live uid
        dgd("x-dgd", "live", labelled="x"),  # a live uid under another name
        dgd("y-dgd", "nobody", labelled="y"),  # an uid no incarnation recorded
    ]
    check_cluster(dgds, objects, r)
    text = "\n".join(r.violations)
    assert "default.m: 3 DGDs carry its uid" in text
    assert "x-dgd carries the uid of default.m but is labelled default.x" in text
    assert "default.x: Deployed with 0 DGDs" in text
    assert "y-dgd: uid nobody is no incarnation default.y recorded" in text
