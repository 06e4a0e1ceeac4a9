"""The status projection: Dynamo's v1beta1 DGDR object folded from stored events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dgdr.domain.decider import decide, evolve, initial_state
from dgdr.domain.describe import describe
from dgdr.domain.errors import InvalidHistory
from dgdr.domain.model import Command, ProfilingProgressed, Rejection, SlaVerdict, State
from dgdr.domain.spec import API_VERSION, KIND
from events.envelope import AggregateId, Envelope, wrap
from projections.status import (
    CONDITION_ORDER,
    PARETO_STATUS_ROWS,
    encode,
    project,
    project_all,
    set_condition,
    status_pareto,
)
from tests.dgdr.domain.builders import (
    DGD,
    INVALID,
    JOB,
    MANUAL,
    NAME,
    NAMESPACE,
    PARETO,
    SELECTED,
    SPEC,
    apply,
    delete,
    fail,
    observe,
    progress,
    result,
    start,
)

AGGREGATE = AggregateId(NAMESPACE, NAME, "5a1c9a1e-0000-4000-8000-000000000001")
CONDITION_KEYS = {"type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"}


def t(i: int) -> str:
    return f"2025-06-01T12:00:{i:02d}Z"


@dataclass
class Timeline:
    """Decides commands one after another; each accepted decision is one commit (seq, envelopes)
    stamped with its own time, as the store would record it."""

    state: State = field(default_factory=initial_state)
    commits: list[tuple[int, list[Envelope]]] = field(default_factory=list)

    def do(self, *commands: Command) -> Timeline:
        for command in commands:
            decision = decide(self.state, command)
            assert not isinstance(decision, Rejection), decision
            if not decision:
                continue
            for event in decision:
                self.state = evolve(self.state, event, command.id)
            seq = len(self.commits) + 1
            envelopes = wrap(
                decision, AGGREGATE, command_id=command.id, at=t(seq), correlation_id=command.id
            )
            self.commits.append((seq, envelopes))
        return self

    @property
    def obj(self) -> dict[str, Any] | None:
        return project_all(self.commits)

    @property
    def status(self) -> dict[str, Any]:
        obj = self.obj
        assert obj is not None
        return dict(obj["status"])

    def condition(self, ctype: str) -> dict[str, Any]:
        return next(c for c in self.status["conditions"] if c["type"] == ctype)


HAPPY: list[Command] = [
    apply(SPEC, labels={"app": "chat"}),  # seq 1: Created, Validated
    start(1, JOB),  # seq 2: ProfilingStarted
    progress("SweepingPrefill"),  # seq 3
    progress("SelectingConfig"),  # seq 4 (rapid skips SweepingDecode)
    progress("GeneratingDGD"),  # seq 5
    progress("Done", message="profiling done"),  # seq 6
    result(message="TP2, 1 replica"),  # seq 7: ProfilingCompleted, DeploymentStarted
    observe("pending", replicas=2, available=0),  # seq 8: DeploymentCreated, DeploymentObserved
    observe("successful", replicas=2, available=2),  # seq 9: DeploymentReady
]


def happy() -> Timeline:
    return Timeline().do(*HAPPY)


def test_happy_path_has_exactly_dynamos_v1beta1_shape() -> None:
    obj = happy().obj
    assert obj == {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "uid": AGGREGATE.uid,
            "generation": 1,
            "creationTimestamp": t(1),
            "labels": {"app": "chat"},
            "resourceVersion": "9",
        },
        "spec": SPEC,
        "status": {
            "phase": "Deployed",
            "dgdName": DGD,
            "profilingJobName": JOB,
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Succeeded",
                    "status": "True",
                    "reason": "Deployed",
                    "message": "Deployment is healthy",
                    "lastTransitionTime": t(9),
                    "observedGeneration": 1,
                },
                {
                    "type": "Validation",
                    "status": "True",
                    "reason": "ValidationPassed",
                    "message": "DGDR spec validation passed",
                    "lastTransitionTime": t(1),
                    "observedGeneration": 1,
                },
                {
                    "type": "Profiling",
                    "status": "True",
                    "reason": "ProfilingCompleted",
                    "message": "Profiling job completed successfully; TP2, 1 replica",
                    "lastTransitionTime": t(7),
                    "observedGeneration": 1,
                },
                {
                    "type": "SpecGenerated",
                    "status": "True",
                    "reason": "SpecGenerated",
                    "message": "DynamoGraphDeployment spec generated successfully",
                    "lastTransitionTime": t(7),
                    "observedGeneration": 1,
                },
                {
                    "type": "DeploymentReady",
                    "status": "True",
                    "reason": "DeploymentReady",
                    "message": f"DynamoGraphDeployment {DGD} is ready",
                    "lastTransitionTime": t(9),
                    "observedGeneration": 1,
                },
            ],
            "profilingResults": {"selectedConfig": SELECTED, "pareto": PARETO},
            "deploymentInfo": {"replicas": 2, "availableReplicas": 2},
        },
    }


def test_dgd_name_follows_the_name_dgd_convention_from_the_event() -> None:
    status = happy().status
    assert status["dgdName"] == f"{NAME}-dgd"
    assert status["profilingJobName"] == f"profile-{NAME}"
    renamed = Timeline().do(apply(), start(), result(dgd="custom-dgd"))
    assert renamed.status["dgdName"] == "custom-dgd"


def test_every_condition_has_the_metav1_shape_in_order() -> None:
    tl = Timeline()
    for command in HAPPY:
        tl.do(command)
        conditions = tl.status["conditions"]
        assert [c["type"] for c in conditions] == sorted(
            (c["type"] for c in conditions), key=CONDITION_ORDER.index
        )
        for c in conditions:
            assert set(c) == CONDITION_KEYS
            assert c["status"] in ("True", "False")


def test_resource_version_is_the_last_sequence() -> None:
    tl = Timeline()
    for i, command in enumerate(HAPPY, start=1):
        obj = tl.do(command).obj
        assert obj is not None
        assert obj["metadata"]["resourceVersion"] == str(i)


def test_profiling_phase_tracks_sub_phases_and_disappears_once_done() -> None:
    tl = Timeline().do(*HAPPY[:2])
    assert tl.status["profilingPhase"] == "Initializing"
    assert tl.status["phase"] == "Profiling"
    for command, sub in zip(HAPPY[2:6], ["SweepingPrefill", "SelectingConfig", "GeneratingDGD",
                                         "Done"], strict=True):  # fmt: skip
        tl.do(command)
        assert tl.status["profilingPhase"] == sub
    assert tl.condition("Profiling")["reason"] == "Completed"
    tl.do(HAPPY[6])
    assert "profilingPhase" not in tl.status
    assert tl.status["phase"] == "Deploying"


def test_intermediate_phases() -> None:
    tl = Timeline().do(HAPPY[0])
    assert tl.status["phase"] == "Pending"
    assert tl.condition("Profiling")["reason"] == "Pending"
    assert tl.condition("Succeeded")["status"] == "False"
    tl.do(*HAPPY[1:7])
    assert tl.status["phase"] == "Deploying"
    assert tl.condition("DeploymentReady")["reason"] == "DeploymentPending"
    tl.do(HAPPY[7])
    assert tl.condition("DeploymentReady")["reason"] == "DeploymentInProgress"
    assert tl.status["deploymentInfo"] == {"replicas": 2, "availableReplicas": 0}


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [("met", ("True", "SLAMet")), ("missed", ("False", "SLAMissed")),
     ("unverified", ("Unknown", "SLAUnverified"))],
)  # fmt: skip
def test_the_sla_verdict_is_a_condition_that_a_new_spec_drops(
    verdict: SlaVerdict, expected: tuple[str, str]
) -> None:
    said = f"SLA {verdict}: TTFT 80 ms"
    tl = Timeline().do(apply(MANUAL), start(1, JOB), result(message=said, sla_verdict=verdict))
    sla = tl.condition("SLAMet")
    assert (sla["status"], sla["reason"], sla["message"]) == (*expected, said)
    types = [c["type"] for c in tl.status["conditions"]]
    assert types.index("Profiling") < types.index("SLAMet") < types.index("SpecGenerated")
    assert tl.status["phase"] == "Ready", "an SLA verdict never fails the DGDR"
    tl.do(apply({**MANUAL, "runtimeVersionOverride": "1.4.1"}))  # what Ready may still change
    assert not any(c["type"] == "SLAMet" for c in tl.status["conditions"])


def test_a_result_without_a_verdict_has_no_sla_condition() -> None:
    tl = Timeline().do(apply(SPEC), start(1, JOB), result())
    assert not any(c["type"] == "SLAMet" for c in tl.status["conditions"])


def test_ready_when_auto_apply_is_off() -> None:
    tl = Timeline().do(apply(MANUAL), start(), result())
    status = tl.status
    assert status["phase"] == "Ready"
    assert tl.condition("Succeeded") == {
        "type": "Succeeded",
        "status": "True",
        "reason": "SpecGenerated",
        "message": "Profiling complete, spec available",
        "lastTransitionTime": t(3),
        "observedGeneration": 1,
    }
    assert "deploymentInfo" not in status
    assert not any(c["type"] == "DeploymentReady" for c in status["conditions"])


# -------------------------------------------------------------------------- lastTransitionTime


def test_last_transition_time_is_kept_while_the_status_does_not_change() -> None:
    tl = Timeline().do(*HAPPY[:2])
    profiling, succeeded = tl.condition("Profiling"), tl.condition("Succeeded")
    # Profiling=False since Validated (t1); Succeeded=False since Created (t1)
    assert profiling["lastTransitionTime"] == t(1)
    assert succeeded["lastTransitionTime"] == t(1)
    tl.do(HAPPY[2])  # progress at t3: reason and message change, status stays False
    after = tl.condition("Profiling")
    assert (after["reason"], after["message"]) == ("SweepingPrefill", "now SweepingPrefill")
    assert after["lastTransitionTime"] == t(1)
    assert tl.condition("Succeeded")["lastTransitionTime"] == t(1)
    assert tl.condition("Succeeded")["reason"] == "SweepingPrefill"


def test_last_transition_time_takes_the_new_time_when_the_status_flips() -> None:
    tl = Timeline().do(*HAPPY[:6])
    tl.do(HAPPY[6])  # t7: Profiling False -> True
    assert tl.condition("Profiling")["lastTransitionTime"] == t(7)
    # Succeeded went True (Ready) then False (Deploying) within the commit at t7
    assert tl.condition("Succeeded")["status"] == "False"
    assert tl.condition("Succeeded")["lastTransitionTime"] == t(7)
    tl.do(HAPPY[7])  # t8: DeploymentReady stays False
    assert tl.condition("DeploymentReady")["lastTransitionTime"] == t(7)
    tl.do(HAPPY[8])  # t9: both flip to True
    assert tl.condition("DeploymentReady")["lastTransitionTime"] == t(9)
    assert tl.condition("Succeeded")["lastTransitionTime"] == t(9)
    tl.do(observe("successful", replicas=3, available=3))  # t10: still True
    assert tl.status["deploymentInfo"] == {"replicas": 3, "availableReplicas": 3}
    assert tl.condition("Succeeded")["lastTransitionTime"] == t(9)
    tl.do(observe("pending", replicas=3, available=1))  # t11: degraded, flips to False
    assert tl.status["phase"] == "Deploying"
    assert tl.condition("Succeeded")["lastTransitionTime"] == t(11)
    assert tl.condition("DeploymentReady")["reason"] == "DeploymentDegraded"
    assert tl.condition("DeploymentReady")["lastTransitionTime"] == t(11)


# ---------------------------------------------------------------------------------------- failures


def test_validation_failed_is_failed_with_validation_false() -> None:
    tl = Timeline().do(apply(INVALID))
    status = tl.status
    assert status["phase"] == "Failed"
    assert status["observedGeneration"] == 1
    validation = tl.condition("Validation")
    assert (validation["status"], validation["reason"]) == ("False", "ValidationFailed")
    assert validation["message"].startswith("spec.sla.e2eLatency: e2eLatency cannot be combined")
    succeeded = tl.condition("Succeeded")
    assert (succeeded["status"], succeeded["reason"]) == ("False", "ValidationFailed")
    assert succeeded["message"] == "Validation failed: " + validation["message"]
    assert [c["type"] for c in status["conditions"]] == ["Succeeded", "Validation"]


def test_profiling_failure_keeps_the_sub_phase_and_names_the_reason() -> None:
    tl = Timeline().do(apply(), start(), progress("SweepingDecode"), fail(message="OOM"))
    status = tl.status
    assert status["phase"] == "Failed"
    assert status["profilingPhase"] == "SweepingDecode"
    profiling = tl.condition("Profiling")
    assert (profiling["status"], profiling["reason"], profiling["message"]) == (
        "False",
        "SweepingDecodeFailed",
        "OOM",
    )
    succeeded = tl.condition("Succeeded")
    assert (succeeded["reason"], succeeded["message"]) == (
        "SweepingDecodeFailed",
        "Profiling failed: OOM",
    )
    assert succeeded["lastTransitionTime"] == t(1)  # False all along


def test_dgd_deleted_by_someone_else() -> None:
    tl = Timeline().do(*HAPPY, observe("deleted"))
    status = tl.status
    assert status["phase"] == "Failed"
    assert "dgdName" not in status and "deploymentInfo" not in status
    assert tl.condition("Succeeded")["reason"] == "DeploymentDeleted"
    assert tl.condition("DeploymentReady")["reason"] == "DeploymentDeleted"
    assert tl.condition("DeploymentReady")["status"] == "False"


def test_conflicting_dgd() -> None:
    tl = Timeline().do(apply(), start(), result(), observe("conflict"))
    assert tl.status["phase"] == "Failed"
    assert tl.condition("Succeeded")["reason"] == "DeploymentConflict"
    assert tl.condition("DeploymentReady")["reason"] == "DeploymentConflict"


def test_spec_update_resets_the_profiling_and_deployment_status() -> None:
    tl = Timeline().do(*HAPPY, observe("deleted"), apply({**SPEC, "image": "img:2"}))
    obj = tl.obj
    assert obj is not None
    assert obj["metadata"]["generation"] == 2
    assert obj["spec"] == {**SPEC, "image": "img:2"}
    status = tl.status
    assert status["phase"] == "Pending"
    assert status["observedGeneration"] == 2
    for key in ("profilingPhase", "profilingJobName", "dgdName", "profilingResults",
                "deploymentInfo"):  # fmt: skip
        assert key not in status
    assert [c["type"] for c in status["conditions"]] == ["Succeeded", "Validation", "Profiling"]
    assert all(c["observedGeneration"] == 2 for c in status["conditions"])


def test_auto_apply_enabled_later_bumps_the_generation_and_deploys() -> None:
    tl = Timeline().do(apply(MANUAL), start(), result(), apply({**MANUAL, "autoApply": True}))
    obj = tl.obj
    assert obj is not None
    assert obj["metadata"]["generation"] == 2
    assert obj["status"]["observedGeneration"] == 2
    assert obj["status"]["phase"] == "Deploying"
    assert obj["status"]["dgdName"] == DGD
    assert "profilingResults" in obj["status"]


@pytest.mark.parametrize(
    "commands",
    [
        [apply(INVALID)],
        [apply(), start(), progress("SweepingPrefill"), fail(message="OOM")],
        [apply(), start(), fail(message="no profiler image")],
        [*HAPPY, observe("deleted")],
        [apply(), start(), result(), observe("conflict")],
    ],
    ids=["validation", "profiling", "profiling-initializing", "dgd-deleted", "conflict"],
)
def test_a_failed_dgdr_shows_the_reason_of_the_warning_that_failed_it(
    commands: list[Command],
) -> None:
    """`kubectl get` (the Succeeded reason) and `kubectl describe` (the last Warning) agree."""
    tl = Timeline().do(*commands)
    assert tl.status["phase"] == "Failed"
    last = tl.commits[-1][1][-1].event
    warning = describe(last)
    assert warning.type == "Warning"
    assert tl.condition("Succeeded")["reason"] == warning.reason


# ------------------------------------------------------------------------------ deletion, folding


def test_deleted_projects_to_none() -> None:
    tl = Timeline().do(*HAPPY, delete())
    assert tl.obj is None


def test_events_before_created_project_to_none() -> None:
    later = happy().commits[1:]
    assert project_all(later) is None


def test_unknown_event_type_is_refused() -> None:
    tl = happy()
    env = tl.commits[0][1][0]
    bogus = Envelope(
        id="x",
        type="Exploded",
        schema_version=1,
        aggregate=AGGREGATE,
        time=t(30),
        causation_id=None,
        correlation_id=None,
        payload={},
    )
    with pytest.raises(ValueError, match="Exploded"):
        project(project(None, env, 1), bogus, 2)


def test_an_event_the_machine_does_not_allow_is_refused() -> None:
    pending = Timeline().do(apply())
    done = wrap(
        [ProfilingProgressed(sub_phase="Done", message="m")],
        AGGREGATE,
        command_id="stray",
        at=t(30),
        correlation_id=None,
    )[0]
    with pytest.raises(InvalidHistory, match="ProfilingProgressed"):
        project(pending.obj, done, 2)


def test_project_does_not_mutate_the_previous_object() -> None:
    tl = happy()
    before = project_all(tl.commits[:-1])
    assert before is not None
    snapshot = encode(before)
    seq, envelopes = tl.commits[-1]
    after = project(before, envelopes[0], seq)
    assert encode(before) == snapshot
    assert after is not before


def test_folding_is_deterministic_byte_for_byte() -> None:
    commits = Timeline().do(*HAPPY, observe("pending", available=1), observe("successful")).commits
    first, second = project_all(commits), project_all(list(commits))
    assert first is not None and second is not None
    assert encode(first) == encode(second)
    incremental: dict[str, Any] | None = None
    for seq, envelopes in commits:
        incremental = project_all([(seq, envelopes)], incremental)
    assert incremental is not None
    assert encode(incremental) == encode(first)


def test_encode_is_canonical() -> None:
    assert encode({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == b'{"a":[1,{"c":3,"d":2}],"b":1}'


def _verdict(verdict: SlaVerdict, generation: int = 1) -> Command:
    from dgdr.domain.model import ReportProfilingResult

    return ReportProfilingResult(
        id=f"result-{verdict}-{generation}", at=t(0), generation=generation, dgd_name=DGD,
        selected_config=SELECTED, pareto=PARETO, message="Picked TP1 x 8; " + _MISSED,
        sla_verdict=verdict, sla_summary=_MISSED if verdict == "missed" else "SLA met: TTFT 79 ms",
    )  # fmt: skip


_MISSED = "SLA missed: TTFT 79.2 ms > 1.00 ms (+7820%) (closest achievable config)"


def test_a_missed_sla_is_in_the_phase_message_once_ready_and_once_deployed() -> None:
    ready = Timeline().do(apply(MANUAL), start(1, JOB), _verdict("missed"))
    assert ready.condition("Succeeded")["message"] == (
        f"Profiling complete, spec available; {_MISSED}"
    )
    assert (ready.condition("SLAMet")["reason"], ready.condition("SLAMet")["message"]) == (
        "SLAMissed",
        _MISSED,
    )
    deployed = Timeline().do(apply(SPEC), start(1, JOB), _verdict("missed"), observe("successful"))
    succeeded = deployed.condition("Succeeded")
    assert (deployed.status["phase"], succeeded["status"], succeeded["reason"]) == (
        "Deployed",
        "True",
        "Deployed",
    )
    assert succeeded["message"] == f"Deployment is healthy; {_MISSED}"


def test_a_met_sla_leaves_the_phase_message_as_dynamo_words_it() -> None:
    tl = Timeline().do(apply(SPEC), start(1, JOB), _verdict("met"), observe("successful"))
    assert tl.condition("Succeeded")["message"] == "Deployment is healthy"


def test_a_required_sla_that_is_missed_fails_with_sla_not_met() -> None:
    from dgdr.domain.model import Apply
    from dgdr.domain.sla import REQUIRE_SLA_ANNOTATION

    required = Apply(id="req", at=t(0), spec=SPEC, annotations={REQUIRE_SLA_ANNOTATION: "true"})
    tl = Timeline().do(required, start(1, JOB), _verdict("missed"))
    status = tl.status
    assert (status["phase"], status["profilingPhase"]) == ("Failed", "SelectingConfig")
    assert "dgdName" not in status and "profilingResults" not in status
    succeeded = tl.condition("Succeeded")
    assert succeeded["reason"] == "SLANotMet"
    assert succeeded["message"].startswith(f"Profiling failed: {_MISSED}")
    assert "Closest config: Picked TP1 x 8" in succeeded["message"]
    assert tl.condition("Profiling")["reason"] == "SLANotMet"
    tl.do(Apply(id="relaxed", at=t(0), spec={**SPEC, "sla": {"ttft": 500}}))
    obj = tl.obj
    assert obj is not None and "annotations" not in obj["metadata"]


# ------------------------------------------------------------------------------- Pareto in status


def _front(size: int, selected: int) -> list[dict[str, Any]]:
    """A front as the profiler writes it: fastest per user first, so tokens/s per GPU rises."""
    return [
        {"config": {"tokensPerSecondPerGpu": 100.0 * (i + 1), "selected": i == selected}}
        for i in range(size)
    ]


def _profiled(pareto: list[dict[str, Any]]) -> Timeline:
    from dgdr.domain.model import ReportProfilingResult

    report = ReportProfilingResult(
        id="profiled", at=t(0), generation=1, dgd_name=DGD, selected_config=SELECTED,
        pareto=pareto, message="picked TP2",
    )  # fmt: skip
    return Timeline().do(apply(SPEC), start(1, JOB), report)


def test_the_status_holds_at_most_the_cap_of_a_long_front_and_says_so() -> None:
    front = _front(40, selected=30)
    tl = _profiled(front)
    kept = tl.status["profilingResults"]["pareto"]
    assert len(kept) == PARETO_STATUS_ROWS
    # the selected config, then the most tokens/s per GPU, in the front's order
    assert kept == [front[30], *front[36:]]
    profiling = tl.condition("Profiling")["message"]
    assert profiling == (
        "Profiling job completed successfully; picked TP2; status.profilingResults.pareto "
        f"holds {PARETO_STATUS_ROWS} of the 40 Pareto configs (all of them: dgdr describe)"
    )
    # bounded: the status of a 40-config front is no larger than that of a 5-config one plus
    # the note, whatever the front's length
    short = _profiled(_front(PARETO_STATUS_ROWS, selected=0))
    assert len(encode(tl.status)) < len(encode(short.status)) + 200


def test_a_front_within_the_cap_is_kept_whole_with_dynamos_message() -> None:
    front = _front(PARETO_STATUS_ROWS, selected=2)
    tl = _profiled(front)
    assert tl.status["profilingResults"]["pareto"] == front
    assert tl.condition("Profiling")["message"] == (
        "Profiling job completed successfully; picked TP2"
    )


def test_a_front_ranked_against_the_budget_keeps_the_rows_with_the_most_per_budget_gpu() -> None:
    # per GPU used rises along the front, but the last rows leave most of 8 GPUs idle: ranked
    # per GPU of the budget (as the profile ranked them), rows 2-5 are the fastest, not 4-7
    used = [1, 2, 8, 8, 8, 8, 2, 1]
    front = [
        {
            "config": {
                "tokensPerSecondPerGpu": 100.0 * (i + 1),
                "totalGpus": gpus,
                "budgetGpus": 8,
                "tokensPerSecondPerBudgetGpu": 100.0 * (i + 1) * gpus / 8,
                "selected": i == 0,
            }
        }
        for i, gpus in enumerate(used)
    ]
    assert status_pareto(front) == [front[0], *front[2:6]]


def test_a_front_of_rows_the_profiler_did_not_shape_is_capped_in_order() -> None:
    front: list[dict[str, Any]] = [{"ttft": float(i)} for i in range(9)]
    assert status_pareto(front) == front[:PARETO_STATUS_ROWS]
    assert status_pareto([]) == []


def conditions_as_listed(
    conditions: list[dict[str, Any]], new: dict[str, Any]
) -> list[dict[str, Any]]:
    """What `set_condition` promises, for any list: every condition of the new one's type goes,
    the new one keeps the last one's time when its status is unchanged, and goes in before the
    first condition of a later type in `CONDITION_ORDER`."""
    rank = CONDITION_ORDER.index
    olds = [c for c in conditions if c["type"] == new["type"]]
    if olds and olds[-1]["status"] == new["status"]:
        new = {**new, "lastTransitionTime": olds[-1]["lastTransitionTime"]}
    rest = [c for c in conditions if c["type"] != new["type"]]
    later = [i for i, c in enumerate(rest) if rank(c["type"]) > rank(new["type"])]
    return [
        *rest[: later[0] if later else len(rest)],
        new,
        *rest[later[0] if later else len(rest) :],
    ]


CONDITIONS = st.lists(
    st.builds(
        lambda ctype, cstatus, at: {
            "type": ctype,
            "status": cstatus,
            "reason": "R",
            "message": "m",
            "lastTransitionTime": at,
        },
        st.sampled_from(CONDITION_ORDER),
        st.sampled_from(["True", "False"]),
        st.sampled_from(["t1", "t2"]),
    ),
    max_size=9,
)


@settings(max_examples=300, deadline=None)
@given(
    conditions=CONDITIONS,
    ordered=st.booleans(),
    ctype=st.sampled_from(CONDITION_ORDER),
    cstatus=st.sampled_from(["True", "False"]),
)
def test_set_condition_keeps_the_order_and_times_for_any_list(
    conditions: list[dict[str, Any]], ordered: bool, ctype: str, cstatus: str
) -> None:
    if ordered:  # as the fold writes them: one per type, in order
        unique = {c["type"]: c for c in conditions}
        conditions = sorted(unique.values(), key=lambda c: CONDITION_ORDER.index(c["type"]))
    status = {"conditions": list(conditions)}
    before = [dict(c) for c in conditions]
    set_condition(status, ctype, cstatus, "Why", "said", at="t3", generation=None)
    new = {"type": ctype, "status": cstatus, "reason": "Why", "message": "said"}
    assert status["conditions"] == conditions_as_listed(
        conditions, {**new, "lastTransitionTime": "t3"}
    )
    assert conditions == before  # the conditions themselves are replaced, never changed
