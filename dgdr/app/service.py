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
supervisor does, logged each time, for `startup_deadline` seconds. Requests that failed because NATS
was briefly unavailable are redelivered within a second (`events.consumer.retry_delay`).

At start-up the streams are created or verified (`IncompatibleStream`), and the projection is
checked not to be ahead of the store (`ProjectionAheadOfStore`); both stop the service with a clear
message rather than run on unsafe state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats.errors
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from dgdr.app.handler import CommandHandler, Outcome
from dgdr.app.intake import (
    DEAD_LETTER_REASON,
    TRANSIENT,
    dead_letter,
    deliveries,
    failure_action,
    outcome_body,
    over_limits,
)
from dgdr.app.reactors import ProfilingWorker, Reactor, decode_commit
from dgdr.app.simcluster import SimulatedCluster
from dgdr.domain.clock import now_rfc3339
from dgdr.domain.errors import NotARequest, ServerUnavailable
from dgdr.domain.limits import manifest_limit, request_id_problem, size_problems, text_problems
from dgdr.domain.model import Apply, Delete
from dgdr.domain.spec import API_VERSION, KIND, DGDRSpec, FieldError, Metadata, parse_spec
from dgdr.domain.target import DISCOVERED_FACTS, DeploymentTarget, ProfilingJobs
from events import subjects as s
from events.connection import ConnectOptions, connect
from events.consumer import retry_delay, run_consumer
from events.jetstream import CommitTooLarge, JetStreamEventStore, ensure_layout, ensure_stream
from events.transient import is_transient
from projections.projector import Projector

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
    # Request failures and reconnects (dgdr.app.service: "Failure semantics").
    max_request_deliveries: int = 5  # a request failing for an unknown reason, then rejected
    max_transient_deliveries: int = 20  # a request failing because NATS is unavailable
    reconnect_delay: float = 0.2  # first wait after a failed reconnect; doubles up to 5 s
    startup_deadline: float = 120.0  # NATS failing during start-up is retried this long


