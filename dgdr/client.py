"""The dgdr client library: requests in, status and history out, over the public NATS contract.

    async with DgdrClient(ConnectOptions(url=...)) as c:
        outcome = await c.apply(manifest)             # {"status": "accepted", "resourceVersion": ...}
        obj = await c.wait("my-dgdr", resource_version=outcome["resourceVersion"])
        obj = await c.wait("my-dgdr", phase="Deployed", timeout=60)

`apply`/`delete` subscribe to `dgdr.res.<request-id>` before publishing the request, so the outcome
cannot be missed; a retry with the same request id is deduplicated by the stream and by the domain.
Typed results: `apply`/`delete` return a `RequestOutcome` (the outcome message of the NATS contract,
`dgdr.res.<request-id>`); `get`/`list`/`wait` return the DGDR object as `kubectl get -o json` shows it
(`DgdrObject`); `watch` yields the objects now (never a deleted one) and then each change, and
`watching` gives the objects now and the changes after them apart (`kubectl get -w`); `history` returns `HistoryEntry`s (a stored event envelope with its stream sequence,
or a stored message that is not folded, shown as such: it never fails for what is stored).
Errors: `ServerUnavailable` (nothing answers), `WaitTimeout` (no outcome or state in time),
`ConfigurationError` (the service's streams do not exist yet: start `dgdr up`; or the server refuses
who connects, or what its role may do: at once, in one line, not at a timeout). A rejected request is
an outcome, not an exception; so is a request over the service's limits (`dgdr.domain.limits`: request
id, JSON depth, manifest and `spec.overrides` size), refused here before it is sent.
`raise_for_outcome` turns an outcome into `RequestRejected` for callers who want that.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict, cast

import yaml
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from dgdr.domain.errors import ConfigurationError, RequestRejected, SubjectTooLong, WaitTimeout
from dgdr.domain.limits import (
    MAX_REQUEST_ID_CHARS,
    manifest_limit,
    request_id_problem,
    size_problems,
    value_depth_problem,
)
from dgdr.domain.spec import API_VERSION, KIND
from events import subjects as s
from events.connection import ConnectOptions, connect, refusing
from events.envelope import Commit
from events.integrity import preview, verify_history
from events.jetstream import JetStreamEventStore, bucket_keys

DgdrObject = dict[str, Any]
"""A DGDR as `kubectl get -o json` shows it: apiVersion, kind, metadata, spec, status."""


class FieldErrorEntry(TypedDict):
    field: str
    message: str


class RequestOutcome(TypedDict, total=False):
    """The answer to a request: `accepted` (with the commit's resourceVersion and the recorded event
    types, none when nothing changed), `invalid` (field errors: refused at admission, nothing recorded
    and no `events`; or recorded with `events`, the DGDR Failed with `ValidationFailed`), `rejected`
    (nothing recorded: reason and message say why), `duplicate` (the request id was seen before)."""

    status: Literal["accepted", "invalid", "rejected", "duplicate"]
    requestId: str
    resourceVersion: str
    uid: str
    events: list[str]
    reason: str
    message: str
    errors: list[FieldErrorEntry]


class AggregateRef(TypedDict):
    namespace: str
    name: str
    uid: str


class HistoryEntry(TypedDict):
    """One stored event: its envelope and the stream sequence of the commit that holds it.

    A stored message that is not folded (`events.integrity`: it does not decode or validate, lacks
    the service's headers, or is not a legal transition) is one entry of type `DAMAGED`, with no
    event: its `subject`, the `damaged` reason, and the stored bytes (`raw`, escaped, truncated);
    its aggregate is the one its subject names."""

    sequence: int
    id: str
    type: str
    schemaVersion: int
    aggregate: AggregateRef
    time: str
    causationId: str | None
    correlationId: str | None
    payload: dict[str, Any]
    subject: NotRequired[str]
    damaged: NotRequired[str]
    raw: NotRequired[str]


DAMAGED = "(damaged)"

Change = tuple[str, str, "DgdrObject | None"]
"""(namespace, name, the object, or None when it was deleted)."""


@dataclass(frozen=True)
class StatusWatch:
    """What `DgdrClient.watching` gives: the objects now, and the changes from then on."""

    current: builtins.list[DgdrObject]
    changes: AsyncIterator[Change]


async def _changes(
    entries: AsyncIterator[tuple[str, str, DgdrObject | None] | None],
) -> AsyncIterator[Change]:
    async for item in entries:
        if item is not None:
            yield item


def history_entries(commits: builtins.list[Commit]) -> builtins.list[HistoryEntry]:
    """The entries of a name's stored history (every incarnation, in order), each message
    verified as every fold verifies it."""
    out: builtins.list[HistoryEntry] = []
    for c in verify_history(commits):
        if c.damage is None:
            out.extend(
                cast(HistoryEntry, {"sequence": c.seq, **env.to_dict()}) for env in c.envelopes
            )
            continue
        agg = c.aggregate
        out.append(
            {
                "sequence": c.seq,
                "id": c.commit_id,
                "type": DAMAGED,
                "schemaVersion": 0,
                "aggregate": {"namespace": agg.namespace, "name": agg.name, "uid": agg.uid},
                "time": "",
                "causationId": None,
                "correlationId": None,
                "payload": {},
                "subject": c.damage.subject,
                "damaged": c.damage.reason,
                "raw": preview(c.raw),
            }
        )
    return out


NOT_RUNNING = "the dgdr service has not set up NATS at {url} yet: start it with `dgdr up`"


def load_documents(source: str | Path, text: str | bytes | None = None) -> list[dict[str, Any]]:
    """Every YAML/JSON document in a file (or `text`), skipping empty ones. A file that is not
    UTF-8 text or not YAML is a `ConfigurationError` in one line naming it (and where it broke)."""
    content = Path(source).read_bytes() if text is None else text
    try:
        raw = content.decode("utf-8") if isinstance(content, bytes) else content
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"{source}: not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x}): "
            "a manifest is a YAML or JSON file"
        ) from None
    try:
        docs = [d for d in yaml.safe_load_all(raw) if d is not None]
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{source}: not YAML: {_yaml_problem(exc)}") from None
    for i, d in enumerate(docs):
        if not isinstance(d, dict):
            raise ConfigurationError(f"{source}: document {i + 1} is not a mapping")
    return docs


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error in one line: the problem and where (its own text spans several lines)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def check_request(
    body: dict[str, Any], request_id: str, max_payload: int
) -> tuple[RequestOutcome | None, bytes]:
    """The service's limits (`dgdr.domain.limits`), checked before sending: (an outcome saying
    what is over a limit, or None; the encoded body)."""
    problem = request_id_problem(request_id)
    if problem is not None:
        return {
            "status": "rejected",
            "requestId": request_id[:MAX_REQUEST_ID_CHARS],
            "reason": "Invalid",
            "message": problem,
            "errors": [{"field": "requestId", "message": problem}],
        }, b""
    too_deep = value_depth_problem(body)
    problems = [too_deep] if too_deep is not None else []
    data = b"" if problems else json.dumps(body).encode()
    if not problems:
        problems = size_problems(body, len(data), manifest_limit(max_payload))
    if not problems:
        return None, data
    return {
        "status": "invalid",
        "requestId": request_id,
        "reason": "LimitExceeded",
        "message": "the request exceeds the service's limits; nothing was sent",
        "errors": [{"field": path, "message": message} for path, message in problems],
    }, b""


def raise_for_outcome(outcome: RequestOutcome) -> RequestOutcome:
    if outcome.get("status") != "accepted":
        raise RequestRejected(
            outcome.get("reason", "Rejected"),
            outcome.get("message", ""),
            [dict(e) for e in outcome.get("errors", [])],
        )
    return outcome


class DgdrClient:
    def __init__(self, options: ConnectOptions | None = None, namespace: str = "default") -> None:
        self.options = options or ConnectOptions.from_env()
        self.namespace = namespace
        self._nc: Client | None = None
        self._kv: KeyValue | None = None

    async def __aenter__(self) -> DgdrClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Connect; again when the connection was closed (a long-lived owner, such as the
        Kubernetes adapter, calls it before each run: nats-py closes a client for good on most
        `-ERR`s from the server)."""
        if self._nc is None or self._nc.is_closed:
            self._nc = await connect(self.options, reconnect=False)
            self._kv = None

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()
        self._nc = None

    @property
    def nc(self) -> Client:
        if self._nc is None:
            raise RuntimeError("DgdrClient is not connected: use `async with DgdrClient(...)`")
        return self._nc

    async def kv(self) -> KeyValue:
        if self._kv is None:
            try:
                self._kv = await refusing(self.nc, self.nc.jetstream().key_value(s.STATUS_BUCKET))
            except (BucketNotFoundError, NotFoundError) as exc:
                raise ConfigurationError(NOT_RUNNING.format(url=self.options.safe_url)) from exc
        return self._kv

    # ------------------------------------------------------------------------------- requests

    async def submit(
        self,
        namespace: str,
        name: str,
        body: dict[str, Any],
        *,
        request_id: str | None = None,
        timeout: float = 30.0,
    ) -> RequestOutcome:
        request_id = str(uuid.uuid4()) if request_id is None else request_id
        refused, data = check_request(body, request_id, self.nc.max_payload)
        if refused is not None:
            return refused
        try:
            subject = s.request_subject(namespace, name)
        except SubjectTooLong as exc:  # a name no DGDR can have (the service checks names)
            return {
                "status": "rejected",
                "requestId": request_id,
                "reason": "Invalid",
                "message": "invalid name",
                "errors": [{"field": "metadata.name", "message": str(exc)}],
            }
        sub = await self.nc.subscribe(s.result_subject(request_id), max_msgs=1)
        try:
            try:
                ack = await refusing(
                    self.nc,
                    self.nc.jetstream().publish(
                        subject,
                        data,
                        stream=s.REQUESTS_STREAM,
                        headers={"Nats-Msg-Id": request_id},
                        timeout=5,
                    ),
                )
            except (NoRespondersError, NotFoundError) as exc:
                raise ConfigurationError(NOT_RUNNING.format(url=self.options.safe_url)) from exc
            if ack.duplicate:
                # The stream already holds this request id: it was (or is being) processed, and
                # its outcome went out then. Repeating a request is harmless; waiting would hang.
                return {
                    "status": "duplicate",
                    "requestId": request_id,
                    "message": f"request {request_id} was submitted before",
                }
            try:
                msg = await sub.next_msg(timeout=timeout)
            except TimeoutError as exc:
                raise WaitTimeout(
                    f"no dgdr service answered request {request_id} within "
                    f"{timeout:.0f} s: is `dgdr up` running?"
                ) from exc
        finally:
            await sub.unsubscribe()
        return cast(RequestOutcome, json.loads(msg.data))

    async def apply(
        self,
        manifest: dict[str, Any],
        *,
        namespace: str | None = None,
        request_id: str | None = None,
        timeout: float = 30.0,
    ) -> RequestOutcome:
        raw_meta = manifest.get("metadata")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        name = str(meta.get("name") or "")
        if not name:
            return {
                "status": "rejected",
                "reason": "Invalid",
                "message": "no metadata.name",
                "errors": [{"field": "metadata.name", "message": "add a name"}],
            }
        ns = namespace or meta.get("namespace") or self.namespace
        if meta.get("namespace") and namespace and meta["namespace"] != namespace:
            return {
                "status": "rejected",
                "reason": "Invalid",
                "message": f"the namespace from the object ({meta['namespace']}) does not "
                f"match the namespace asked for ({namespace})",
                "errors": [
                    {
                        "field": "metadata.namespace",
                        "message": "remove it, or use the same -n/--namespace",
                    }
                ],
            }
        return await self.submit(str(ns), name, manifest, request_id=request_id, timeout=timeout)

    async def apply_spec(
        self,
        name: str,
        spec: dict[str, Any],
        *,
        namespace: str | None = None,
        labels: dict[str, str] | None = None,
        request_id: str | None = None,
    ) -> RequestOutcome:
        """Apply a bare spec under `name` (the manifest around it is built here)."""
        metadata: dict[str, Any] = {"name": name}
        if labels:
            metadata["labels"] = labels
        manifest = {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}
        return await self.apply(manifest, namespace=namespace, request_id=request_id)

    async def apply_file(
        self, path: str | Path, *, namespace: str | None = None
    ) -> builtins.list[RequestOutcome]:
        """Apply every document of a YAML/JSON file, in order; one outcome per document."""
        return [await self.apply(doc, namespace=namespace) for doc in load_documents(path)]

    async def delete(
        self, name: str, *, namespace: str | None = None, request_id: str | None = None
    ) -> RequestOutcome:
        return await self.submit(
            namespace or self.namespace, name, {"action": "delete"}, request_id=request_id
        )

    # -------------------------------------------------------------------------------- status

    async def get(self, name: str, *, namespace: str | None = None) -> DgdrObject | None:
        kv = await self.kv()
        try:
            entry = await refusing(self.nc, kv.get(s.status_key(namespace or self.namespace, name)))
        except (KeyNotFoundError, SubjectTooLong):  # too long a name for any DGDR
            return None
        return json.loads(entry.value) if entry.value else None

    async def list(
        self, *, namespace: str | None = None, all_namespaces: bool = False
    ) -> list[DgdrObject]:
        await self.kv()  # ConfigurationError when the service never set NATS up
        prefix = None if all_namespaces else s.escape(namespace or self.namespace) + "."
        pattern = f"{prefix}>" if prefix else ">"
        keys = await refusing(self.nc, bucket_keys(self.nc.jetstream(), s.STATUS_BUCKET, pattern))
        out = []
        for key in keys:
            ns, name = s.parse_status_key(key)
            obj = await self.get(name, namespace=ns)
            if obj is not None:
                out.append(obj)
        return out

    async def _status_entries(
        self, name: str | None, namespace: str | None, all_namespaces: bool
    ) -> AsyncGenerator[tuple[str, str, DgdrObject | None] | None, None]:
        """The status bucket's entries for the name (or namespace, or all): the current state
        (a deleted name's tombstone skipped), None once that is delivered, then each change
        (None as the object when deleted)."""
        kv = await self.kv()
        if name:
            pattern = s.status_key(namespace or self.namespace, name)
        else:
            pattern = ">" if all_namespaces else f"{s.escape(namespace or self.namespace)}.>"
        watcher = await refusing(self.nc, kv.watch(pattern))
        current = True
        try:
            async for entry in watcher:  # not updates(timeout): see SimulatedCluster._watch
                if entry is None:  # nats-py's marker: the current values have been delivered
                    current = False
                    yield None
                    continue
                ns, nm = s.parse_status_key(entry.key)
                obj = json.loads(entry.value) if entry.value else None
                if obj is not None or not current:
                    yield ns, nm, obj
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]

    async def watch(
        self,
        name: str | None = None,
        *,
        namespace: str | None = None,
        all_namespaces: bool = False,
    ) -> AsyncIterator[tuple[str, str, DgdrObject | None]]:
        """(namespace, name, object) for the current state (deleted names are not in it), then
        each change (object None when deleted)."""
        entries = self._status_entries(name, namespace, all_namespaces)
        async with contextlib.aclosing(entries):  # its watcher stops with this generator
            async for item in entries:
                if item is not None:
                    yield item

    @contextlib.asynccontextmanager
    async def watching(
        self,
        name: str | None = None,
        *,
        namespace: str | None = None,
        all_namespaces: bool = False,
    ) -> AsyncIterator[StatusWatch]:
        """`kubectl get -w`: the current objects (sorted by namespace and name), then the
        changes that follow them, from one watch (none is missed or seen twice)."""
        entries = self._status_entries(name, namespace, all_namespaces)
        try:
            current: dict[tuple[str, str], DgdrObject] = {}
            async for item in entries:
                if item is None:
                    break
                ns, nm, obj = item
                if obj is None:
                    current.pop((ns, nm), None)
                else:
                    current[(ns, nm)] = obj
            yield StatusWatch([current[k] for k in sorted(current)], _changes(entries))
        finally:
            await entries.aclose()

    async def wait(
        self,
        name: str,
        *,
        namespace: str | None = None,
        resource_version: str | int | None = None,
        phase: str | None = None,
        timeout: float = 60.0,
    ) -> DgdrObject:
        """Read-your-writes: the object once its resourceVersion reaches `resource_version`
        and (if given) its phase is `phase`. A Failed DGDR ends a wait for another phase early."""
        target = int(resource_version or 0)

        async def until() -> DgdrObject:
            async for _, _, obj in self.watch(name, namespace=namespace):
                if obj is None:
                    continue
                rv = int(obj["metadata"]["resourceVersion"])
                current = obj.get("status", {}).get("phase")
                if rv >= target and (phase is None or current == phase):
                    return obj
                if rv >= target and phase and current == "Failed":
                    return obj
            raise WaitTimeout("watch ended")

        try:
            return await asyncio.wait_for(until(), timeout)
        except TimeoutError as exc:
            what = f"phase {phase}" if phase else f"resourceVersion {target}"
            raise WaitTimeout(f"{name} did not reach {what} within {timeout:.0f} s") from exc

    async def history(
        self, name: str, *, namespace: str | None = None
    ) -> builtins.list[HistoryEntry]:
        """Every stored event of every incarnation of the name, in order, with its sequence."""
        store = JetStreamEventStore(self.nc)
        try:
            commits = await refusing(self.nc, store.history(namespace or self.namespace, name))
        except NotFoundError as exc:
            raise ConfigurationError(NOT_RUNNING.format(url=self.options.safe_url)) from exc
        return history_entries(commits)
