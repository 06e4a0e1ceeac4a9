"""Random command sequences through decide + evolve, checking the invariants after every step."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from dgdr.domain.decider import decide, evolve, fold, initial_state
from dgdr.domain.machine import EDGES, split_state
from dgdr.domain.model import (
    Apply,
    Command,
    Delete,
    Event,
    ObserveDeployment,
    ProfilingFailed,
    Rejection,
    ReportProfilingFailure,
    ReportProfilingProgress,
    ReportProfilingResult,
    StartProfiling,
)
from dgdr.domain.phases import PHASES, PROFILING_PHASES
from events.envelope import AggregateId, wrap
from projections.status import project
from tests.dgdr.domain.builders import INVALID, MANUAL, NO_SKU, SPEC

SPECS: list[dict[str, Any]] = [
    SPEC,
    MANUAL,
    {**SPEC, "autoApply": True},
    {**SPEC, "model": "Qwen/Qwen3-8B"},
    {**MANUAL, "model": "Qwen/Qwen3-8B"},
    {**SPEC, "sla": {"ttft": 300.0}},
    INVALID,
    NO_SKU,
    {"model": ""},
]
DISCOVERED: list[dict[str, Any]] = [{}, {"gpuSku": "a100_sxm", "numGpusPerNode": 4}]
MOSTLY_RIGHT = st.sampled_from((True, True, True, False))
OBSERVATIONS = ("created", "pending", "successful", "failed", "deleted", "conflict")


class DGDRLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count()
        self._incarnations = itertools.count()
        self._seq = 0
        self._new_incarnation()

    # ------------------------------------------------------------------------------ plumbing

    def _new_incarnation(self) -> None:
        self.state = initial_state()
        self.history: list[tuple[Event, str | None]] = []
        self.accepted: list[Command] = []
        self.obj: dict[str, Any] | None = None
        self.aggregate = AggregateId("team-a", "qwen", f"uid-{next(self._incarnations)}")

    def _id(self) -> str:
        return f"c{next(self._ids)}"

    def _at(self) -> str:
        return f"2025-06-01T12:{self._seq // 60 % 60:02d}:{self._seq % 60:02d}Z"

    def _gen(self, right: bool) -> int:
        return self.state.generation if right else self.state.generation + 1

    def _run(self, command: Command) -> list[Event] | Rejection:
        before = self.state
        decision = decide(self.state, command)
        if isinstance(decision, Rejection):
            assert decision.reason and decision.message
            return decision
        if self.state.is_terminal:
            assert decision == [], "only a replay may be accepted once deleted"
        if not decision:
            return decision
        for event in decision:
            self.state = evolve(self.state, event, command.id)
            self.history.append((event, command.id))
        self.accepted.append(command)
        self._seq += 1
        envelopes = wrap(
            decision, self.aggregate, command_id=command.id, at=self._at(), correlation_id=None
        )
        for envelope in envelopes:
            self.obj = project(self.obj, envelope, self._seq)
        assert before.applied | {command.id} == self.state.applied
        return decision

    # --------------------------------------------------------------------------------- rules

    @rule(spec=st.sampled_from(SPECS), discovered=st.sampled_from(DISCOVERED))
    def apply_spec(self, spec: dict[str, Any], discovered: dict[str, Any]) -> None:
        decision = self._run(
            Apply(id=self._id(), at=self._at(), spec=spec, discovered_hardware=discovered)
        )
        if isinstance(decision, Rejection):
            assert decision.reason in ("SpecChangeRejected", "Deleted")

    @precondition(lambda self: self.state.exists)
    @rule()
    def reapply_identical(self) -> None:
        decision = self._run(Apply(id=self._id(), at=self._at(), spec=dict(self.state.spec)))
        assert decision == []

    @precondition(lambda self: self.state.exists)
    @rule()
    def flip_auto_apply(self) -> None:
        spec = {**self.state.spec, "autoApply": self.state.spec.get("autoApply") is False}
        phase = self.state.phase
        decision = self._run(Apply(id=self._id(), at=self._at(), spec=spec))
        if phase == "Ready" and spec["autoApply"]:
            assert not isinstance(decision, Rejection)
            assert [e.type for e in decision] == ["AutoApplyEnabled", "DeploymentStarted"]
        if phase in ("Profiling", "Deploying", "Deployed"):
            assert isinstance(decision, Rejection) and decision.reason == "SpecChangeRejected"
            assert f"'{phase}'" in decision.message

    @rule()
    def delete(self) -> None:
        existed = self.state.exists
        decision = self._run(Delete(id=self._id(), at=self._at()))
        if existed:
            assert not isinstance(decision, Rejection)
            assert [e.type for e in decision] == ["Deleted"]
        else:
            assert isinstance(decision, Rejection)

    @precondition(lambda self: self.state.phase == "Pending")
    @rule(right=MOSTLY_RIGHT)
    def start_profiling(self, right: bool) -> None:
        decision = self._run(self._start(self._gen(right)))
        assert isinstance(decision, Rejection) != right

    @precondition(lambda self: self.state.phase == "Profiling")
    @rule(sub=st.sampled_from((*PROFILING_PHASES, "Bogus")), right=MOSTLY_RIGHT)
    def progress(self, sub: str, right: bool) -> None:
        before = self.state.profiling_phase
        assert before is not None
        decision = self._run(self._progress(self._gen(right), sub))
        if not right or sub == "Bogus":
            assert isinstance(decision, Rejection)
        elif sub == before:
            assert decision == []
        elif PROFILING_PHASES.index(sub) < PROFILING_PHASES.index(before):
            assert isinstance(decision, Rejection) and decision.reason == "InvalidTransition"
        else:
            assert not isinstance(decision, Rejection)
            assert self.state.profiling_phase == sub

    @precondition(lambda self: self.state.phase == "Profiling")
    @rule(sub=st.none() | st.sampled_from(PROFILING_PHASES), right=MOSTLY_RIGHT)
    def fail_profiling(self, sub: str | None, right: bool) -> None:
        before = self.state.profiling_phase
        decision = self._run(self._fail(self._gen(right), sub))
        if right:
            assert self.state.phase == "Failed"
            assert self.state.profiling_phase == (sub or before)
        else:
            assert isinstance(decision, Rejection)

    @precondition(lambda self: self.state.phase == "Profiling")
    @rule(right=MOSTLY_RIGHT)
    def profiling_result(self, right: bool) -> None:
        manual = self.state.spec.get("autoApply") is False
        decision = self._run(self._result(self._gen(right)))
        if right:
            assert self.state.phase == ("Ready" if manual else "Deploying")
        else:
            assert isinstance(decision, Rejection)

    @precondition(lambda self: self.state.phase in ("Deploying", "Deployed"))
    @rule(
        seen=st.sampled_from(OBSERVATIONS),
        ours=MOSTLY_RIGHT,
        replicas=st.integers(0, 2),
        available=st.integers(0, 2),
    )
    def observe(self, seen: str, ours: bool, replicas: int, available: int) -> None:
        dgd = self.state.dgd_name if ours else "someone-else-dgd"
        assert dgd is not None
        decision = self._run(self._observation(dgd, seen, replicas, available))
        if not ours:
            assert isinstance(decision, Rejection)
        elif seen == "successful":
            assert self.state.phase == "Deployed"
        elif seen == "conflict" and self.state.phase != "Deployed":
            assert self.state.phase == "Failed"

    @precondition(lambda self: self.state.phase in ("Deploying", "Deployed"))
    @rule(seen=st.sampled_from(OBSERVATIONS))
    def same_observation_twice(self, seen: str) -> None:
        dgd = self.state.dgd_name
        assert dgd is not None
        first = self._run(self._observation(dgd, seen))
        assert not isinstance(first, Rejection)
        if self.state.phase in ("Deploying", "Deployed"):
            assert self._run(self._observation(dgd, seen)) == []

    @rule(steps=st.integers(1, 4), manual=st.booleans())
    def advance(self, steps: int, manual: bool) -> None:
        """The natural next steps of the lifecycle, so random runs get deep into it."""
        for _ in range(steps):
            s = self.state
            phase, gen, sub = s.phase, s.generation, s.profiling_phase
            if s.is_terminal:
                return
            if phase is None:
                decision = self._run(self._apply(MANUAL if manual else SPEC))
            elif phase == "Pending":
                decision = self._run(self._start(gen))
            elif phase == "Profiling" and sub != "Done":
                assert sub is not None
                nxt = PROFILING_PHASES[PROFILING_PHASES.index(sub) + 1]
                decision = self._run(self._progress(gen, nxt))
            elif phase == "Profiling":
                decision = self._run(self._result(gen))
            elif phase == "Ready":
                decision = self._run(self._apply({**s.spec, "autoApply": True}))
            elif phase in ("Deploying", "Deployed"):
                seen = "successful" if phase == "Deploying" else "pending"
                assert s.dgd_name is not None
                decision = self._run(self._observation(s.dgd_name, seen, 1, int(seen != "pending")))
            else:
                fresh = {**(MANUAL if manual else SPEC), "image": f"img:{gen}"}
                decision = self._run(self._apply(fresh))
            assert not isinstance(decision, Rejection) and decision, (phase, decision)

    @rule(kind=st.sampled_from(("start", "progress", "fail", "result", "observe")))
    def reactor_command_in_any_phase(self, kind: str) -> None:
        """A late or misrouted reactor command: rejected unless its phase is current."""
        phase, gen = self.state.phase, self.state.generation
        home: tuple[str, ...]
        if kind == "start":
            decision, home = self._run(self._start(gen)), ("Pending",)
        elif kind == "progress":
            decision, home = self._run(self._progress(gen, "Done")), ("Profiling",)
        elif kind == "fail":
            decision, home = self._run(self._fail(gen, None)), ("Profiling",)
        elif kind == "result":
            decision, home = self._run(self._result(gen)), ("Profiling",)
        else:
            dgd = self.state.dgd_name or "qwen-dgd"
            decision = self._run(self._observation(dgd, "successful", 1, 1))
            home = ("Deploying", "Deployed")
        if phase not in home:
            assert isinstance(decision, Rejection)

    # ------------------------------------------------------------------------------- commands

    def _apply(self, spec: dict[str, Any]) -> Apply:
        return Apply(id=self._id(), at=self._at(), spec=spec)

    def _start(self, generation: int) -> StartProfiling:
        return StartProfiling(
            id=self._id(), at=self._at(), generation=generation, job_name="profile-qwen"
        )

    def _progress(self, generation: int, sub: str) -> ReportProfilingProgress:
        return ReportProfilingProgress(
            id=self._id(), at=self._at(), generation=generation, sub_phase=sub, message=sub
        )

    def _fail(self, generation: int, sub: str | None) -> ReportProfilingFailure:
        return ReportProfilingFailure(
            id=self._id(), at=self._at(), generation=generation, sub_phase=sub, message="crash"
        )

    def _result(self, generation: int) -> ReportProfilingResult:
        return ReportProfilingResult(
            id=self._id(),
            at=self._at(),
            generation=generation,
            dgd_name="qwen-dgd",
            selected_config={"kind": "DynamoGraphDeployment"},
            pareto=[{"ttft": 1.0}],
            message="picked",
        )

    def _observation(
        self, dgd: str, seen: str, replicas: int = 0, available: int = 0
    ) -> ObserveDeployment:
        return ObserveDeployment(
            id=self._id(),
            at=self._at(),
            dgd_name=dgd,
            observed=seen,  # type: ignore[arg-type,unused-ignore]
            replicas=replicas,
            available_replicas=available,
        )

    @precondition(lambda self: bool(self.accepted))
    @rule(data=st.data())
    def replay_an_accepted_command(self, data: st.DataObject) -> None:
        command = data.draw(st.sampled_from(self.accepted))
        assert decide(self.state, command) == []

    @precondition(lambda self: self.state.is_terminal)
    @rule()
    def recreate_under_a_new_uid(self) -> None:
        self._new_incarnation()

    # ---------------------------------------------------------------------------- invariants

    @invariant()
    def phase_is_one_of_six_or_none(self) -> None:
        phase = self.state.phase
        if self.state.exists:
            assert phase in PHASES
        else:
            assert phase is None

    @invariant()
    def profiling_phase_only_in_profiling_or_after_a_profiling_failure(self) -> None:
        s = self.state
        if not s.exists:
            return
        if s.phase == "Profiling":
            assert s.profiling_phase == split_state(s.machine_state)[1]
            assert s.profiling_phase in PROFILING_PHASES
        elif s.profiling_phase is not None:
            assert s.phase == "Failed"
            walked, entered_failed = initial_state(), None
            for event, command_id in self.history:
                walked = evolve(walked, event, command_id)
                if walked.phase == "Failed" and entered_failed is None:
                    entered_failed = event
                elif walked.phase != "Failed":
                    entered_failed = None
            assert isinstance(entered_failed, ProfilingFailed)
            assert entered_failed.sub_phase == s.profiling_phase

    @invariant()
    def status_projection_agrees(self) -> None:
        s, obj = self.state, self.obj
        if not s.exists:
            assert obj is None
            return
        assert obj is not None
        status = obj["status"]
        succeeded = next(c for c in status["conditions"] if c["type"] == "Succeeded")
        assert (succeeded["status"] == "True") == (s.phase in ("Ready", "Deployed"))
        assert status["phase"] == s.phase
        assert status.get("profilingPhase") == s.profiling_phase
        assert status.get("dgdName") == s.dgd_name
        assert obj["metadata"]["generation"] == s.generation
        assert obj["metadata"]["resourceVersion"] == str(self._seq)
        assert obj["spec"] == s.spec

    @invariant()
    def history_folds_to_the_decided_state(self) -> None:
        assert fold(self.history) == self.state

    @invariant()
    def every_recorded_event_is_a_machine_edge(self) -> None:
        s = initial_state()
        for event, command_id in self.history:
            edge = (s.machine_state, event.trigger)
            assert edge in EDGES
            s = evolve(s, event, command_id)
            assert s.machine_state == EDGES[edge]


DGDRLifecycle.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestDGDRLifecycle = DGDRLifecycle.TestCase
