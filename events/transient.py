"""Which NATS failures are transient, and retrying a JetStream call through them.

Owns the one definition of "NATS is briefly unavailable": a request that timed out, no responders
(no stream or consumer leader: the server we talk to has none to forward to, e.g. right after the
leader's server died), JetStream's 503 (a leader is being elected), a connection being re-established.
These end by themselves within seconds on a healthy cluster (a Raft election, a reconnect to another
node), so a caller retries them promptly instead of backing off for tens of seconds.

Failure semantics: `retry_transient` retries only these, with a short growing pause (at most
`MAX_PAUSE`), until `deadline` seconds have passed, then raises the last one; anything else raises
at once. A client closed for good (`ConnectionClosedError`) is not transient here: retrying on it
would spin, its owner reconnects (dgdr.app.service's supervisor).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats.errors
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

T = TypeVar("T")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError,  # nats.errors.TimeoutError derives from it
    nats.errors.NoRespondersError,
    NoStreamResponseError,
    ServiceUnavailableError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
)
FIRST_PAUSE = 0.1
MAX_PAUSE = 1.0
DEFAULT_DEADLINE = 20.0


def is_transient(exc: BaseException) -> bool:
    """True for a failure that says NATS is briefly unavailable (see the module docstring)."""
    return isinstance(exc, TRANSIENT_ERRORS)


def pause_after(attempt: int) -> float:
    """The pause after the `attempt`-th failed try (1-based): 0.1 s doubling up to `MAX_PAUSE`."""
    return float(min(MAX_PAUSE, FIRST_PAUSE * 2 ** max(0, attempt - 1)))


async def retry_transient(
    call: Callable[[], Awaitable[T]], what: str, deadline: float = DEFAULT_DEADLINE
) -> T:
    """`await call()`, again after each transient failure until `deadline` seconds have passed."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except TRANSIENT_ERRORS as exc:
            pause = pause_after(attempt)
            if loop.time() + pause >= give_up:
                raise
            if attempt in (1, 5) or attempt % 20 == 0:
                import structlog  # here: a call that is not retried does without it (and rich)

                structlog.get_logger("events.transient").info(
                    "NATS unavailable; retrying",
                    call=what,
                    attempt=attempt,
                    error=f"{type(exc).__name__}: {exc}",
                )
            await asyncio.sleep(pause)
