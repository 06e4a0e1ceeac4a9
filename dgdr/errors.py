"""Every exception the project raises on purpose, in one tree (the httpx way).

    DgdrError
    ├── ConfigurationError          bad settings or environment (a missing nats-server, a bad URL)
    │   └── NatsServerNotFound      the embedded server binary is not installed
    ├── ServerUnavailable           the NATS server cannot be reached
    ├── StoreError                  the event store refuses or is inconsistent
    │   ├── ConcurrencyConflict     optimistic concurrency: the aggregate moved on; reload and re-decide
    │   ├── IncompatibleStream      an existing stream's configuration would lose or reorder history
    │   └── ProjectionAheadOfStore  a projection claims events the store does not have
    ├── RequestRejected             the service refused a request (carries reason and field errors)
    └── WaitTimeout                 a wait for a phase or a resourceVersion ran out of time

User mistakes are reported through `RequestRejected` / `FieldError`s, never a traceback.
"""

from __future__ import annotations

from typing import Any


class DgdrError(Exception):
    """Base of every error raised on purpose by dgdr."""


class ConfigurationError(DgdrError):
    pass


class NatsServerNotFound(ConfigurationError):
    pass


class ServerUnavailable(DgdrError):
    pass


class StoreError(DgdrError):
    pass


class ConcurrencyConflict(StoreError):
    def __init__(self, subject: str, expected: int, actual: int | None = None) -> None:
        self.subject, self.expected, self.actual = subject, expected, actual
        super().__init__(f"{subject}: expected last sequence {expected}, store has {actual}")


class IncompatibleStream(StoreError):
    pass


class ProjectionAheadOfStore(StoreError):
    pass


class RequestRejected(DgdrError):
    def __init__(self, reason: str, message: str, errors: list[dict[str, Any]] | None = None):
        self.reason, self.message, self.errors = reason, message, errors or []
        super().__init__(f"{reason}: {message}")


class WaitTimeout(DgdrError):
    pass
