"""The store-wide invariants a fault must never break, checked against a quiescent NATS.

Used by the cluster test (tests/integration/test_nats_cluster.py) and the chaos suite
(bench/chaos.py). `check(nc, expected)` reads the whole `DGDR_EVENTS` stream raw (so a message that
does not decode is reported as damage, not raised) and returns a `Report`:

- contiguous per-name history: each commit's expected-last-subject-sequence equals the sequence of
  the previous commit on that name (0 for the first);
- no event id stored twice;
- only machine edges: every event, folded per incarnation (uid) from `Absent`, is an edge of
  `dgdr.domain.machine.EDGES`;
- the KV bucket equals `Projector.rebuild()` for every name whose history is intact;
- every DGDR in `expected` is in its phase (None = absent), and the simulated cluster holds exactly
  one live DGD per Deployed DGDR, owned by it, and none whose DGDR is gone;
- no consumer backlog: the service's durable consumers have nothing pending or unacknowledged.

A name with a commit that does not decode or breaks the machine is *damaged*: counted, excluded from
the other checks (other helpers' work makes the service quarantine such histories), and not a
violation by itself, since the chaos fuzzer writes such commits on purpose. Everything else that does
not hold is a violation, described in one line.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from dgdr.app.simcluster import SimulatedCluster
from dgdr.domain import machine
from dgdr.domain.errors import DgdrError
from dgdr.domain.target import OWNER_UID
from events import subjects as s
from events.envelope import Commit
from events.jetstream import JetStreamEventStore, decode_message
from projections.projector import Projector

DURABLES = (
    (s.REQUESTS_STREAM, "dgdr-service"),
    (s.EVENTS_STREAM, "dgdr-projector"),
    (s.EVENTS_STREAM, "dgdr-reactor"),
    (s.JOBS_STREAM, "dgdr-profilers"),
)


@dataclass
class Report:
    commits: int = 0
    events: int = 0
    damaged: set[str] = field(default_factory=set)  # "<ns>.<name>" keys
    violations: list[str] = field(default_factory=list)

    def violate(self, message: str) -> None:
        self.violations.append(message)


async def raw_events(js: JetStreamContext) -> list[Any]:
    """Every message of DGDR_EVENTS, in order (an ordered consumer; nothing is decoded here)."""
    last = int((await js.stream_info(s.EVENTS_STREAM)).state.last_seq)
    if last == 0:
        return []
    out: list[Any] = []
    sub = await js.subscribe(
        f"{s.EVENTS_PREFIX}.>",
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    try:
        while True:
            msg = await sub.next_msg(timeout=10)
            out.append(msg)
            if int(msg.metadata.sequence.stream) >= last:
                return out
    finally:
        await sub.unsubscribe()


def _key_of_subject(subject: str) -> str:
    namespace, name, _ = s.parse_events_subject(subject)
    return s.status_key(namespace, name)


def check_history(messages: list[Any], report: Report) -> dict[str, str]:
    """Contiguity, unique ids and machine edges; returns each intact name's last machine state."""
    last_seq: dict[str, int] = {}
    states: dict[tuple[str, str], str] = {}
    last_state: dict[str, str] = {}
    ids: Counter[str] = Counter()
    for msg in messages:
        seq = int(msg.metadata.sequence.stream)
        try:
            key = _key_of_subject(msg.subject)
        except (ValueError, IndexError):
            report.violate(f"seq {seq}: subject {msg.subject!r} is not an events subject")
            continue
        try:
            commit: Commit = decode_message(msg, seq)
        except (DgdrError, ValueError, KeyError, TypeError):
            report.damaged.add(key)
            continue
        report.commits += 1
        expected = commit.expected
        if key not in report.damaged and expected != last_seq.get(key, 0):
            report.violate(
                f"{key}: commit {seq} expected {expected} but the name's previous commit is "
                f"{last_seq.get(key, 0)}"
            )
        last_seq[key] = seq
        for env in commit.envelopes:
            report.events += 1
            ids[env.id] += 1
            incarnation = (key, env.aggregate.uid)
            state = states.get(incarnation, machine.ABSENT)
            try:
                trigger = env.event.trigger
            except Exception:  # a payload the domain model refuses
                report.damaged.add(key)
                continue
            new = machine.next_state(state, trigger)
            if new is None:
                report.damaged.add(key)
                continue
            states[incarnation] = new
            last_state[key] = new
    for event_id, n in ids.items():
        if n > 1:
            report.violate(f"event id {event_id} is stored {n} times")
    return {k: v for k, v in last_state.items() if k not in report.damaged}


