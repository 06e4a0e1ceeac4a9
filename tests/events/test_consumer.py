"""The continuous pull consumer against a real nats-server: order per key, retries, sharing, and
what it does with a durable consumer stored with another configuration."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import nats
import pytest
import structlog
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig

from dgdr.app.service import Service, ServiceConfig
from dgdr.domain.errors import IncompatibleConsumer
from events import subjects
from events.connection import ConnectOptions
from events.consumer import run_consumer
from events.jetstream import ensure_layout
from events.server import EmbeddedNatsServer
from tests.support import until


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


def stored_config(**changes: Any) -> ConsumerConfig:
    """What `run_consumer(durable="d", subject="t.>")` asks for, with `changes`."""
    wanted = ConsumerConfig(
        durable_name="d",
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=10.0,
        max_deliver=-1,
        max_ack_pending=10_000,
        filter_subject="t.>",
    )
    return wanted.evolve(**changes)


@pytest.mark.timeout(30)
async def test_a_stored_consumer_that_differs_is_updated_when_jetstream_allows(
    nats_server: EmbeddedNatsServer,
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="T", subjects=["t.>"]))
    await js.add_consumer(
        "T", stored_config(ack_wait=60.0, max_ack_pending=5, filter_subject="t.a")
    )
    await js.publish("t.b", b"only the wanted filter delivers this")
    handled: list[bytes] = []

    async def handle(msg: Any) -> None:
        handled.append(msg.data)

    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(
            run_consumer(nc, js, stream="T", durable="d", subject="t.>", handler=handle)
        )
        try:
            await until(lambda: handled, what="the message under the updated filter")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    config = (await js.consumer_info("T", "d")).config
    assert (config.ack_wait, config.max_ack_pending, config.filter_subject) == (10.0, 10_000, "t.>")
    (warning,) = [e for e in logs if e["event"] == "consumer configuration differs; updating it"]
    assert warning["log_level"] == "warning"
    for field in ("ack_wait", "max_ack_pending", "filter_subject"):
        assert field in warning["differences"]
    await nc.close()


@pytest.mark.timeout(30)
async def test_a_stored_consumer_jetstream_cannot_update_stops_the_consumer_with_the_fix(
    nats_server: EmbeddedNatsServer,
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="T", subjects=["t.>"]))
    await js.add_consumer("T", stored_config(deliver_policy=DeliverPolicy.NEW))

    async def handle(msg: Any) -> None:
        raise AssertionError("nothing may be consumed with the wrong configuration")

    with pytest.raises(IncompatibleConsumer) as err:
        await run_consumer(nc, js, stream="T", durable="d", subject="t.>", handler=handle)
    message = str(err.value)
    assert "'d'" in message and "'T'" in message
    assert "deliver_policy is 'new', wants 'all'" in message
    assert "nats consumer rm T d" in message
    assert (await js.consumer_info("T", "d")).config.deliver_policy == DeliverPolicy.NEW
    await nc.close()


@pytest.mark.timeout(60)
async def test_the_service_refuses_to_start_on_an_incompatible_consumer(
    nats_server: EmbeddedNatsServer,
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_layout(js)
    await js.add_consumer(
        subjects.EVENTS_STREAM,
        ConsumerConfig(
            durable_name="dgdr-reactor",
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.NEW,
            filter_subject=f"{subjects.EVENTS_PREFIX}.>",
        ),
    )
    await nc.close()
    service = Service(ServiceConfig(connect=ConnectOptions(url=nats_server.url)))
    try:
        with pytest.raises(IncompatibleConsumer, match=r"dgdr-reactor.*deliver_policy"):
            await service.start()
    finally:
        await service.stop()


async def test_a_consumer_on_a_client_closed_for_good_ends_instead_of_spinning(
    nats_server: EmbeddedNatsServer,
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="C", subjects=["c.>"]))

    async def handle(msg: Any) -> None:
        pass

    ready = asyncio.Event()
    task = asyncio.create_task(
        run_consumer(nc, js, stream="C", durable="c", subject="c.>", handler=handle, ready=ready)
    )
    async with asyncio.timeout(10):
        await ready.wait()
    with structlog.testing.capture_logs() as logs:
        # A protocol error: nats-server answers -ERR and closes; nats-py closes the client.
        await nc.publish("c." + "x" * 5000, b"")
        async with asyncio.timeout(10):
            with pytest.raises(nats.errors.ConnectionClosedError):
                await task
    assert nc.is_closed
    assert not [e for e in logs if e["event"] == "consumer not ready; retrying"]


async def test_a_handler_running_longer_than_the_ack_wait_is_not_run_twice(
    nats_server: EmbeddedNatsServer,
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="SLOW", subjects=["slow.>"]))
    await js.publish("slow.a", b"1")
    deliveries: list[int] = []
    release = asyncio.Event()
    finished = asyncio.Event()

    async def handle(msg: Any) -> None:
        deliveries.append(int(msg.metadata.num_delivered))
        await release.wait()
        finished.set()

    task = asyncio.create_task(
        run_consumer(
            nc, js, stream="SLOW", durable="slow", subject="slow.>", handler=handle, ack_wait=1.0
        )
    )
    try:
        await until(lambda: deliveries, 10, "the first delivery")
        # three ack waits pass with the handler still running: marked in progress, not redelivered
        await asyncio.sleep(3.0)
        release.set()
        async with asyncio.timeout(10):
            await finished.wait()

        async def acked() -> Any:
            info = await js.consumer_info("SLOW", "slow")
            return None if info.num_ack_pending else info

        info = await until(acked, 10, "the ack")
        assert info.num_redelivered == 0 and deliveries == [1]
    finally:
        task.cancel()
        await asyncio.wait([task], timeout=5)
        await nc.close()


@pytest.mark.timeout(30)
async def test_messages_whose_work_is_done_are_acknowledged_without_the_handler(
    nats_server: EmbeddedNatsServer,
) -> None:
    """`done`: a message it says is done (and no message of its key running) is acknowledged
    at once; every other one runs the handler as before."""
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="T", subjects=["t.>"]))
    for i in range(40):
        await js.publish(f"t.k{i % 4}", str(i).encode())
    handled: list[int] = []

    async def handle(msg: Any) -> None:
        handled.append(int(msg.data))

    task = asyncio.create_task(
        run_consumer(
            nc,
            js,
            stream="T",
            durable="d",
            subject="t.>",
            handler=handle,
            done=lambda msg: int(msg.data) % 2 == 0,
        )
    )
    try:

        async def all_acknowledged() -> bool:
            try:
                info = await js.consumer_info("T", "d")
            except Exception:
                return False
            return info.ack_floor.stream_seq == 40 and not info.num_ack_pending

        await until(all_acknowledged, 20, "every message acknowledged")
    finally:
        task.cancel()
        await asyncio.wait([task], timeout=5)
        await nc.close()
    assert sorted(handled) == list(range(1, 40, 2))
