"""The application's one clock: the current time as an RFC 3339 UTC timestamp.

Owns `now_rfc3339`. Times enter the domain on commands (`at`), stamped at the edge that issues them
(request intake, reactors, the profiling worker); the pure `decide` and `evolve` never read the clock.
Kubernetes-style timestamps (`metav1.Time`) use `timespec="seconds"`; event times keep milliseconds.
Never fails.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

TimeSpec = Literal["seconds", "milliseconds", "microseconds"]


def now_rfc3339(timespec: TimeSpec = "milliseconds") -> str:
    """Now, in UTC, as `2026-01-02T03:04:05.678Z` (or to the second / microsecond)."""
    return datetime.now(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
