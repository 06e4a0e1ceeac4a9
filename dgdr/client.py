"""The dgdr client library: requests in, status and history out, over the public NATS contract.

    async with DgdrClient(ConnectOptions(url=...)) as c:
        outcome = await c.apply(manifest)             # {"status": "accepted", "resourceVersion": ...}
        obj = await c.wait("my-dgdr", resource_version=outcome["resourceVersion"])
        obj = await c.wait("my-dgdr", phase="Deployed", timeout=60)

`apply`/`delete` subscribe to `dgdr.res.<request-id>` before publishing the request, so the outcome
cannot be missed; a retry with the same request id is deduplicated by the stream and by the domain.
Typed results: `apply`/`delete` return a `RequestOutcome` (the outcome message of the NATS contract,
`dgdr.res.<request-id>`); `get`/`list`/`wait` return the DGDR object as `kubectl get -o json` shows it
(`DgdrObject`); `history` returns `HistoryEntry`s (a stored event envelope with its stream sequence).
Errors: `ServerUnavailable` (nothing answers), `WaitTimeout` (no outcome or state in time),
`ConfigurationError` (the service's streams do not exist yet: start `dgdr up`; or the server refuses
who connects, or what its role may do: at once, in one line, not at a timeout).
A rejected request is an outcome, not an exception; `raise_for_outcome` turns it into
`RequestRejected` for callers who want that.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal, TypedDict, cast

import yaml
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from dgdr.domain.errors import ConfigurationError, RequestRejected, WaitTimeout
from dgdr.domain.spec import API_VERSION, KIND
from events import subjects as s
from events.connection import ConnectOptions, connect, refusing
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
    """One stored event: its envelope and the stream sequence of the commit that holds it."""

    sequence: int
    id: str
    type: str
    schemaVersion: int
    aggregate: AggregateRef
    time: str
    causationId: str | None
    correlationId: str | None
    payload: dict[str, Any]


NOT_RUNNING = "the dgdr service has not set up NATS at {url} yet: start it with `dgdr up`"


def load_documents(source: str | Path, text: str | None = None) -> list[dict[str, Any]]:
    """Every YAML/JSON document in a file (or `text`), skipping empty ones."""
    raw = text if text is not None else Path(source).read_text()
    docs = [d for d in yaml.safe_load_all(raw) if d is not None]
    for i, d in enumerate(docs):
        if not isinstance(d, dict):
            raise ConfigurationError(f"{source}: document {i + 1} is not a mapping")
    return docs


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
        if self._nc is None:
            self._nc = await connect(self.options, reconnect=False)

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
        request_id = request_id or str(uuid.uuid4())
        sub = await self.nc.subscribe(s.result_subject(request_id), max_msgs=1)
        try:
            try:
                ack = await refusing(
                    self.nc,
                    self.nc.jetstream().publish(
                        s.request_subject(namespace, name),
                        json.dumps(body).encode(),
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
        except KeyNotFoundError:
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

    async def watch(
        self,
        name: str | None = None,
        *,
        namespace: str | None = None,
        all_namespaces: bool = False,
    ) -> AsyncIterator[tuple[str, str, DgdrObject | None]]:
        """(namespace, name, object or None when deleted) for the current state, then each change."""
        kv = await self.kv()
        if name:
            pattern = s.status_key(namespace or self.namespace, name)
        else:
            pattern = ">" if all_namespaces else f"{s.escape(namespace or self.namespace)}.>"
        watcher = await refusing(self.nc, kv.watch(pattern))
        try:
            async for entry in watcher:  # not updates(timeout): see SimulatedCluster._watch
                if entry is None:
                    continue
                ns, nm = s.parse_status_key(entry.key)
                yield ns, nm, (json.loads(entry.value) if entry.value else None)
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]

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
        return [
            cast(HistoryEntry, {"sequence": c.seq, **env.to_dict()})
            for c in commits
            for env in c.envelopes
        ]
