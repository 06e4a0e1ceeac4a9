"""The SLA verdict in the domain: a missed SLA deploys the closest config unless the DGDR requires
its SLA (annotation `dgdr.nvidia.com/require-sla: "true"`), then it fails with `SLANotMet`."""

from __future__ import annotations

from typing import Any

from dgdr.domain.decider import decide
from dgdr.domain.describe import describe
from dgdr.domain.model import (
    Apply,
    ProfilingCompleted,
    ProfilingFailed,
    Rejection,
    ReportProfilingResult,
    SpecUpdated,
    event_from_payload,
)
from dgdr.domain.sla import REQUIRE_SLA_ANNOTATION, SLA_NOT_MET
from tests.dgdr.domain.builders import AT, DGD, PARETO, SELECTED, SPEC, new_id, run, start

SUMMARY = "SLA missed: TTFT 79.2 ms > 1.00 ms (+7820%), ITL 14.9 ms <= 20.0 ms (closest achievable config)"
PICK = f"Picked vllm agg TP 1 x 8 replica(s) (8/8 h200_sxm GPUs); {SUMMARY}"


def applied(spec: dict[str, Any] = SPEC, require: str | None = None) -> Apply:
    annotations = {} if require is None else {REQUIRE_SLA_ANNOTATION: require}
    return Apply(id=new_id(), at=AT, spec=spec, annotations=annotations)


def result(verdict: str, summary: str | None = SUMMARY) -> ReportProfilingResult:
    return ReportProfilingResult(
        id=new_id(), at=AT, generation=1, dgd_name=DGD, selected_config=SELECTED, pareto=PARETO,
        message=PICK, sla_verdict=verdict, sla_summary=summary,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_missed_sla_that_is_required_fails_profiling_and_deploys_nothing() -> None:
    state, _ = run([applied(require="true"), start()])
    decision = decide(state, result("missed"))
    assert isinstance(decision, list) and len(decision) == 1
    failed = decision[0]
    assert isinstance(failed, ProfilingFailed)
    assert (failed.reason, failed.sub_phase) == (SLA_NOT_MET, "SelectingConfig")
    assert failed.message.startswith(SUMMARY) and "Closest config: " + PICK in failed.message
    assert REQUIRE_SLA_ANNOTATION in failed.message
    assert describe(failed).reason == SLA_NOT_MET


def test_a_missed_sla_not_required_deploys_the_closest_config_and_keeps_the_words() -> None:
    for require in (None, "false"):
        state, _ = run([applied(require=require), start()])
        decision = decide(state, result("missed"))
        assert isinstance(decision, list)
        assert [e.type for e in decision] == ["ProfilingCompleted", "DeploymentStarted"]
        completed = decision[0]
        assert isinstance(completed, ProfilingCompleted) and completed.sla_summary == SUMMARY


def test_a_required_sla_that_is_met_or_unverified_deploys() -> None:
    for verdict in ("met", "unverified"):
        state, _ = run([applied(require="true"), start()])
        decision = decide(state, result(verdict))
        assert isinstance(decision, list)
        assert [e.type for e in decision] == ["ProfilingCompleted", "DeploymentStarted"]


def test_a_require_sla_annotation_that_is_not_a_boolean_is_refused_naming_it() -> None:
    state, _ = run([])
    decision = decide(state, applied(require="yes"))
    assert isinstance(decision, Rejection) and decision.invalid
    assert [e.field for e in decision.errors] == [f"metadata.annotations[{REQUIRE_SLA_ANNOTATION}]"]
    assert '"true" or "false"' in decision.message


def test_the_annotation_applied_with_a_new_spec_is_the_one_that_counts() -> None:
    state, _ = run([applied(require="true"), start(), result("missed")])
    assert (state.phase, state.profiling_phase) == ("Failed", "SelectingConfig")
    relaxed = {**SPEC, "sla": {"ttft": 500}}
    state, events = run([applied(relaxed)], state)  # re-applied without the annotation
    updated = events[0][0]
    assert isinstance(updated, SpecUpdated) and updated.annotations == {}
    state, _ = run([start(2)], state)
    decision = decide(state, result("missed").model_copy(update={"generation": 2}))
    assert isinstance(decision, list)
    assert [e.type for e in decision] == ["ProfilingCompleted", "DeploymentStarted"]


def test_a_new_spec_with_the_same_annotations_records_none() -> None:
    state, events = run([applied(require="true"), applied({**SPEC, "sla": {"ttft": 5}}, "true")])
    assert isinstance(events[-2][0], SpecUpdated) and events[-2][0].annotations is None
    assert state.annotations == {REQUIRE_SLA_ANNOTATION: "true"}


def test_events_stored_before_the_new_fields_read_as_before() -> None:
    failed = event_from_payload("ProfilingFailed", {"subPhase": "Initializing", "message": "m"})
    assert isinstance(failed, ProfilingFailed) and failed.reason is None
    assert describe(failed).reason == "InitializingFailed"
    completed = event_from_payload(
        "ProfilingCompleted",
        {"dgdName": DGD, "selectedConfig": SELECTED, "message": "m", "slaVerdict": "missed"},
    )
    assert isinstance(completed, ProfilingCompleted) and completed.sla_summary is None
    updated = event_from_payload("SpecUpdated", {"spec": SPEC, "generation": 2})
    assert isinstance(updated, SpecUpdated) and updated.annotations is None


def test_a_service_that_requires_slas_records_the_annotation_unless_the_dgdr_sets_it() -> None:
    state, _ = run([])
    for given, recorded in ((None, "true"), ("false", "false"), ("true", "true")):
        command = applied(require=given).model_copy(update={"require_sla_default": True})
        decision = decide(state, command)
        assert isinstance(decision, list)
        assert decision[0].annotations == {REQUIRE_SLA_ANNOTATION: recorded}  # type: ignore[union-attr]


def test_an_event_that_does_not_use_a_new_field_is_stored_as_before() -> None:
    from dgdr.domain.model import event_payload

    assert event_payload(ProfilingFailed(sub_phase="Initializing", message="m")) == {
        "subPhase": "Initializing",
        "message": "m",
    }
    assert "annotations" not in event_payload(SpecUpdated(spec=SPEC, generation=2))
    assert event_payload(ProfilingFailed(message="m", reason=SLA_NOT_MET))["reason"] == SLA_NOT_MET