def _field_error(field_name: str, message: str) -> dict[str, str]:
    return {"field": field_name, "message": message}


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

    async def start(self) -> None:
        """Connect and start every part; then keep them running across connection losses.

        A NATS that does not answer the first connect is `ServerUnavailable` at once. Once it has
        answered, NATS failing during the start (a server killed, a leader being elected) is
        retried on a new connection, as the supervisor does, for `startup_deadline` seconds (each
        try logged); past it, `ServerUnavailable` in one line."""
        await self._first_start()
        self._supervisor = asyncio.create_task(self._supervise(), name="dgdr-supervisor")
        log.info("service started", url=self.config.connect.safe_url, replica=self.replica)

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.wait([self._supervisor], timeout=5)
            self._supervisor = None
        await self._stop_parts()

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
        store = JetStreamEventStore(self.nc, js)
        self.handler = CommandHandler(store)
        self.projector = Projector(js, kv, store)
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
        reactor = Reactor(self.handler, js, self.cluster)
        if isinstance(self.cluster, ProfilingJobs) and "reactor" in self.config.roles:
            self.cluster.attach_profiling(reactor)
        worker = ProfilingWorker(self.handler, self.config.model_dirs)
        projector = self.projector

        async def project(msg: Any) -> None:
            await projector.apply(decode_commit(msg))

        consumers = [
            ("requests", s.REQUESTS_STREAM, "dgdr-service", s.REQUESTS_PREFIX, self._on_request),
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
                )
            )
            self._tasks.append(task)
            await asyncio.wait(
                [task, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED
            )
            if task.done():
                task.result()  # raise the start-up error
        await self.cluster.start(reactor.observe if "reactor" in self.config.roles else None)

    async def _stop_parts(self) -> None:
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

    # ------------------------------------------------------------------------------ requests

    async def _on_request(self, msg: Any) -> None:
        assert self.js is not None and self.nc is not None
        request_id = (msg.headers or {}).get("Nats-Msg-Id", "")
        problem = request_id_problem(request_id)
        if problem is not None:  # no outcome: its subject could not carry this id
            await self._dead_letter(msg, problem)
            return
        try:
            outcome = await self._process(msg.subject, msg.data, request_id)
        except NotARequest as exc:
            await self._dead_letter(msg, str(exc))
            outcome = Outcome("rejected", reason="MalformedRequest", message=str(exc))
        except Exception as exc:
            failed = await self._failed(msg, request_id, exc)
            if failed is None:
                return  # to be redelivered
            outcome = failed
        await self._answer(request_id, outcome)

    async def _failed(self, msg: Any, request_id: str, exc: Exception) -> Outcome | None:
        """Nak `msg` to have it redelivered (None), or give up on it: log the traceback once,
        dead-letter it and return the `rejected` outcome to answer."""
        attempts = deliveries(msg)
        action = failure_action(
            exc,
            attempts,
            max_deliveries=self.config.max_request_deliveries,
            max_transient=self.config.max_transient_deliveries,
        )
        if action == "retry":
            delay = retry_delay(exc, attempts, 0.5)
            log.warning(
                "request failed; it will be redelivered",
                subject=msg.subject,
                request=request_id,
                attempt=attempts,
                retry_in=delay,
                error=f"{type(exc).__name__}: {exc}",
            )
            await msg.nak(delay=delay)
            return None
        log.exception(
            "request failed on every delivery; dead-lettered and rejected",
            subject=msg.subject,
            request=request_id,
            attempts=attempts,
        )
        reason = f"InternalError after {attempts} deliveries: {type(exc).__name__}: {exc}"
        await self._dead_letter(msg, reason)
        return Outcome(
            "rejected",
            reason="InternalError",
            message=f"the service failed on this request {attempts} times "
            f"({type(exc).__name__}); it is in {DEAD_LETTER_STREAM}; retry later or report it",
        )

    async def _answer(self, request_id: str, outcome: Outcome) -> None:
        assert self.nc is not None
        body = outcome_body(outcome, request_id, self.nc.max_payload // 2)
        await self.nc.publish(s.result_subject(request_id), body)

    async def _dead_letter(self, msg: Any, reason: str) -> None:
        """Keep `msg` in the dead-letter stream with `reason`. When that fails while NATS is
        unavailable it raises (the request is redelivered); otherwise (the stream is gone) the
        failure is logged and the request dropped rather than retried forever."""
        assert self.js is not None and self.nc is not None
        headers, data = dead_letter(
            msg.headers or {}, str(msg.subject), reason, bytes(msg.data), self.nc.max_payload
        )
        with contextlib.suppress(AttributeError, ValueError):  # one dead letter per message,
            headers["Nats-Msg-Id"] = f"req:{int(msg.metadata.sequence.stream)}"  # if redelivered
        try:
            await self.js.publish(f"{s.DEAD_LETTER_SUBJECT}.req", data, headers=headers)
        except Exception as exc:
            transient = isinstance(exc, TRANSIENT)
            if transient and deliveries(msg) < self.config.max_transient_deliveries:
                raise
            log.error(
                "a request could not be dead-lettered; dropped",
                reason=headers[DEAD_LETTER_REASON],
                error=f"{type(exc).__name__}: {exc}",
            )
            return
        log.warning(
            "request dead-lettered",
            subject=str(msg.subject)[:200],
            reason=reason[:500],
            attempt=deliveries(msg),
        )

    async def _discover(self, spec: DGDRSpec | list[FieldError]) -> dict[str, Any]:
        """The target's GPU facts, unless the spec is invalid (it fails before hardware matters)
        or states every one of them (then discovery could add nothing, and a cluster is not asked
        for its nodes on each apply)."""
        assert self.cluster is not None
        if isinstance(spec, list):
            return {}
        given = spec.effective_hardware.model_dump(by_alias=True)
        if all(given.get(k) is not None for k in DISCOVERED_FACTS):
            return {}
        return await self.cluster.discover_hardware()

    def _model_refusal(self, spec: DGDRSpec | list[FieldError]) -> str | None:
        """Why the profiler cannot take `spec.model` (neither estimate it nor size Dynamo's naive
        configuration for it, or a path outside the model directories, never opened); None when
        it can, or when the spec is invalid anyway."""
        from sim import model_refusal

        return None if isinstance(spec, list) else model_refusal(spec, self.config.model_dirs)

    async def _process(self, subject: str, data: bytes, request_id: str) -> Outcome:
        assert self.handler is not None and self.cluster is not None
        try:
            namespace, name = s.parse_request_subject(subject)
        except (ValueError, UnicodeDecodeError) as exc:
            raise NotARequest(str(exc)) from exc
        assert self.nc is not None
        size_limit = manifest_limit(self.nc.max_payload)
        unreadable = text_problems(data, size_limit)
        if unreadable:
            return over_limits(unreadable)
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise NotARequest(f"the body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise NotARequest(
                'the body must be a JSON object: a DGDR manifest or {"action": "delete"}'
            )
        too_large = size_problems(body, len(data), size_limit)
        if too_large:
            return over_limits(too_large)
        errors = _check_name(namespace, name)
        if errors:
            return Outcome(
                "rejected", reason="Invalid", message="invalid name", errors=tuple(errors)
            )
        at = now_rfc3339()
        if body.get("action") == "delete":
            command: Apply | Delete = Delete(id=request_id, at=at, correlation_id=request_id)
            uid = None
        elif "action" in body:
            raise NotARequest(f"unknown action {body['action']!r}: the only action is delete")
        else:
            errors = _check_manifest(body, namespace, name)
            if errors:
                return Outcome(
                    "rejected",
                    reason="Invalid",
                    message="the manifest is not a DGDR v1beta1 object",
                    errors=tuple(errors),
                )
            meta = body["metadata"]
            parsed = parse_spec(body["spec"])  # the one parse; the command carries it on
            command = Apply(
                id=request_id,
                at=at,
                correlation_id=request_id,
                spec=body["spec"],
                parsed=parsed,
                labels=meta.get("labels") or {},
                annotations=meta.get("annotations") or {},
                discovered_hardware=await self._discover(parsed),
                model_refusal=self._model_refusal(parsed),
            )
            uid = meta.get("uid")
        try:
            outcome = await self.handler.handle(namespace, name, command, uid=uid)
        except CommitTooLarge as exc:
            return over_limits([("spec", f"{exc}: make the spec smaller")])
        log.info(
            "request",
            namespace=namespace,
            name=name,
            uid=outcome.uid,
            seq=outcome.resource_version,
            request=request_id,
            outcome=outcome.status,
            events=list(outcome.events),
            reason=outcome.reason or None,
        )
        return outcome


def _local_model(
    spec: DGDRSpec | list[FieldError] | dict[str, Any], model_dirs: tuple[Path, ...]
) -> str | None:
    """`spec.model` when it is a path to a Hugging Face config.json under `model_dirs` (the parsed
    spec, or a raw spec dict)."""
    from sim import local_config_path

    if isinstance(spec, list):
        return None
    model = spec.model if isinstance(spec, DGDRSpec) else spec.get("model")
    found = isinstance(model, str) and local_config_path(model, model_dirs) is not None
    return model if found else None


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


def _events_key(msg: Any) -> str:
    # Commits of one DGDR name are handled in order; the uid token is the last.
    return str(msg.subject).rsplit(".", 1)[0]


def _check_name(namespace: str, name: str) -> list[dict[str, str]]:
    from pydantic import ValidationError

    try:
        Metadata(name=name, namespace=namespace)
    except ValidationError as exc:
        return [
            _field_error(f"metadata.{e['loc'][0]}", str(e["msg"]).removeprefix("Value error, "))
            for e in exc.errors()
        ]
    return []


_UID = re.compile(r"[A-Za-z0-9-]{1,128}")  # it names the event subject: no escaping, bounded


def _check_manifest(body: dict[str, Any], namespace: str, name: str) -> list[dict[str, str]]:
    errors = []
    if body.get("apiVersion") != API_VERSION:
        errors.append(
            _field_error("apiVersion", f"must be {API_VERSION}, not {body.get('apiVersion')!r}")
        )
    if body.get("kind") != KIND:
        errors.append(_field_error("kind", f"must be {KIND}, not {body.get('kind')!r}"))
    meta = body.get("metadata")
    if not isinstance(meta, dict):
        errors.append(_field_error("metadata", "add metadata with at least a name"))
    else:
        if meta.get("name") != name:
            errors.append(
                _field_error(
                    "metadata.name",
                    f"{meta.get('name')!r} does not match the request subject's name {name!r}",
                )
            )
        uid = meta.get("uid")
        if uid is not None and not (isinstance(uid, str) and _UID.fullmatch(uid)):
            errors.append(
                _field_error(
                    "metadata.uid",
                    "must be a Kubernetes uid (a UUID: at most 128 letters, digits and '-'), "
                    "or left out",
                )
            )
        if meta.get("namespace") not in (None, namespace):
            errors.append(
                _field_error(
                    "metadata.namespace",
                    f"{meta.get('namespace')!r} does not match the request "
                    f"subject's namespace {namespace!r}",
                )
            )
    if not isinstance(body.get("spec"), dict):
        errors.append(_field_error("spec", "add a spec with at least spec.model"))
    return errors
