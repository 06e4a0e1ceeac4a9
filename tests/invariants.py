"""The store-wide invariants a fault must never break, checked against a quiescent NATS.

Used by the cluster test (tests/integration/test_nats_cluster.py) and the chaos suite
(bench/chaos.py). `check(nc, expected)` reads the whole `DGDR_EVENTS` stream raw (so a message that
does not decode is reported as damage, not raised) and returns a `Report`:

- contiguous per-name history: each valid commit's expected-last-subject-sequence equals the
  sequence of the previous message stored on that name (0 for the first), a damaged one included
  (it holds its sequence: events.integrity);
- no event id stored twice;
- only machine edges: every event, folded per incarnation (uid) from `Absent`, is an edge of
  `dgdr.domain.machine.EDGES`;
- the KV bucket equals `Projector.rebuild()` for every name whose history is intact;
- every DGDR in `expected` is in its phase (None = absent), judged by `phase_accepted`;
- the simulated cluster, judged by the documented contract (README, "delete"): a DGD is kept when
  its DGDR is deleted (labels and the `dgdr.nvidia.com/uid` annotation, no owner reference), so a
  DGD whose DGDR is gone is no violation. What must hold: exactly one DGD per Deployed DGDR; no two
  DGDs annotated with the same live incarnation's uid, and none annotated with a live uid but
  labelled with another DGDR's name; every DGD's uid is an incarnation its labelled name recorded;
- no consumer backlog: the service's durable consumers have nothing pending or unacknowledged.

`quiescent(js)` waits for that last one and for every replica of the service's streams to be
current (`replicas_current`) before a check reads the store: a replica catching up after a
restart would serve its readers an older state.

`phase_accepted(expected, have, documented_conflict)`: the phase must be the expected one, with one
exception the product documents (README "delete" and `dgdr.domain.decider._decide_observation`): a
name re-created after an earlier incarnation of it was deployed finds the kept DGD, owned by that
earlier uid, under the DGD name it would create; it is never adopted, so the new incarnation ends
`Failed` with reason `DeploymentConflict` instead of `Deployed`. `documented_conflict` is true
only when exactly that is what the store and the cluster show (`conflict_with_kept_dgd`).

A name with a stored message that is not a valid commit (`decode_message` reports its damage) or
that breaks the machine is *damaged*: counted, excluded from the phase, projection and cluster checks
(the service quarantines such messages and marks the DGDR), and not a violation by itself, since the
chaos fuzzer writes such messages on purpose. Everything else that does
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
from dgdr.domain.model import DeploymentFailed, DeploymentStarted
from dgdr.domain.target import LABEL_NAME, LABEL_NAMESPACE, OWNER_UID
from events import subjects as s
from events.envelope import Commit
from events.jetstream import JetStreamEventStore, decode_message
from events.transient import TRANSIENT_ERRORS
from projections.projector import Projector

DURABLES = (
    (s.REQUESTS_STREAM, "dgdr-service"),
    (s.EVENTS_STREAM, "dgdr-projector"),
    (s.EVENTS_STREAM, "dgdr-reactor"),
    (s.JOBS_STREAM, "dgdr-profilers"),
)


@dataclass
class Incarnation:
    """What one uid of a name recorded that the cluster checks need."""

    uid: str
    dgd_name: str | None = None  # from DeploymentStarted
    failed_reason: str | None = None  # the last DeploymentFailed's reason


@dataclass
class Report:
    commits: int = 0
    events: int = 0
    damaged: set[str] = field(default_factory=set)  # "<ns>.<name>" keys
    violations: list[str] = field(default_factory=list)
    # "<ns>.<name>" -> its incarnations in the order they first appear in the store
    incarnations: dict[str, list[Incarnation]] = field(default_factory=dict)
    documented_conflicts: int = 0  # DGDRs Failed with DeploymentConflict on a kept DGD

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
        commit: Commit = decode_message(msg, seq)  # never raises: damage is a field
        if commit.damage is not None:
            report.damaged.add(key)
            last_seq[key] = seq  # a damaged message still holds its sequence (events.integrity)
            continue
        report.commits += 1
        expected = commit.expected
        if expected != last_seq.get(key, 0):
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
            _note(report, key, env.aggregate.uid, env.event)
    for event_id, n in ids.items():
        if n > 1:
            report.violate(f"event id {event_id} is stored {n} times")
    return {k: v for k, v in last_state.items() if k not in report.damaged}


def _note(report: Report, key: str, uid: str, event: object) -> None:
    known = report.incarnations.setdefault(key, [])
    mine = next((i for i in known if i.uid == uid), None)
    if mine is None:
        mine = Incarnation(uid)
        known.append(mine)
    if isinstance(event, DeploymentStarted):
        mine.dgd_name = event.dgd_name
    elif isinstance(event, DeploymentFailed):
        mine.failed_reason = event.reason


def _labels(dgd: dict[str, Any]) -> tuple[str, str]:
    labels = dgd["metadata"].get("labels") or {}
    return str(labels.get(LABEL_NAMESPACE, "")), str(labels.get(LABEL_NAME, ""))


def _owner(dgd: dict[str, Any]) -> str:
    return str((dgd["metadata"].get("annotations") or {}).get(OWNER_UID, ""))


def conflict_with_kept_dgd(key: str, uid: str, report: Report, dgds: list[dict[str, Any]]) -> bool:
    """True when incarnation `uid` of `key` failed with DeploymentConflict because the DGD it would
    create is the one an earlier incarnation of the same name deployed and left behind: the DGD
    of that name exists, is labelled with this DGDR's name, and is owned by an earlier uid of it
    that started a deployment of that very DGD."""
    known = report.incarnations.get(key, [])
    mine = next((i for i in known if i.uid == uid), None)
    if mine is None or mine.failed_reason != "DeploymentConflict" or mine.dgd_name is None:
        return False
    earlier = {i.uid for i in known[: known.index(mine)] if i.dgd_name == mine.dgd_name}
    namespace, name = s.parse_status_key(key)
    kept = [
        d
        for d in dgds
        if d["metadata"].get("name") == mine.dgd_name
        and d["metadata"].get("namespace", namespace) == namespace
    ]
    return len(kept) == 1 and _owner(kept[0]) in earlier and _labels(kept[0]) == (namespace, name)


def phase_accepted(expected: str | None, have: str | None, documented_conflict: bool) -> bool:
    """The phase a DGDR shows is the one its requests imply, or Failed in the one documented case
    of a Deployed expectation: the DGD name is held by a kept DGD of an earlier incarnation."""
    if have == expected:
        return True
    return expected == "Deployed" and have == "Failed" and documented_conflict


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


def check_cluster(
    dgds: list[dict[str, Any]], objects: dict[str, dict[str, Any]], report: Report
) -> None:
    """The simulated cluster against the documented contract (see the module docstring)."""
    by_owner: Counter[str] = Counter(_owner(d) for d in dgds)
    live = {obj["metadata"]["uid"]: key for key, obj in objects.items()}
    for dgd in dgds:
        owner, name = _owner(dgd), dgd["metadata"].get("name")
        labelled = s.status_key(*_labels(dgd))
        if owner in live and live[owner] != labelled:
            report.violate(
                f"DGD {name} carries the uid of {live[owner]} but is labelled {labelled}"
            )
        recorded = {i.uid for i in report.incarnations.get(labelled, [])}
        if labelled not in report.damaged and owner not in recorded:
            report.violate(f"DGD {name}: uid {owner[:8]} is no incarnation {labelled} recorded")
    for key, obj in objects.items():
        if key in report.damaged:
            continue
        uid = obj["metadata"]["uid"]
        if by_owner[uid] > 1:
            report.violate(f"{key}: {by_owner[uid]} DGDs carry its uid")
        elif obj["status"].get("phase") == "Deployed" and by_owner[uid] != 1:
            report.violate(f"{key}: Deployed with {by_owner[uid]} DGDs")


def _failure_reason(report: Report, key: str, obj: dict[str, Any] | None) -> str:
    if obj is None:
        return ""
    mine = [i for i in report.incarnations.get(key, []) if i.uid == obj["metadata"]["uid"]]
    return f" ({mine[0].failed_reason})" if mine and mine[0].failed_reason else ""


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


REPLICATED = (
    s.EVENTS_STREAM,
    s.REQUESTS_STREAM,
    s.JOBS_STREAM,
    f"KV_{s.STATUS_BUCKET}",
    f"KV_{s.SIMULATED_CLUSTER_BUCKET}",
)


async def replicas_current(js: JetStreamContext) -> bool:
    """Every stream of the service has a leader and no replica lagging behind it (true at once
    on a single server). A reader may be served by any replica: an ordered consumer (a list, a
    rebuild) is placed on one of them, so a replica still catching up after a restart answers
    with an older state, which a check must not take for the store's."""
    for stream in REPLICATED:
        try:
            cluster = (await js.stream_info(stream)).cluster
        except NotFoundError:
            continue
        except TRANSIENT_ERRORS:
            return False
        if cluster is None or not cluster.replicas:
            continue
        if not cluster.leader or any(not p.current or (p.lag or 0) > 0 for p in cluster.replicas):
            return False
    return True


async def quiescent(js: JetStreamContext, timeout: float = 60.0) -> bool:
    """Wait until the service's consumers have no backlog and every replica is current (True),
    or the deadline passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        probe = Report()
        await check_backlog(js, probe)
        if not probe.violations and await replicas_current(js):
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
    dgds = await SimulatedCluster(js).list()
    for key, phase in sorted(expected.items()):
        if key in report.damaged:
            continue
        obj = objects.get(key)
        have = obj["status"].get("phase") if obj else None
        conflict = obj is not None and conflict_with_kept_dgd(
            key, obj["metadata"]["uid"], report, dgds
        )
        if not phase_accepted(phase, have, conflict):
            reason = _failure_reason(report, key, obj)
            report.violate(f"{key}: phase {have}{reason} but its requests imply {phase}")
        elif have != phase:
            report.documented_conflicts += 1
    check_cluster(dgds, objects, report)
    await check_backlog(js, report)
    return report
