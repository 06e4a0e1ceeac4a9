"""The DGDR lifecycle as one `transitions` hierarchical state machine: the single source of allowed edges.

Owns: the phases (Pending, Profiling with its seven sub-phases, Ready, Deploying, Deployed, Failed) plus
two aggregate-only states, `Absent` (nothing recorded yet) and `Deleted` (the incarnation is closed),
and every trigger between them. Each trigger is named after the domain event that performs it.

`EDGES` is computed once at import by firing every trigger from every leaf state on a throwaway model;
the decider consults it, a test checks the decider accepts exactly these edges, and `mermaid()` renders
the README's diagram from it. Nothing here does I/O; an edge that is not in `EDGES` does not exist.
"""

from __future__ import annotations

from typing import Any

from transitions import MachineError
from transitions.extensions import HierarchicalMachine

from dgdr.domain.phases import PROFILING_PHASES

ABSENT = "Absent"
DELETED = "Deleted"
_SEP = "_"


def profiling_state(sub_phase: str) -> str:
    return f"Profiling{_SEP}{sub_phase}"


def split_state(state: str) -> tuple[str, str | None]:
    """`Profiling_SweepingPrefill` → (`Profiling`, `SweepingPrefill`); `Ready` → (`Ready`, None)."""
    phase, _, sub = state.partition(_SEP)
    return phase, sub or None


def join_state(phase: str, sub_phase: str | None) -> str:
    """The leaf state a status shows: the inverse of `split_state`. The sub-phase counts only inside
    Profiling (a DGDR that failed while profiling keeps its sub-phase, but its state is `Failed`)."""
    return profiling_state(sub_phase) if phase == "Profiling" and sub_phase else phase


def progress_trigger(sub_phase: str) -> str:
    return f"profiling_progressed_to_{sub_phase}"


_LIVE = ["Pending", "Profiling", "Ready", "Deploying", "Deployed", "Failed"]


def _transitions() -> list[dict[str, Any]]:
    t: list[dict[str, Any]] = [
        {"trigger": "created", "source": ABSENT, "dest": "Pending"},
        {"trigger": "validated", "source": "Pending", "dest": "Pending"},
        {"trigger": "validation_failed", "source": "Pending", "dest": "Failed"},
        {
            "trigger": "profiling_started",
            "source": "Pending",
            "dest": profiling_state("Initializing"),
        },
        {"trigger": "profiling_failed", "source": "Profiling", "dest": "Failed"},
        {"trigger": "profiling_completed", "source": "Profiling", "dest": "Ready"},
        {"trigger": "auto_apply_enabled", "source": "Ready", "dest": "Ready"},
        # from Failed: a DGDR that failed on a DeploymentConflict, applied again (see the decider)
        {"trigger": "deployment_started", "source": ["Ready", "Failed"], "dest": "Deploying"},
        {"trigger": "deployment_created", "source": "Deploying", "dest": "Deploying"},
        {"trigger": "deployment_observed", "source": ["Deploying", "Deployed"], "dest": None},
        {"trigger": "deployment_ready", "source": "Deploying", "dest": "Deployed"},
        {"trigger": "deployment_degraded", "source": "Deployed", "dest": "Deploying"},
        {"trigger": "deployment_deleted", "source": ["Deploying", "Deployed"], "dest": "Failed"},
        {"trigger": "deployment_failed", "source": "Deploying", "dest": "Failed"},
        {"trigger": "spec_updated", "source": ["Pending", "Ready", "Failed"], "dest": "Pending"},
        {"trigger": "deleted", "source": _LIVE, "dest": DELETED},
    ]
    # Sub-phases only move forward; rapid profiling skips some (SweepingDecode, BuildingCurves).
    for i, target in enumerate(PROFILING_PHASES[1:], start=1):
        t.append(
            {
                "trigger": progress_trigger(target),
                "source": [profiling_state(p) for p in PROFILING_PHASES[:i]],
                "dest": profiling_state(target),
            }
        )
    return t


def build_machine(model: Any = None, initial: str = ABSENT) -> HierarchicalMachine:
    states: list[Any] = [
        ABSENT,
        "Pending",
        {"name": "Profiling", "children": list(PROFILING_PHASES), "initial": "Initializing"},
        "Ready",
        "Deploying",
        "Deployed",
        "Failed",
        DELETED,
    ]
    return HierarchicalMachine(
        model=model if model is not None else "self",
        states=states,
        transitions=_transitions(),
        initial=initial,
        auto_transitions=False,
        send_event=False,
        model_override=False,
    )


LEAF_STATES: tuple[str, ...] = (
    ABSENT,
    "Pending",
    *(profiling_state(p) for p in PROFILING_PHASES),
    "Ready",
    "Deploying",
    "Deployed",
    "Failed",
    DELETED,
)

TRIGGERS: tuple[str, ...] = tuple(dict.fromkeys(t["trigger"] for t in _transitions()))


class _Probe:
    state: str


def _compute_edges() -> dict[tuple[str, str], str]:
    edges: dict[tuple[str, str], str] = {}
    probe = _Probe()
    lifecycle = build_machine(probe)
    for source in LEAF_STATES:
        for trigger in TRIGGERS:
            lifecycle.set_state(source, probe)
            try:
                fired = getattr(probe, trigger)()
            except MachineError:
                continue
            if fired:
                edges[(source, trigger)] = probe.state
    return edges


EDGES: dict[tuple[str, str], str] = _compute_edges()


def next_state(state: str, trigger: str) -> str | None:
    """Where `trigger` leads from `state`, or None when the machine has no such edge."""
    return EDGES.get((state, trigger))


def mermaid() -> str:
    """The state diagram as mermaid `stateDiagram-v2` text, generated from `EDGES`."""
    lines = ["stateDiagram-v2", f"    [*] --> {ABSENT}"]
    seen: set[tuple[str, str, str]] = set()
    for (source, trigger), dest in EDGES.items():
        _src_phase, src_sub = split_state(source)
        _dst_phase, dst_sub = split_state(dest)
        if src_sub and dst_sub:
            continue  # sub-phase edges are drawn inside the Profiling box below
        label = trigger
        src = "Profiling" if src_sub else source
        dst = dest if not dst_sub else "Profiling"
        key = (src, dst, label)
        if key not in seen:
            seen.add(key)
            lines.append(f"    {src} --> {dst}: {label}")
    lines.append("    state Profiling {")
    lines.append(f"        [*] --> {PROFILING_PHASES[0]}")
    for (source, _trigger), dest in EDGES.items():
        _, src_sub = split_state(source)
        _, dst_sub = split_state(dest)
        if src_sub and dst_sub and src_sub != dst_sub:
            lines.append(f"        {src_sub} --> {dst_sub}")
    lines.append("    }")
    lines.append(f"    {DELETED} --> [*]")
    return "\n".join(lines) + "\n"
