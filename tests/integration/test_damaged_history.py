"""Stored history is trusted but verified, end to end: messages the service did not write, published
by hand on one DGDR's event subject, are never folded, are quarantined once and acknowledged, show
on that DGDR and in its history; every other DGDR keeps working, a delete of the damaged one is
answered, and a rebuild equals the live bucket."""

from __future__ import annotations

import json
from typing import Any

from nats.js import JetStreamContext

from dgdr.app.service import Service
from dgdr.client import DAMAGED, DgdrClient
from events import subjects
from events.integrity import H_EXPECTED, H_EXPECTED_SUBJECT, H_MSG_ID
from events.quarantine import DEAD_LETTER_STREAM, QUARANTINE_PREFIX
from tests.integration.conftest import Running, fast_config, manifest
from tests.support import until

NAME = "victim"


def commit(uid: str, event_type: str, payload: dict[str, Any]) -> bytes:
    envelope = {
        "id": f"forged-{event_type}",
        "type": event_type,
        "schemaVersion": 1,
        "aggregate": {"namespace": "default", "name": NAME, "uid": uid},
        "time": "2026-01-01T00:00:00Z",
        "causationId": "forged",
        "correlationId": None,
        "payload": payload,
    }
    return json.dumps({"events": [envelope]}).encode()


async def forge(js: JetStreamContext, uid: str) -> dict[int, str]:
    """Four messages the service would never write, on the DGDR's own subject: {seq: what}."""
    subject = subjects.events_subject("default", NAME, uid)
    scope = subjects.name_subjects("default", NAME)
    published = {}
    for data, headers, what in [
        (b"\x00\xff garbage {", None, "not JSON"),
        (commit(uid, "DeploymentReady", {"replicas": "many"}), None, "does not validate"),
        (commit(uid, "DeploymentDeleted", {"dgdName": f"{NAME}-dgd"}), {H_MSG_ID: "f"}, H_EXPECTED),
    ]:
        ack = await js.publish(subject, data, headers=headers)
        published[ack.seq] = what
    # well-formed, with every header the service writes (so the server checked it): no edge
    last = (await js.get_last_msg(subjects.EVENTS_STREAM, scope)).seq
    headers = {H_MSG_ID: f"{uid}:forged", H_EXPECTED: str(last), H_EXPECTED_SUBJECT: scope}
    started = commit(uid, "ProfilingStarted", {"generation": 1, "jobName": "x"})
    ack = await js.publish(subject, started, headers=headers)
    published[ack.seq] = "ProfilingStarted is not allowed in state Deployed"
    return published


async def consumers_settled(js: JetStreamContext) -> bool:
    for durable in ("dgdr-projector", "dgdr-reactor"):
        info = await js.consumer_info(subjects.EVENTS_STREAM, durable)
        if info.num_ack_pending or info.num_pending:
            return False
    return True


async def quarantined(js: JetStreamContext) -> dict[str, int]:
    info = await js.stream_info(DEAD_LETTER_STREAM, subjects_filter=f"{QUARANTINE_PREFIX}.>")
    return dict(info.state.subjects or {})


def history_condition(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    conditions = (obj or {}).get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == "HistoryIntact"), None)


