"""Request intake: one message on `DGDR_REQUESTS` in, exactly one outcome on `dgdr.res.<request-id>`
out (or a dead letter), through the command handler.

Owns what `dgdr.app.service` promises about requests (its docstring states the protocol and the
failure semantics): the request id, size and depth limits (`dgdr.domain.limits`) are checked before
anything recursive runs; a message that is not a request is dead-lettered (`DGDR_DEADLETTER`,
subject `dgdr.dlq.req`, reason in `Dgdr-Dead-Letter-Reason`) and, when its id can carry one,
answered `rejected`; a failure is retried through redelivery and, after `max_deliveries` (or
`max_transient_deliveries` while NATS is unavailable), dead-lettered and answered
`rejected`/`InternalError`. A redelivered request whose events are already stored (a crash between
the append and the acknowledgement) is answered from that record, not decided again. The pure
decisions live in `dgdr.app.intake`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from pathlib import Path
from typing import Any

import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from pydantic import BaseModel

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
from dgdr.domain.admission import name_errors
from dgdr.domain.clock import now_rfc3339
from dgdr.domain.errors import CommitTooLarge, NotARequest
from dgdr.domain.limits import manifest_limit, request_id_problem, size_problems, text_problems
from dgdr.domain.model import Apply, Delete, ValidationFailed
from dgdr.domain.spec import (
    API_VERSION,
    KIND,
    DGDRSpec,
    FieldError,
    dns_name_problem,
    dns_namespace_problem,
    parse_spec,
)
from dgdr.domain.target import DISCOVERED_FACTS, DeploymentTarget
from events import codec
from events import subjects as s
from events.consumer import retry_delay
from projections.projector import Projector, WriteThrough

log = structlog.get_logger("dgdr.app.service")

DEAD_LETTER_STREAM = s.DEAD_LETTER_STREAM
REFUSAL_TTL = 2.0  # seconds a hub id's refusal is reused (the local Hugging Face cache may change)
REFUSAL_CACHE_SIZE = 1024


class ModelRefusals:
    """`sim.model_refusal` per spec, without looking at the filesystem on every apply: for a
    model that is not a path (a catalog name or a hub id), the answer depends only on the model,
    the search strategy, the mocker and the local Hugging Face cache, so it is reused for
    `ttl` seconds (a config.json added to that cache is seen by applies after at most `ttl`
    seconds; profiling looks again anyway). A local path is looked at on every apply."""

    def __init__(
        self,
        model_dirs: tuple[Path, ...],
        ttl: float = REFUSAL_TTL,
        size: int = REFUSAL_CACHE_SIZE,
        clock: Any = time.monotonic,
        *,
        hub_fetch: bool = False,
    ) -> None:
        self.model_dirs, self.ttl, self.size, self.clock = model_dirs, ttl, size, clock
        self.hub_fetch = hub_fetch
        self._held: dict[tuple[str, str, bool], tuple[float, str | None]] = {}

    def __call__(self, spec: DGDRSpec) -> str | None:
        from sim import looks_like_path, model_refusal

        if looks_like_path(spec.model):
            return model_refusal(spec, self.model_dirs)
        key = (spec.model, str(spec.search_strategy), spec.mocker_enabled)
        now = self.clock()
        held = self._held.get(key)
        if held is not None and now - held[0] < self.ttl:
            return held[1]
        refusal = model_refusal(spec, self.model_dirs, hub_fetch=self.hub_fetch)
        if held is None and len(self._held) >= self.size:
            self._held.pop(next(iter(self._held)))
        self._held[key] = (now, refusal)
        return refusal


def _field_error(field_name: str, message: str) -> dict[str, str]:
    return {"field": field_name, "message": message}


class RequestHandler:
    """Answers the requests of one connection (made anew with it after a reconnect)."""

    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        handler: CommandHandler,
        cluster: DeploymentTarget,
        *,
        model_dirs: tuple[Path, ...],
        max_deliveries: int,
        max_transient_deliveries: int,
        require_sla: bool = False,
        hub_fetch: bool = False,
        projector: Projector | None = None,
    ) -> None:
        self.nc, self.js, self.handler, self.cluster = nc, js, handler, cluster
        # When given, a recorded commit is projected right after its outcome is sent
        # (`Projector.writing`), not when the projector's consumer gets it.
        self.projector = projector
        self.require_sla = require_sla  # `dgdr up --require-sla`: the DGDRs' default
        self.model_dirs = model_dirs
        # with hub_fetch an unknown hub id is the profiling worker's to fetch
        self._refusals = ModelRefusals(model_dirs, hub_fetch=hub_fetch)
        self.max_deliveries, self.max_transient_deliveries = (
            max_deliveries,
            max_transient_deliveries,
        )

    async def on_message(self, msg: Any) -> None:
        try:
            namespace, name = s.parse_request_subject(str(msg.subject))
        except (ValueError, UnicodeDecodeError):  # not a request: `_process` says so
            await self._on_message(msg, None)
            return
        if self.projector is None:
            await self._on_message(msg, None)
            return
        async with self.projector.writing(namespace, name) as write:
            await self._on_message(msg, write)

    async def _on_message(self, msg: Any, write: WriteThrough | None) -> None:
        request_id = (msg.headers or {}).get("Nats-Msg-Id", "")
        problem = request_id_problem(request_id)
        if problem is not None:  # no outcome: its subject could not carry this id
            await self._dead_letter(msg, problem)
            return
        try:
            outcome = await self._process(
                msg.subject, msg.data, request_id, redelivered=deliveries(msg) > 1
            )
        except NotARequest as exc:
            await self._dead_letter(msg, str(exc))
            outcome = Outcome("rejected", reason="MalformedRequest", message=str(exc))
        except Exception as exc:
            failed = await self._failed(msg, request_id, exc)
            if failed is None:
                return  # to be redelivered
            outcome = failed
        await self._answer(request_id, outcome)
        if outcome.commit is not None and write is not None:
            await asyncio.sleep(0)  # nats-py's flusher sends the outcome before the fold runs
            await write(outcome.commit)

    async def _failed(self, msg: Any, request_id: str, exc: Exception) -> Outcome | None:
        """Nak `msg` to have it redelivered (None), or give up on it: log the traceback once,
        dead-letter it and return the `rejected` outcome to answer."""
        attempts = deliveries(msg)
        action = failure_action(
            exc,
            attempts,
            max_deliveries=self.max_deliveries,
            max_transient=self.max_transient_deliveries,
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
        body = outcome_body(outcome, request_id, self.nc.max_payload // 2)
        await self.nc.publish(s.result_subject(request_id), body)

    async def _dead_letter(self, msg: Any, reason: str) -> None:
        """Keep `msg` in the dead-letter stream with `reason`. When that fails while NATS is
        unavailable it raises (the request is redelivered); otherwise (the stream is gone) the
        failure is logged and the request dropped rather than retried forever."""
        headers, data = dead_letter(
            msg.headers or {}, str(msg.subject), reason, bytes(msg.data), self.nc.max_payload
        )
        with contextlib.suppress(AttributeError, ValueError):  # one dead letter per message,
            headers["Nats-Msg-Id"] = f"req:{int(msg.metadata.sequence.stream)}"  # if redelivered
        try:
            await self.js.publish(f"{s.DEAD_LETTER_SUBJECT}.req", data, headers=headers)
        except Exception as exc:
            transient = isinstance(exc, TRANSIENT)
            if transient and deliveries(msg) < self.max_transient_deliveries:
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
        if isinstance(spec, list):
            return {}
        given = spec.effective_hardware
        names = _attribute_names(type(given))
        if all(getattr(given, names[k]) is not None for k in DISCOVERED_FACTS):
            return {}
        return await self.cluster.discover_hardware()

    def _model_refusal(self, spec: DGDRSpec | list[FieldError]) -> str | None:
        """Why the profiler cannot take `spec.model` (neither estimate it nor size Dynamo's naive
        configuration for it, or a path outside the model directories, never opened); None when
        it can, or when the spec is invalid anyway."""
        return None if isinstance(spec, list) else self._refusals(spec)

    async def _recorded_before(self, namespace: str, name: str, request_id: str) -> Outcome | None:
        """The outcome of a request already recorded (a delivery before a crash stored its events
        but was not acknowledged): deciding it again could apply it to a later incarnation (a
        delete redelivered after the name was re-created would delete the new DGDR)."""
        for commit in reversed(await self.handler.store.history(namespace, name)):
            if commit.damage is not None:
                continue
            if any(env.causation_id == request_id for env in commit.envelopes):
                events = tuple(env.type for env in commit.envelopes)
                invalid = [
                    e.event for e in commit.envelopes if isinstance(e.event, ValidationFailed)
                ]
                return Outcome(
                    "invalid" if invalid else "accepted",
                    commit.seq,
                    commit.aggregate.uid,
                    events,
                    reason="ValidationFailed" if invalid else "",
                    message="recorded by an earlier delivery of this request",
                    errors=tuple(invalid[0].errors) if invalid else (),
                )
        return None

    async def _process(
        self, subject: str, data: bytes, request_id: str, *, redelivered: bool = False
    ) -> Outcome:
        try:
            namespace, name = s.parse_request_subject(subject)
        except (ValueError, UnicodeDecodeError) as exc:
            raise NotARequest(str(exc)) from exc
        size_limit = manifest_limit(self.nc.max_payload)
        unreadable = text_problems(data, size_limit)
        if unreadable:
            return over_limits(unreadable)
        try:
            body = codec.loads(data)
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
                require_sla_default=self.require_sla,
            )
            uid = meta.get("uid")
        earlier = await self._recorded_before(namespace, name, request_id) if redelivered else None
        if earlier is not None:
            return earlier
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


@functools.cache
def _attribute_names(model: type[BaseModel]) -> dict[str, str]:
    """{alias: attribute name} of a pydantic model's fields."""
    return {f.alias or name: name for name, f in model.model_fields.items()}


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


def _check_name(namespace: str, name: str) -> list[dict[str, str]]:
    """The subject's name and namespace checked as `Metadata` checks them, without building one."""
    checked = (("name", dns_name_problem(name)), ("namespace", dns_namespace_problem(namespace)))
    return [_field_error(f"metadata.{key}", problem) for key, problem in checked if problem]


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
        errors.extend(e.to_dict() for e in name_errors(name))
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
