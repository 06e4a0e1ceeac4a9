"""A durable JetStream pull-consumer loop shared by every part of the service.

Owns: creating (or binding to) a durable pull consumer that any number of service replicas share,
fetching in batches, running the handler for each message, and acknowledging. Messages of one batch
that share a key run in order; different keys run concurrently. A handler that raises gets the message
redelivered after `retry_delay` (nak with delay), so a transient failure is retried and never lost; the
loop itself only stops when cancelled. A handler that wants to drop a message acks or terms it itself
and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from nats.errors import ConnectionClosedError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

log = structlog.get_logger("dgdr.consumer")

Handler = Callable[[Any], Awaitable[None]]


async def run_consumer(
    js: JetStreamContext,
    *,
    stream: str,
    durable: str,
    subject: str,
    handler: Handler,
    key: Callable[[Any], str] = lambda msg: str(msg.subject),
    batch: int = 256,
    ack_wait: float = 10.0,
    retry_delay: float = 0.5,
    ready: asyncio.Event | None = None,
) -> None:
    config = ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait,
        max_deliver=-1,
        max_ack_pending=10_000,
        filter_subject=subject,
    )
    sub = await js.pull_subscribe(subject, durable=durable, stream=stream, config=config)
    if ready is not None:
        ready.set()

    async def one(msg: Any) -> None:
        try:
            await handler(msg)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "handler failed; message will be redelivered", durable=durable, subject=msg.subject
            )
            with contextlib.suppress(Exception):
                await msg.nak(delay=retry_delay)
            return
        with contextlib.suppress(Exception):
            await msg.ack()

    async def in_order(msgs: list[Any]) -> None:
        for msg in msgs:
            await one(msg)

    while True:
        try:
            msgs = await sub.fetch(batch, timeout=1.0)
        except (NatsTimeoutError, TimeoutError):
            continue
        except ConnectionClosedError:
            return
        except Exception as exc:  # a reconnect in progress, a consumer being recreated...
            log.warning("fetch failed; retrying", durable=durable, error=str(exc))
            await asyncio.sleep(0.5)
            continue
        groups: dict[str, list[Any]] = defaultdict(list)
        for msg in msgs:
            groups[key(msg)].append(msg)
        await asyncio.gather(*(in_order(g) for g in groups.values()))
