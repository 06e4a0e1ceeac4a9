"""Discovery and OpenAPI documents, built from the registry of served types.

Owns `/version`, `/api` (APIVersions), `/api/v1` and `/apis/<g>/<v>` (APIResourceList with verbs,
scope, kind, shortNames, categories and `<plural>/status` entries), `/apis` (APIGroupList) and
`/apis/<g>` (APIGroup), plus OpenAPI v3: the `/openapi/v3` root (one `serverRelativeURL` per
group-version, with a content hash) and the per-group-version documents. Each document has, for
every resource, the item path with a `patch` operation carrying `x-kubernetes-group-version-kind`
and a `fieldValidation` query parameter (what `kubectl apply` checks before delegating validation
to the server) and `components.schemas` with the CRDs' openAPIV3Schema. The patch request bodies do
not list strategic-merge-patch, so kubectl computes strategic patches for built-in kinds from its
own compiled-in types and JSON merge patches for custom ones, as against a real server.
Aggregated discovery (apidiscovery.k8s.io/v2) is not served; kubectl falls back to these.

Failure semantics: pure functions of the registry; an unknown group or version yields None and the
server answers 404.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from k8s.emulator.resources import ALL_VERBS, SUB_VERBS, Registry, ResourceType

SERVER_VERSION = {
    "major": "1",
    "minor": "37",
    "gitVersion": "v1.37.0-emulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def _gv(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def _storage_hash(rt: ResourceType) -> str:
    return hashlib.sha256(f"{rt.group}/{rt.plural}".encode()).hexdigest()[:11]


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = sorted(registry.in_group_version(group, version), key=lambda rt: rt.plural)
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for rt in types:
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(ALL_VERBS),
            "storageVersionHash": _storage_hash(rt),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        if rt.status_subresource:
            resources.append(
                {
                    "name": f"{rt.plural}/status",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": list(SUB_VERBS),
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": _gv(group, version),
        "resources": resources,
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": _gv(name, v), "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def group_list(registry: Registry) -> dict[str, Any]:
    groups = [_group(g, vs) for g, vs in registry.groups().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = registry.groups().get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}


# ---------------------------------------------------------------- OpenAPI v3


def _schema_name(rt: ResourceType) -> str:
    if rt.custom:
        reversed_group = ".".join(reversed(rt.group.split(".")))
        return f"{reversed_group}.{rt.version}.{rt.kind}"
    if rt.group == "apiextensions.k8s.io":
        return f"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{rt.version}.{rt.kind}"
    short = {"": "core", "coordination.k8s.io": "coordination", "events.k8s.io": "events"}
    return f"io.k8s.api.{short.get(rt.group, rt.group.split('.')[0])}.{rt.version}.{rt.kind}"


def _param(name: str, where: str = "query", required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required,
        "schema": {"type": "string", "uniqueItems": True},
    }


def _op(
    rt: ResourceType, action: str, op_id: str, *, body: list[str] | None = None
) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{_schema_name(rt)}"}
    op: dict[str, Any] = {
        "tags": [_gv(rt.group, rt.version)],
        "operationId": op_id,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": ref}}},
            "401": {"description": "Unauthorized"},
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": rt.gvk,
    }
    if action in ("put", "post", "patch"):
        op["parameters"] = [
            _param("dryRun"),
            _param("fieldManager"),
            _param("fieldValidation"),
        ]
        if action == "patch":
            op["parameters"].append(
                {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": True}}
            )
        patch_ref = {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}
        content_types = body or ["application/json"]
        schema = patch_ref if action == "patch" else ref
        op["requestBody"] = {
            "content": {ct: {"schema": schema} for ct in content_types},
            "required": True,
        }
    return op


def _paths(rt: ResourceType) -> dict[str, Any]:
    base = "/api/v1" if not rt.group else f"/apis/{rt.group}/{rt.version}"
    collection = (
        f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
    )
    item = f"{collection}/{{name}}"
    ident = f"{rt.group.replace('.', '_')}{rt.version}{rt.kind}"
    patch_types = [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
    ]
    common = [_param("name", "path", True)]
    if rt.namespaced:
        common.append(_param("namespace", "path", True))
    paths: dict[str, Any] = {
        collection: {
            "get": _op(rt, "list", f"list{ident}"),
            "post": _op(rt, "post", f"create{ident}"),
            "parameters": common[1:],
        },
        item: {
            "get": _op(rt, "get", f"read{ident}"),
            "put": _op(rt, "put", f"replace{ident}"),
            "patch": _op(rt, "patch", f"patch{ident}", body=patch_types),
            "delete": _op(rt, "delete", f"delete{ident}"),
            "parameters": common,
        },
    }
    if rt.status_subresource:
        paths[f"{item}/status"] = {
            "get": _op(rt, "get", f"read{ident}Status"),
            "put": _op(rt, "put", f"replace{ident}Status"),
            "patch": _op(rt, "patch", f"patch{ident}Status", body=patch_types),
            "parameters": common,
        }
    return paths


def _component(rt: ResourceType) -> dict[str, Any]:
    if rt.custom and rt.schema is not None:
        schema: dict[str, Any] = copy.deepcopy(rt.schema)
    else:
        schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    schema["x-kubernetes-group-version-kind"] = [rt.gvk]
    return schema


def openapi_v3_doc(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch": {
            "type": "object",
            "description": "Patch is provided to give a concrete name and type to the request body.",
        },
    }
    for rt in sorted(types, key=lambda t: t.plural):
        paths.update(_paths(rt))
        schemas[_schema_name(rt)] = _component(rt)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def doc_hash(doc: dict[str, Any]) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest().upper()


def openapi_v3_root(registry: Registry) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for group, versions in registry.groups().items():
        for version in versions:
            doc = openapi_v3_doc(registry, group, version)
            if doc is None:
                continue
            key = f"apis/{group}/{version}" if group else f"api/{version}"
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={doc_hash(doc)}"}
    return {"paths": paths}
