"""The client refuses what the service would refuse for its limits, before sending anything."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dgdr.client import DgdrClient, check_request
from dgdr.domain.limits import MAX_JSON_DEPTH, MAX_REQUEST_ID_CHARS
from events import subjects as s
from events.connection import ConnectOptions
from events.jetstream import ensure_layout
from events.server import EmbeddedNatsServer
from tests import support

MAX_PAYLOAD = 1024 * 1024


def deep_spec(levels: int) -> dict[str, Any]:
    inner: dict[str, Any] = {}
    cursor = inner
    for _ in range(levels):
        cursor["a"] = {}
        cursor = cursor["a"]
    dgd = {"apiVersion": "nvidia.com/v1beta1", "kind": "DynamoGraphDeployment", "spec": inner}
    return support.manifest("deep", overrides={"dgd": dgd})


def test_a_request_within_the_limits_is_encoded_once() -> None:
    body = support.manifest("fine")
    refused, data = check_request(body, "id-1", MAX_PAYLOAD)
    assert refused is None and json.loads(data) == body


def test_each_limit_is_named_in_an_outcome() -> None:
    refused, _ = check_request(support.manifest("x"), "i" * 300, MAX_PAYLOAD)
    assert refused is not None and refused["status"] == "rejected"
    assert refused["errors"][0]["field"] == "requestId"
    assert f"limit is {MAX_REQUEST_ID_CHARS}" in refused["message"]

    refused, _ = check_request(deep_spec(1000), "id-2", MAX_PAYLOAD)  # json.dumps would recurse
    assert refused is not None and refused["status"] == "invalid"
    assert refused["reason"] == "LimitExceeded"
    [error] = refused["errors"]
    assert error["field"] == "spec.overrides.dgd"
    assert f"the limit is {MAX_JSON_DEPTH}" in error["message"]

    big = support.manifest("big", model="m" * 300_000)
    refused, _ = check_request(big, "id-3", MAX_PAYLOAD)
    assert refused is not None and [e["field"] for e in refused["errors"]] == ["spec"]
    refused, _ = check_request(big, "id-3", 4 * MAX_PAYLOAD)  # the cap is 256 KiB anyway
    assert refused is not None


@pytest.mark.timeout(30)
async def test_the_client_sends_nothing_over_a_limit(nats_server: EmbeddedNatsServer) -> None:
    async with DgdrClient(ConnectOptions(url=nats_server.url)) as client:
        js = client.nc.jetstream()
        await ensure_layout(js)  # no service: an outcome can only come from the client
        outcome = await client.apply(deep_spec(MAX_JSON_DEPTH + 1), timeout=1)
        assert outcome["status"] == "invalid" and outcome["reason"] == "LimitExceeded"
        outcome = await client.apply(support.manifest("x"), request_id="with space", timeout=1)
        assert outcome["status"] == "rejected"
        outcome = await client.apply(support.manifest("n" * 2100), timeout=1)
        assert outcome["status"] == "rejected"
        assert outcome["errors"][0]["field"] == "metadata.name"
        assert await client.get("n" * 2100) is None
        assert (await js.stream_info(s.REQUESTS_STREAM)).state.messages == 0


@pytest.mark.timeout(30)
async def test_connect_replaces_a_connection_the_server_closed(
    nats_server: EmbeddedNatsServer,
) -> None:
    async with DgdrClient(ConnectOptions(url=nats_server.url)) as client:
        await ensure_layout(client.nc.jetstream())
        closed = client.nc
        await closed.publish("x" * 5000, b"")  # a protocol error: the server closes, -ERR
        await support.until(lambda: closed.is_closed, what="the client to be closed")
        await client.connect()
        assert client.nc is not closed and client.nc.is_connected
        assert await client.get("nothing") is None
