"""Admission of a write: turning a request body into the object to store, or refusing it.

Owns what happens to a body before the store commits it, in the real server's order: type-meta
checks (apiVersion/kind must match the URL), name/namespace consistency with the URL, server-owned
metadata (uid, creationTimestamp, generation, deletionTimestamp, resourceVersion are the server's),
`generateName`, status-subresource separation (the main endpoint keeps the stored status, /status
keeps everything but status), the finalizer rule while deleting (no new finalizers), optimistic
concurrency on resourceVersion, built-in defaults, and for custom resources the CRD schema
(prune unknown fields - a warning, or an error under fieldValidation=Strict -, default, validate).

Failure semantics: pure functions over copies; they raise `ApiError` (400 BadRequest, 409
Conflict, 422 Invalid) and never touch the store.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from k8s.emulator import errors, meta, schema
from k8s.emulator.resources import CRD_TYPE, ResourceType, resource_types_from_crd


@dataclass
class WriteOptions:
    """Per-request knobs of a write (the query parameters of the HTTP request)."""

    field_validation: str = "Warn"  # Ignore | Warn | Strict
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)  # filled with `Warning: 299` texts
    field_manager: str | None = None
    force: bool = False


def check_type_meta(rt: ResourceType, body: Any, *, required: bool = False) -> None:
    if not isinstance(body, dict):
        raise errors.bad_request(f"the object provided is not a {rt.kind}: expected a JSON object")
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if required and (not api_version or not kind):
        raise errors.bad_request(
            "Object 'Kind' is missing in the request" if not kind
            else "Object 'apiVersion' is missing in the request"
        )  # fmt: skip
    if api_version and api_version != rt.api_version:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected "
            f"API version ({rt.api_version})"
        )
    if kind and kind != rt.kind:
        raise errors.bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
        )
    if "metadata" in body and not isinstance(body["metadata"], dict):
        raise errors.bad_request("metadata must be an object")


def _namespace_mismatch() -> errors.ApiError:
    return errors.bad_request(
        "the namespace of the provided object does not match the namespace sent on the request"
    )


def prepare_create(
    rt: ResourceType, namespace: str, body: Any, opts: WriteOptions, *, apply: bool = False
) -> dict[str, Any]:
    """The object a create would store (without resourceVersion), or an ApiError."""
    check_type_meta(rt, body, required=apply)
    obj: dict[str, Any] = copy.deepcopy(body)
    obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
    md = obj.setdefault("metadata", {})
    if rt.namespaced:
        if md.get("namespace") and md["namespace"] != namespace:
            raise _namespace_mismatch()
        md["namespace"] = namespace
    else:
        md.pop("namespace", None)
    if md.get("resourceVersion"):
        raise errors.bad_request("resourceVersion should not be set on objects to be created")
    if not md.get("name"):
        if not md.get("generateName"):
            raise errors.invalid(
                rt.kind, rt.group, "",
                [errors.required("metadata.name", "name or generateName is required")],
            )  # fmt: skip
        md["name"] = meta.generate_name(md["generateName"])
    for key in meta.SERVER_OWNED:
        md.pop(key, None)
    md.pop("managedFields", None)
    md["uid"] = str(uuid.uuid4())
    md["creationTimestamp"] = meta.now()
    if rt.tracks_generation:
        md["generation"] = 1
    if rt.status_subresource:
        obj.pop("status", None)  # the main endpoint ignores status
    meta.builtin_defaults(rt, obj, creating=True)
    admit(rt, obj, opts, apply=apply)
    return obj


def prepare_update(
    rt: ResourceType,
    old: dict[str, Any],
    body: Any,
    subresource: str | None,
    opts: WriteOptions,
    *,
    require_rv: bool = True,
    apply: bool = False,
) -> dict[str, Any]:
    """The object an update of `old` with `body` would store, or an ApiError."""
    check_type_meta(rt, body)
    old_md = old["metadata"]
    name, namespace = old_md["name"], old_md.get("namespace", "")
    body_md = body.get("metadata") or {}
    if body_md.get("name") and body_md["name"] != name:
        raise errors.bad_request(
            f"the name of the object ({body_md['name']}) does not match the name on the URL "
            f"({name})"
        )
    if rt.namespaced and body_md.get("namespace") and body_md["namespace"] != namespace:
        raise _namespace_mismatch()
    rv = body_md.get("resourceVersion")
    if rv:
        if str(rv) != old_md["resourceVersion"]:
            raise errors.conflict(rt.group, rt.plural, name)
    elif require_rv and rt.custom:
        raise errors.invalid(
            rt.kind, rt.group, name,
            [errors.invalid_value("metadata.resourceVersion", 0, "must be specified for an update")],
        )  # fmt: skip
    if subresource == "status":
        new = copy.deepcopy(old)
        if "status" in body:
            new["status"] = copy.deepcopy(body["status"])
        else:
            new.pop("status", None)
    elif subresource is not None:
        raise errors.path_not_found()
    else:
        new = copy.deepcopy(body)
        new_md = new.setdefault("metadata", {})
        for key in meta.SERVER_OWNED:
            new_md.pop(key, None)
            if key in old_md:
                new_md[key] = old_md[key]
        new_md.pop("managedFields", None)
        new_md["name"] = name
        if rt.namespaced:
            new_md["namespace"] = namespace
        else:
            new_md.pop("namespace", None)
        if rt.status_subresource:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
    new["apiVersion"], new["kind"] = rt.api_version, rt.kind
    if old_md.get("deletionTimestamp"):
        old_finalizers = old_md.get("finalizers") or []
        added = [f for f in new["metadata"].get("finalizers") or [] if f not in old_finalizers]
        if added:
            found = "[]string{" + ", ".join(json.dumps(f) for f in added) + "}"
            raise errors.invalid(
                rt.kind, rt.group, name,
                [errors.forbidden(
                    "metadata.finalizers",
                    "no new finalizers can be added if the object is being deleted, "
                    f"found new finalizers {found}",
                )],
            )  # fmt: skip
    meta.builtin_defaults(rt, new, creating=False)
    admit(rt, new, opts, apply=apply, old=old)
    changed = meta.content(rt, new) != meta.content(rt, old)
    if rt.tracks_generation and subresource != "status" and changed:
        new["metadata"]["generation"] = int(old_md.get("generation", 1)) + 1
    return new


def admit(
    rt: ResourceType,
    obj: dict[str, Any],
    opts: WriteOptions,
    *,
    apply: bool,
    old: dict[str, Any] | None = None,
) -> None:
    """Metadata checks, and for custom resources prune, default and validate `obj` in place
    (`old`, the stored object on an update, is what CEL transition rules see as `oldSelf`)."""
    problems = meta.check_metadata(rt, obj["metadata"])
    if rt.custom and rt.schema is not None:
        pruned = schema.prune(rt.schema, obj)
        if pruned and opts.field_validation == "Strict":
            if apply:
                md = obj["metadata"]
                where = f"{md.get('namespace', '')}/{md.get('name', '')}"
                raise errors.bad_request(
                    f"failed to create typed patch object ({where}; {rt.api_version}, "
                    f"Kind={rt.kind}): "
                    + ", ".join(f".{p}: field not declared in schema" for p in pruned)
                )
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in pruned)
            )
        if opts.field_validation != "Ignore":
            for path in pruned:
                text = f'unknown field "{path}"'
                if text not in opts.warnings:
                    opts.warnings.append(text)
        schema.apply_defaults(rt.schema, obj)
        problems += schema.validate(rt.schema, obj, old=old)
    if problems:
        raise errors.invalid(rt.kind, rt.group, obj["metadata"].get("name", ""), problems)
    if rt.storage_key == CRD_TYPE.storage_key:
        resource_types_from_crd(obj)  # 422 before commit when the CRD is unusable
