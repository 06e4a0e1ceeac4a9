"""The one exception the rapid profiler raises.

Owns: `ProfilingError`, which names the profiling sub-phase that failed (Dynamo's `ProfilingPhase`
values) and says, in one message a user can act on, what went wrong.

Failure semantics: every anticipated failure of `sim.profile` (unknown model, model that does not
fit, invalid DGD name, bad hardware) is a `ProfilingError`; anything else escaping is a bug.
"""

from __future__ import annotations

from dgdr.phases import PROFILING_PHASES

SUB_PHASES = PROFILING_PHASES[:-1]  # every profiling sub-phase but Done, where nothing can fail


class ProfilingError(Exception):
    """Profiling failed in `sub_phase`; `message` says why and what to change."""

    sub_phase: str
    message: str

    def __init__(self, sub_phase: str, message: str) -> None:
        if sub_phase not in SUB_PHASES:
            raise ValueError(f"unknown profiling sub-phase {sub_phase!r}")
        super().__init__(message)
        self.sub_phase = sub_phase
        self.message = message

    def __str__(self) -> str:
        return f"{self.sub_phase}: {self.message}"


class EstimateError(ValueError):
    """`sim.estimate` was given an argument it cannot use; `argument` names it and the message
    lists the valid values."""

    argument: str

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument = argument
