"""The dgdr service: request intake, projector, reactors, profiling worker and simulated cluster.

Owns the wiring and the request protocol (design §4). Requests arrive on stream `DGDR_REQUESTS`
(subject `dgdr.req.<ns>.<name>`, `Nats-Msg-Id` = request id) through the durable consumer
`dgdr-service` that every replica shares. Each gets exactly one outcome on `dgdr.res.<request-id>`:
`accepted` (with the resourceVersion), `invalid` (recorded as Failed, every field error listed) or
`rejected` (nothing recorded). A message that is not a request at all (not JSON, not a DGDR manifest
or a delete) goes to the dead-letter stream `DGDR_DEADLETTER` (subject `dgdr.dlq.req`) with the reason
in header `Dgdr-Dead-Letter-Reason`, and the service carries on.

Failure semantics. Nothing a client sends stops the service (limits: `dgdr.domain.limits`):
- a request id that is missing, too long or outside printable ASCII is dead-lettered and gets no
  outcome (no subject could carry it: an over-long one would make the server close the connection);
- JSON nested too deeply (checked before anything recursive runs), a manifest over the size limit
  (a quarter of the server's max payload, at most 256 KiB), `spec.overrides` over its own limit, or
  a commit over the max payload is answered `invalid` with reason `LimitExceeded`, naming the field;
- anything else that raises is retried (nak with a doubling delay) and, after
  `max_request_deliveries` deliveries (`max_transient_deliveries` when NATS was unavailable), logged
  once with its traceback, dead-lettered and answered `rejected` with reason `InternalError`.
The NATS connection comes back after any server-side close: nats-py reconnects by itself after a
dropped connection, and when it closes the client for good (most `-ERR`s) the supervisor connects
anew and starts every part again on the new connection (store, handler, projector, reactor, worker,
cluster target, consumers); consumers on the closed client end instead of retrying on it.

A NATS that does not answer the first connect stops the start at once (`ServerUnavailable`, one
line); one that fails later in the start (killed, or a leader being elected) is retried as the
supervisor does, logged each time, for `startup_deadline` seconds. A server without JetStream
(no JetStream API answers, and its INFO says so) is `ConfigurationError` at once. Requests that failed because NATS
was briefly unavailable are redelivered within a second (`events.consumer.retry_delay`).

With `metrics_addr` set, Prometheus metrics and the probes `/healthz` and `/readyz` are served
there (`dgdr.app.metrics`) from before the first connect until `stop()`; `/readyz` is 200 while
every part runs on a connected client.

At start-up the streams are created or verified (`IncompatibleStream`), and the projection is
checked not to be ahead of the store (`ProjectionAheadOfStore`); both stop the service with a clear
message rather than run on unsafe state. Nothing at start-up reads every DGDR: the check reads the
status bucket's last writes (`Projector.check_not_ahead`), the durable consumers resume where they
were acknowledged, and the simulated cluster reports only the DGDs that changed since it last
reported (`dgdr.app.simcluster`): what grows with the number of DGDs is two bulk reads of the
cluster's bucket (its watch and its pending rollouts), not a store read or a command per DGDR.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nats.errors
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import ServiceUnavailableError

from dgdr.app.handler import CommandHandler
from dgdr.app.reactors import HubFetch, ProfilingWorker, Reactor
from dgdr.app.request_handler import RequestHandler
from dgdr.app.simcluster import SimulatedCluster
from dgdr.domain.errors import ConfigurationError, ServerUnavailable
from dgdr.domain.target import DeploymentTarget, ProfilingJobs
from events import subjects as s
from events.connection import ConnectOptions, connect
from events.consumer import run_consumer
from events.jetstream import JetStreamEventStore, ensure_layout, ensure_stream
from events.transient import is_transient
from projections.projector import Projector

if TYPE_CHECKING:  # imported when metrics are served: prometheus-client costs start-up time
    from dgdr.app.metrics import Metrics, MetricsServer

log = structlog.get_logger("dgdr.app.service")

ROLES = frozenset({"requests", "projector", "reactor", "profiler"})
DEAD_LETTER_STREAM = s.DEAD_LETTER_STREAM


@dataclass
class ServiceConfig:
    connect: ConnectOptions = field(default_factory=ConnectOptions)
    rollout_delay: float = 1.0
    ack_wait: float = 5.0
    cluster_nodes: int = 4
    cluster_gpus_per_node: int = 8
    cluster_gpu_product: str = "NVIDIA-H200-141GB-HBM3"
    # Which parts run in this process; replicas may split them (e.g. profilers apart from intake).
    roles: frozenset[str] = ROLES
    # Where DGDs go and GPU facts come from; None → the simulated cluster in NATS KV.
    target: Callable[[JetStreamContext], DeploymentTarget] | None = None
    # Copies of every stream and bucket (`--replicas`): 1 on a single server, 3 on a cluster.
    replicas: int = 1
    # The only directories whose config.json `spec.model` may name as a local path (`--model-dir`).
    model_dirs: tuple[Path, ...] = ()
    # `--hf-fetch`: the profiling worker may fetch the config.json of a hub id it does not know
    # from the Hugging Face Hub (`hub_endpoint`, else HF_ENDPOINT, else huggingface.co).
    hub_fetch: bool = False
    hub_endpoint: str | None = None
    # `--require-sla`: a DGDR whose pick misses its SLA fails unless it sets the annotation
    # dgdr.nvidia.com/require-sla: "false" (dgdr.domain.sla).
    require_sla: bool = False
    # Request failures and reconnects (dgdr.app.service: "Failure semantics").
    max_request_deliveries: int = 5  # a request failing for an unknown reason, then rejected
    max_transient_deliveries: int = 20  # a request failing because NATS is unavailable
    reconnect_delay: float = 0.2  # first wait after a failed reconnect; doubles up to 5 s
    startup_deadline: float = 120.0  # NATS failing during start-up is retried this long
    # Where to serve Prometheus metrics, /healthz and /readyz (`--metrics-addr`); None: nowhere.
    metrics_addr: tuple[str, int] | None = None


class Service:
    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self.handler: CommandHandler | None = None
        self.projector: Projector | None = None
        self.cluster: DeploymentTarget | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._supervisor: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self.replica = f"{socket.gethostname()}-{os.getpid()}"
        self._running = False  # every part started on the current client
        self.metrics: Metrics | None = None
        if config.metrics_addr is not None:
            from dgdr.app.metrics import Metrics

            self.metrics = Metrics()
        self._metrics_server: MetricsServer | None = None

    @property
    def ready(self) -> bool:
        """Started, and every part running on a connected client."""
        return self._running and self.nc is not None and self.nc.is_connected

    @property
    def metrics_url(self) -> str | None:
        return self._metrics_server.url if self._metrics_server is not None else None

    async def start(self) -> None:
        """Connect and start every part; then keep them running across connection losses.

        A NATS that does not answer the first connect is `ServerUnavailable` at once. Once it has
        answered, NATS failing during the start (a server killed, a leader being elected) is
        retried on a new connection, as the supervisor does, for `startup_deadline` seconds (each
        try logged); past it, `ServerUnavailable` in one line."""
        if self.metrics is not None and self.config.metrics_addr is not None:
            from dgdr.app.metrics import MetricsServer

            self._metrics_server = MetricsServer(self.metrics, lambda: self.ready)
            await self._metrics_server.start(*self.config.metrics_addr)
        try:
            await self._first_start()
        except BaseException:
            await self._stop_metrics()
            raise
        self._supervisor = asyncio.create_task(self._supervise(), name="dgdr-supervisor")
        log.info("service started", url=self.config.connect.safe_url, replica=self.replica)

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.wait([self._supervisor], timeout=5)
            self._supervisor = None
        await self._stop_parts()
        await self._stop_metrics()

    async def _stop_metrics(self) -> None:
        if self._metrics_server is not None:
            await self._metrics_server.stop()
            self._metrics_server = None

    async def _first_start(self) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.config.startup_deadline
        delay = self.config.reconnect_delay
        connected_once = False
        while True:
            try:
                await self._start_parts()
                return
            except Exception as exc:
                if not _nats_unavailable(exc):
                    raise  # a refusal, an unsafe stream...: retrying cannot fix it
                _refuse_without_jetstream(self.nc, self.config.connect, exc)
                connected_once = connected_once or self.nc is not None
                await self._stop_parts()
                if not connected_once:
                    raise  # nothing answered the first connect: one line, as before
                error = self.config.connect.scrub(f"{type(exc).__name__}: {exc}")
                if loop.time() + delay > give_up:
                    raise ServerUnavailable(
                        f"NATS at {self.config.connect.safe_url} failed during start-up and was "
                        f"not back within {self.config.startup_deadline:g} s ({error})"
                    ) from None
                log.warning("NATS failed during start-up; retrying", error=error, retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _supervise(self) -> None:
        """Start everything again on a new connection whenever the current one is closed for good
        (nats-py reconnects by itself after a dropped connection, but closes the client on most
        `-ERR`s from the server). Each object holding the old connection is made anew."""
        while True:
            await self._connection_closed()
            assert self.nc is not None
            error = self.nc.last_error
            log.warning(
                "NATS connection closed; reconnecting",
                url=self.config.connect.safe_url,
                error=self.config.connect.scrub(str(error)) if error else None,
            )
            started = time.monotonic()
            delay = self.config.reconnect_delay
            while True:
                await self._stop_parts()
                try:
                    await self._start_parts()
                    break
                except Exception as exc:  # the server is not back yet, or refuses: keep trying
                    log.warning(
                        "reconnect failed; retrying",
                        error=self.config.connect.scrub(str(exc)),
                        retry_in=delay,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            log.info("reconnected", seconds=round(time.monotonic() - started, 3))

    async def _connection_closed(self) -> None:
        """Return once the current client is closed (its closed callback, or a check each second
        in case nats-py closed it without calling back)."""
        while self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._closed.wait()

    async def _start_parts(self) -> None:
        self._closed = closed = asyncio.Event()

        async def on_closed() -> None:
            closed.set()

        self.nc = await connect(self.config.connect, closed_cb=on_closed)
        self.js = js = self.nc.jetstream()
        kv = await ensure_layout(js, self.config.replicas)
        await self._ensure_dead_letter(js, self.config.replicas)
        metrics = self.metrics
        store = JetStreamEventStore(self.nc, js, observer=metrics)
        self.handler = CommandHandler(store, observer=metrics)
        self.projector = Projector(js, kv, store, observer=metrics)
        await self.projector.check_not_ahead()
        if self.config.target is not None:
            self.cluster = self.config.target(js)
        else:
            self.cluster = SimulatedCluster(
                js,
                rollout_delay=self.config.rollout_delay,
                nodes=self.config.cluster_nodes,
                gpus_per_node=self.config.cluster_gpus_per_node,
                gpu_product=self.config.cluster_gpu_product,
                replicas=self.config.replicas,
            )
        # A writer in the projector's process projects its own commits (`Projector.writing`).
        through = self.projector if "projector" in self.config.roles else None
        reactor = Reactor(self.handler, js, self.cluster, projector=through)
        if isinstance(self.cluster, ProfilingJobs) and "reactor" in self.config.roles:
            self.cluster.attach_profiling(reactor)
        hub = HubFetch(self.config.hub_endpoint) if self.config.hub_fetch else None
        worker = ProfilingWorker(self.handler, self.config.model_dirs, observer=metrics, hub=hub)
        requests = RequestHandler(
            self.nc,
            js,
            self.handler,
            self.cluster,
            model_dirs=self.config.model_dirs,
            max_deliveries=self.config.max_request_deliveries,
            max_transient_deliveries=self.config.max_transient_deliveries,
            require_sla=self.config.require_sla,
            hub_fetch=self.config.hub_fetch,
            projector=through,
        )
        project = self.projector.on_message

        consumers = [
            ("requests", s.REQUESTS_STREAM, "dgdr-service", s.REQUESTS_PREFIX, requests.on_message),
            ("projector", s.EVENTS_STREAM, "dgdr-projector", s.EVENTS_PREFIX, project),
            ("reactor", s.EVENTS_STREAM, "dgdr-reactor", s.EVENTS_PREFIX, reactor.on_message),
            ("profiler", s.JOBS_STREAM, "dgdr-profilers", s.JOBS_PREFIX, worker.on_message),
        ]
        for role, stream, durable, prefix, fn in consumers:
            if role not in self.config.roles:
                continue
            subject = f"{prefix}.>"
            ready = asyncio.Event()
            task = asyncio.create_task(
                run_consumer(
                    self.nc,
                    js,
                    stream=stream,
                    durable=durable,
                    subject=subject,
                    handler=fn,
                    ack_wait=self.config.ack_wait,
                    ready=ready,
                    key=_events_key if stream == s.EVENTS_STREAM else lambda m: str(m.subject),
                    observer=metrics,
                    done=self.projector.folded if role == "projector" else None,
                )
            )
            self._tasks.append(task)
            await asyncio.wait(
                [task, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED
            )
            if task.done():
                task.result()  # raise the start-up error
        await self.cluster.start(reactor.observe if "reactor" in self.config.roles else None)
        if metrics is not None:
            sampled = [(c[1], c[2]) for c in consumers if c[0] in self.config.roles]
            self._tasks.append(asyncio.create_task(metrics.sample(js, kv, sampled)))
        self._running = True

    async def _stop_parts(self) -> None:
        self._running = False
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=5)
            for task in stuck:
                log.error("consumer did not stop", task=task.get_name())
        self._tasks.clear()
        if self.cluster:
            await self.cluster.stop()
        if self.nc and not self.nc.is_closed:
            # The server may already be gone (a signal to the whole process group): don't hang.
            try:
                await asyncio.wait_for(self.nc.drain(), 3)
            except Exception:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.nc.close(), 2)

    @staticmethod
    async def _ensure_dead_letter(js: JetStreamContext, replicas: int = 1) -> None:
        await ensure_stream(
            js,
            StreamConfig(
                name=DEAD_LETTER_STREAM,
                subjects=[f"{s.DEAD_LETTER_SUBJECT}.>"],
                storage=StorageType.FILE,
                max_age=7 * 24 * 3600.0,
                description="requests that could not be read, with the reason",
            ),
            replicas,
        )


def freeze_startup() -> None:
    """For a process that runs one service until it exits (`dgdr up`), once it has started: what
    start-up made (modules, schemas, caches) lives as long as the process, so it is left out of
    the cyclic garbage collector's passes (`gc.freeze`), which otherwise walk it again and again
    while requests are handled."""
    gc.freeze()


def _nats_unavailable(exc: BaseException) -> bool:
    """NATS gone or briefly without a leader (worth retrying at start-up), not a refusal."""
    lost = (
        ServerUnavailable,
        ConnectionError,
        nats.errors.ConnectionClosedError,
        nats.errors.NoServersError,
        nats.errors.UnexpectedEOF,
    )
    return isinstance(exc, lost) or is_transient(exc)


def _refuse_without_jetstream(nc: Client | None, options: ConnectOptions, exc: Exception) -> None:
    """`ConfigurationError` when no JetStream API answered (503) because the server has none: a
    server without JetStream never gets it by waiting (a cluster electing a leader answers)."""
    info = getattr(nc, "_server_info", None) or {}
    if nc is not None and isinstance(exc, ServiceUnavailableError) and not info.get("jetstream"):
        raise ConfigurationError(
            f"NATS at {options.safe_url} has no JetStream, which dgdr stores everything in: start "
            "nats-server with -js (or a `jetstream {}` block in its configuration)"
        ) from None


def _events_key(msg: Any) -> str:
    # Commits of one DGDR name are handled in order; the uid token is the last.
    return str(msg.subject).rsplit(".", 1)[0]
