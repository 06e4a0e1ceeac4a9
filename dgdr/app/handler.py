"""The command handler: load an aggregate, decide, append with optimistic concurrency, retry.

Owns the decide/append loop around the pure decider, against any `EventStore`. It decides on the
latest state it holds: the shared `StateCache` (dgdr.app.states) or one the caller passes (`known`, a
reactor's). That state is only a hint: a stale one makes the append fail with `ConcurrencyConflict`,
and the handler then brings it up to date from the store (only the commits it lacks) and decides
again (up to `max_attempts`). A name with no state held is assumed new, so creating a DGDR costs one
append; a refusal or a no-op decided on a held or assumed state is confirmed on a fresh one first.
Once `keep_recorded` is called (a reactor in the process), the last `RECORDED_HELD` commits it
appended are kept for `take_recorded`, and `settled` waits out the appends in flight on a name.

Outcomes: `accepted` (events recorded, or nothing to record); `invalid` with the field errors, in two
kinds: refused at admission (what Dynamo's CRD schema or validating webhook refuses, including a spec
change while Profiling/Deploying/Deployed, reason `SpecChangeRejected`): nothing recorded, no
events; a DGDR that did not exist still does not (no uid, no resourceVersion) and an existing one is
unchanged (its current uid and resourceVersion); or
recorded (the spec passed admission but failed the later validation, reason `ValidationFailed`): the
DGDR exists in phase Failed, `events` and `resourceVersion` say what was recorded. `rejected`
(nothing recorded; reason and message say why: NotFound, Stale, Conflict, ...).

Observed (`CommandObserver`, no-op by default): each command's kind, outcome (`error` when it
raised) and seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import structlog

from dgdr.app.states import NOTHING, STATE_CACHE_SIZE, Loaded, StateCache, fold_commits
from dgdr.domain.decider import decide, evolve
from dgdr.domain.errors import ConcurrencyConflict
from dgdr.domain.model import Command, Event, Rejection, ValidationFailed
from events.envelope import AggregateId, Commit, wrap
from events.store import EventStore

log = structlog.get_logger("dgdr.app.handler")
RECORDED_HELD = 1024  # commits kept for a reactor in this process (`keep_recorded`)


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
class _Flight:
    """The appends in flight on one name (`CommandHandler.settled`)."""

    count: int = 0
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class CommandObserver(Protocol):
    def command_handled(self, verb: str, outcome: str, seconds: float) -> None:
        """A command of kind `verb` was handled: accepted, invalid, rejected or error."""


class _Unobserved:
    def command_handled(self, verb: str, outcome: str, seconds: float) -> None:
        pass


class CommandHandler:
    def __init__(
        self,
        store: EventStore,
        *,
        max_attempts: int = 8,
        states: StateCache | None = None,
        cache_size: int = STATE_CACHE_SIZE,
        observer: CommandObserver | None = None,
    ) -> None:
        self.observer: CommandObserver = observer or _Unobserved()
        self.store = store
        self.max_attempts = max_attempts
        self.states = states if states is not None else StateCache(cache_size)
        # The commits this handler appended lately, by sequence, once `keep_recorded` is called
        # (a reactor in this process takes them instead of decoding them again); bounded.
        self._recorded: OrderedDict[int, Commit] | None = None

        # Per name, the appends in flight while commits are kept (`settled`).
        self._in_flight: dict[tuple[str, str], _Flight] = {}

    def keep_recorded(self) -> None:
        """Keep the last `RECORDED_HELD` commits appended, for `take_recorded`."""
        if self._recorded is None:
            self._recorded = OrderedDict()

    async def settled(self, namespace: str, name: str) -> None:
        """Return once no append on the name is in flight in this handler (each ends recorded,
        or failed): a commit delivered before its append's acknowledgement came back is then
        held by `take_recorded`, and its state cached."""
        while (flight := self._in_flight.get((namespace, name))) is not None:
            await flight.ended.wait()

    def take_recorded(self, seq: int) -> Commit | None:
        """The commit this handler appended at stream sequence `seq`, if it still holds it (once:
        a redelivery is decoded from the store)."""
        return None if self._recorded is None else self._recorded.pop(seq, None)

    async def refresh(self, namespace: str, name: str, known: Loaded | None) -> Loaded:
        """The store's current state of a name, reading only what `known` lacks: one `latest`
        when `known` is current, the name's messages after it otherwise (its whole history when
        nothing is known). Each message is verified as it is folded (`fold_commits`): a damaged
        one never decides which incarnation is live. The result is cached."""
        last = await self.store.latest(namespace, name)
        if last is None:
            return NOTHING
        if known is not None and known.version == last.seq:
            return self.states.put(namespace, name, known)
        base = known if known is not None and known.version < last.seq else NOTHING
        commits = await self.store.history(namespace, name, after=base.version)
        return self.states.put(namespace, name, fold_commits(base, commits))

    def current(self, namespace: str, name: str, known: Loaded | None = None) -> Loaded | None:
        """The latest state held for a name: the cache's or `known`, whichever is later."""
        if known is not None:
            return self.states.put(namespace, name, known)
        return self.states.get(namespace, name)

    async def handle(
        self,
        namespace: str,
        name: str,
        command: Command,
        *,
        uid: str | None = None,
        expected_uid: str | None = None,
        known: Loaded | None = None,
    ) -> Outcome:
        """Decide `command` against the current incarnation and record the result.

        `uid` is used when the command creates a new incarnation (a random one otherwise);
        `expected_uid`, when given, pins the command to one incarnation (reactor commands);
        `known` is a state the caller holds (a reactor's), used like a cached one."""
        started = time.perf_counter()
        try:
            decided = await self._handle(
                namespace, name, command, uid=uid, expected_uid=expected_uid, known=known
            )
        except Exception:
            self.observer.command_handled(command.kind, "error", time.perf_counter() - started)
            raise
        self.observer.command_handled(command.kind, decided.status, time.perf_counter() - started)
        return decided

    async def _handle(
        self,
        namespace: str,
        name: str,
        command: Command,
        *,
        uid: str | None,
        expected_uid: str | None,
        known: Loaded | None,
    ) -> Outcome:

        def other_incarnation(current: Loaded) -> bool:
            return expected_uid is not None and (
                current.aggregate is None or current.aggregate.uid != expected_uid
            )

        # An unverified state (cached, known, or assumed new) is only trusted when the store
        # confirms it: a stale one fails the append (conflict), and a refusal or a no-op decided
        # on it is re-decided on a fresh state before it is answered.
        loaded = self.current(namespace, name, known)
        verified = False
        if loaded is None and expected_uid is None:
            loaded = NOTHING  # assume the name is new: creating costs one append
        elif loaded is None or other_incarnation(loaded):
            loaded, verified = await self.refresh(namespace, name, loaded), True
        for attempt in range(self.max_attempts):
            if other_incarnation(loaded):
                return Outcome(
                    "rejected",
                    reason="Stale",
                    message=f"incarnation {expected_uid} of {namespace}/{name} is gone",
                )
            aggregate, state = loaded.aggregate, loaded.state
            if aggregate is None or state.is_terminal:
                aggregate, state = (
                    AggregateId(namespace, name, uid or str(uuid.uuid4())),
                    NOTHING.state,
                )
            decision = decide(state, command)
            if not verified and (isinstance(decision, Rejection) or not decision):
                loaded, verified = await self.refresh(namespace, name, loaded), True
                continue
            if isinstance(decision, Rejection) or not decision:
                return _refused_or_nothing(decision, loaded, aggregate)
            try:
                return await self._record(namespace, name, command, loaded, aggregate, decision)
            except ConcurrencyConflict:
                log.debug(
                    "conflict, reloading",
                    namespace=namespace,
                    name=name,
                    attempt=attempt,
                    command=command.id,
                )
                loaded, verified = await self.refresh(namespace, name, loaded), True
        return Outcome(
            "rejected",
            reason="Conflict",
            message=f"{namespace}/{name} kept changing; gave up after "
            f"{self.max_attempts} attempts, retry the request",
        )

    async def _record(
        self,
        namespace: str,
        name: str,
        command: Command,
        loaded: Loaded,
        aggregate: AggregateId,
        decision: list[Event],
    ) -> Outcome:
        """Append `decision` expecting `loaded.version` (raises `ConcurrencyConflict`), cache the
        state it leads to, and say what was recorded. The commit id (the store's deduplication
        key) and the event ids name the command and the version it was decided on: a retry after
        a lost acknowledgement is recognised, a command id that recurs later is a new decision."""
        decision_id = f"{command.id}@{loaded.version}"
        envelopes = wrap(
            decision,
            aggregate,
            command_id=command.id,
            at=command.at,
            correlation_id=command.correlation_id,
            decision_id=decision_id,
        )
        commit_id = f"{aggregate.uid}:{decision_id}"
        with self._in_flight_on(namespace, name):  # until recorded and its state cached
            seq = await self.store.append(
                aggregate, envelopes, expected=loaded.version, commit_id=commit_id
            )
            same = loaded.aggregate == aggregate and not loaded.state.is_terminal
            state = loaded.state if same else NOTHING.state
            for event in decision:
                state = evolve(state, event, command.id)
            self.states.put(
                namespace, name, Loaded(aggregate, state, seq, loaded.damage if same else ())
            )
            commit = Commit(
                aggregate, envelopes, seq=seq, expected=loaded.version, commit_id=commit_id
            )
            if self._recorded is not None:
                self._recorded[seq] = commit
                while len(self._recorded) > RECORDED_HELD:
                    self._recorded.popitem(last=False)
        types = tuple(e.type for e in decision)
        invalid = [e for e in decision if isinstance(e, ValidationFailed)]
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

    @contextlib.contextmanager
    def _in_flight_on(self, namespace: str, name: str) -> Iterator[None]:
        """An append on the name in flight while the block runs (`settled` waits for it), once
        commits are kept (`keep_recorded`); nothing is counted before."""
        if self._recorded is None:
            yield
            return
        flight = self._in_flight.get((namespace, name))
        if flight is None:
            flight = self._in_flight[(namespace, name)] = _Flight()
        flight.count += 1
        try:
            yield
        finally:
            flight.count -= 1
            if not flight.count:
                del self._in_flight[(namespace, name)]
                flight.ended.set()


REFUSED = (
    "refused as Dynamo's CRD schema and admission webhook refuse it; nothing was recorded: "
    "fix the fields below and apply again"
)


def _refused_or_nothing(
    decision: Rejection | list[Event], loaded: Loaded, aggregate: AggregateId
) -> Outcome:
    # The uid of an incarnation that exists (none when the name is new or its DGDR deleted).
    uid = aggregate.uid if loaded.aggregate == aggregate else None
    if isinstance(decision, Rejection):
        message = decision.message
        if decision.invalid and decision.reason == "Invalid":
            message = REFUSED
        return Outcome(
            "invalid" if decision.invalid else "rejected",
            loaded.version or None,
            uid,
            reason=decision.reason,
            message=message,
            errors=tuple(e.to_dict() for e in decision.errors),
        )
    return Outcome("accepted", loaded.version or None, uid)
