"""The dgdr service: request intake, projector, reactors, profiling worker and simulated cluster.

Owns the wiring and the request protocol (design §4). Requests arrive on stream `DGDR_REQUESTS`
(subject `dgdr.req.<ns>.<name>`, `Nats-Msg-Id` = request id) through the durable consumer
`dgdr-service` that every replica shares. Each gets exactly one outcome on `dgdr.res.<request-id>`:
`accepted` (with the resourceVersion), `invalid` (recorded as Failed, every field error listed) or
`rejected` (nothing recorded). A message that is not a request at all (no request id, not JSON, not
a DGDR manifest or a delete) goes to the dead-letter stream `DGDR_DEADLETTER` (subject `dgdr.dlq.req`)
with the reason in header `Dgdr-Dead-Letter-Reason`, and the service carries on.

At start-up the streams are created or verified (`IncompatibleStream`), and the projection is
checked not to be ahead of the store (`ProjectionAheadOfStore`); both stop the service with a clear
message rather than run on unsafe state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from dgdr.app.handler import CommandHandler, Outcome
from dgdr.app.reactors import ProfilingWorker, Reactor, decode_commit
from dgdr.app.simcluster import SimulatedCluster
from dgdr.domain.clock import now_rfc3339
from dgdr.domain.errors import NotARequest
from dgdr.domain.model import Apply, Delete
from dgdr.domain.spec import API_VERSION, KIND, DGDRSpec, FieldError, Metadata, parse_spec
from dgdr.domain.target import DISCOVERED_FACTS, DeploymentTarget, ProfilingJobs
from events import subjects as s
from events.connection import ConnectOptions, connect
from events.consumer import run_consumer
from events.jetstream import JetStreamEventStore, ensure_layout, ensure_stream
from projections.projector import Projector

log = structlog.get_logger("dgdr.app.service")

ROLES = frozenset({"requests", "projector", "reactor", "profiler"})
DEAD_LETTER_STREAM = "DGDR_DEADLETTER"
DEAD_LETTER_REASON = "Dgdr-Dead-Letter-Reason"


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
        self.replica = f"{socket.gethostname()}-{os.getpid()}"

    async def start(self) -> None:
        self.nc = await connect(self.config.connect)
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
        worker = ProfilingWorker(self.handler)
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
        log.info("service started", url=self.config.connect.safe_url, replica=self.replica)

    async def stop(self) -> None:
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
        try:
            if not request_id:
                raise NotARequest("no Nats-Msg-Id header: every request needs a request id")
            outcome = await self._process(msg.subject, msg.data, request_id)
        except NotARequest as exc:
            headers = {
                **(msg.headers or {}),
                DEAD_LETTER_REASON: str(exc),
                "Dgdr-Original-Subject": msg.subject,
            }
            headers.pop("Nats-Msg-Id", None)
            await self.js.publish(f"{s.DEAD_LETTER_SUBJECT}.req", msg.data, headers=headers)
            log.warning("request dead-lettered", subject=msg.subject, reason=str(exc))
            outcome = Outcome("rejected", reason="MalformedRequest", message=str(exc))
            if not request_id:
                return
        body = json.dumps(outcome.to_dict(request_id)).encode()
        await self.nc.publish(s.result_subject(request_id), body)

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

    @staticmethod
    def _model_refusal(spec: DGDRSpec | list[FieldError]) -> str | None:
        """Why the profiler cannot take `spec.model` (neither estimate it nor size Dynamo's naive
        configuration for it); None when it can, or when the spec is invalid anyway."""
        from sim import model_refusal

        return None if isinstance(spec, list) else model_refusal(spec)

    async def _process(self, subject: str, data: bytes, request_id: str) -> Outcome:
        assert self.handler is not None and self.cluster is not None
        try:
            namespace, name = s.parse_request_subject(subject)
        except (ValueError, UnicodeDecodeError) as exc:
            raise NotARequest(str(exc)) from exc
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise NotARequest(f"the body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise NotARequest(
                'the body must be a JSON object: a DGDR manifest or {"action": "delete"}'
            )
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
        outcome = await self.handler.handle(namespace, name, command, uid=uid)
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


def _local_model(spec: DGDRSpec | list[FieldError] | dict[str, Any]) -> str | None:
    """`spec.model` when it is a path to a Hugging Face config.json on this machine (the parsed
    spec, or a raw spec dict)."""
    from sim import local_config_path

    if isinstance(spec, list):
        return None
    model = spec.model if isinstance(spec, DGDRSpec) else spec.get("model")
    return model if isinstance(model, str) and local_config_path(model) is not None else None


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
