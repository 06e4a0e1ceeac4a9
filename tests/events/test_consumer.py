"""The continuous pull consumer against a real nats-server: order per key, retries, sharing."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import nats
from nats.js.api import StreamConfig

from events.consumer import run_consumer
from events.server import EmbeddedNatsServer


async def run_case(
    nats_server: EmbeddedNatsServer, replicas: tuple[str, ...]
) -> tuple[dict[str, list[int]], dict[str, int], set[int]]:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="T", subjects=["t.>"]))
    for i in range(60):
        await js.publish(f"t.k{i % 6}", str(i).encode())

    seen: dict[str, list[int]] = defaultdict(list)
    handled_by: dict[str, int] = defaultdict(int)
    failed_once: set[int] = set()
    done = asyncio.Event()

    def handler(tag: str) -> Any:
        async def handle(msg: Any) -> None:
            n = int(msg.data)
            if n % 13 == 0 and n not in failed_once:
                failed_once.add(n)
                raise RuntimeError("transient")  # redelivered, not lost
            await asyncio.sleep(0.001)
            seen[msg.subject].append(n)
            handled_by[tag] += 1
            if sum(len(v) for v in seen.values()) == 60:
                done.set()

        return handle

    tasks = [
        asyncio.create_task(
            run_consumer(
                nc,
                js,
                stream="T",
                durable="shared",
                subject="t.>",
                handler=handler(tag),
                retry_delay=0.05,
                max_inflight=8,
            )
        )
        for tag in replicas
    ]
    await asyncio.wait_for(done.wait(), 30)
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks, timeout=5)
    await nc.close()
    return seen, handled_by, failed_once


async def test_one_consumer_keeps_per_key_order_and_retries_failures(
    nats_server: EmbeddedNatsServer,
) -> None:
    seen, _, failed_once = await run_case(nats_server, ("a",))
    assert sorted(n for v in seen.values() for n in v) == list(range(60)), "lost or duplicated"
    assert failed_once == {0, 13, 26, 39, 52}
    for subject, numbers in seen.items():
        without_retried = [n for n in numbers if n not in failed_once]
        assert without_retried == sorted(without_retried), f"{subject} out of order: {numbers}"


async def test_replicas_share_one_durable_consumer_without_loss_or_duplicates(
    nats_server: EmbeddedNatsServer,
) -> None:
    """Across replicas order per key is not promised (OCC and idempotent handlers cover it)."""
    seen, handled_by, failed_once = await run_case(nats_server, ("a", "b"))
    assert sorted(n for v in seen.values() for n in v) == list(range(60)), "lost or duplicated"
    assert failed_once == {0, 13, 26, 39, 52}
    assert sum(handled_by.values()) == 60 and set(handled_by) == {"a", "b"}
