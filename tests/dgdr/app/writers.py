"""The service's writers wired in the test process, on a real nats-server: request intake and
(optionally) the reactor consuming, their commits written through to the status
(`Projector.writing`), no projector consumer unless a test starts one with `Parts.consume`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import nats

from dgdr.app.handler import CommandHandler
from dgdr.app.reactors import Reactor
from dgdr.app.request_handler import RequestHandler
from dgdr.app.simcluster import SimulatedCluster
from events import subjects as s
from events.consumer import run_consumer
from events.jetstream import JetStreamEventStore, ensure_layout
from events.server import EmbeddedNatsServer
from projections.projector import Projector


@dataclass
class Parts:
    nc: Any
    js: Any
    kv: Any
    store: JetStreamEventStore
    handler: CommandHandler
    projector: Projector
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def consume(
        self,
        stream: str,
        durable: str,
        prefix: str,
        handler: Callable[[Any], Awaitable[None]],
        done: Callable[[Any], bool] | None = None,
    ) -> None:
        """Run durable consumer `durable` of `prefix.>` until the service's block ends."""
        consumer = run_consumer(
            self.nc,
            self.js,
            stream=stream,
            durable=durable,
            subject=f"{prefix}.>",
            handler=handler,
            done=done,
        )
        self.tasks.append(asyncio.create_task(consumer))


@contextlib.asynccontextmanager
async def service(server: EmbeddedNatsServer, *, reactor: bool) -> AsyncIterator[Parts]:
    """Request intake (and the reactor, with `reactor`) consuming, their commits written
    through to the status; no projector consumer."""
    nc = await nats.connect(server.url)
    parts: Parts | None = None
    try:
        js = nc.jetstream()
        kv = await ensure_layout(js)
        store = JetStreamEventStore(nc, js)
        handler = CommandHandler(store)
        projector = Projector(js, kv, store)
        cluster = SimulatedCluster(js)
        requests = RequestHandler(
            nc,
            js,
            handler,
            cluster,
            model_dirs=(),
            max_deliveries=5,
            max_transient_deliveries=20,
            projector=projector,
        )
        parts = Parts(nc, js, kv, store, handler, projector)
        parts.consume(s.REQUESTS_STREAM, "dgdr-service", s.REQUESTS_PREFIX, requests.on_message)
        if reactor:
            react = Reactor(handler, js, cluster, projector=projector).on_message
            parts.consume(s.EVENTS_STREAM, "dgdr-reactor", s.EVENTS_PREFIX, react)
        yield parts
    finally:
        tasks = parts.tasks if parts is not None else []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await nc.close()
