"""The command handler: load an aggregate, decide, append with optimistic concurrency, retry.

Owns the decide/append loop around the pure decider, against any `EventStore`. It keeps a per-process
cache of (state, version) per name; the cache is only a hint: a stale entry makes the append fail with
`ConcurrencyConflict`, and the handler then reloads from the store and decides again (up to
`max_attempts`). A name with no cached state is assumed new, so creating a DGDR costs one append;
a refusal or a no-op decided on a cached or assumed state is confirmed on a fresh load first.

Outcomes: `accepted` (events recorded, or nothing to record), `invalid` (recorded, but the spec failed
validation: the DGDR exists in phase Failed and the field errors are returned), `rejected` (nothing
recorded; reason and message say why).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from dgdr.domain.decider import decide, evolve, initial_state
from dgdr.domain.errors import ConcurrencyConflict
from dgdr.domain.model import Command, Rejection, State, ValidationFailed
from events.envelope import AggregateId, Commit, wrap
from events.store import EventStore

log = structlog.get_logger("dgdr.app.handler")


@dataclass(frozen=True)
class Outcome:
    status: Literal["accepted", "invalid", "rejected"]
    resource_version: int | None = None
    uid: str | None = None
    events: tuple[str, ...] = ()
    reason: str = ""
    message: str = ""
    errors: tuple[dict[str, str], ...] = ()
    commit: Commit | None = field(default=None, compare=False)

    def to_dict(self, request_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "requestId": request_id,
            "status": self.status,
            "events": list(self.events),
        }
        if self.resource_version is not None:
            out["resourceVersion"] = str(self.resource_version)
        if self.uid:
            out["uid"] = self.uid
        if self.reason:
            out["reason"] = self.reason
        if self.message:
            out["message"] = self.message
        if self.errors:
            out["errors"] = list(self.errors)
        return out


@dataclass
class Loaded:
    aggregate: AggregateId | None
    state: State
    version: int


class CommandHandler:
    def __init__(
        self, store: EventStore, *, max_attempts: int = 8, cache_size: int = 10_000
    ) -> None:
        self.store = store
        self.max_attempts = max_attempts
        self._cache: OrderedDict[tuple[str, str], Loaded] = OrderedDict()
        self.cache_size = cache_size

    async def load(self, namespace: str, name: str) -> Loaded:
        """The current incarnation of a name, folded from the store (and cached)."""
        last = await self.store.latest(namespace, name)
        if last is None:
            loaded = Loaded(None, initial_state(), 0)
        else:
            state = initial_state()
            for commit in await self.store.load(last.aggregate):
                for env in commit.envelopes:
                    state = evolve(state, env.event, env.causation_id)
            loaded = Loaded(last.aggregate, state, last.seq)
        self._remember(namespace, name, loaded)
        return loaded

    def _remember(self, namespace: str, name: str, loaded: Loaded) -> None:
        """Least-recently-used cache of states: a hint, bounded so memory does not grow with the
        number of DGDRs ever seen."""
        self._cache[(namespace, name)] = loaded
        self._cache.move_to_end((namespace, name))
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    async def handle(
        self,
        namespace: str,
        name: str,
        command: Command,
        *,
        uid: str | None = None,
        expected_uid: str | None = None,
    ) -> Outcome:
        """Decide `command` against the current incarnation and record the result.

        `uid` is used when the command creates a new incarnation (a random one otherwise);
        `expected_uid`, when given, pins the command to one incarnation (reactor commands)."""

        def other_incarnation(current: Loaded) -> bool:
            return expected_uid is not None and (
                current.aggregate is None or current.aggregate.uid != expected_uid
            )

        # An unverified state (cached, or assumed new) is only trusted when the store confirms it:
        # a stale one fails the append (conflict), and a refusal or a no-op decided on it is
        # re-decided on a fresh load before it is answered.
        loaded = self._cache.get((namespace, name))
        verified = False
        if loaded is None and expected_uid is None:
            # Assume the name is new: creating costs one append, and a conflict corrects it.
            loaded = Loaded(None, initial_state(), 0)
        elif loaded is None or other_incarnation(loaded):
            loaded, verified = await self.load(namespace, name), True
        for attempt in range(self.max_attempts):
            if other_incarnation(loaded):
                return Outcome(
                    "rejected",
                    reason="Stale",
                    message=f"incarnation {expected_uid} of {namespace}/{name} is gone",
                )
            state, aggregate = loaded.state, loaded.aggregate
            if aggregate is None or state.is_terminal:
                aggregate = AggregateId(namespace, name, uid or str(uuid.uuid4()))
                state = initial_state()
            decision = decide(state, command)
            if not verified and (isinstance(decision, Rejection) or not decision):
                loaded, verified = await self.load(namespace, name), True
                continue
            if isinstance(decision, Rejection):
                return Outcome(
                    "rejected",
                    loaded.version or None,
                    aggregate.uid,
                    reason=decision.reason,
                    message=decision.message,
                    errors=tuple(e.to_dict() for e in decision.errors),
                )
            if not decision:
                return Outcome("accepted", loaded.version or None, aggregate.uid)
            envelopes = wrap(
                decision,
                aggregate,
                command_id=command.id,
                at=command.at,
                correlation_id=command.correlation_id,
            )
            commit_id = f"{aggregate.uid}:{command.id}"
            try:
                seq = await self.store.append(
                    aggregate, envelopes, expected=loaded.version, commit_id=commit_id
                )
            except ConcurrencyConflict:
                log.debug(
                    "conflict, reloading",
                    namespace=namespace,
                    name=name,
                    attempt=attempt,
                    command=command.id,
                )
                loaded, verified = await self.load(namespace, name), True
                continue
            for event in decision:
                state = evolve(state, event, command.id)
            self._remember(namespace, name, Loaded(aggregate, state, seq))
            types = tuple(e.type for e in decision)
            invalid = [e for e in decision if isinstance(e, ValidationFailed)]
            commit = Commit(
                aggregate, envelopes, seq=seq, expected=loaded.version, commit_id=commit_id
            )
            if invalid:
                return Outcome(
                    "invalid",
                    seq,
                    aggregate.uid,
                    types,
                    reason="ValidationFailed",
                    message="the spec is invalid; the DGDR is Failed until a valid spec is applied",
                    errors=tuple(invalid[0].errors),
                    commit=commit,
                )
            return Outcome("accepted", seq, aggregate.uid, types, commit=commit)
        return Outcome(
            "rejected",
            reason="Conflict",
            message=f"{namespace}/{name} kept changing; gave up after "
            f"{self.max_attempts} attempts, retry the request",
        )
