"""The HTTP layer: aiohttp routes that speak the Kubernetes REST protocol over the store.

Owns routing: URL parsing (`/api/v1/...`, `/apis/<g>/<v>/...`, namespaced and cluster-scoped
paths, the `status` subresource, the legacy `/watch/` prefix), discovery and OpenAPI documents,
the verbs (get, list, create, update, patch, delete, deletecollection; watch is handed to
`watchstream`), request bodies (JSON, YAML for apply, protobuf for kubectl's typed clients), write
query parameters (fieldValidation, fieldManager, force, dryRun, propagationPolicy), DeleteOptions
bodies, the request log and conflict injection, and the `Warning` of a deprecated version. Writes
go through `webhooks.Webhooks` (admission and conversion webhooks), reads of a version a webhook
converts are read in the storage version and converted. Every request is authenticated and
authorized first (`auth`: a bearer token from the emulator's table, RBAC over the stored Role,
ClusterRole and binding objects; no token is the admin), and a create is checked for
OwnerReferencesPermissionEnforcement; the ServiceAccount `token` subresource mints a token (what
`kubectl create token` asks for). Plain http.

Failure semantics: every `ApiError` becomes a metav1.Status body with its HTTP code; any other
exception becomes 500 InternalError (and is logged).
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any

import structlog
import yaml
from aiohttp import web

from k8s.emulator import discovery, errors, protobuf
from k8s.emulator.auth import Authorizer, Tokens, request_attributes
from k8s.emulator.rbac import User
from k8s.emulator.resources import RBAC_TYPES, ResourceType
from k8s.emulator.store import APPLY, Store, WriteOptions
from k8s.emulator.watchstream import serve_watch
from k8s.emulator.webhooks import Webhooks
from k8s.emulator.wire import json_response, negotiate, parse_bool, render, render_list

log = structlog.get_logger("k8s.emulator")

REQUEST_LOG = 10_000
USER = web.RequestKey("user", User)  # who the request is (set by the middleware)


@dataclass(frozen=True)
class Target:
    """What a resource URL addresses."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    legacy_watch: bool


