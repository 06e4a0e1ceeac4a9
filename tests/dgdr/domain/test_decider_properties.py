"""Random command sequences through decide + evolve, checking the invariants after every step.

Each rule counts the branches it reaches (`reached`, also reported as hypothesis events); the test
asserts every success branch was reached at least once, so the properties cannot pass vacuously.
Every run begins with a tour of the lifecycle through each rule's success branch (random rule
selection alone reaches the deep ones too rarely to rely on), then starts anywhere and goes random.
The idempotency memory is checked against a model of it kept here: which accepted commands can still
recur (they must decide nothing), and that it never holds more than `MAX_REMEMBERED` ids.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import hypothesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from dgdr.domain.decider import (
    MAX_REMEMBERED,
    REQUEST_MEMORY,
    decide,
    evolve,
    initial_state,
)
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
# Refused at admission whatever the state (the CRD's schema: `model` is non-empty).
REFUSED_SPECS: list[dict[str, Any]] = [{"model": ""}]
DISCOVERED: list[dict[str, Any]] = [{}, {"gpuSku": "a100_sxm", "numGpusPerNode": 4}]
MOSTLY_RIGHT = st.sampled_from((True, True, True, False))
OBSERVATIONS = ("created", "pending", "successful", "failed", "deleted", "conflict")
PROFILING_COMMANDS = (StartProfiling, ReportProfilingProgress, ReportProfilingFailure,
                      ReportProfilingResult)  # fmt: skip

STARTING_POINTS = (None, *PHASES, "FailedProfiling", "FailedConflict", "Deleted")
# The success branches the rules must reach (a run that never gets there proves nothing).
# OPTIONAL_BRANCHES are checked whenever a run gets there but reached in some runs only (a re-apply
# right after a conflict); test_decider.py has their examples.
OPTIONAL_BRANCHES = frozenset({"identical re-apply retried a conflict"})
BRANCHES = frozenset(
    {
        "apply recorded",
        "identical re-apply decided nothing",
        "autoApply turned on in Ready",
        "spec change refused while immutable",
        "spec refused at admission",
        "delete recorded",
        "profiling started",
        "profiling progressed",
        "profiling failed",
        "profiling completed",
        "deployment reached Deployed",
        "deployment conflict recorded",
        "repeated observation decided nothing",
        "remembered command replayed: nothing",
        "forgotten profiling command replayed: refused",
        "forgotten observation replayed: decided by content",
        "request beyond the window forgotten",
        "recreated under a new uid",
    }
)
reached: Counter[str] = Counter()


def reach(branch: str) -> None:
    assert branch in BRANCHES | OPTIONAL_BRANCHES, branch
    reached[branch] += 1
    hypothesis.event(branch)


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
        # the model of the idempotency memory: what may still recur
        self.requests: list[Command] = []
        self.generation_commands: list[Command] = []
        self.last_observation: Command | None = None
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
        for e in decision:
            self.state = evolve(self.state, e, command.id)
            self.history.append((e, command.id))
        self.accepted.append(command)
        self._remember(command, before.generation, before.phase)
        self._seq += 1
        envelopes = wrap(
            decision, self.aggregate, command_id=command.id, at=self._at(), correlation_id=None
        )
        for envelope in envelopes:
            self.obj = project(self.obj, envelope, self._seq)
        assert command.id in self.state.applied
        return decision

    def _remember(self, command: Command, generation_before: int, phase_before: str | None) -> None:
        """The model: the last REQUEST_MEMORY requests, the profiling commands of the current
        generation, the last observation; a new generation forgets the last two."""
        if self.state.generation != generation_before:
            self.generation_commands, self.last_observation = [], None
        if isinstance(command, Apply | Delete):
            self.requests = [*self.requests, command][-REQUEST_MEMORY:]
            retried = phase_before == "Failed"  # a conflict retried: a request alone
            if isinstance(command, Apply) and self.state.phase == "Deploying" and not retried:
                self.generation_commands.append(command)  # its DeploymentStarted
        elif isinstance(command, PROFILING_COMMANDS):
            self.generation_commands.append(command)
        else:
            self.last_observation = command

    def _can_recur(self) -> list[Command]:
        last = [self.last_observation] if self.last_observation else []
        return [*self.requests, *self.generation_commands, *last]

    # --------------------------------------------------------------------------------- rules

    @rule(spec=st.sampled_from(SPECS), discovered=st.sampled_from(DISCOVERED))
    def apply_spec(self, spec: dict[str, Any], discovered: dict[str, Any]) -> None:
        decision = self._run(
            Apply(id=self._id(), at=self._at(), spec=spec, discovered_hardware=discovered)
        )
        if isinstance(decision, Rejection):
            assert decision.reason in ("SpecChangeRejected", "Deleted", "Invalid")
            assert decision.invalid == (decision.reason != "Deleted")
            if decision.reason == "Invalid":
                assert spec in REFUSED_SPECS
                reach("spec refused at admission")
        elif decision:
            reach("apply recorded")

    @precondition(lambda self: self.state.exists)
    @rule()
    def reapply_identical(self) -> None:
        conflict = (
            self.state.phase == "Failed"
            and self.state.selected_config is not None
            and not self.state.deployment_created
            and bool(self.state.dgd_name)
        )
        decision = self._run(Apply(id=self._id(), at=self._at(), spec=dict(self.state.spec)))
        if conflict:  # a DeploymentConflict is retried by applying the same spec again
            assert [e.type for e in decision] == ["DeploymentStarted"]  # type: ignore[union-attr]
            reach("identical re-apply retried a conflict")
            return
        assert decision == []
        reach("identical re-apply decided nothing")

    @precondition(lambda self: self.state.phase in ("Pending", "Failed"))
    @rule(n=st.integers(REQUEST_MEMORY - 4, REQUEST_MEMORY + 4))
    def burst_of_spec_changes(self, n: int) -> None:
        """Many requests in a row: the oldest fall out of the memory's window."""
        for i in range(n):
            spec = {**MANUAL, "image": f"burst:{self._seq}:{i}"}
            decision = self._run(Apply(id=self._id(), at=self._at(), spec=spec))
            assert not isinstance(decision, Rejection) and decision
        forgotten = [c for c in self.accepted if c not in self.requests and isinstance(c, Apply)]
        if forgotten:
            assert all(c.id not in self.state.applied for c in forgotten)
            reach("request beyond the window forgotten")

    @precondition(lambda self: self.state.exists)
    @rule()
    def flip_auto_apply(self) -> None:
        spec = {**self.state.spec, "autoApply": self.state.spec.get("autoApply") is False}
        phase = self.state.phase
        decision = self._run(Apply(id=self._id(), at=self._at(), spec=spec))
        if phase == "Ready" and spec["autoApply"]:
            assert not isinstance(decision, Rejection)
            assert [e.type for e in decision] == ["AutoApplyEnabled", "DeploymentStarted"]
            reach("autoApply turned on in Ready")
        frozen = phase in ("Profiling", "Deploying", "Deployed") or (
            phase == "Ready" and not spec["autoApply"]  # Ready may only turn autoApply on
        )
        if frozen:
            assert isinstance(decision, Rejection) and decision.reason == "SpecChangeRejected"
            assert f"'{phase}'" in decision.message
            reach("spec change refused while immutable")

    @precondition(lambda self: self.state.phase == "Ready")
    @rule()
    def turn_auto_apply_on_when_ready(self) -> None:
        decision = self._run(self._apply({**self.state.spec, "autoApply": True}))
        assert not isinstance(decision, Rejection)
        assert [e.type for e in decision] == ["AutoApplyEnabled", "DeploymentStarted"]
        assert self.state.phase == "Deploying"
        reach("autoApply turned on in Ready")

    @precondition(lambda self: not self.state.is_terminal)
    @rule()
    def delete(self) -> None:
        existed = self.state.exists
        decision = self._run(Delete(id=self._id(), at=self._at()))
        if existed:
            assert not isinstance(decision, Rejection)
            assert [e.type for e in decision] == ["Deleted"]
            reach("delete recorded")
        else:
            assert isinstance(decision, Rejection)

    @precondition(lambda self: self.state.phase == "Pending")
    @rule(right=MOSTLY_RIGHT)
    def start_profiling(self, right: bool) -> None:
        decision = self._run(self._start(self._gen(right)))
        assert isinstance(decision, Rejection) != right
        if right:
            reach("profiling started")

    @precondition(lambda self: self.state.phase == "Profiling")
    @rule(sub=st.sampled_from((*PROFILING_PHASES, "Bogus", "next", "next")), right=MOSTLY_RIGHT)
    def progress(self, sub: str, right: bool) -> None:
        before = self.state.profiling_phase
        assert before is not None
        if sub == "next":
            sub = PROFILING_PHASES[
                min(PROFILING_PHASES.index(before) + 1, len(PROFILING_PHASES) - 1)
            ]
        decision = self._run(self._progress(self._gen(right), sub))
        if not right or sub == "Bogus":
            assert isinstance(decision, Rejection)
        elif sub == before:
            assert decision == []
        elif PROFILING_PHASES.index(sub) < PROFILING_PHASES.index(before):
            assert isinstance(decision, Rejection) and decision.reason == "Stale"
        else:
            assert not isinstance(decision, Rejection)
            assert self.state.profiling_phase == sub
            reach("profiling progressed")

    @precondition(lambda self: self.state.phase == "Profiling")
    @rule(sub=st.none() | st.sampled_from(PROFILING_PHASES), right=MOSTLY_RIGHT)
    def fail_profiling(self, sub: str | None, right: bool) -> None:
        before = self.state.profiling_phase
        decision = self._run(self._fail(self._gen(right), sub))
        if right:
            assert self.state.phase == "Failed"
            assert self.state.profiling_phase == (sub or before)
            reach("profiling failed")
        else:
            assert isinstance(decision, Rejection)

    @precondition(lambda self: self.state.phase == "Profiling")
    @rule(right=MOSTLY_RIGHT)
    def profiling_result(self, right: bool) -> None:
        manual = self.state.spec.get("autoApply") is False
        decision = self._run(self._result(self._gen(right)))
        if right:
            assert self.state.phase == ("Ready" if manual else "Deploying")
            reach("profiling completed")
        else:
            assert isinstance(decision, Rejection)

    @precondition(lambda self: self.state.phase in ("Deploying", "Deployed"))
    @rule(
        seen=st.sampled_from((*OBSERVATIONS, "successful", "successful")),
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
            reach("deployment reached Deployed")
        elif seen == "conflict" and self.state.phase != "Deployed":
            assert self.state.phase == "Failed"
            reach("deployment conflict recorded")

    @precondition(lambda self: self.state.phase in ("Deploying", "Deployed"))
    @rule(seen=st.sampled_from(OBSERVATIONS))
    def same_observation_twice(self, seen: str) -> None:
        dgd = self.state.dgd_name
        assert dgd is not None
        first = self._run(self._observation(dgd, seen))
        assert not isinstance(first, Rejection)
        if self.state.phase in ("Deploying", "Deployed"):
            assert self._run(self._observation(dgd, seen)) == []
            reach("repeated observation decided nothing")

    @initialize(where=st.sampled_from(STARTING_POINTS), manual=st.booleans())
    def start_somewhere(self, where: str | None, manual: bool) -> None:
        """Each run first tours the lifecycle through every rule's success branch, then starts
        somewhere in a new incarnation (reached through the rules' own success branches), so
        every success branch is taken and every phase is explored from."""
        self._tour()
        if where == "Failed":
            self.apply_spec(INVALID, {})
            return
        goal = {"FailedProfiling": "Profiling", "FailedConflict": "Deploying", "Deleted": "Pending"}
        for _ in range(12):
            if self.state.phase == goal.get(where or "", where):
                break
            self._natural_step(manual)
        if where == "FailedProfiling":
            self.fail_profiling(None, right=True)
        elif where == "FailedConflict":
            self.observe("conflict", ours=True, replicas=0, available=0)
        elif where == "Deleted":
            self.delete()

    def _tour(self) -> None:
        """Every success branch once, in one incarnation, ending deleted and recreated."""
        self.apply_spec(REFUSED_SPECS[0], {})  # refused at admission: nothing comes to exist
        assert not self.state.exists
        self.apply_spec(MANUAL, {})
        self.reapply_identical()
        self.start_profiling(right=True)
        started = self.accepted[-1]
        while self.state.profiling_phase != "Done":
            self.progress("next", right=True)
        self.profiling_result(right=True)
        self.turn_auto_apply_on_when_ready()
        self.observe("successful", ours=True, replicas=1, available=1)
        ready = self.accepted[-1]
        self.flip_auto_apply()  # refused: Deployed is immutable
        self.same_observation_twice("pending")  # degraded, then the same again
        self._replay_remembered(self.accepted[-1])
        self._replay_forgotten(ready)  # recovered: Deployed again
        self.observe("pending", ours=True, replicas=1, available=0)
        self.observe("conflict", ours=True, replicas=0, available=0)
        self.apply_spec({**MANUAL, "image": "after-the-tour"}, {})  # a new generation
        self._replay_forgotten(started)
        self.burst_of_spec_changes(REQUEST_MEMORY)
        self.start_profiling(right=True)
        self.fail_profiling(None, right=True)
        self.delete()
        self.recreate_under_a_new_uid()

    @rule(steps=st.integers(1, 8), manual=st.booleans())
    def advance(self, steps: int, manual: bool) -> None:
        """The natural next steps of the lifecycle, so random runs get deep into it."""
        for _ in range(steps):
            if self.state.is_terminal:
                return
            self._natural_step(manual)

    def _natural_step(self, manual: bool) -> None:
        """One step forward, taken by the rule that owns it with the right arguments."""
        s, recorded = self.state, len(self.history)
        phase, sub = s.phase, s.profiling_phase
        if phase is None:
            self.apply_spec(MANUAL if manual else SPEC, {})
        elif phase == "Pending":
            self.start_profiling(right=True)
        elif phase == "Profiling" and sub != "Done":
            self.progress("next", right=True)
        elif phase == "Profiling":
            self.profiling_result(right=True)
        elif phase == "Ready":
            self.turn_auto_apply_on_when_ready()
        elif phase == "Deploying":
            self.observe("successful", ours=True, replicas=1, available=1)
        elif phase == "Deployed":
            self.observe("pending", ours=True, replicas=1, available=0)
        else:
            self.apply_spec({**(MANUAL if manual else SPEC), "image": f"img:{s.generation}"}, {})
        assert len(self.history) > recorded, f"no step forward from {phase}/{sub}"

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

    @precondition(lambda self: bool(self._can_recur()))
    @rule(data=st.data())
    def replay_a_command_that_can_recur(self, data: st.DataObject) -> None:
        self._replay_remembered(data.draw(st.sampled_from(self._can_recur())))

    def _replay_remembered(self, command: Command) -> None:
        assert decide(self.state, command) == []
        reach("remembered command replayed: nothing")

    @precondition(lambda self: bool(self.accepted))
    @rule(data=st.data())
    def replay_any_accepted_command(self, data: st.DataObject) -> None:
        command = data.draw(st.sampled_from(self.accepted))
        if command not in self._can_recur():
            self._replay_forgotten(command)

    def _replay_forgotten(self, command: Command) -> None:
        """A forgotten command is decided like a new one: a profiling command of another
        generation is refused as stale, an observation by what it observed."""
        assert command.id not in self.state.applied
        if isinstance(command, PROFILING_COMMANDS):
            decision = self._run(command)
            refusal = "Deleted" if self.state.is_terminal else "Stale"
            assert isinstance(decision, Rejection) and decision.reason == refusal, decision
            reach("forgotten profiling command replayed: refused")
        elif isinstance(command, ObserveDeployment) and self.state.phase in (
            "Deploying",
            "Deployed",
        ):
            decision = self._run(command)
            assert not isinstance(decision, Rejection) or decision.reason == "Stale"
            reach("forgotten observation replayed: decided by content")

    @precondition(lambda self: self.state.is_terminal)
    @rule()
    def recreate_under_a_new_uid(self) -> None:
        self._new_incarnation()
        reach("recreated under a new uid")

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
    def the_history_is_machine_edges_and_folds_to_the_decided_state(self) -> None:
        s = initial_state()
        for e, command_id in self.history:
            edge = (s.machine_state, e.trigger)
            assert edge in EDGES
            s = evolve(s, e, command_id)
            assert s.machine_state == EDGES[edge]
        assert s == self.state

    @invariant()
    def the_idempotency_memory_is_the_model_and_bounded(self) -> None:
        assert self.state.applied == {c.id for c in self._can_recur()}
        assert len(self.state.applied) <= MAX_REMEMBERED


SETTINGS = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_lifecycle_properties_hold_and_every_success_branch_is_reached() -> None:
    reached.clear()
    run_state_machine_as_test(DGDRLifecycle, settings=SETTINGS)
    print("branches reached:", dict(sorted(reached.items())))
    assert BRANCHES - reached.keys() == set(), "never reached: " + ", ".join(
        sorted(BRANCHES - reached.keys())
    )
