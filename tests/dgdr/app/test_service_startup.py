"""The service's start-up rides out a NATS that dies while it starts: it retries on a new
connection (as the supervisor does after a closed connection) and comes up once NATS is back; a
NATS that never answered the first connect stays a one-line `ServerUnavailable`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nats.js import JetStreamContext

from dgdr.app.service import Service, ServiceConfig
from dgdr.app.simcluster import BUCKET, SimulatedCluster
from dgdr.domain.errors import ServerUnavailable
from dgdr.domain.target import Observer
from events.connection import ConnectOptions
from events.jetstream import bucket_keys
from events.server import EmbeddedNatsServer, free_port
from tests.dgdr.app.test_service_reconnect import applied

DOWN_FOR = 6.0


class DiesOnFirstStart(SimulatedCluster):
    """A simulated cluster whose first start stops the NATS server (the last step of the
    service's start-up) and reads its bucket's keys while it is down, as `dgdr up --no-embedded`
    did when its NATS died (a nats timeout in the start's `bucket_keys`); NATS is back after
    `DOWN_FOR` seconds, longer than a JetStream request's timeout."""

    def __init__(self, js: JetStreamContext, server: EmbeddedNatsServer, bounced: list[Any]):
        super().__init__(js, rollout_delay=0.2)
        self.server, self.bounced = server, bounced

    async def start(self, observe: Observer | None = None) -> None:
        if not self.bounced:
            await self.server.stop()
            self.bounced.append(asyncio.create_task(self._back_later()))
            await bucket_keys(self.js, BUCKET)
        await super().start(observe)

    async def _back_later(self) -> None:
        await asyncio.sleep(DOWN_FOR)
        await self.server.start()


@pytest.mark.timeout(90)
async def test_nats_dying_during_start_up_is_retried_until_it_is_back(
    nats_server: EmbeddedNatsServer,
) -> None:
    bounced: list[Any] = []
    service = Service(
        ServiceConfig(
            connect=ConnectOptions(url=nats_server.url),
            rollout_delay=0.2,
            target=lambda js: DiesOnFirstStart(js, nats_server, bounced),
        )
    )
    async with asyncio.timeout(60):
        await service.start()
    try:
        assert bounced, "NATS was not stopped during the start"
        await bounced[0]
        await applied(nats_server.url, "after-bounce")
    finally:
        await service.stop()


async def test_nats_that_never_answers_is_one_server_unavailable() -> None:
    service = Service(ServiceConfig(connect=ConnectOptions(url=f"nats://127.0.0.1:{free_port()}")))
    with pytest.raises(ServerUnavailable, match="cannot reach NATS"):
        await service.start()
