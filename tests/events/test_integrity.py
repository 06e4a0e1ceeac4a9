"""The one rule for stored messages: what the service writes reads back verified and folds as the
decider folds it; anything else is damaged with a reason, never raises, and is never folded."""

from __future__ import annotations

import copy
import functools
import json
import math
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dgdr.app.states import NOTHING, Loaded, fold_commits
from dgdr.domain.decider import decide, evolve, initial_state
from dgdr.domain.model import (
    EVENT_TYPES,
    Command,
    Created,
    DeploymentDeleted,
    DeploymentReady,
    Event,
    Rejection,
    State,
    Validated,
    event_payload,
)
from events import subjects
from events.envelope import AggregateId, Commit, Envelope, wrap
from events.integrity import (
    H_EXPECTED,
    H_EXPECTED_SUBJECT,
    H_MSG_ID,
    MAX_REASON,
    NO_AGGREGATE,
    WRITTEN_KEYS,
    _envelope_problem,
    _envelopes,
    preview,
    read_commit,
    verify_history,
)
from projections.projector import fold_commit
from tests.dgdr.domain.builders import AT, LIVE_VARIANTS, NAME, NAMESPACE, delete, history

UID = "11111111-2222-3333-4444-555555555555"
AGG = AggregateId(NAMESPACE, NAME, UID)
SUBJECT = subjects.events_subject(NAMESPACE, NAME, UID)
READY = DeploymentReady(replicas=1, available_replicas=1)


@dataclass(frozen=True)
class Stored:
    data: bytes
    subject: str
    headers: dict[str, str]
    seq: int

    def read(self) -> Commit:
        return read_commit(self.data, subject=self.subject, headers=self.headers, seq=self.seq)


def headers(seq: int, commit_id: str = "c") -> dict[str, str]:
    return {
        H_MSG_ID: f"{UID}:{commit_id}",
        H_EXPECTED: str(seq - 1),
        H_EXPECTED_SUBJECT: subjects.name_subjects(NAMESPACE, NAME),
    }


def stored_events(
    events: list[Event], seq: int, agg: AggregateId = AGG, command_id: str = ""
) -> Stored:
    command_id = command_id or f"cmd-{seq}"
    envs = wrap(events, agg, command_id=command_id, at=AT, correlation_id=None)
    subject = subjects.events_subject(agg.namespace, agg.name, agg.uid)
    return Stored(Commit(agg, envs).encode(), subject, headers(seq, str(seq)), seq)


def service_history(commands: list[Command]) -> tuple[list[Stored], State]:
    """The messages the service stores for `commands`, and the decider's state after them."""
    state, out = initial_state(), list[Stored]()
    for command in commands:
        events = decide(state, command)
        assert not isinstance(events, Rejection), events
        if not events:
            continue
        out.append(stored_events(events, len(out) + 1, command_id=command.id))
        for event in events:
            state = evolve(state, event, command.id)
    return out, state


def with_payload(stored: Stored, **payload: Any) -> Stored:
    raw = json.loads(stored.data)
    raw["events"][0]["payload"].update(payload)
    return Stored(json.dumps(raw).encode(), stored.subject, stored.headers, stored.seq)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(LIVE_VARIANTS))
def test_what_the_service_stores_reads_back_verified_and_folds_as_the_decider(
    variant: str,
) -> None:
    stored, decided = service_history(history(variant))
    commits = [m.read() for m in stored]
    assert [c.damage for c in verify_history(commits)] == [None] * len(commits)
    loaded = fold_commits(NOTHING, commits)
    assert (loaded.aggregate, loaded.version, loaded.damage) == (AGG, len(stored), ())
    assert loaded.state == decided


