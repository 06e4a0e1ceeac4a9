"""Prometheus metrics and probes of the dgdr service (`dgdr up --metrics-addr HOST:PORT`).

Owns `Metrics`, which implements every component's observer (`events.jetstream.AppendObserver`,
`events.consumer.ConsumerObserver`, `projections.projector.ProjectionObserver`,
`dgdr.app.handler.CommandObserver`, `dgdr.app.reactors.ProfilingObserver`,
`k8s.informer.WorkQueueObserver`) with prometheus-client, samples what no component reports as it
happens (consumer backlogs, DGDRs per phase), and `MetricsServer`, which serves `/metrics`,
`/healthz` and `/readyz` over HTTP, as controller-runtime's manager serves its own.

Names follow controller-runtime and client-go's work queue where dgdr has the same thing: each
durable NATS consumer and the Kubernetes adapter's DGDR informer is a controller (label
`controller`) with a work queue (label `name`): `controller_runtime_reconcile_total{result}`,
`controller_runtime_reconcile_errors_total`, `controller_runtime_reconcile_time_seconds`,
`workqueue_depth` (messages not yet delivered / reports waiting), `workqueue_adds_total`
(deliveries / reports queued) and `workqueue_retries_total` (redeliveries). The rest is `dgdr_*`:
commands by kind and outcome, event append latency, projector lag (events and seconds), DGDRs per
phase (from a watch of the status bucket: every DGDR, whichever replica handled it) and profiling
duration (of the runs this process's profiling worker made).

Failure semantics: metrics never stop or slow the service. A sample that fails (NATS briefly away)
is logged at debug and tried again at the next interval; the gauges keep their last values.
`/readyz` answers 503 until the service has started and whenever its NATS connection is down;
`/healthz` answers 200 while the process's event loop runs. An address that cannot be bound is a
one-line `ConfigurationError` naming `--metrics-addr`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter as Tally
from collections.abc import Callable, Iterable

import structlog
from aiohttp import web
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from dgdr.domain.errors import ConfigurationError
from dgdr.domain.phases import PHASES

log = structlog.get_logger("dgdr.app.metrics")

PROJECTOR_DURABLE = "dgdr-projector"
SAMPLE_INTERVAL = 2.0  # seconds between samples of the consumers' backlogs
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PROFILING_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` (every interface) or `[IPv6]:PORT` → (host, port); `ValueError`
    with what is wrong otherwise."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"{text!r}: use HOST:PORT, e.g. 127.0.0.1:8080 or :8080")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"{text!r}: port {port} is not in 0-65535")
    host = host.removeprefix("[").removesuffix("]")
    return host or "0.0.0.0", port


class Metrics:
    """Every observer of the service's parts, as Prometheus metrics in one registry."""

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series
        self.registry = registry = CollectorRegistry()
        self.reconciles = Counter(
            "controller_runtime_reconcile_total",
            "Handler runs per controller (NATS consumer or Kubernetes informer), by result",
            ["controller", "result"],
            registry=registry,
        )
        self.reconcile_errors = Counter(
            "controller_runtime_reconcile_errors_total",
            "Handler runs that raised, per controller",
            ["controller"],
            registry=registry,
        )
        self.reconcile_time = Histogram(
            "controller_runtime_reconcile_time_seconds",
            "Seconds per handler run, per controller",
            ["controller"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "workqueue_depth",
            "Messages stored and not yet delivered (NATS consumers, sampled) or reports "
            "waiting (Kubernetes informers)",
            ["name"],
            registry=registry,
        )
        self.queue_adds = Counter(
            "workqueue_adds_total",
            "Messages delivered (NATS consumers) or reports queued (Kubernetes informers)",
            ["name"],
            registry=registry,
        )
        self.queue_retries = Counter(
            "workqueue_retries_total",
            "Redeliveries: messages delivered again after a failure or a lost acknowledgement",
            ["name"],
            registry=registry,
        )
        self.commands = Counter(
            "dgdr_commands_total",
            "Commands handled, by kind and outcome (accepted, invalid, rejected, error)",
            ["verb", "outcome"],
            registry=registry,
        )
        self.command_time = Histogram(
            "dgdr_command_duration_seconds",
            "Seconds to decide and record a command",
            ["verb"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.append_time = Histogram(
            "dgdr_event_append_duration_seconds",
            "Seconds per event store append, retries included, by outcome "
            "(stored, conflict, error)",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.projector_lag = Gauge(
            "dgdr_projector_lag_events",
            "Events stored and not yet projected into the status bucket (sampled)",
            registry=registry,
        )
        self.projection_delay = Histogram(
            "dgdr_projection_delay_seconds",
            "Seconds from a commit's decision to its status write",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.dgdrs = Gauge(
            "dgdr_dgdrs",
            "DGDRs per phase (every DGDR in the status bucket)",
            ["phase"],
            registry=registry,
        )
        self.profiling_time = Histogram(
            "dgdr_profiling_duration_seconds",
            "Seconds per profiler run of this process's profiling worker, by search strategy "
            "and outcome (succeeded, failed, error)",
            ["strategy", "outcome"],
            buckets=PROFILING_BUCKETS,
            registry=registry,
        )
        for phase in PHASES:
            self.dgdrs.labels(phase).set(0)

    # ------------------------------------------------------------------ the components' hooks

    def command_handled(self, verb: str, outcome: str, seconds: float) -> None:
        self.commands.labels(verb, outcome).inc()
        self.command_time.labels(verb).observe(seconds)

    def appended(self, seconds: float, outcome: str) -> None:
        self.append_time.labels(outcome).observe(seconds)

    def handled(self, durable: str, delivery: int, seconds: float, failed: bool) -> None:
        self.queue_adds.labels(durable).inc()
        if delivery > 1:
            self.queue_retries.labels(durable).inc()
        self.reconciled(durable, seconds, failed)

    def projected(self, seconds_behind: float) -> None:
        self.projection_delay.observe(seconds_behind)

    def profiled(self, strategy: str, outcome: str, seconds: float) -> None:
        self.profiling_time.labels(strategy, outcome).observe(seconds)

    def queued(self, name: str, depth: int) -> None:
        self.queue_adds.labels(name).inc()
        self.queue_depth.labels(name).set(depth)

    def dequeued(self, name: str, depth: int) -> None:
        self.queue_depth.labels(name).set(depth)

    def reconciled(self, name: str, seconds: float, failed: bool) -> None:
        self.reconciles.labels(name, "error" if failed else "success").inc()
        if failed:
            self.reconcile_errors.labels(name).inc()
        self.reconcile_time.labels(name).observe(seconds)

    # --------------------------------------------------------------------------- sampling

    async def sample(
        self,
        js: JetStreamContext,
        kv: KeyValue,
        consumers: Iterable[tuple[str, str]],
        interval: float = SAMPLE_INTERVAL,
    ) -> None:
        """Until cancelled: DGDRs per phase from a watch of the status bucket, and every
        (stream, durable) consumer's backlog each `interval` seconds."""
        await asyncio.gather(
            self._watch_phases(kv, interval), self._poll_consumers(js, list(consumers), interval)
        )

    async def _poll_consumers(
        self, js: JetStreamContext, consumers: list[tuple[str, str]], interval: float
    ) -> None:
        while True:
            for stream, durable in consumers:
                try:
                    info = await js.consumer_info(stream, durable, timeout=interval)
                except Exception as exc:  # not created yet, or NATS briefly away: next time
                    log.debug("consumer not sampled", durable=durable, error=str(exc))
                    continue
                waiting = int(info.num_pending or 0)
                self.queue_depth.labels(durable).set(waiting)
                if durable == PROJECTOR_DURABLE:
                    self.projector_lag.set(waiting + int(info.num_ack_pending or 0))
            await asyncio.sleep(interval)

    async def _watch_phases(self, kv: KeyValue, retry: float) -> None:
        while True:
            phases: dict[str, str] = {}
            try:
                watcher = await kv.watch(">")
                try:
                    async for entry in watcher:
                        if entry is None:  # every current value delivered
                            continue
                        phase = _phase_of(entry.value)
                        if phase is None:
                            phases.pop(entry.key, None)
                        else:
                            phases[entry.key] = phase
                        self._show_phases(phases)
                finally:
                    with contextlib.suppress(Exception):
                        await watcher.stop()  # type: ignore[no-untyped-call]
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("status watch ended; watching again", error=str(exc))
            await asyncio.sleep(retry)

    def _show_phases(self, phases: dict[str, str]) -> None:
        counts = Tally(phases.values())
        for phase in {*PHASES, *counts}:
            self.dgdrs.labels(phase).set(counts.get(phase, 0))


def _phase_of(value: bytes | None) -> str | None:
    """The phase of a stored status, None for a deleted key or a value that is not a status."""
    if not value:
        return None
    try:
        phase = json.loads(value).get("status", {}).get("phase")
    except (ValueError, AttributeError):
        return None
    return phase if isinstance(phase, str) and phase else None


class MetricsServer:
    """`/metrics`, `/healthz` and `/readyz` on one HTTP address."""

    def __init__(self, metrics: Metrics, ready: Callable[[], bool]) -> None:
        self.metrics, self.ready = metrics, ready
        self._runner: web.AppRunner | None = None
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @staticmethod
    async def _healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.ready():
            return web.Response(text="ok")
        return web.Response(status=503, text="not ready: the service is not connected to NATS")

    async def start(self, host: str, port: int) -> str:
        """Serve on host:port (0: a free port); the base URL. `ConfigurationError` when the
        address cannot be bound."""
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigurationError(
                f"--metrics-addr {host}:{port}: cannot serve metrics there "
                f"({exc.strerror or exc}); choose another address or port"
            ) from None
        self._runner = runner
        bound = runner.addresses[0]
        shown = f"[{bound[0]}]" if ":" in str(bound[0]) else bound[0]
        self.url = f"http://{shown}:{bound[1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
