"""Every exception the project raises on purpose, in one tree (the httpx way).

    DgdrError
    ├── ConfigurationError          bad settings or environment (a bad URL, an unusable data dir)
    │   ├── NatsServerNotFound      the embedded server binary is not installed
    │   ├── ClusterUnreachable      no usable kubeconfig or in-cluster configuration (k8s)
    │   ├── NoJetStream             the NATS server runs without JetStream (`nats-server` without -js)
    │   └── ServiceNotSetUp         JetStream runs but the dgdr streams do not exist (no service ran there)
    ├── ServerUnavailable           the NATS server cannot be reached
    ├── StoreError                  the event store refuses or is inconsistent
    │   ├── ConcurrencyConflict     optimistic concurrency: the aggregate moved on; reload and re-decide
    │   ├── IncompatibleStream      an existing stream's configuration would lose or reorder history
    │   ├── IncompatibleConsumer    a durable consumer's stored configuration differs and cannot be updated
    │   ├── ProjectionAheadOfStore  a projection claims events the store does not have
    │   ├── UnknownEvent            a stored message this code cannot read as a commit (type, version, bytes)
    │   ├── InvalidHistory          a stored event is not an edge of the lifecycle machine
    │   └── CommitTooLarge          a decision's commit exceeds the server's max payload (never retried)
    ├── SubjectTooLong              a subject the server would close the connection over (also a ValueError)
    ├── NotARequest                 a message on the requests stream that is not a request (dead-lettered)
    ├── RequestRejected             the service refused a request (carries reason and field errors)
    ├── WaitTimeout                 a wait for a phase or a resourceVersion ran out of time
    ├── NotFound                    a named DGDR does not exist (kubectl's `Error from server (NotFound)`)
    ├── ProfilingError              profiling failed in a named sub-phase for a reason the user can fix
    └── EstimateError               `sim.estimate` got an argument it cannot use (also a ValueError)

User mistakes are reported through `RequestRejected` / `FieldError`s (`dgdr.domain.spec`), never a
traceback. An exception outside this tree escaping a component is a bug: consumers log it and let
JetStream redeliver the message with backoff; it is never recorded as the user's failure.

The Kubernetes API emulator (`k8s.emulator`) stands alone and answers with Kubernetes `Status`
objects (its `ApiError`); nothing of dgdr raises or catches those.
"""

from __future__ import annotations

from typing import Any

from dgdr.domain.phases import SUB_PHASES


class DgdrError(Exception):
    """Base of every error raised on purpose by dgdr."""


class ConfigurationError(DgdrError):
    pass


class NatsServerNotFound(ConfigurationError):
    pass


class ClusterUnreachable(ConfigurationError):
    """No usable kubeconfig or in-cluster configuration."""


class NoJetStream(ConfigurationError):
    """The NATS server answers but has no JetStream (started without `-js`, or the account has none)."""


class ServiceNotSetUp(ConfigurationError):
    """JetStream runs, but the dgdr streams and buckets do not exist: no dgdr service ever ran there."""


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


class IncompatibleConsumer(StoreError):
    """A durable consumer exists with a configuration JetStream refuses to change to ours."""


class ProjectionAheadOfStore(StoreError):
    pass


class UnknownEvent(StoreError):
    pass


class InvalidHistory(StoreError):
    """A stored event is not an edge of the lifecycle machine from the state before it."""


class CommitTooLarge(StoreError):
    """A commit (one decision's events, headers included) exceeds the server's max payload: it can
    never be stored, so retrying is pointless; what made it that large must be refused."""

    def __init__(self, subject: str, size: int, limit: int) -> None:
        super().__init__(
            f"the commit for {subject} is {size} bytes; the server's max payload is {limit} bytes"
        )
        self.size, self.limit = size, limit


class SubjectTooLong(DgdrError, ValueError):
    """A subject that the server would refuse by closing the connection."""


class NotARequest(DgdrError):
    """A message on the requests stream is not a request; the message says why."""


class RequestRejected(DgdrError):
    def __init__(self, reason: str, message: str, errors: list[dict[str, Any]] | None = None):
        self.reason, self.message, self.errors = reason, message, errors or []
        super().__init__(f"{reason}: {message}")


class WaitTimeout(DgdrError):
    pass


class NotFound(DgdrError):
    """A DGDR named by the user does not exist (never created, or deleted)."""

    def __init__(self, namespace: str, name: str) -> None:
        self.namespace, self.name = namespace, name
        super().__init__(f'dynamographdeploymentrequests.nvidia.com "{name}" not found')


class ProfilingError(DgdrError):
    """Profiling failed in `sub_phase`; `message` says why and what to change.

    Every anticipated failure of `sim.profile` (unknown model, model that does not fit, invalid DGD
    name, bad hardware) is a `ProfilingError`; anything else escaping the profiler is a bug."""

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


class EstimateError(DgdrError, ValueError):
    """`sim.estimate` was given an argument it cannot use; `argument` names it and the message
    lists the valid values."""

    argument: str

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument = argument