@settings(max_examples=200, deadline=None)
@given(garbage=st.binary(max_size=300), at=st.integers(min_value=1, max_value=6))
def test_any_bytes_on_a_dgdr_subject_are_damage_that_is_never_folded(
    garbage: bytes, at: int
) -> None:
    stored, decided = service_history(history("Deployed"))
    at = min(at, len(stored))
    bad = Stored(garbage, SUBJECT, {}, 100)
    commit = bad.read()
    assert commit.damage is not None and commit.damage.reason and not commit.envelopes
    assert commit.aggregate == AGG and commit.raw == garbage
    messages = [m.read() for m in stored[:at]] + [commit] + [m.read() for m in stored[at:]]
    loaded = fold_commits(NOTHING, messages)
    assert loaded.state == decided
    assert [d.seq for d in loaded.damage] == [100]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: Stored(m.data, m.subject, {}, m.seq), "no Nats-Msg-Id header"),
        (
            lambda m: Stored(m.data, m.subject, {H_MSG_ID: "x"}, m.seq),
            "no Nats-Expected-Last-Subject-Sequence header",
        ),
        (
            lambda m: Stored(m.data, m.subject, {**m.headers, H_EXPECTED: "99"}, m.seq),
            "is not a sequence before",
        ),
        (
            lambda m: Stored(m.data, m.subject, {**m.headers, H_EXPECTED: "²"}, m.seq),
            "is not a sequence before",
        ),
        (
            lambda m: Stored(
                m.data, m.subject, {**m.headers, H_EXPECTED_SUBJECT: m.subject}, m.seq
            ),
            "not checked against the name's history",
        ),
        (lambda m: Stored(b"\xff\x00garbage", m.subject, m.headers, m.seq), "not JSON"),
        (lambda m: Stored(b'{"events": []}', m.subject, m.headers, m.seq), "not a commit"),
        (lambda m: Stored(b"[1, 2]", m.subject, m.headers, m.seq), "not a commit"),
        (
            lambda m: Stored(b'{"events": [7]}', m.subject, m.headers, m.seq),
            "not an event envelope",
        ),
        (
            lambda m: Stored(
                m.data,
                subjects.events_subject(NAMESPACE, "other", UID),
                {**m.headers, H_EXPECTED_SUBJECT: subjects.name_subjects(NAMESPACE, "other")},
                m.seq,
            ),
            "not the subject's",
        ),
        (lambda m: with_payload(m, replicas="many"), "DeploymentReady does not validate: replicas"),
        (lambda m: with_payload(m, replicas="3"), "field replicas holds '3'"),
        (lambda m: with_payload(m, dgdName="x"), "does not validate: dgdName"),
    ],
)
def test_a_message_the_service_would_not_write_is_damaged_with_its_reason(
    change: Any, reason: str
) -> None:
    ready = stored_events([READY], 5)
    commit = change(ready).read()
    assert commit.damage is not None, commit
    assert reason in commit.damage.reason
    assert commit.damage.seq == commit.seq


def test_an_unknown_type_or_newer_schema_is_damaged_not_raised() -> None:
    ready = stored_events([READY], 5)
    for field, value, reason in [
        ("type", "Teleported", "does not validate"),
        ("schemaVersion", 9, "newer than this code"),
    ]:
        raw = json.loads(ready.data)
        raw["events"][0][field] = value
        commit = Stored(json.dumps(raw).encode(), SUBJECT, ready.headers, 5).read()
        assert commit.damage is not None and reason in commit.damage.reason


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(event_type=st.sampled_from([*EVENT_TYPES, "Nope"]), payload=JSON, envelope=JSON)
def test_any_json_in_an_envelope_is_read_without_raising(
    event_type: str, payload: Any, envelope: Any
) -> None:
    ready = json.loads(stored_events([READY], 5).data)["events"][0]
    for item in (envelope, {**ready, "type": event_type, "payload": payload}):
        data = json.dumps({"events": [item]}).encode()
        commit = Stored(data, SUBJECT, headers(5), 5).read()
        if commit.damage is None:  # then every field it has is what the service would write
            (env,) = commit.envelopes
            written = event_payload(env.event)
            assert all(written[key] == value for key, value in env.payload.items())


