"""Running a profile off the event loop, each step reported when it happens.

Owns `profile_async`: `profile` runs in a worker thread; each step it announces (sub-phase, message)
is handed to the event loop and awaited there before the profile goes on, so the reports arrive in
order, at the time the step happens, and a report that fails stops the profile with that error.
The service's profiling worker and the emulated profiling Jobs both run profiles through it.

Failure semantics: whatever `profile` raises (`ProfilingError` for a user's case, anything else for a
bug) is raised from `profile_async` unchanged; so is an exception raised by `report`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from dgdr.domain.hardware import ResolvedHardware

from ._profile import ProfileResult, profile

StepReport = Callable[[str, str], Coroutine[Any, Any, None]]


async def profile_async(
    spec: Any, hardware: ResolvedHardware | None, *, report: StepReport, **options: Any
) -> ProfileResult:
    """`profile(spec, hardware, **options)` in a thread; `report(sub_phase, message)` on this loop."""
    loop = asyncio.get_running_loop()

    def progress(sub_phase: str, message: str) -> None:
        asyncio.run_coroutine_threadsafe(report(sub_phase, message), loop).result()

    return await asyncio.to_thread(profile, spec, hardware, progress=progress, **options)
