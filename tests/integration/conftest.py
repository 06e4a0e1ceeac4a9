"""A running service (embedded nats-server + Service in this event loop) and a connected client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from dgdr.app.service import Service, ServiceConfig
from dgdr.client import DgdrClient
from events.connection import ConnectOptions
from events.server import EmbeddedNatsServer
from tests import support


@dataclass
class Running:
    server: EmbeddedNatsServer
    service: Service
    client: DgdrClient


def manifest(name: str, **spec: Any) -> dict[str, Any]:
    return support.manifest(name, **spec)


def fast_config(url: str) -> ServiceConfig:
    return ServiceConfig(connect=ConnectOptions(url=url), rollout_delay=0.2, ack_wait=2.0)


@pytest.fixture
async def running(nats_server: EmbeddedNatsServer) -> AsyncIterator[Running]:
    service = Service(fast_config(nats_server.url))
    await service.start()
    client = DgdrClient(ConnectOptions(url=nats_server.url))
    await client.connect()
    try:
        yield Running(nats_server, service, client)
    finally:
        await client.close()
        await service.stop()