async def check_projection(nc: Client, report: Report) -> dict[str, dict[str, Any]]:
    """KV equals a rebuild for every intact name; returns the KV objects."""
    js = nc.jetstream()
    kv = await js.key_value(s.STATUS_BUCKET)
    projector = Projector(js, kv, JetStreamEventStore(nc, js))
    values = await projector.values()
    try:
        rebuilt = await projector.rebuild()
    except Exception as exc:  # a rebuild that cannot get past a damaged commit
        report.violate(f"Projector.rebuild raised {type(exc).__name__}: {str(exc)[:160]}")
        rebuilt = None
    if rebuilt is not None:
        for key in sorted((set(values) | set(rebuilt)) - report.damaged):
            if values.get(key) != rebuilt.get(key):
                report.violate(f"{key}: KV differs from a rebuild of its history")
    return {k: json.loads(v) for k, v in values.items()}


async def check_cluster(
    js: JetStreamContext, objects: dict[str, dict[str, Any]], report: Report
) -> None:
    """One live DGD per Deployed DGDR, owned by it; no live DGD whose DGDR is gone (Kubernetes
    would garbage-collect it through its owner reference)."""
    dgds = await SimulatedCluster(js).list()
    by_owner: Counter[str] = Counter(
        d["metadata"].get("annotations", {}).get(OWNER_UID, "") for d in dgds
    )
    live = {obj["metadata"]["uid"] for obj in objects.values()}
    for dgd in dgds:
        owner = dgd["metadata"].get("annotations", {}).get(OWNER_UID, "")
        if owner not in live:
            report.violate(
                f"DGD {dgd['metadata'].get('name')} outlived its DGDR (owner uid {owner[:8]})"
            )
    for key, obj in objects.items():
        if key in report.damaged:
            continue
        uid = obj["metadata"]["uid"]
        if obj["status"].get("phase") == "Deployed" and by_owner[uid] != 1:
            report.violate(f"{key}: Deployed with {by_owner[uid]} DGDs")


async def check_backlog(js: JetStreamContext, report: Report) -> None:
    for stream, durable in DURABLES:
        try:
            info = await js.consumer_info(stream, durable)
        except NotFoundError:
            continue
        if info.num_pending or info.num_ack_pending:
            report.violate(
                f"consumer {durable}: {info.num_pending} pending, "
                f"{info.num_ack_pending} unacknowledged"
            )


async def quiescent(js: JetStreamContext, timeout: float = 60.0) -> bool:
    """Wait until the service's consumers have no backlog (True) or the deadline passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        probe = Report()
        await check_backlog(js, probe)
        if not probe.violations:
            return True
        await asyncio.sleep(0.2)
    return False


async def check(nc: Client, expected: dict[str, str | None]) -> Report:
    """Every invariant; `expected` maps `<ns>.<name>` to the phase its spec implies (None: absent)."""
    js = nc.jetstream()
    report = Report()
    messages = await raw_events(js)
    check_history(messages, report)
    objects = await check_projection(nc, report)
    for key, phase in sorted(expected.items()):
        if key in report.damaged:
            continue
        have = objects.get(key, {}).get("status", {}).get("phase") if key in objects else None
        if have != phase:
            report.violate(f"{key}: phase {have} but its spec implies {phase}")
    await check_cluster(js, objects, report)
    await check_backlog(js, report)
    return report
