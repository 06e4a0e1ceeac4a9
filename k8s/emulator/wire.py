"""Wire-level helpers shared by the HTTP handlers: booleans, content negotiation, JSON responses.

Owns Go `strconv.ParseBool` rules for query flags (`watch=True` from kubernetes_asyncio, `watch=1`
from kubectl), the `Accept` negotiation between plain JSON, `as=Table;g=meta.k8s.io` (v1 or
v1beta1) and `as=PartialObjectMetadata[List]`, rendering one object in the negotiated form, and
JSON responses with `Warning: 299` headers.

Failure semantics: an unparseable boolean raises `ApiError` 400; negotiation never fails (anything
unrecognised gets JSON, which every Kubernetes client accepts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from k8s.emulator import errors
from k8s.emulator.resources import ResourceType
from k8s.emulator.table import make_table, partial_metadata

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_bool(value: str | None, name: str = "value") -> bool:
    """Go strconv.ParseBool; an absent or empty value is false."""
    if value is None or value == "":
        return False
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise errors.bad_request(f'invalid boolean value for {name}: "{value}"')


@dataclass(frozen=True)
class Negotiated:
    as_kind: str  # "json" | "Table" | "PartialObjectMetadata"
    meta_version: str = "v1"
    include_object: str = "Metadata"  # Table rows: None | Metadata | Object

    @property
    def meta_api_version(self) -> str:
        return f"meta.k8s.io/{self.meta_version}"


def negotiate(request: web.Request) -> Negotiated:
    include = request.query.get("includeObject", "Metadata") or "Metadata"
    for entry in request.headers.get("Accept", "").split(","):
        parts = [p.strip() for p in entry.split(";")]
        params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        if parts[0] not in ("application/json", "*/*", "application/*", ""):
            continue  # protobuf, CBOR, YAML: the next alternative (kubectl always offers JSON)
        as_ = params.get("as")
        if as_ is None:
            return Negotiated("json")
        if params.get("g") == "meta.k8s.io" and as_ in (
            "Table",
            "PartialObjectMetadata",
            "PartialObjectMetadataList",
        ):
            kind = "Table" if as_ == "Table" else "PartialObjectMetadata"
            return Negotiated(kind, params.get("v", "v1"), include)
    return Negotiated("json")


def render(rt: ResourceType, obj: dict[str, Any], neg: Negotiated) -> dict[str, Any]:
    """One object as the client asked for it (a watch event object, or a GET of one item)."""
    if neg.as_kind == "Table":
        return make_table(
            rt,
            [obj],
            api_version=neg.meta_api_version,
            include_object=neg.include_object,
            resource_version=obj["metadata"].get("resourceVersion"),
        )
    if neg.as_kind == "PartialObjectMetadata":
        return partial_metadata(obj, neg.meta_api_version)
    return obj


def render_list(
    rt: ResourceType, items: list[dict[str, Any]], neg: Negotiated, resource_version: str
) -> dict[str, Any]:
    if neg.as_kind == "Table":
        return make_table(
            rt,
            items,
            api_version=neg.meta_api_version,
            include_object=neg.include_object,
            resource_version=resource_version,
        )
    if neg.as_kind == "PartialObjectMetadata":
        return {
            "kind": "PartialObjectMetadataList",
            "apiVersion": neg.meta_api_version,
            "metadata": {"resourceVersion": resource_version},
            "items": [partial_metadata(o, neg.meta_api_version) for o in items],
        }
    return {
        "kind": rt.list_kind,
        "apiVersion": rt.api_version,
        "metadata": {"resourceVersion": resource_version},
        "items": items,
    }


def json_response(body: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    resp = web.Response(
        status=status, body=json.dumps(body).encode(), content_type="application/json"
    )
    for text in warnings or ():
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        resp.headers.add("Warning", f'299 - "{escaped}"')
    return resp