@settings(max_examples=200, deadline=None)
@given(
    extra=st.dictionaries(
        st.sampled_from([H_MSG_ID, H_EXPECTED, H_EXPECTED_SUBJECT, "Other"]), st.text(max_size=12)
    )
)
def test_any_headers_are_read_without_raising(extra: dict[str, str]) -> None:
    ready = stored_events([READY], 5)
    commit = Stored(ready.data, SUBJECT, {**ready.headers, **extra}, 5).read()
    merged = {**ready.headers, **extra}
    expected = merged[H_EXPECTED]
    sound = (
        merged[H_MSG_ID] != ""
        and expected.isascii()
        and expected.isdigit()
        and int(expected) < 5
        and merged[H_EXPECTED_SUBJECT] == ready.headers[H_EXPECTED_SUBJECT]
    )
    assert (commit.damage is None) == sound, commit.damage


def test_a_payload_nested_too_deep_to_read_back_is_damaged_not_raised() -> None:
    deep: dict[str, Any] = {}
    inner = deep
    for _ in range(900):
        inner["a"] = inner = {}
    created = stored_events([Created(spec={"model": "m"})], 1)
    commit = with_payload(created, spec={"model": "m", "overrides": {"dgd": deep}}).read()
    assert commit.damage is not None and "cannot be read back" in commit.damage.reason


def test_a_subject_that_names_no_dgdr_is_damage_of_no_aggregate() -> None:
    commit = read_commit(b"{}", subject="dgdr.evt.x", headers={}, seq=4)
    assert commit.aggregate == NO_AGGREGATE
    assert commit.damage is not None and "is not dgdr.evt.<namespace>" in commit.damage.reason


def test_an_illegal_transition_is_not_folded_and_later_service_commits_are() -> None:
    stored, before = service_history(history("Pending"))
    commits = [m.read() for m in stored]
    forged = stored_events([DeploymentDeleted(dgd_name="x")], len(stored) + 1).read()
    assert forged.damage is None  # well-formed, with every header: only the fold can tell
    loaded = fold_commits(NOTHING, [*commits, forged])
    assert loaded.state == before and loaded.version == forged.seq
    (damage,) = loaded.damage
    assert damage.seq == forged.seq and "not allowed in state Pending" in damage.reason
    marked = verify_history([*commits, forged])[-1]
    assert marked.damage == damage and not marked.envelopes and marked.raw
    # the service decides a delete on the last good state, expecting the damaged sequence
    command = delete()
    events = decide(loaded.state, command)
    assert not isinstance(events, Rejection)
    deleted = stored_events(events, forged.seq + 1, command_id=command.id).read()
    assert fold_commits(loaded, [deleted]).state.is_terminal


def test_damage_never_creates_or_switches_an_incarnation() -> None:
    stored, decided = service_history(history("Deployed"))
    commits = [m.read() for m in stored]
    other = AggregateId(NAMESPACE, NAME, "forged-uid")
    second = stored_events([Created(spec={"model": "m"})], len(stored) + 1, other).read()
    garbage = read_commit(
        b"x", subject=subjects.events_subject(NAMESPACE, NAME, "x"), headers={}, seq=50
    )
    loaded = fold_commits(NOTHING, [*commits, second, garbage])
    assert (loaded.aggregate, loaded.state, loaded.version) == (AGG, decided, 50)
    assert loaded.damage == ()  # neither is on the live incarnation's subject
    judged = verify_history([*commits, second, garbage])
    assert judged[-2].damage is not None
    assert f"while {UID} is live" in judged[-2].damage.reason
    # and a commit that starts no incarnation is refused on a name with none
    lone = stored_events([READY], 1).read()
    assert fold_commits(NOTHING, [lone]) == Loaded(None, initial_state(), 1)


def test_preview_escapes_and_truncates() -> None:
    assert preview(b"plain") == "plain"
    assert preview(b"\x00\xffa\nb") == "\\x00\\\\xffa\\nb"
    long = preview(b"y" * 1000)
    assert long.startswith("y" * 160) and long.endswith("(1000 bytes)")