async def test_forged_and_garbage_events_are_never_folded_and_break_nothing_else(
    running: Running,
) -> None:
    c: DgdrClient = running.client
    js = c.nc.jetstream()
    assert (await c.apply(manifest(NAME)))["status"] == "accepted"
    assert (await c.apply(manifest("bystander")))["status"] == "accepted"
    deployed = await c.wait(NAME, phase="Deployed", timeout=60)
    await c.wait("bystander", phase="Deployed", timeout=60)

    published = await forge(js, deployed["metadata"]["uid"])
    last = max(published)

    async def shown() -> dict[str, Any] | None:
        obj = await c.get(NAME)
        return obj if obj and obj["metadata"]["resourceVersion"] == str(last) else None

    obj = await until(shown, timeout=30, what="the damage shown on the DGDR")
    assert obj["status"] == {**deployed["status"], "conditions": obj["status"]["conditions"]}
    assert obj["status"]["phase"] == "Deployed" and obj["status"]["dgdName"] == f"{NAME}-dgd"
    condition = history_condition(obj)
    assert condition is not None and condition["status"] == "False"
    assert condition["reason"] == "HistoryDamaged"
    assert f"sequence {last}" in condition["message"]
    assert f"`dgdr history {NAME}`" in condition["message"]

    # every other DGDR keeps working: a new one reaches its phase
    assert (await c.apply(manifest("newcomer")))["status"] == "accepted"
    await c.wait("newcomer", phase="Deployed", timeout=60)

    # the history shows each message as what it is, and nothing was folded from them
    entries = await c.history(NAME)
    damaged = {e["sequence"]: e for e in entries if e["type"] == DAMAGED}
    assert set(damaged) == set(published)
    for seq, what in published.items():
        assert what in damaged[seq]["damaged"], damaged[seq]
        assert damaged[seq]["subject"] == subjects.events_subject(
            "default", NAME, deployed["metadata"]["uid"]
        )
    assert "garbage" in damaged[min(published)]["raw"]

    # recorded once each, acknowledged, nothing redelivered
    await until(lambda: consumers_settled(js), timeout=30, what="no consumer backlog")
    assert await quarantined(js) == {f"{QUARANTINE_PREFIX}.{seq}": 1 for seq in published}
    projector = running.service.projector
    assert projector is not None
    rebuilt, damage = await projector.rebuild_report()
    assert rebuilt == await projector.values()
    assert list(damage) == [subjects.status_key("default", NAME)]
    assert [d.seq for d in damage[subjects.status_key("default", NAME)]] == sorted(published)
    await projector.check_not_ahead()

    # the damaged DGDR can be deleted: decided on its last good state, and answered
    outcome = await c.delete(NAME)
    assert outcome["status"] == "accepted" and outcome["events"] == ["Deleted"]
    await until(lambda: _gone(c), timeout=30, what=f"{NAME} deleted")
    # a new incarnation of the name starts with an intact history
    assert (await c.apply(manifest(NAME)))["status"] == "accepted"
    again = await c.wait(NAME, phase="Deployed", timeout=60)
    assert history_condition(again) is None
    await until(lambda: consumers_settled(js), timeout=30, what="no consumer backlog")
    assert await projector.rebuild() == await projector.values()


async def _gone(c: DgdrClient) -> bool:
    return await c.get(NAME) is None


async def test_a_restart_that_replays_damaged_history_gives_the_same_status(
    running: Running,
) -> None:
    c: DgdrClient = running.client
    js = c.nc.jetstream()
    assert (await c.apply(manifest(NAME)))["status"] == "accepted"
    deployed = await c.wait(NAME, phase="Deployed", timeout=60)
    uid = deployed["metadata"]["uid"]
    garbage = await js.publish(subjects.events_subject("default", NAME, uid), b"\xfe\xff")
    await js.publish("dgdr.evt.nameless", b"{}")
    await until(lambda: consumers_settled(js), timeout=30, what="no consumer backlog")
    before = await c.get(NAME)
    assert history_condition(before) is not None

    # the projection is thrown away and replayed from the first event by a new service
    await running.service.stop()
    await js.delete_consumer(subjects.EVENTS_STREAM, "dgdr-projector")
    await js.purge_stream(f"KV_{subjects.STATUS_BUCKET}")
    service = Service(fast_config(running.server.url))
    await service.start()  # start-up checks pass on a store holding damaged messages
    try:
        await until(lambda: consumers_settled(js), timeout=30, what="the replay")
        replayed = await until(lambda: c.get(NAME), timeout=30, what="the replayed status")
        assert replayed == before
        assert replayed["metadata"]["resourceVersion"] == str(garbage.seq)
        assert await quarantined(js) == {
            f"{QUARANTINE_PREFIX}.{garbage.seq}": 1,
            f"{QUARANTINE_PREFIX}.{garbage.seq + 1}": 1,
        }
        assert (await c.apply(manifest("after-restart")))["status"] == "accepted"
        await c.wait("after-restart", phase="Deployed", timeout=60)
        assert service.projector is not None
        assert await service.projector.rebuild() == await service.projector.values()
    finally:
        await service.stop()
