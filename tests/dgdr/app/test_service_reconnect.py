"""The service's NATS connection comes back after the server closes it, however it does: an
operator's kick (nats-py reconnects by itself) or a protocol `-ERR` (nats-py closes the client for
good, and the service starts every part again on a new connection)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog

from dgdr.app.service import Service, ServiceConfig
from dgdr.client import DgdrClient
from events.connection import ConnectOptions
from tests import support
from tests.dgdr.app.sysnats import SystemAccountNats


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SystemAccountNats]:
    server = await SystemAccountNats(tmp_path / "nats").start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def service(server: SystemAccountNats) -> AsyncIterator[Service]:
    service = Service(
        ServiceConfig(connect=ConnectOptions(url=server.url), rollout_delay=0.2, ack_wait=2.0)
    )
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def applied(url: str, name: str) -> float:
    """Seconds until an apply of `name` is answered `accepted` (a fresh client each time)."""
    started = time.monotonic()
    async with DgdrClient(ConnectOptions(url=url)) as client:
        outcome = await client.apply(support.manifest(name), timeout=20)
    assert outcome["status"] == "accepted", outcome
    return time.monotonic() - started


async def test_a_kicked_connection_comes_back_and_requests_are_answered(
    server: SystemAccountNats, service: Service
) -> None:
    await applied(server.url, "before")
    assert service.nc is not None and service.nc.client_id is not None
    kicked = service.nc.client_id
    started = time.monotonic()
    await server.kick(kicked)
    async with asyncio.timeout(30):
        await support.until(lambda: service.nc is not None and service.nc.client_id != kicked)
        await applied(server.url, "after")
    print(f"kick → next apply answered in {time.monotonic() - started:.2f} s")


async def test_a_connection_closed_by_a_server_error_is_replaced(
    server: SystemAccountNats, service: Service
) -> None:
    await applied(server.url, "before")
    async with DgdrClient(ConnectOptions(url=server.url)) as client:
        settled = await client.wait("before", phase="Deployed", timeout=20)
    assert settled["status"]["phase"] == "Deployed"
    # Only then: a server that closes a connection with more of its data unread resets it, the
    # -ERR is lost with the reset and nats-py reconnects instead of closing. While the service
    # is still working on "before", its next messages can follow the bad line.
    closed = service.nc
    assert closed is not None
    with structlog.testing.capture_logs() as logs:
        # A subject longer than the server's 4,096-byte control line: the server answers -ERR
        # and closes the connection, and nats-py closes the client for good.
        started = time.monotonic()
        await closed.publish("dgdr.res." + "x" * 5000, b"")
        async with asyncio.timeout(30):
            await support.until(lambda: closed.is_closed, what="the client to be closed")
            await applied(server.url, "after")
        print(f"-ERR → next apply answered in {time.monotonic() - started:.2f} s")
    assert service.nc is not closed and service.nc is not None and service.nc.is_connected
    assert "control line" in str(closed.last_error)
    assert [e["event"] for e in logs if e["event"].startswith("NATS connection closed")] == [
        "NATS connection closed; reconnecting"
    ]
    assert not [e for e in logs if e["event"] == "consumer not ready; retrying"]