def twists(value: Any) -> st.SearchStrategy[Any]:
    """Values that differ from `value` in the ways a coercing validator forgives or not."""
    near: list[Any] = [None, True, 0, 1.0, "", [value], {"a": value}, str(value)]
    if isinstance(value, int) and not isinstance(value, bool):
        near += [float(value), str(value), bool(value), value + 2**64]
    return st.sampled_from(near) | JSON


@functools.cache
def service_envelopes() -> list[dict[str, Any]]:
    """Every envelope the service writes in the histories of `LIVE_VARIANTS`, as stored."""
    return [
        item
        for variant in LIVE_VARIANTS
        for message in service_history(history(variant))[0]
        for item in json.loads(message.data)["events"]
    ]


@st.composite
def service_envelope_changed(draw: st.DrawFn) -> tuple[dict[str, Any], bytes]:
    """An envelope the service wrote with one payload key set to something else, and its
    commit's text."""
    item = copy.deepcopy(draw(st.sampled_from(service_envelopes())))
    payload = item["payload"]
    keys = sorted(WRITTEN_KEYS[item["type"]] | {"type", "parsed", "resolved", "dgd_name", "x"})
    key = draw(st.sampled_from(keys))
    payload[key] = draw(twists(payload.get(key, 1)))
    return item, json.dumps({"events": [item]}).encode()


def _validated_with(hardware: Any) -> tuple[dict[str, Any], bytes]:
    item = copy.deepcopy(next(e for e in service_envelopes() if e["type"] == "Validated"))
    item["payload"]["hardware"] = hardware
    return item, json.dumps({"events": [item]}).encode()


@settings(max_examples=150, deadline=None)
@given(changed=service_envelope_changed())
@example(changed=_validated_with({"": math.inf}))  # not plain text: no fast verdict to compare
def test_the_fast_check_gives_the_full_checks_verdict(
    changed: tuple[dict[str, Any], bytes],
) -> None:
    """For a commit whose text `_envelopes` finds plain (the only one `read_commit` checks the
    fast way), the fast check's verdict is the full check's."""
    item, data = changed
    fast, full = Envelope.from_dict(item), Envelope.from_dict(item)
    _, plain = _envelopes(data)
    verdict = _envelope_problem(fast, AGG, plain=plain)
    assert verdict == _envelope_problem(full, AGG, plain=False)
    commit = read_commit(data, subject=SUBJECT, headers=headers(5), seq=5)
    assert (commit.damage.reason if commit.damage else None) == (verdict and verdict[:MAX_REASON])
    if verdict is None:
        assert fast.event == full.event == commit.envelopes[0].event


def test_a_commit_holding_an_integer_past_64_bits_reads_back_exact() -> None:
    big = 2**64 * 1000 + 7
    created = stored_events([Created(spec={"model": "m", "overrides": {"n": big}})], 1)
    assert str(big).encode() in created.data
    commit = created.read()
    assert commit.damage is None
    assert commit.envelopes[0].payload["spec"]["overrides"]["n"] == big


def test_verifying_and_folding_a_commit_derives_no_view_of_its_events() -> None:
    """The verdict and the status fold read an event's stored fields only (`Envelope.fields`):
    parsing the spec and resolving the hardware (`parsed`, `resolved`) cost several times the
    rest of a rebuild's validation and are derived only when the decider asks for `event`."""
    stored, _ = service_history(history("Deployed"))
    commits = [m.read() for m in stored]
    obj: dict[str, Any] | None = None
    for commit in commits:
        obj, damage = fold_commit(obj, commit)
        assert damage is None
    envelopes = [env for commit in commits for env in commit.envelopes]
    assert obj is not None and obj["status"]["phase"] == "Deployed"
    assert [env.type for env in envelopes if "event" in env.__dict__] == []
    created, validated = commits[0].envelopes
    assert isinstance(created.fields, Created) and created.fields.parsed is None
    assert isinstance(validated.fields, Validated) and validated.fields.resolved is None
    assert created.event.parsed is not None and validated.event.resolved is not None
    for env in envelopes:  # the same stored fields: only the derived views differ
        assert event_payload(env.fields) == event_payload(env.event) == env.payload
