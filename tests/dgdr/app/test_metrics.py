"""Prometheus metrics and probes (`dgdr.app.metrics`), scraped over HTTP as Prometheus would.

In process: a service with a metrics address follows a DGDR to Deployed and its /metrics show it
(commands, appends, phases, profiling, the consumers as controllers); /readyz is 503 while NATS is
down; a redelivered message and a failing informer handler are counted; with the emulated cluster,
the Kubernetes adapter's work queue is measured. As a user: `dgdr up --metrics-addr` serves them
and /readyz, and a bad or busy address is one line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dgdr.app.metrics import Metrics, MetricsServer, parse_address
from dgdr.app.service import Service, ServiceConfig
from dgdr.client import DgdrClient
from events.connection import ConnectOptions, connect
from events.consumer import run_consumer
from events.server import EmbeddedNatsServer, free_port
from k8s.informer import ObjectQueues
from k8s.runner import ClusterOptions, KubernetesSide
from tests.support import manifest, until

ROOT = Path(__file__).resolve().parents[3]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, metric: str, /, **labels: str) -> float:
    return samples.get((metric, frozenset(labels.items())), 0.0)


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


async def scrape(base: str) -> Samples:
    status, text = await get(f"{base}/metrics")
    assert status == 200
    return parse(text)


@pytest.fixture
async def metered(nats_server: EmbeddedNatsServer) -> AsyncIterator[Service]:
    service = Service(
        ServiceConfig(
            connect=ConnectOptions(url=nats_server.url),
            rollout_delay=0.2,
            ack_wait=2.0,
            metrics_addr=("127.0.0.1", 0),
        )
    )
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def test_a_deployed_dgdr_shows_in_the_metrics(
    metered: Service, nats_server: EmbeddedNatsServer
) -> None:
    base = metered.metrics_url
    assert base is not None
    assert await get(f"{base}/readyz") == (200, "ok")
    assert await get(f"{base}/healthz") == (200, "ok")
    async with DgdrClient(ConnectOptions(url=nats_server.url)) as client:
        outcome = await client.apply(manifest("metered"))
        assert outcome["status"] == "accepted"
        await client.wait("metered", phase="Deployed", timeout=30)

    async def deployed_shown() -> Samples | None:
        samples = await scrape(base)
        return samples if value(samples, "dgdr_dgdrs", phase="Deployed") == 1 else None

    samples = await until(deployed_shown, 15, "the phase gauge to show one Deployed DGDR")
    assert value(samples, "dgdr_dgdrs", phase="Pending") == 0
    assert value(samples, "dgdr_commands_total", verb="Apply", outcome="accepted") >= 1
    assert value(samples, "dgdr_commands_total", verb="StartProfiling", outcome="accepted") >= 1
    assert value(samples, "dgdr_event_append_duration_seconds_count", outcome="stored") >= 1
    assert value(samples, "dgdr_projection_delay_seconds_count") >= 1
    assert (
        value(
            samples, "dgdr_profiling_duration_seconds_count", strategy="rapid", outcome="succeeded"
        )
        == 1
    )
    for durable in ("dgdr-service", "dgdr-projector", "dgdr-reactor", "dgdr-profilers"):
        reconciled = value(
            samples, "controller_runtime_reconcile_total", controller=durable, result="success"
        )
        assert reconciled >= 1, durable
        assert value(samples, "workqueue_adds_total", name=durable) >= reconciled

    async def lag_sampled() -> bool:
        samples = await scrape(base)
        return ("dgdr_projector_lag_events", frozenset()) in samples and (
            "workqueue_depth",
            frozenset({("name", "dgdr-projector")}),
        ) in samples

    await until(lag_sampled, 10, "the projector's backlog to be sampled")


async def test_readyz_is_503_while_nats_is_down(
    metered: Service, nats_server: EmbeddedNatsServer
) -> None:
    base = metered.metrics_url
    assert await get(f"{base}/readyz") == (200, "ok")
    await nats_server.stop()
    try:

        async def not_ready() -> bool:
            status, _ = await get(f"{base}/readyz")
            return status == 503

        await until(not_ready, 20, "/readyz to answer 503 with NATS down")
        assert (await get(f"{base}/healthz"))[0] == 200
    finally:
        await nats_server.start()

    async def ready() -> bool:
        return (await get(f"{base}/readyz"))[0] == 200

    await until(ready, 30, "/readyz to answer 200 once NATS is back")


async def test_a_redelivered_message_is_a_retry_and_a_failure_an_error(
    nats_server: EmbeddedNatsServer,
) -> None:
    metrics = Metrics()
    nc = await connect(ConnectOptions(url=nats_server.url))
    js = nc.jetstream()
    await js.add_stream(name="METERED", subjects=["metered.>"])
    failed_once: list[int] = []
    done = asyncio.Event()

    async def flaky(msg: Any) -> None:
        if not failed_once:
            failed_once.append(1)
            raise RuntimeError("first delivery fails")
        done.set()

    consumer = asyncio.create_task(
        run_consumer(
            nc,
            js,
            stream="METERED",
            durable="metered",
            subject="metered.>",
            handler=flaky,
            retry_delay=0.05,
            observer=metrics,
        )
    )
    try:
        await js.publish("metered.one", b"x")
        async with asyncio.timeout(20):
            await done.wait()
    finally:
        consumer.cancel()
        with contextlib.suppress(BaseException):
            await consumer
        await nc.close()
    samples = parse(_exposition(metrics))
    assert value(samples, "workqueue_adds_total", name="metered") == 2
    assert value(samples, "workqueue_retries_total", name="metered") == 1
    assert value(samples, "controller_runtime_reconcile_errors_total", controller="metered") == 1
    assert (
        value(samples, "controller_runtime_reconcile_total", controller="metered", result="error")
        == 1
    )


async def test_informer_queue_depth_and_reconcile_errors() -> None:
    metrics = Metrics()
    release = asyncio.Event()
    handled: list[str] = []

    async def handler(kind: str, obj: dict[str, Any]) -> None:
        await release.wait()
        handled.append(obj["metadata"]["name"])
        if obj["metadata"]["name"] == "broken":
            raise RuntimeError("cannot reconcile")

    queues = ObjectQueues(handler, "things", max_concurrent=1, observer=metrics)
    for name in ("a", "b", "broken", "b"):  # the second b merges into the waiting one
        queues.submit("ADDED", {"metadata": {"name": name, "namespace": "ns", "uid": name}})
    await until(lambda: len(queues.waiting) == 2, 5, "one report to be taken")
    samples = parse(_exposition(metrics))
    assert value(samples, "workqueue_depth", name="things") == 2
    assert value(samples, "workqueue_adds_total", name="things") == 3
    release.set()
    await until(lambda: len(handled) == 3, 5, "every report to be handled")
    await until(lambda: not queues.workers, 5, "the queue to drain")
    samples = parse(_exposition(metrics))
    assert value(samples, "workqueue_depth", name="things") == 0
    assert value(samples, "controller_runtime_reconcile_errors_total", controller="things") == 1
    assert (
        value(samples, "controller_runtime_reconcile_total", controller="things", result="success")
        == 2
    )
    await queues.close()


def _exposition(metrics: Metrics) -> str:
    from prometheus_client.exposition import generate_latest

    return generate_latest(metrics.registry).decode()


@pytest.mark.parametrize(
    ("text", "address"),
    [(":8080", ("0.0.0.0", 8080)), ("127.0.0.1:0", ("127.0.0.1", 0)), ("[::1]:9", ("::1", 9))],
)
def test_metrics_addresses(text: str, address: tuple[str, int]) -> None:
    assert parse_address(text) == address


async def test_a_busy_address_is_one_line_naming_the_option() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = MetricsServer(Metrics(), lambda: True)
        with pytest.raises(Exception, match=f"--metrics-addr 127.0.0.1:{port}") as caught:
            await server.start("127.0.0.1", port)
        assert "\n" not in str(caught.value)


# ------------------------------------------------------------------------------ as a user


async def dgdr(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dgdr", *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_a_bad_metrics_address_is_refused_before_anything_starts() -> None:
    code, err = await dgdr("up", "--metrics-addr", "8080")
    assert code == 2 and "--metrics-addr '8080': use HOST:PORT" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.timeout(90)
async def test_dgdr_up_serves_metrics_and_readyz(tmp_path: Path) -> None:
    metrics_port, data = free_port(), tmp_path / "data"
    base = f"http://127.0.0.1:{metrics_port}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dgdr", "up", "--data-dir", str(data), "--port", str(free_port()),
        "--rollout-delay", "0.2", "--metrics-addr", f"127.0.0.1:{metrics_port}",
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )  # fmt: skip
    try:

        async def ready() -> bool:
            assert proc.returncode is None, "dgdr up exited"
            try:
                return (await get(f"{base}/readyz"))[0] == 200
            except aiohttp.ClientError:
                return False

        await until(ready, 60, "dgdr up to answer /readyz", 0.2)
        client = ConnectOptions.from_context(data / "contexts" / "client.json")
        async with DgdrClient(client) as dgdr_client:
            assert (await dgdr_client.apply(manifest("scraped")))["status"] == "accepted"

        async def deployed() -> Samples | None:
            samples = await scrape(base)
            return samples if value(samples, "dgdr_dgdrs", phase="Deployed") == 1 else None

        samples = await until(deployed, 30, "the phase gauge to show the DGDR Deployed", 0.2)
        assert value(samples, "dgdr_commands_total", verb="Apply", outcome="accepted") >= 1
        assert value(samples, "dgdr_event_append_duration_seconds_count", outcome="stored") >= 1
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        assert proc.stderr is not None
        err = (await asyncio.wait_for(proc.stderr.read(), 30)).decode()
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0, err
    assert f"Prometheus metrics: {base}/metrics" in err
    assert "Traceback" not in err


@pytest.mark.timeout(90)
async def test_the_kubernetes_adapters_work_queue_is_measured(
    tmp_path: Path, nats_server: EmbeddedNatsServer
) -> None:
    """As `dgdr up --cluster emulated --metrics-addr` wires it: the adapter started with the
    service's metrics as its observer."""
    side = KubernetesSide(ClusterOptions(mode="emulated", dgd_ready_delay=0.2))
    await side.open(tmp_path)
    nats = ConnectOptions(url=nats_server.url)
    service = Service(
        ServiceConfig(
            connect=nats,
            rollout_delay=0.2,
            ack_wait=2.0,
            target=side.target,
            metrics_addr=("127.0.0.1", 0),
        )
    )
    try:
        await service.start()
        await side.start_adapter(nats, observer=service.metrics)
        base = service.metrics_url
        assert base is not None
        await side.emulator.store.create(
            "nvidia.com", "v1beta1", "dynamographdeploymentrequests", "default", manifest("kube")
        )
        queue = "dynamographdeploymentrequests"

        async def deployed() -> Samples | None:
            samples = await scrape(base)
            done = value(samples, "dgdr_dgdrs", phase="Deployed") == 1
            return samples if done else None

        samples = await until(deployed, 40, "the DGDR created in Kubernetes to be Deployed", 0.1)
        assert value(samples, "workqueue_adds_total", name=queue) >= 1
        assert (
            value(samples, "controller_runtime_reconcile_total", controller=queue, result="success")
            >= 1
        )
        assert ("workqueue_depth", frozenset({("name", queue)})) in samples
    finally:
        await side.close()
        await service.stop()
