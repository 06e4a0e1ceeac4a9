"""The dgdr client library: requests in, status and history out, over the public NATS contract.

    async with DgdrClient(ConnectOptions(url=...)) as c:
        outcome = await c.apply(manifest)             # {"status": "accepted", "resourceVersion": ...}
        obj = await c.wait("my-dgdr", resource_version=outcome["resourceVersion"])
        obj = await c.wait("my-dgdr", phase="Deployed", timeout=60)
        found, obj = await c.wait_for("my-dgdr", WaitFor("condition", "Succeeded", "True"))

`apply`/`delete` subscribe to `dgdr.res.<request-id>` before publishing the request, so the outcome
cannot be missed; a retry with the same request id is deduplicated by the stream and by the domain.
Typed results: `apply`/`delete` return a `RequestOutcome` (the outcome message of the NATS contract,
`dgdr.res.<request-id>`); `get`/`list`/`wait` return the DGDR object as `kubectl get -o json` shows it
(`DgdrObject`); `watch` yields the objects now (never a deleted one) and then each change, and
`watching` gives the objects now and the changes after them apart (`kubectl get -w`); `history` returns `HistoryEntry`s (a stored event envelope with its stream sequence,
or a stored message that is not folded, shown as such: it never fails for what is stored).
Manifests are read by `dgdr.manifests` (`load_manifests`, `load_documents`, re-exported here).
Errors: `ServerUnavailable` (nothing answers), `WaitTimeout` (no outcome or state in time),
`NotFound` (`wait_for` a name that does not exist: at once), `ConfigurationError` (the server
refuses who connects, or what its role may do: at once, in one line, not at a timeout). The calls
that first meet the service's layout (the status bucket, publishing a request, the events stream)
go through `DgdrClient.jetstream`, which turns nats-py's "not there" errors (no responders, 503,
stream or bucket not found) into the error that says what is missing: `NoJetStream` (a server
without -js) or `ServiceNotSetUp` (no dgdr service ever ran there: start `dgdr up`). A rejected
request is an outcome, not an exception; so is a request over the service's limits
(`dgdr.domain.limits`: request id, JSON depth, manifest and `spec.overrides` size), refused here
before it is sent.
`raise_for_outcome` turns an outcome into `RequestRejected` for callers who want that.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict, TypeVar, cast

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.js.errors import (
    APIError,
    KeyNotFoundError,
    NoStreamResponseError,
    NotFoundError,
    ServiceUnavailableError,
)
from nats.js.kv import KeyValue

from dgdr.domain.errors import (
    DgdrError,
    NoJetStream,
    NotFound,
    RequestRejected,
    ServerUnavailable,
    ServiceNotSetUp,
    SubjectTooLong,
    WaitTimeout,
)
from dgdr.domain.kinds import API_VERSION, KIND
from dgdr.domain.limits import (
    MAX_REQUEST_ID_CHARS,
    manifest_limit,
    request_id_problem,
    size_problems,
    value_depth_problem,
)
from dgdr.domain.waiting import Outcome, Verdict, WaitFor, verdict
from dgdr.manifests import Document as Document  # re-exported: the client's public names
from dgdr.manifests import load_documents as load_documents
from dgdr.manifests import load_manifests as load_manifests
from events import codec
from events import subjects as s
from events.connection import ConnectOptions, connect, refusing

if TYPE_CHECKING:
    from events.envelope import Commit

# The event store (`events.jetstream`, `events.integrity`: the event models behind them) is
# imported by the calls that read it, not with the client: listing and applying do without it.

T = TypeVar("T")
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
    from events.integrity import preview, verify_history

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


# What nats-py raises when the JetStream API, a stream or a bucket is not there: no responders, a
# 503, "stream not found". `absent_layout` says which of those it is.
ABSENT = (NoRespondersError, NoStreamResponseError, ServiceUnavailableError, NotFoundError)
STATUS_STREAM = f"KV_{s.STATUS_BUCKET}"  # exists once a dgdr service has set NATS up
JS_NOT_ENABLED = 10039  # JetStream's "not enabled for account"


def no_jetstream(url: str) -> NoJetStream:
    return NoJetStream(
        f"NATS at {url} has no JetStream: dgdr needs a server started with -js "
        "(`dgdr up` starts one), or an account with JetStream enabled"
    )


def not_set_up(url: str) -> ServiceNotSetUp:
    return ServiceNotSetUp(
        f"NATS at {url} has no dgdr streams: is the dgdr service running? start it with "
        f"`dgdr up` (or `dgdr up --no-embedded --server {url}`)"
    )


async def absent_layout(nc: Client, url: str, cause: Exception) -> DgdrError:
    """What a JetStream "not there" error (`ABSENT`) means, as one `DgdrError`: the server has no
    JetStream, the dgdr streams do not exist, or (both there) JetStream did not answer for a
    moment (a leader election)."""
    js = nc.jetstream(timeout=2)
    try:
        await refusing(nc, js.account_info())
    except (ServiceUnavailableError, NoRespondersError):
        return no_jetstream(url)
    except APIError as exc:
        if exc.err_code == JS_NOT_ENABLED:
            return no_jetstream(url)
        return ServerUnavailable(f"NATS at {url}: JetStream refused ({exc})")
    except (TimeoutError, DgdrError) as exc:
        return ServerUnavailable(
            f"NATS at {url}: JetStream did not answer ({str(exc) or 'timeout'})"
        )
    try:
        await refusing(nc, js.stream_info(STATUS_STREAM))
    except NotFoundError:
        return not_set_up(url)
    except (APIError, TimeoutError, NoRespondersError, DgdrError):
        pass
    return ServerUnavailable(
        f"NATS at {url}: JetStream did not answer ({type(cause).__name__}): try again in a moment"
    )


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

    async def jetstream(self, call: Awaitable[T]) -> T:
        """`await call` (a JetStream request), its "not there" errors (`ABSENT`) raised as the
        `DgdrError` that says what is missing (`absent_layout`), a refusal as `refusing` does."""
        try:
            return await refusing(self.nc, call)
        except KeyNotFoundError:  # a missing key is an answer, not a missing layout
            raise
        except ABSENT as exc:
            raise await absent_layout(self.nc, self.options.safe_url, exc) from exc

    async def kv(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self.jetstream(self.nc.jetstream().key_value(s.STATUS_BUCKET))
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
            ack = await self.jetstream(
                self.nc.jetstream().publish(
                    subject,
                    data,
                    stream=s.REQUESTS_STREAM,
                    headers={"Nats-Msg-Id": request_id},
                    timeout=5,
                )
            )
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
        """Apply every document of a YAML/JSON file (or a directory's files, `kind: List` items),
        in order; one outcome per document."""
        docs = load_manifests([str(path)])
        return [await self.apply(doc.body, namespace=namespace) for doc in docs]

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
        return codec.loads(entry.value) if entry.value else None

    async def list(
        self, *, namespace: str | None = None, all_namespaces: bool = False
    ) -> list[DgdrObject]:
        from events.jetstream import bucket_values

        await self.kv()  # ConfigurationError when the service never set NATS up
        prefix = None if all_namespaces else s.escape(namespace or self.namespace) + "."
        pattern = f"{prefix}>" if prefix else ">"
        values = await refusing(
            self.nc, bucket_values(self.nc.jetstream(), s.STATUS_BUCKET, pattern)
        )
        return codec.loads_all(values[key] for key in sorted(values))

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
        and (if given) its phase is `phase`. A DGDR that can no longer reach `phase` without a new
        spec (a Failed one, a Deployed one asked for Ready) ends the wait early: check its phase.
        A name that does not exist is `NotFound` at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        obj: DgdrObject | None = None
        if resource_version is not None or phase is None:
            until = WaitFor("resourceVersion", value=str(int(resource_version or 0)))
            _, obj = await self.wait_for(name, until, namespace=namespace, timeout=timeout)
        if phase is not None:
            left = deadline - loop.time()
            _, obj = await self.wait_for(
                name, WaitFor("phase", phase), namespace=namespace, timeout=left
            )
        assert obj is not None  # not a wait for delete
        return obj

    async def wait_for(
        self, name: str, until: WaitFor, *, namespace: str | None = None, timeout: float = 60.0
    ) -> tuple[Verdict, DgdrObject | None]:
        """Wait until the DGDR meets `until` (`dgdr.domain.waiting`), or cannot any more without
        a new spec: (the verdict, MET or IMPOSSIBLE, and the object; None once deleted). The
        current state is always looked at, even with no time left. A name that does not exist
        (or is deleted while waited for) is `NotFound` at once, unless waiting for its delete;
        `timeout` seconds without a verdict is `WaitTimeout`."""
        ns = namespace or self.namespace

        async def decide(obj: DgdrObject | None) -> Verdict | None:  # None: keep waiting
            if obj is None:
                if await self.recorded(name, namespace=ns):
                    return None  # applied, its status not projected yet (or a tombstone replayed)
                if until.kind == "delete":
                    return Verdict(Outcome.MET)
                raise NotFound(ns, name)
            if until.kind == "delete":
                return None
            found = verdict(obj, until)
            return None if found.outcome is Outcome.PENDING else found

        obj = await self.get(name, namespace=ns)
        decided = await decide(obj)
        if decided is not None:
            return decided, obj
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                async for _, _, obj in self.watch(name, namespace=ns):
                    decided = await decide(obj)
                    if decided is not None:
                        return decided, obj
        except TimeoutError:
            pass
        raise WaitTimeout(f"{name} did not reach {until} within {max(timeout, 0):.0f} s")

    async def recorded(self, name: str, *, namespace: str | None = None) -> bool:
        """Whether the store holds a live incarnation of the name (its last event not `Deleted`)."""
        from events.jetstream import JetStreamEventStore

        store = JetStreamEventStore(self.nc, retry_deadline=5)
        last = await self.jetstream(store.latest(namespace or self.namespace, name))
        if last is None:
            return False
        return last.damage is not None or not last.envelopes or last.envelopes[-1].type != "Deleted"

    async def history(
        self, name: str, *, namespace: str | None = None
    ) -> builtins.list[HistoryEntry]:
        """Every stored event of every incarnation of the name, in order, with its sequence."""
        from events.jetstream import JetStreamEventStore

        await self.kv()  # the store reads a missing stream as an empty history: say what is missing
        store = JetStreamEventStore(self.nc)
        commits = await self.jetstream(store.history(namespace or self.namespace, name))
        return history_entries(commits)
