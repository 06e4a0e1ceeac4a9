"""The decider accepts exactly the lifecycle machine's edges, and evolve refuses any other edge."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest

from dgdr.domain.decider import decide, evolve, initial_state
from dgdr.domain.errors import InvalidHistory
from dgdr.domain.machine import (
    ABSENT,
    DELETED,
    EDGES,
    LEAF_STATES,
    TRIGGERS,
    mermaid,
    next_state,
    profiling_state,
    progress_trigger,
    split_state,
)
from dgdr.domain.model import (
    Command,
    Created,
    Deleted,
    Event,
    ProfilingProgressed,
    Rejection,
    State,
    Validated,
)
from dgdr.domain.phases import PHASES, PROFILING_PHASES
from tests.dgdr.domain.builders import (
    AUTO,
    DGD,
    INVALID,
    MANUAL,
    NO_SKU,
    OTHER,
    SPEC,
    apply,
    delete,
    fail,
    observe,
    progress,
    result,
    start,
)

OBSERVATIONS = ("created", "pending", "successful", "failed", "deleted", "conflict")
MAX_DEPTH = 8

Edge = tuple[str, str]


def representative_commands(state: State) -> list[Command]:
    """Users' and reactors' commands, parameterised by what the state knows (right and wrong)."""
    gen = state.generation
    dgd = state.dgd_name or DGD
    cmds: list[Command] = [
        apply(SPEC),
        apply(MANUAL),
        apply(AUTO),
        apply({**MANUAL, "runtimeVersionOverride": "1.4.1"}),  # what Ready may still change
        apply(OTHER),
        apply(INVALID),
        apply(NO_SKU),
        apply(NO_SKU, discovered={"gpuSku": "a100_sxm", "numGpusPerNode": 4}),
        delete(),
        start(gen),
        start(gen + 1),
        *(progress(sub, gen) for sub in PROFILING_PHASES),
        progress("Bogus", gen),
        progress("Done", gen + 1),
        fail(None, gen),
        fail("SweepingDecode", gen),
        fail(None, gen + 1),
        result(gen),
        result(gen + 1),
        *(observe(seen, dgd, replicas=1, available=1) for seen in OBSERVATIONS),
        *(observe(seen, dgd, replicas=2, available=0) for seen in ("pending", "failed")),
        observe("successful", dgd, replicas=3, available=3),
        observe("successful", "another-dgd"),
    ]
    return cmds


def _key(state: State) -> tuple[Any, ...]:
    """What makes two states behave differently for the representative commands."""
    return (
        state.machine_state,
        repr(sorted(state.spec.items())),
        state.generation == state.validated_generation,
        state.profiling_phase,
        state.dgd_name,
        state.deployment_created,
        state.deployment_state,
        state.replicas,
        state.available_replicas,
    )


def _steps(state: State, events: list[Event]) -> Iterator[tuple[str, str, str]]:
    """(source, trigger, dest) for each event of a decision, walked through the machine."""
    s = state
    for event in events:
        source = s.machine_state
        s = evolve(s, event)
        yield source, event.trigger, s.machine_state


def explore() -> tuple[dict[Edge, str], list[tuple[str, str, str]], int]:
    """BFS over states reachable by representative commands; the edges decisions perform."""
    performed: dict[Edge, str] = {}
    illegal: list[tuple[str, str, str]] = []
    seen = {_key(initial_state())}
    queue: deque[tuple[State, int]] = deque([(initial_state(), 0)])
    decisions = 0
    while queue:
        state, depth = queue.popleft()
        for command in representative_commands(state):
            decision = decide(state, command)
            decisions += 1
            if isinstance(decision, Rejection) or not decision:
                continue
            for source, trigger, dest in _steps(state, decision):
                if EDGES.get((source, trigger)) != dest:
                    illegal.append((source, trigger, dest))
                performed[(source, trigger)] = dest
            nxt = state
            for event in decision:
                nxt = evolve(nxt, event, command.id)
            if depth + 1 < MAX_DEPTH and _key(nxt) not in seen:
                seen.add(_key(nxt))
                queue.append((nxt, depth + 1))
    return performed, illegal, decisions


@pytest.fixture(scope="module")
def exploration() -> tuple[dict[Edge, str], list[tuple[str, str, str]], int]:
    return explore()


def test_exploration_is_substantial(
    exploration: tuple[dict[Edge, str], list[tuple[str, str, str]], int],
) -> None:
    assert exploration[2] > 1000


def test_decisions_never_perform_an_edge_outside_the_machine(
    exploration: tuple[dict[Edge, str], list[tuple[str, str, str]], int],
) -> None:
    performed, illegal, _ = exploration
    assert illegal == []
    assert set(performed) <= set(EDGES)


@pytest.mark.parametrize(("source", "trigger"), sorted(EDGES), ids=lambda x: str(x))
def test_every_machine_edge_is_performed_by_some_decision(
    exploration: tuple[dict[Edge, str], list[tuple[str, str, str]], int],
    source: str,
    trigger: str,
) -> None:
    performed, _, _ = exploration
    assert (source, trigger) in performed, f"no decision performs {source} --{trigger}-->"
    assert performed[(source, trigger)] == EDGES[(source, trigger)]


def test_decider_accepts_exactly_the_machine_edges(
    exploration: tuple[dict[Edge, str], list[tuple[str, str, str]], int],
) -> None:
    assert exploration[0] == EDGES


# ----------------------------------------------------------------------------------- the machine


def test_machine_shape() -> None:
    assert PHASES == ("Pending", "Profiling", "Ready", "Deploying", "Deployed", "Failed")
    assert len(LEAF_STATES) == 2 + 5 + len(PROFILING_PHASES)
    assert {split_state(s)[0] for s in LEAF_STATES} == {*PHASES, ABSENT, DELETED}
    assert all(dest in LEAF_STATES for dest in EDGES.values())
    assert {trigger for _, trigger in EDGES} == set(TRIGGERS)


def test_nothing_leaves_deleted_and_only_created_leaves_absent() -> None:
    assert [t for (s, t) in EDGES if s == DELETED] == []
    assert [t for (s, t) in EDGES if s == ABSENT] == ["created"]


def test_profiling_sub_phases_only_move_forward() -> None:
    for i, src in enumerate(PROFILING_PHASES):
        for j, dst in enumerate(PROFILING_PHASES):
            dest = next_state(profiling_state(src), progress_trigger(dst))
            assert dest == (profiling_state(dst) if j > i else None), (src, dst)


def test_split_state() -> None:
    assert split_state("Profiling_SweepingPrefill") == ("Profiling", "SweepingPrefill")
    assert split_state("Ready") == ("Ready", None)


def test_mermaid_is_generated_from_the_edges() -> None:
    text = mermaid()
    assert text.startswith("stateDiagram-v2\n")
    assert "    Absent --> Pending: created\n" in text
    assert "    Profiling --> Failed: profiling_failed\n" in text
    assert "        Initializing --> SweepingPrefill\n" in text
    assert "Deleted --> [*]" in text


# ---------------------------------------------------------------------------- evolve and history


def test_evolve_rejects_an_impossible_history() -> None:
    with pytest.raises(InvalidHistory):
        evolve(initial_state(), Validated(generation=1, hardware={}, message="ok"))
    with pytest.raises(InvalidHistory):
        evolve(State(machine_state=profiling_state("Done")),
               ProfilingProgressed(sub_phase="Initializing", message="back"))  # fmt: skip
    with pytest.raises(InvalidHistory):
        evolve(State(machine_state=DELETED), Created(spec=SPEC))


def test_evolve_records_the_causing_command_id() -> None:
    s = evolve(initial_state(), Created(spec=SPEC), "cmd-a")
    assert s.applied == frozenset({"cmd-a"})
    assert evolve(s, Deleted()).applied == frozenset({"cmd-a"})