class ApiServer:
    """aiohttp application over a Store; the Emulator owns one."""

    def __init__(self, store: Store, *, bookmark_interval: float = 1.0) -> None:
        self.store = store
        self.webhooks = Webhooks(store)
        self.bookmark_interval = bookmark_interval
        # The most recent requests only: a long-running emulator must not grow without bound.
        self.requests: deque[tuple[str, str]] = deque(maxlen=REQUEST_LOG)
        self.server_address = "127.0.0.1:0"
        self._conflicts: list[list[Any]] = []  # [remaining, plural | None, subresource | None]
        self.tokens = Tokens()
        self.authorizer = Authorizer(self._rbac_objects)

    def _rbac_objects(self) -> list[dict[str, Any]]:
        return [obj for rt in RBAC_TYPES for obj in self.store.list(*_gvr(rt))]

    # ------------------------------------------------------------ test hooks

    def inject_conflicts(
        self, count: int, *, plural: str | None = None, subresource: str | None = None
    ) -> None:
        if count > 0:
            self._conflicts.append([count, plural, subresource])

    def _take_conflict(self, plural: str, subresource: str | None) -> bool:
        for entry in self._conflicts:
            remaining, want_plural, want_sub = entry
            if want_plural not in (None, plural):
                continue
            if want_sub is not None and want_sub != subresource:
                continue
            entry[0] = remaining - 1
            if entry[0] <= 0:
                self._conflicts.remove(entry)
            return True
        return False

    # ------------------------------------------------------------ app

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024**2)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        try:
            user = self.tokens.identify(request.headers.get("Authorization"))
            request[USER] = user
            self.authorizer.check(
                request_attributes(request.method, request.path, request.query, user)
            )
            resp: web.StreamResponse = await handler(request)
        except errors.ApiError as exc:
            resp = json_response(exc.status(), exc.code)
        except web.HTTPException:
            raise
        except Exception as exc:
            log.exception("request failed", method=request.method, path=request.path_qs)
            resp = json_response(
                errors.ApiError(500, "InternalError", f"Internal error occurred: {exc}").status(),
                500,
            )
        log.debug("request", method=request.method, path=request.path_qs, status=resp.status)
        return resp

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        method = request.method
        registry = self.store.registry
        if parts in (["healthz"], ["readyz"], ["livez"]):
            return web.Response(text="ok")
        if parts == ["version"]:
            return json_response(discovery.SERVER_VERSION)
        if parts[:1] == ["openapi"]:
            return self._openapi(parts[1:])
        if parts[:1] == ["api"]:
            if len(parts) == 1:
                return json_response(discovery.api_versions(self.server_address))
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"]:
            if len(parts) == 1:
                return json_response(discovery.group_list(registry))
            if len(parts) == 2:
                group_doc = discovery.api_group(registry, parts[1])
                if group_doc is None:
                    raise errors.path_not_found()
                return json_response(group_doc)
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise errors.path_not_found()
        if not rest:
            listing = discovery.resource_list(registry, group, version)
            if listing is None:
                raise errors.path_not_found()
            return json_response(listing)
        target = self._resolve(group, version, rest)
        if target.rt.plural == "serviceaccounts" and target.subresource == "token":
            return self._token_request(request, target)
        if target.subresource is not None and (
            target.subresource != "status" or not target.rt.status_subresource
        ):
            raise errors.path_not_found()
        if (
            target.rt.namespaced
            and target.namespace is None
            and (target.name is not None or method != "GET")
        ):
            raise errors.path_not_found()
        if target.name is None:
            if method == "GET":
                return await self._get_collection(request, target)
            if method == "POST":
                return await self._create(request, target)
            if method == "DELETE":
                return await self._delete_collection(request, target)
            raise errors.method_not_allowed()
        if method == "GET" and target.legacy_watch:
            return await serve_watch(
                request, self.store, target.rt, target.namespace, self.bookmark_interval,
                name=target.name, convert=self._converter(target.rt),
            )  # fmt: skip
        if method == "GET":
            return await self._get_item(request, target)
        if method == "PUT":
            return await self._replace(request, target)
        if method == "PATCH":
            return await self._patch(request, target)
        if method == "DELETE":
            return await self._delete(request, target)
        raise errors.method_not_allowed()

    def _resolve(self, group: str, version: str, rest: list[str]) -> Target:
        registry = self.store.registry
        legacy_watch = rest[0] == "watch"
        if legacy_watch:
            rest = rest[1:]
        namespace: str | None = None
        if (
            len(rest) >= 3
            and rest[0] == "namespaces"
            and (rt := registry.lookup(group, version, rest[2])) is not None
            and rt.namespaced
        ):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise errors.path_not_found()
        found = registry.lookup(group, version, rest[0])
        if found is None:
            raise errors.path_not_found()
        return Target(
            found,
            namespace,
            rest[1] if len(rest) > 1 else None,
            rest[2] if len(rest) > 2 else None,
            legacy_watch,
        )

    def _openapi(self, parts: list[str]) -> web.Response:
        registry = self.store.registry
        if parts == ["v3"]:
            return json_response(discovery.openapi_v3_root(registry))
        doc = None
        if len(parts) == 3 and parts[:2] == ["v3", "api"]:
            doc = discovery.openapi_v3_doc(registry, "", parts[2])
        elif len(parts) == 4 and parts[:2] == ["v3", "apis"]:
            doc = discovery.openapi_v3_doc(registry, parts[2], parts[3])
        if doc is None:
            raise errors.path_not_found()
        return json_response(doc)

    # ------------------------------------------------------------ reads

    def _render_list(
        self,
        request: web.Request,
        rt: ResourceType,
        items: list[dict[str, Any]],
        resource_version: str,
    ) -> web.Response:
        """`resource_version` is the store's, read when `items` were selected (before any await),
        so a watch from it misses nothing that was committed while they were converted."""
        body = render_list(rt, items, negotiate(request), resource_version)
        return json_response(body, warnings=_deprecation(rt))

    def _stored_type(self, rt: ResourceType) -> ResourceType:
        """The type to read `rt`'s objects through: its storage version when a webhook converts."""
        return self.store.registry.storage_type(rt) if rt.converts_by_webhook else rt

    def _converter(self, rt: ResourceType) -> Any:
        """For watches of a webhook-converted version: an async object -> object in `rt`."""
        if not rt.converts_by_webhook:
            return None

        async def convert(obj: dict[str, Any]) -> dict[str, Any]:
            return await self.webhooks.convert(obj, rt)

        return convert

    async def _get_collection(self, request: web.Request, target: Target) -> web.StreamResponse:
        q = request.query
        if target.legacy_watch or parse_bool(q.get("watch"), "watch"):
            return await serve_watch(
                request, self.store, target.rt, target.namespace, self.bookmark_interval,
                convert=self._converter(target.rt),
            )  # fmt: skip
        selected, as_of = self._selected(request, target), self.store.resource_version
        items = await self.webhooks.convert_all(selected, target.rt)
        return self._render_list(request, target.rt, items, as_of)

    async def _get_item(self, request: web.Request, target: Target) -> web.Response:
        rt, name = target.rt, str(target.name)
        stored = self._stored_type(rt)
        obj = self.store.get(stored.group, stored.version, stored.plural, target.namespace, name)
        if obj is None:
            raise errors.not_found(rt.group, rt.plural, name)
        obj = await self.webhooks.convert(obj, rt)
        return json_response(render(rt, obj, negotiate(request)), warnings=_deprecation(rt))

    # ------------------------------------------------------------ writes

    @staticmethod
    def _options(request: web.Request) -> WriteOptions:
        q = request.query
        mode = q.get("fieldValidation", "Warn") or "Warn"
        if mode not in ("Ignore", "Warn", "Strict"):
            raise errors.bad_request(
                f"fieldValidation parameter unsupported: {mode}. Supported values: Ignore, Warn, Strict"
            )
        dry_run = q.getall("dryRun", [])
        if any(d != "All" for d in dry_run):
            raise errors.bad_request(f"Invalid dry run value: {dry_run}")
        return WriteOptions(
            field_validation=mode,
            dry_run=bool(dry_run),
            field_manager=q.get("fieldManager"),
            force=parse_bool(q.get("force"), "force"),
        )

    @staticmethod
    async def _body(request: web.Request, *, allow_yaml: bool = False) -> Any:
        ctype = request.content_type
        raw = await request.read()
        if "protobuf" in ctype:
            return protobuf.decode(raw)  # kubectl's typed clients (create configmap, secret, ...)
        if "cbor" in ctype:
            raise errors.unsupported_media_type(["application/json", "application/yaml"])
        if not raw.strip():
            return None
        try:
            if allow_yaml or ctype in ("application/yaml", "application/apply-patch+yaml"):
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise errors.bad_request(f"couldn't get version/kind; json parse error: {exc}") from exc

    def _check_conflict(self, target: Target) -> None:
        if self._take_conflict(target.rt.plural, target.subresource):
            raise errors.conflict(target.rt.group, target.rt.plural, str(target.name))

    async def _create(self, request: web.Request, target: Target) -> web.Response:
        opts = self._options(request)
        body = await self._body(request)
        if body is None:
            raise errors.bad_request("the body of the request is empty")
        opts.warnings.extend(_deprecation(target.rt))
        if isinstance(body, dict):
            self.authorizer.check_owner_references(
                request[USER], body, target.rt.plural, target.rt.group, target.namespace or "",
                self._owner_type,
            )  # fmt: skip
        obj = await self.webhooks.create(target.rt, target.namespace or "", body, opts)
        return json_response(obj, 201, opts.warnings)

    async def _replace(self, request: web.Request, target: Target) -> web.Response:
        opts = self._options(request)
        body = await self._body(request)
        if body is None:
            raise errors.bad_request("the body of the request is empty")
        self._check_conflict(target)
        opts.warnings.extend(_deprecation(target.rt))
        obj = await self.webhooks.replace(
            target.rt, target.namespace or "", str(target.name), body, target.subresource, opts
        )
        return json_response(obj, 200, opts.warnings)

    async def _patch(self, request: web.Request, target: Target) -> web.Response:
        opts = self._options(request)
        ctype = request.content_type
        body = await self._body(request, allow_yaml=ctype == APPLY)
        if body is None:
            raise errors.bad_request("the body of the request is empty")
        self._check_conflict(target)
        opts.warnings.extend(_deprecation(target.rt))
        obj, created = await self.webhooks.patch(
            target.rt, target.namespace or "", str(target.name), body, ctype,
            target.subresource, opts,
        )  # fmt: skip
        return json_response(obj, 201 if created else 200, opts.warnings)

    async def _delete(self, request: web.Request, target: Target) -> web.Response:
        rt, name = target.rt, str(target.name)
        body = await self._body(request) or {}
        if not isinstance(body, dict):
            raise errors.bad_request("DeleteOptions must be a JSON object")
        q = request.query
        propagation = q.get("propagationPolicy") or body.get("propagationPolicy")
        if propagation not in (None, "Orphan", "Background", "Foreground"):
            raise errors.bad_request(f"unsupported propagationPolicy {propagation!r}")
        dry_run = bool(q.getall("dryRun", [])) or bool(body.get("dryRun"))
        obj = self.store.do_delete(
            self._stored_type(rt), target.namespace or "", name, propagation,
            body.get("preconditions") or {}, dry_run,
        )  # fmt: skip
        obj = await self.webhooks.convert(obj, rt)
        still_there = bool(obj["metadata"].get("deletionTimestamp")) and not dry_run
        if rt.custom or still_there:
            return json_response(obj)
        details: dict[str, Any] = {"name": name, "kind": rt.plural, "uid": obj["metadata"]["uid"]}
        if rt.group:
            details["group"] = rt.group
        return json_response(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": details,
            }
        )

    def _owner_type(self, api_version: str, kind: str) -> tuple[str, str, bool] | None:
        rt = self.store.registry.by_kind(api_version, kind)
        return None if rt is None else (rt.group, rt.plural, rt.namespaced)

    def _token_request(self, request: web.Request, target: Target) -> web.Response:
        """TokenRequest (`kubectl create token NAME`): a token for an existing ServiceAccount."""
        if request.method != "POST" or target.namespace is None:
            raise errors.method_not_allowed()
        name = str(target.name)
        if self.store.get("", "v1", "serviceaccounts", target.namespace, name) is None:
            raise errors.not_found("", "serviceaccounts", name)
        token = self.tokens.mint(target.namespace, name)
        body = {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": target.namespace},
            "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600},
            "status": {"token": token, "expirationTimestamp": "2099-01-01T00:00:00Z"},
        }
        return json_response(body, 201)

    def _selected(self, request: web.Request, target: Target) -> list[dict[str, Any]]:
        """The collection's objects that the request's label and field selectors pick."""
        rt, q = self._stored_type(target.rt), request.query
        return self.store.list(
            rt.group,
            rt.version,
            rt.plural,
            target.namespace,
            label_selector=q.get("labelSelector"),
            field_selector=q.get("fieldSelector"),
        )

    async def _delete_collection(self, request: web.Request, target: Target) -> web.Response:
        rt = target.rt
        q = request.query
        items = self._selected(request, target)
        deleted = []
        for obj in items:
            md = obj["metadata"]
            stored = self._stored_type(rt)
            if self.store.get(*_gvr(stored), md.get("namespace"), md["name"]):
                gone = self.store.do_delete(
                    stored, md.get("namespace", ""), md["name"], q.get("propagationPolicy"), {}
                )
                deleted.append(gone)
        if rt.custom:
            as_of = self.store.resource_version
            items = await self.webhooks.convert_all(deleted, rt)
            return self._render_list(request, rt, items, as_of)
        return json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
        )


def _gvr(rt: ResourceType) -> tuple[str, str, str]:
    return (rt.group, rt.version, rt.plural)


def _deprecation(rt: ResourceType) -> list[str]:
    """The Warning a request to a deprecated version gets (kubectl prints it)."""
    return [rt.deprecation_warning] if rt.deprecation_warning else []
