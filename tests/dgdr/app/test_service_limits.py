"""Nothing a client sends stops the service: every request over a limit is answered `invalid` or,
when no outcome subject can carry its id, dead-lettered; a request that keeps failing is answered
`rejected` (InternalError) and dead-lettered after a few deliveries, not retried forever.

The requests are sent with a raw NATS client (DgdrClient refuses them before sending), against a
real nats-server whose max payload (8 MB) lets a 2 MB request into the requests stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
import structlog
from nats.aio.client import Client

from dgdr.app.intake import (
    DEAD_LETTER_HEADERS_DROPPED,
    DEAD_LETTER_REASON,
    DEAD_LETTER_TRUNCATED,
    dead_letter,
    failure_action,
)
from dgdr.app.service import DEAD_LETTER_STREAM, Service, ServiceConfig
from dgdr.app.simcluster import SimulatedCluster
from dgdr.client import DgdrClient
from dgdr.domain.limits import MAX_JSON_DEPTH, MAX_REQUEST_ID_CHARS
from events import subjects as s
from events.connection import ConnectOptions
from tests import support
from tests.dgdr.app.sysnats import SystemAccountNats


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SystemAccountNats]:
    server = await SystemAccountNats(tmp_path / "nats", max_payload="8MB").start()
    try:
        yield server
    finally:
        await server.stop()


def config(url: str, **overrides: Any) -> ServiceConfig:
    return ServiceConfig(
        connect=ConnectOptions(url=url), rollout_delay=0.2, ack_wait=2.0, **overrides
    )


@pytest.fixture
async def raw(server: SystemAccountNats) -> AsyncIterator[Client]:
    nc = await nats.connect(server.url)
    try:
        yield nc
    finally:
        await nc.close()


async def request(nc: Client, name: str, body: bytes, request_id: str) -> dict[str, Any]:
    """Publish a request as it is, and wait for its outcome."""
    sub = await nc.subscribe(s.result_subject(request_id), max_msgs=1)
    await nc.jetstream().publish(
        s.request_subject("default", name), body, headers={"Nats-Msg-Id": request_id}, timeout=5
    )
    msg = await sub.next_msg(timeout=20)
    outcome: dict[str, Any] = json.loads(msg.data)
    return outcome


async def dead_letters(nc: Client) -> list[Any]:
    js = nc.jetstream()
    info = await js.stream_info(DEAD_LETTER_STREAM)
    return [
        await js.get_msg(DEAD_LETTER_STREAM, seq)
        for seq in range(info.state.first_seq, info.state.last_seq + 1)
        if info.state.messages
    ]


def with_dgd(spec_of_dgd: str) -> bytes:
    """A manifest whose `spec.overrides.dgd.spec` is the given JSON text."""
    head = '{"apiVersion": "nvidia.com/v1beta1", "kind": "DynamoGraphDeployment", "spec": '
    dgd = head + spec_of_dgd + "}"
    text = json.dumps(support.manifest("big")).replace(
        '"spec": {', '"spec": {"overrides": {"dgd": ' + dgd + "}, ", 1
    )
    return text.encode()


async def test_bad_requests_are_answered_or_dead_lettered_and_a_later_apply_is_answered(
    server: SystemAccountNats, raw: Client
) -> None:
    service = Service(config(server.url))
    await service.start()
    try:
        connection = service.nc
        manifest = json.dumps(support.manifest("long-id")).encode()
        await raw.jetstream().publish(
            s.request_subject("default", "long-id"), manifest, headers={"Nats-Msg-Id": "x" * 5000}
        )

        deep = '{"a":' * 1000 + "1" + "}" * 1000
        outcome = await request(raw, "deep", with_dgd(deep).replace(b"big", b"deep"), "deep-1")
        assert outcome["status"] == "invalid" and outcome["reason"] == "LimitExceeded"
        [error] = outcome["errors"]
        assert error["field"] == "spec.overrides.dgd"
        assert f"the limit is {MAX_JSON_DEPTH}" in error["message"]

        huge = with_dgd(json.dumps({"blob": "y" * 2_000_000}))
        outcome = await request(raw, "big", huge, "big-1")
        assert outcome["status"] == "invalid" and outcome["reason"] == "LimitExceeded"
        fields = {e["field"]: e["message"] for e in outcome["errors"]}
        assert f"the manifest is {len(huge)} bytes" in fields["spec"]
        assert "the limit is 262144 bytes" in fields["spec"]
        assert "spec.overrides" in fields

        # Not JSON, with a JetStream directive that fits the requests stream but would make the
        # dead letter's own publish fail if it were copied.
        sub = await raw.subscribe(s.result_subject("steered-1"), max_msgs=1)
        await raw.jetstream().publish(
            s.request_subject("default", "steered"),
            b"not json",
            headers={"Nats-Msg-Id": "steered-1", "Nats-Expected-Stream": s.REQUESTS_STREAM},
        )
        outcome = json.loads((await sub.next_msg(timeout=20)).data)
        assert outcome["status"] == "rejected" and outcome["reason"] == "MalformedRequest"

        async with DgdrClient(ConnectOptions(url=server.url)) as client:
            later = await client.apply(support.manifest("normal"), timeout=20)
        assert later["status"] == "accepted"

        long_id, steered = await dead_letters(raw)
        assert long_id.headers is not None and steered.headers is not None
        reason = long_id.headers[DEAD_LETTER_REASON]
        assert f"is 5000 characters; the limit is {MAX_REQUEST_ID_CHARS}" in reason
        assert long_id.headers["Dgdr-Original-Subject"] == "dgdr.req.default.long-id"
        assert json.loads(long_id.data) == support.manifest("long-id")
        assert "not JSON" in steered.headers[DEAD_LETTER_REASON]
        assert "Nats-Expected-Stream" not in steered.headers and steered.data == b"not json"
        assert service.nc is connection and not connection.is_closed  # never dropped
    finally:
        await service.stop()


async def test_a_uid_that_would_make_the_event_subject_too_long_is_refused(
    server: SystemAccountNats, raw: Client
) -> None:
    service = Service(config(server.url))
    await service.start()
    try:
        connection = service.nc
        for n, uid in enumerate(("u" * 5000, "a.b", "")):
            manifest = support.manifest("uid")
            manifest["metadata"]["uid"] = uid
            outcome = await request(raw, "uid", json.dumps(manifest).encode(), f"uid-{n}")
            assert outcome["status"] == "rejected", uid
            assert [e["field"] for e in outcome["errors"]] == ["metadata.uid"]
        manifest = support.manifest("uid")
        manifest["metadata"]["uid"] = "5f0c2d7e-5b8a-4c1e-9f2a-0d6b7c8e9a10"
        outcome = await request(raw, "uid", json.dumps(manifest).encode(), "uid-ok")
        assert outcome["status"] == "accepted" and outcome["uid"] == manifest["metadata"]["uid"]
        assert service.nc is connection and not connection.is_closed
    finally:
        await service.stop()


class BrokenCluster(SimulatedCluster):
    """A cluster whose GPU discovery fails on every call: a bug the user cannot fix."""

    async def discover_hardware(self) -> dict[str, Any]:
        raise ZeroDivisionError("a bug in hardware discovery")


async def test_a_request_failing_on_every_delivery_is_rejected_and_dead_lettered_once(
    server: SystemAccountNats, raw: Client
) -> None:
    service = Service(
        config(server.url, max_request_deliveries=3, target=lambda js: BrokenCluster(js))
    )
    await service.start()
    try:
        body = json.dumps(support.manifest("doomed")).encode()  # no vramMb: discovery runs
        with structlog.testing.capture_logs() as logs:
            async with asyncio.timeout(30):
                outcome = await request(raw, "doomed", body, "doomed-1")
        assert outcome["status"] == "rejected" and outcome["reason"] == "InternalError"
        assert "3 times" in outcome["message"] and "ZeroDivisionError" in outcome["message"]
        retried = [e for e in logs if e["event"] == "request failed; it will be redelivered"]
        assert [e["attempt"] for e in retried] == [1, 2]
        assert all("exc_info" not in e for e in retried)
        [gave_up] = [e for e in logs if e.get("exc_info")]
        assert gave_up["attempts"] == 3
        [letter] = await dead_letters(raw)
        assert letter.headers is not None
        assert letter.headers[DEAD_LETTER_REASON] == (
            "InternalError after 3 deliveries: ZeroDivisionError: a bug in hardware discovery"
        )
        assert letter.headers["Dgdr-Request-Id"] == "doomed-1"
    finally:
        await service.stop()


def test_a_dead_letter_always_fits_the_max_payload() -> None:
    original = {"Nats-Msg-Id": "r" * 5000, "Nats-Expected-Stream": "X", "Trace": "t" * 2000}
    headers, data = dead_letter(original, "dgdr.req.a.b", "why\nnot", b"d" * 5000, 4096)
    assert not [k for k in headers if k.startswith("Nats-")]
    assert headers[DEAD_LETTER_REASON] == "why not"
    assert headers["Dgdr-Request-Id"].endswith("…") and len(headers["Dgdr-Request-Id"]) == 300
    assert "Trace" not in headers and DEAD_LETTER_HEADERS_DROPPED in headers  # over a quarter
    assert headers[DEAD_LETTER_TRUNCATED] == "5000"
    size = len(data) + sum(len(k.encode()) + len(v.encode()) + 4 for k, v in headers.items()) + 12
    assert size <= 4096
    small, body = dead_letter({"Trace": "t"}, "dgdr.req.a.b", "why", b"{}", 1024 * 1024)
    assert small["Trace"] == "t" and body == b"{}" and DEAD_LETTER_TRUNCATED not in small


def test_transient_failures_are_retried_longer_than_bugs() -> None:
    limits = {"max_deliveries": 5, "max_transient": 20}
    bug, outage = ValueError("bug"), nats.errors.ConnectionClosedError()
    assert failure_action(bug, 4, **limits) == "retry"
    assert failure_action(bug, 5, **limits) == "give_up"
    assert failure_action(outage, 5, **limits) == "retry"
    assert failure_action(outage, 20, **limits) == "give_up"
    assert failure_action(TimeoutError(), 19, **limits) == "retry"
