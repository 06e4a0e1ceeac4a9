"""Trusted but verified: the one rule that says whether a stored message may be folded.

Owns `read_commit` (a stored `DGDR_EVENTS` message → a verified `Commit`, or a damaged one) and
`illegal` / `verify_history` (whether a well-formed commit may follow what was folded before it).
Pure; nothing here raises for stored bytes, whatever they are.

A stored message is a valid commit when all of these hold; anything else is damaged, with a one-line
reason (`Damage`), and is never folded into a state or a status:
- it is stored on a subject `dgdr.evt.<namespace>.<name>.<uid>`;
- it carries the headers the service writes on every commit: `Nats-Msg-Id` (the commit id) and the
  concurrency check `Nats-Expected-Last-Subject-Sequence` (a sequence below the message's own) with
  `Nats-Expected-Last-Subject-Sequence-Subject` = `dgdr.evt.<namespace>.<name>.*`, which the server
  enforced when it stored the message: the commit was decided on the name's whole history;
- it decodes: JSON, an object with a non-empty list `events` of event envelopes;
- every envelope names the aggregate of the subject, has a known type and schema version, and its
  payload validates as the domain model's event, holding for every field it has exactly what the
  service writes (no coerced value such as "3" for 3). Checked without dumping the event back when
  the text is plain (orjson reads it, fewer than `MAX_FAST_BRACKETS` brackets), every payload key
  is one the service writes for the type and the payload validates strictly (its stored fields:
  the derived views, `Envelope.fields`, are not derived for the verdict); otherwise by dumping
  the event and comparing field by field. Both give the same verdict and reason;
- (`illegal`) it follows the state folded before it: a commit of the live incarnation is a chain of
  lifecycle machine edges from that incarnation's state; a commit of another incarnation is one only
  when there is no live incarnation (none yet, or the last one was deleted) and it starts with
  `Created`.

What follows a damaged message (the rule every fold applies): the damaged message is skipped, and
only the sequence it holds moves on (the service's next commit expects it). Later commits of the name
are verified by the same rule against the state folded so far and folded when they pass: the service
decides on that state and appends with the server's concurrency check, so what it writes after the
damage is a legal continuation of the last good state, and a `delete` of a damaged DGDR is decided and
recorded as any other. A damaged message of the live incarnation (its subject's uid) is that DGDR's
damage: its status gets a condition saying so (`projections.status`). Damage never creates, switches
or ends an incarnation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from functools import lru_cache
from typing import Any, get_args

from pydantic import ValidationError

from dgdr.domain import machine
from dgdr.domain.errors import UnknownEvent
from dgdr.domain.model import Created, Event, event_payload
from events import codec
from events import subjects as s
from events.envelope import AggregateId, Commit, Damage, Envelope

H_MSG_ID = "Nats-Msg-Id"
H_EXPECTED = "Nats-Expected-Last-Subject-Sequence"
H_EXPECTED_SUBJECT = "Nats-Expected-Last-Subject-Sequence-Subject"
# A message on a subject that names no DGDR is attributed to this (no DGDR has an empty name).
NO_AGGREGATE = AggregateId("", "", "")
PREVIEW_BYTES = 160
MAX_REASON = 400


def preview(raw: bytes, limit: int = PREVIEW_BYTES) -> str:
    """Stored bytes for people: decoded where they are UTF-8, escaped where not, truncated."""
    text = raw[:limit].decode("utf-8", "backslashreplace")
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(raw) <= limit else f"{text}... ({len(raw)} bytes)"


# Below this many brackets a commit cannot nest as deep as pydantic can dump (about 255 levels).
MAX_FAST_BRACKETS = 200


def _written_keys() -> dict[str, frozenset[str]]:
    """Per event type, the payload keys the service writes: its fields by alias, but `type` and
    the derived views that are never stored (`exclude`)."""
    (union, *_) = get_args(Event)
    return {
        cls.model_fields["type"].default: frozenset(
            field.alias or name
            for name, field in cls.model_fields.items()
            if name != "type" and not field.exclude
        )
        for cls in get_args(union)
    }


WRITTEN_KEYS = _written_keys()
# Subjects recur (one per DGDR incarnation, several commits each): their parsing is cached.
SUBJECTS_CACHED = 4096


@lru_cache(maxsize=SUBJECTS_CACHED)
def aggregate_of(subject: str) -> AggregateId | None:
    """The aggregate an events subject names, or None when it names none."""
    parts = subject.split(".")
    if len(parts) != 5 or ".".join(parts[:2]) != s.EVENTS_PREFIX:
        return None
    try:
        ns, name, uid = s.parse_events_subject(subject)
    except (ValueError, UnicodeDecodeError):
        return None
    return AggregateId(ns, name, uid) if ns and name and uid else None


def damaged(
    aggregate: AggregateId, *, seq: int, subject: str, reason: str, raw: bytes, **fields: Any
) -> Commit:
    damage = Damage(seq, subject, reason[:MAX_REASON])
    return Commit(aggregate, [], seq=seq, damage=damage, raw=raw, **fields)


def read_commit(
    data: bytes, *, subject: str, headers: Mapping[str, str] | None, seq: int
) -> Commit:
    """The commit a stored message holds, verified (module docstring); a damaged commit (no
    envelopes, `damage` set, the stored bytes in `raw`) when it is not one. Never raises."""
    headers = headers or {}
    aggregate = aggregate_of(subject)
    commit_id = headers.get(H_MSG_ID, "")
    expected = _sequence(headers.get(H_EXPECTED)) or 0

    def broken(reason: str) -> Commit:
        return damaged(
            aggregate or NO_AGGREGATE,
            seq=seq,
            subject=subject,
            reason=reason,
            raw=data,
            expected=expected,
            commit_id=commit_id,
        )

    if aggregate is None:
        return broken(f"subject {subject} is not {s.EVENTS_PREFIX}.<namespace>.<name>.<uid>")
    try:
        envelopes, plain = _envelopes(data)
    except UnknownEvent as exc:
        return broken(str(exc))
    for env in envelopes:
        try:
            reason = _envelope_problem(env, aggregate, plain)
        except (ValueError, TypeError, RecursionError) as exc:  # e.g. nesting too deep to dump
            reason = f"{env.type} cannot be read back: {exc}"
        if reason:
            return broken(reason)
    reason = _header_problem(headers, aggregate, seq)
    if reason:
        return broken(reason)
    return Commit(aggregate, envelopes, seq=seq, expected=expected, commit_id=commit_id)


def _sequence(text: str | None) -> int | None:
    return int(text) if text is not None and text.isascii() and text.isdigit() else None


def _header_problem(headers: Mapping[str, str], aggregate: AggregateId, seq: int) -> str | None:
    if not headers.get(H_MSG_ID):
        return f"no {H_MSG_ID} header: the service writes every commit with its commit id"
    expected = headers.get(H_EXPECTED)
    if expected is None:
        return f"no {H_EXPECTED} header: the service writes every commit with its concurrency check"
    sequence = _sequence(expected)
    if sequence is None or sequence >= seq:
        return f"{H_EXPECTED} {expected[:40]!r} is not a sequence before {seq}"
    scope = _scope(aggregate.namespace, aggregate.name)
    if headers.get(H_EXPECTED_SUBJECT) != scope:
        return (
            f"{H_EXPECTED_SUBJECT} is {headers.get(H_EXPECTED_SUBJECT, '')[:200]!r}, not {scope}: the "
            "commit was not checked against the name's history"
        )
    return None


@lru_cache(maxsize=SUBJECTS_CACHED)
def _scope(namespace: str, name: str) -> str:
    return s.name_subjects(namespace, name)


def _envelopes(data: bytes) -> tuple[list[Envelope], bool]:
    """The envelopes of a commit, and whether its text is plain enough for `_fast_check`: read by
    orjson (so no NaN, infinity or integer past 64 bits) and with fewer brackets than the depth
    pydantic can dump (so it nests no deeper)."""
    fast = codec.fast_loads(data) if isinstance(data, bytes) else None
    try:
        raw = codec.loads(data) if fast is None else fast[0]
    except (ValueError, RecursionError) as exc:
        raise UnknownEvent(f"not JSON: {exc}") from exc
    plain = fast is not None and data.count(b"{") + data.count(b"[") <= MAX_FAST_BRACKETS
    events = raw.get("events") if isinstance(raw, dict) else None
    if not isinstance(events, list) or not events:
        raise UnknownEvent('not a commit: no non-empty list "events"')
    envelopes = []
    for i, item in enumerate(events):
        try:
            envelopes.append(Envelope.from_dict(item))
        except UnknownEvent as exc:
            raise UnknownEvent(f"event {i}: {exc}") from exc
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UnknownEvent(f"event {i} is not an event envelope: {exc!r}") from exc
    return envelopes, plain


def _fast_check(env: Envelope) -> bool:
    """True when the payload is certainly what the service writes, without dumping it back: its
    keys are the ones the service writes for the type, and it validates strictly (no value is
    coerced). Then, for text `_envelopes` found plain, dumping the event gives back every field
    as stored, which is what `_envelope_problem` checks. False says nothing: check it fully."""
    if not env.payload.keys() <= WRITTEN_KEYS.get(env.type, frozenset()):
        return False
    try:
        env.strict_fields()
    except ValidationError:
        return False
    return True


def _envelope_problem(env: Envelope, aggregate: AggregateId, plain: bool) -> str | None:
    texts = {"id": env.id, "time": env.time}
    optional = {"causationId": env.causation_id, "correlationId": env.correlation_id}
    for key, value in {**texts, **optional}.items():
        if not isinstance(value, str) and not (key in optional and value is None):
            return f"{env.type} envelope field {key} is {value!r}, not a string"
    if env.aggregate != aggregate:
        return f"{env.type} names aggregate {env.aggregate}, not the subject's {aggregate}"
    if not isinstance(env.payload, dict):
        return f"{env.type} payload is not an object"
    if plain and _fast_check(env):
        return None
    try:
        written = event_payload(env.event)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"][1:] if first["loc"][:1] == (env.type,) else first["loc"]
        where = ".".join(str(p) for p in loc) or "payload"
        return f"{env.type} does not validate: {where}: {first['msg']}"
    for key, value in env.payload.items():
        if written.get(key) != value:
            return (
                f"{env.type} field {key} holds {value!r}, the service writes {written.get(key)!r}"
            )
    return None


def illegal(state: str, live: AggregateId | None, commit: Commit) -> str | None:
    """Why the well-formed `commit` cannot follow `state` (the machine state folded so far) of
    the incarnation `live` (None: none yet); None when it can."""
    if commit.aggregate != live or state == machine.DELETED:
        if live is not None and state not in (machine.ABSENT, machine.DELETED):
            return f"starts incarnation {commit.aggregate.uid} while {live.uid} is live ({state})"
        if not isinstance(commit.envelopes[0].fields, Created):
            return f"{commit.envelopes[0].type} before Created: incarnation {commit.aggregate.uid} does not exist"
        state = machine.ABSENT
    for env in commit.envelopes:
        dest = machine.next_state(state, env.fields.trigger)
        if dest is None:
            return f"{env.type} is not allowed in state {state}"
        state = dest
    return None


def after(state: str, commit: Commit) -> str:
    """The machine state once the legal `commit` is folded in."""
    if isinstance(commit.envelopes[0].fields, Created):
        state = machine.ABSENT
    for env in commit.envelopes:
        state = machine.next_state(state, env.fields.trigger) or state
    return state


def verify_history(commits: Iterable[Commit]) -> list[Commit]:
    """A name's whole stored history (every incarnation, in order) with every commit that does
    not follow the ones before it marked damaged, as every fold judges it."""
    out: list[Commit] = []
    live: AggregateId | None = None
    state = machine.ABSENT
    for commit in commits:
        if commit.damage is None:
            reason = illegal(state, live, commit)
            if reason is None:
                live, state = commit.aggregate, after(state, commit)
            else:
                commit = mark_illegal(commit, reason)
        out.append(commit)
    return out


def mark_illegal(commit: Commit, reason: str) -> Commit:
    """`commit` as a damaged one: well-formed, but not a legal continuation (`illegal`)."""
    subject = s.events_subject(
        commit.aggregate.namespace, commit.aggregate.name, commit.aggregate.uid
    )
    raw = commit.raw or commit.encode()
    return replace(commit, envelopes=[], damage=Damage(commit.seq, subject, reason), raw=raw)
