"""Event envelope, commit codec and upcasting.

Owns: the stored shape of an event (id, type, schema version, aggregate, time, causation and
correlation ids, payload), the commit (all events of one decision, stored as one message so a decision
is atomic), their JSON codec, and the upcasters that turn payloads of older schema versions into the
current one on read. Upcasting a schema version newer than this code knows raises `UnknownEvent`;
reading a stored message (`events.integrity.read_commit`) turns that, and every other reason a
message is not a valid commit, into a damaged `Commit` that is shown and never folded.
An envelope's domain event is decoded on demand, once: `fields` (its stored fields, what the
integrity check and the status fold read) or `event` (with the derived views the decider reads).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, get_args

from dgdr.domain.errors import UnknownEvent
from dgdr.domain.model import EVENT_ADAPTER, Event, event_from_payload, event_payload
from events import codec

# Current schema version per event type; a type not listed is at version 1.
SCHEMA_VERSIONS: dict[str, int] = {"ProfilingProgressed": 2}

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def _progress_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    # v1 (first prototype) stored the sub-phase as "phase"; v2 names it "subPhase" as the status does.
    out = {k: v for k, v in payload.items() if k != "phase"}
    out["subPhase"] = payload["phase"]
    return out


UPCASTERS: dict[tuple[str, int], Upcaster] = {("ProfilingProgressed", 1): _progress_v1_to_v2}


def _views_unset() -> dict[str, dict[str, None]]:
    """Per event type, its derived views (model fields never stored: a spec's `parsed`,
    `Validated.resolved`) set to None: validating a payload with them set skips deriving them."""
    (union, *_) = get_args(Event)
    return {
        cls.model_fields["type"].default: {
            name: None for name, field in cls.model_fields.items() if field.exclude
        }
        for cls in get_args(union)
    }


VIEWS_UNSET = _views_unset()

_ID_NAMESPACE = uuid.UUID("6f0d6c1e-3b7a-4c55-9a59-0c1d2f3e4a5b")


@dataclass(frozen=True, order=True)
class AggregateId:
    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name} ({self.uid})"


@dataclass(frozen=True)
class Envelope:
    id: str
    type: str
    schema_version: int
    aggregate: AggregateId
    time: str
    causation_id: str | None
    correlation_id: str | None
    payload: dict[str, Any]

    @cached_property
    def event(self) -> Event:
        """The domain event, decoded once per envelope (events are immutable)."""
        return event_from_payload(self.type, self.payload)

    @cached_property
    def fields(self) -> Event:
        """The domain event with its stored fields only: the derived views (`VIEWS_UNSET`) are
        None, not derived (parsing a spec costs several times validating the payload). All the
        status fold and the lifecycle machine read; `event` itself when that is decoded already."""
        event = self.__dict__.get("event")
        if event is not None:
            return event  # type: ignore[no-any-return]
        return self._validate_fields(strict=False)

    def strict_fields(self) -> Event:
        """`fields` validated strictly, then kept as `fields`: every field must hold its type as
        such ("3" is not 3, 3.0 is not 3, true is not 1). Raises pydantic's `ValidationError` when
        one does not (`fields` and `event` may still coerce it)."""
        event = self._validate_fields(strict=True)
        self.__dict__["fields"] = event  # where the cached property `fields` keeps its value
        return event

    def _validate_fields(self, *, strict: bool) -> Event:
        data = {**self.payload, **VIEWS_UNSET.get(self.type, {}), "type": self.type}
        return EVENT_ADAPTER.validate_python(data, strict=strict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "schemaVersion": self.schema_version,
            "aggregate": {
                "namespace": self.aggregate.namespace,
                "name": self.aggregate.name,
                "uid": self.aggregate.uid,
            },
            "time": self.time,
            "causationId": self.causation_id,
            "correlationId": self.correlation_id,
            "payload": self.payload,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Envelope:
        agg = data["aggregate"]
        event_type, version, payload = data["type"], int(data["schemaVersion"]), data["payload"]
        payload = upcast(event_type, version, payload)
        return cls(
            id=data["id"],
            type=event_type,
            schema_version=SCHEMA_VERSIONS.get(event_type, 1),
            aggregate=AggregateId(agg["namespace"], agg["name"], agg["uid"]),
            time=data["time"],
            causation_id=data.get("causationId"),
            correlation_id=data.get("correlationId"),
            payload=payload,
        )


def upcast(event_type: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
    current = SCHEMA_VERSIONS.get(event_type, 1)
    if version > current:
        raise UnknownEvent(
            f"{event_type} schema version {version} is newer than this code "
            f"knows ({current}); upgrade dgdr"
        )
    while version < current:
        step = UPCASTERS.get((event_type, version))
        if step is None:
            raise UnknownEvent(f"no upcaster for {event_type} v{version}")
        payload, version = step(payload), version + 1
    return payload


def wrap(
    events: list[Event],
    aggregate: AggregateId,
    *,
    command_id: str,
    at: str,
    correlation_id: str | None,
    decision_id: str | None = None,
) -> list[Envelope]:
    """Envelopes for one decision, caused by `command_id`. Event ids derive from `decision_id`
    (the command id unless given), so a retried decision produces the same ids (and a replay after
    a crash the same history); the command handler names a decision by its command and the
    version it was decided on, because a command id may recur (an observation seen again).
    Each envelope's `event` is the decided event itself, not decoded again from its payload."""
    seed = decision_id or command_id
    envelopes = []
    for i, e in enumerate(events):
        env = Envelope(
            id=str(uuid.uuid5(_ID_NAMESPACE, f"{aggregate.uid}/{seed}/{i}")),
            type=e.type,
            schema_version=SCHEMA_VERSIONS.get(e.type, 1),
            aggregate=aggregate,
            time=at,
            causation_id=command_id,
            correlation_id=correlation_id,
            payload=event_payload(e),
        )
        env.__dict__["event"] = e  # its `event`, as decoding `payload` would give it
        envelopes.append(env)
    return envelopes


@dataclass(frozen=True)
class Damage:
    """Why the message at stream sequence `seq`, stored on `subject`, is not folded
    (`events.integrity` says what a valid commit is)."""

    seq: int
    subject: str
    reason: str

    def __str__(self) -> str:
        return f"sequence {self.seq} on {self.subject}: {self.reason}"


@dataclass(frozen=True)
class Commit:
    """One stored decision: its events, the stream sequence it got, and the sequence it expected.

    A damaged one (`damage` set) is a stored message that is not a valid commit: it has no
    envelopes, `aggregate` is the one its subject names, and `raw` holds the stored bytes."""

    aggregate: AggregateId
    envelopes: list[Envelope]
    seq: int = 0
    expected: int = 0
    commit_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    damage: Damage | None = None
    raw: bytes = field(default=b"", repr=False)

    def encode(self) -> bytes:
        """The stored bytes: canonical JSON (`events.codec.canonical`)."""
        return codec.canonical({"events": [e.to_dict() for e in self.envelopes]})
