"""The object store: every object the emulated cluster holds, its history, and its watchers.

Owns the write path every client write and every simulated controller goes through, with the real
server's semantics: a global, monotonically increasing resourceVersion; namespaces that must exist;
AlreadyExists and NotFound; patches (merge, JSON, apply; strategic merge patch for built-in kinds
only, approximated as a merge patch); no resourceVersion bump and no event for a no-op write;
finalizers (DELETE sets deletionTimestamp; an update that removes the last finalizer deletes);
DeleteOptions preconditions; ownerReference garbage collection (background: dependents in the
same namespace go when their last owner goes; Foreground is treated as Background, Orphan keeps
them); deleting a namespace deletes everything in it at once; CRD objects register their kinds.
What a body becomes before it is committed (metadata rules, status subresource separation,
optimistic concurrency, CRD schema) is `admission`'s job. Every committed change becomes one watch
event (ADDED, MODIFIED, DELETED) recorded in the `history` log, fanned out to open watchers and to
in-process listeners (the simulated controllers).

Python API (reads are synchronous, writes are coroutines; everything runs on the emulator's event
loop, so each write is atomic):
- `get(group, version, plural, namespace, name) -> dict | None`
- `list(group, version, plural, namespace=None, label_selector=None, field_selector=None)`
- `await create(group, version, plural, namespace, body)`
- `await replace(group, version, plural, namespace, name, body, subresource=None)` (PUT)
- `await patch(group, version, plural, namespace, name, patch, patch_type=..., subresource=None)`
- `await apply(body, field_manager=...)` (server-side apply of a full manifest, create-if-absent)
- `await update_status(group, version, plural, namespace, name, status)` (no precondition)
- `await patch_status(group, version, plural, namespace, name, status_patch)` (merge patch)
- `await delete(group, version, plural, namespace, name, propagation=None, preconditions=None)`
Use `namespace=""` (or None) for cluster-scoped kinds. These in-process writes call no webhooks;
HTTP writes go through `webhooks.Webhooks`, which splits a write into `prepare_create` /
`commit_create` or `stored` + `patched` + `admission.prepare_update` / `commit_update`, awaiting
the webhooks in between (`commit_update` refuses with 409 when the object changed meanwhile).

Persistence (`Store(..., path=...)`, what `dgdr up --cluster emulated` uses with DATA_DIR/emulator):
every object and the resourceVersion counter are written to `path` as one JSON snapshot (to a
temporary file, then renamed, so a crash leaves the previous snapshot whole) shortly after each
write (writes within 50 ms share one snapshot) and by `save()` (the emulator's `stop`); `load()`
restores them (CRDs first, so their kinds are served again), so a restarted emulator serves the
same objects with the same uids, and resourceVersions continue from where they were. Watch history
is not kept: a watch from before the restart gets 410 Expired and its client relists, as after an
API server's compaction. A snapshot that cannot be read raises `ValueError` naming the file.

Failure semantics: every rejected write raises `ApiError` (404, 409, 400, 415, 422) before anything
changes; a write either commits entirely (one resourceVersion, one event) or not at all. Watches
from a resourceVersion older than the kept history raise `ApiError` 410 Expired.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
import yaml

from k8s.emulator import admission, errors, meta, patch
from k8s.emulator.admission import WriteOptions
from k8s.emulator.history import Event, EventLog, Key, Watcher
from k8s.emulator.resources import (
    CRD_TYPE,
    NAMESPACE_TYPE,
    Registry,
    ResourceType,
    resource_types_from_crd,
)
from k8s.emulator.selectors import (
    field_value,
    parse_field_selector,
    parse_label_selector,
    supported_fields,
)

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
CR_PATCH_TYPES = [JSON_PATCH, MERGE, APPLY]
ALL_PATCH_TYPES = [JSON_PATCH, MERGE, STRATEGIC, APPLY]

PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")

log = structlog.get_logger("k8s.emulator")

__all__ = ["Event", "Key", "Store", "Watcher", "WriteOptions"]


class Store:
    def __init__(self, registry: Registry, history: int = 1000, path: Path | None = None) -> None:
        self.registry = registry
        self._objects: dict[Key, dict[tuple[str, str], dict[str, Any]]] = {}
        self._rv = 0
        self._log = EventLog(history)
        self._listeners: list[Callable[[Event], None]] = []
        self.path = path
        self._save_pending: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ persistence

    def load(self) -> bool:
        """Restore the snapshot at `path`; False when there is none (nothing changes then)."""
        if self.path is None or not self.path.is_file():
            return False
        try:
            snapshot = json.loads(self.path.read_text())
            entries = [(tuple(e["key"]), e["object"]) for e in snapshot["objects"]]
            rv = int(snapshot["resourceVersion"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.path}: not an emulator snapshot ({exc})") from exc
        entries.sort(key=lambda e: e[0] != CRD_TYPE.storage_key)  # CRDs register their kinds
        for key, obj in entries:
            md = obj["metadata"]
            self._objects.setdefault(key, {})[(md.get("namespace", ""), md["name"])] = obj
            if key == CRD_TYPE.storage_key:
                for rt in resource_types_from_crd(obj):
                    self.registry.add(rt)
        self._rv = rv
        self._log.compact(rv)
        return True

    def save(self) -> None:
        """Write the snapshot to `path` now (no-op without a path)."""
        if self._save_pending is not None:
            self._save_pending.cancel()
            self._save_pending = None
        if self.path is None:
            return
        objects = [
            {"key": list(key), "object": obj}
            for key, bucket in self._objects.items()
            for obj in bucket.values()
        ]
        text = json.dumps({"resourceVersion": self._rv, "objects": objects})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(text)
        os.replace(temporary, self.path)

    def _save_soon(self) -> None:
        if self.path is None or self._save_pending is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # seeding, before the event loop runs: `save()` follows
            return
        self._save_pending = loop.call_later(0.05, self._save_later)

    def _save_later(self) -> None:
        self._save_pending = None
        try:
            self.save()
        except OSError:
            log.exception("emulator snapshot not written", path=str(self.path))

    # ------------------------------------------------------------------ reads

    @property
    def resource_version(self) -> str:
        return str(self._rv)

    def resource_type(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self.registry.lookup(group, version, plural)
        if rt is None:
            raise errors.path_not_found()
        return rt

    def get(
        self, group: str, version: str, plural: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        rt = self.resource_type(group, version, plural)
        obj = self._bucket(rt).get((self._ns(rt, namespace), name))
        return self.present(rt, obj) if obj is not None else None

    def list(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        rt = self.resource_type(group, version, plural)
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector, supported_fields(rt.group, rt.plural))
        ns = self._ns(rt, namespace) if namespace else None
        out = []
        for (obj_ns, _), obj in sorted(self._bucket(rt).items()):
            if ns is not None and obj_ns != ns:
                continue
            if not labels.matches(obj["metadata"].get("labels")):
                continue
            if not fields.matches(obj, field_value):
                continue
            out.append(self.present(rt, obj))
        return out

    @staticmethod
    def present(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """A private copy of a stored object as `rt`'s version serves it; for a version a
        conversion webhook serves, the stored object as it is (its storage apiVersion: converting
        means calling out, which the HTTP layer does)."""
        out = copy.deepcopy(obj)
        if not rt.converts_by_webhook:
            out["apiVersion"] = rt.api_version
        return out

    def _bucket(self, rt: ResourceType) -> dict[tuple[str, str], dict[str, Any]]:
        return self._objects.setdefault(rt.storage_key, {})

    @staticmethod
    def _ns(rt: ResourceType, namespace: str | None) -> str:
        return (namespace or "") if rt.namespaced else ""

    # ------------------------------------------------------------ public writes

    async def create(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str | None,
        body: dict[str, Any],
        opts: WriteOptions | None = None,
    ) -> dict[str, Any]:
        rt = self.resource_type(group, version, plural)
        return self.do_create(rt, self._ns(rt, namespace), body, opts or WriteOptions())

    async def replace(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str | None,
        name: str,
        body: dict[str, Any],
        subresource: str | None = None,
        opts: WriteOptions | None = None,
    ) -> dict[str, Any]:
        rt = self.resource_type(group, version, plural)
        return self.do_update(
            rt, self._ns(rt, namespace), name, body, subresource, opts or WriteOptions()
        )

    async def patch(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str | None,
        name: str,
        patch_body: Any,
        patch_type: str = MERGE,
        subresource: str | None = None,
        opts: WriteOptions | None = None,
    ) -> dict[str, Any]:
        rt = self.resource_type(group, version, plural)
        obj, _ = self.do_patch(
            rt, self._ns(rt, namespace), name, patch_body, patch_type, subresource,
            opts or WriteOptions(),
        )  # fmt: skip
        return obj

    async def apply(
        self, body: dict[str, Any], field_manager: str = "emulator", force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply of a full manifest (apiVersion, kind, metadata.name[, namespace])."""
        rt = self.registry.by_kind(str(body.get("apiVersion", "")), str(body.get("kind", "")))
        if rt is None:
            raise errors.bad_request(
                f"no kind {body.get('kind')!r} is registered for version {body.get('apiVersion')!r}"
            )
        md = body.get("metadata") or {}
        namespace = self._ns(rt, md.get("namespace") or "default")
        opts = WriteOptions(field_manager=field_manager, force=force)
        obj, _ = self.do_patch(rt, namespace, md.get("name", ""), body, APPLY, None, opts)
        return obj

    async def update_status(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str | None,
        name: str,
        status: dict[str, Any],
    ) -> dict[str, Any]:
        """Replace `.status` unconditionally (no resourceVersion precondition)."""
        rt = self.resource_type(group, version, plural)
        return self.set_status(rt, self._ns(rt, namespace), name, status)

    def set_status(
        self, rt: ResourceType, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        current = self._require(rt, namespace, name)
        body = copy.deepcopy(current)
        body["status"] = copy.deepcopy(status)
        return self.do_update(rt, namespace, name, body, "status", WriteOptions())

    async def patch_status(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str | None,
        name: str,
        status_patch: dict[str, Any],
    ) -> dict[str, Any]:
        """JSON-merge-patch `.status` (no resourceVersion precondition)."""
        return await self.patch(
            group, version, plural, namespace, name, {"status": status_patch}, MERGE, "status"
        )

    async def delete(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str | None,
        name: str,
        propagation: str | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        rt = self.resource_type(group, version, plural)
        return self.do_delete(
            rt, self._ns(rt, namespace), name, propagation, preconditions or {}, dry_run
        )

    # ------------------------------------------------------------ write core

    def _require(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self._bucket(rt).get((namespace, name))
        if obj is None:
            raise errors.not_found(rt.group, rt.plural, name)
        return obj

    def do_create(
        self,
        rt: ResourceType,
        namespace: str,
        body: Any,
        opts: WriteOptions,
        *,
        apply: bool = False,
    ) -> dict[str, Any]:
        _direct(rt)
        obj = self.prepare_create(rt, namespace, body, opts, apply=apply)
        return self.commit_create(rt, obj, opts)

    def prepare_create(
        self,
        rt: ResourceType,
        namespace: str,
        body: Any,
        opts: WriteOptions,
        *,
        apply: bool = False,
    ) -> dict[str, Any]:
        """The object a create would store (admitted, not yet committed), or an ApiError."""
        if rt.namespaced and ("", namespace) not in self._bucket(NAMESPACE_TYPE):
            raise errors.not_found("", "namespaces", namespace)
        obj = admission.prepare_create(rt, namespace, body, opts, apply=apply)
        if (namespace, obj["metadata"]["name"]) in self._bucket(rt):
            raise errors.already_exists(rt.group, rt.plural, obj["metadata"]["name"])
        return obj

    def commit_create(
        self, rt: ResourceType, obj: dict[str, Any], opts: WriteOptions
    ) -> dict[str, Any]:
        """Store a prepared object (AlreadyExists is checked again: awaits may have come between)."""
        md = obj["metadata"]
        namespace = md.get("namespace", "")
        if rt.namespaced and ("", namespace) not in self._bucket(NAMESPACE_TYPE):
            raise errors.not_found("", "namespaces", namespace)
        if (namespace, md["name"]) in self._bucket(rt):
            raise errors.already_exists(rt.group, rt.plural, md["name"])
        if not opts.dry_run:
            self._commit(rt, "ADDED", obj, None)
        return self.present(rt, obj)

    def do_update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        subresource: str | None,
        opts: WriteOptions,
        *,
        require_rv: bool = True,
        apply: bool = False,
    ) -> dict[str, Any]:
        _direct(rt)
        old = self._require(rt, namespace, name)
        new = admission.prepare_update(
            rt, old, body, subresource, opts, require_rv=require_rv, apply=apply
        )
        return self.commit_update(rt, new, old, opts)

    def stored(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        """The stored object itself (not a copy: do not modify it), or NotFound."""
        return self._require(rt, namespace, name)

    def commit_update(
        self, rt: ResourceType, new: dict[str, Any], old: dict[str, Any], opts: WriteOptions
    ) -> dict[str, Any]:
        """Store `new` in place of `old`, which must still be the stored object (else Conflict)."""
        md = new["metadata"]
        key = (md.get("namespace", ""), md["name"])
        if self._bucket(rt).get(key) is not old:
            raise errors.conflict(rt.group, rt.plural, md["name"])
        if _strip_rv(new) == _strip_rv(old):
            return self.present(rt, old)  # no-op: no new resourceVersion, no event
        if opts.dry_run:
            return self.present(rt, new)
        if md.get("deletionTimestamp") and not md.get("finalizers"):
            self._remove(rt, new, "Background")
        else:
            self._commit(rt, "MODIFIED", new, old)
        return self.present(rt, new)

    def do_patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        patch_body: Any,
        patch_type: str,
        subresource: str | None,
        opts: WriteOptions,
    ) -> tuple[dict[str, Any], bool]:
        """Apply a patch; returns (object, created) — only apply patches can create."""
        _direct(rt)
        patch_body = self.check_patch(rt, name, patch_body, patch_type, opts)
        if patch_type == APPLY and (namespace, name) not in self._bucket(rt):
            return self.do_create(
                rt, namespace, self.apply_create_body(rt, name, patch_body, subresource), opts,
                apply=True,
            ), True  # fmt: skip
        old = self._require(rt, namespace, name)
        patched = self.patched(rt, old, patch_body, patch_type)
        obj = self.do_update(
            rt, namespace, name, patched, subresource, opts, require_rv=False,
            apply=patch_type == APPLY,
        )  # fmt: skip
        return obj, False

    @staticmethod
    def check_patch(
        rt: ResourceType, name: str, patch_body: Any, patch_type: str, opts: WriteOptions
    ) -> Any:
        """An apply patch's preliminaries (fieldManager, YAML, type meta, name); the body to use."""
        if patch_type != APPLY:
            return patch_body
        if not opts.field_manager:
            raise errors.invalid(
                "PatchOptions", "meta.k8s.io", "",
                [errors.required("fieldManager", "is required for apply patch")],
            )  # fmt: skip
        if isinstance(patch_body, str | bytes):
            try:
                patch_body = yaml.safe_load(patch_body)
            except yaml.YAMLError as exc:
                raise errors.bad_request(f"error decoding YAML: {exc}") from exc
        admission.check_type_meta(rt, patch_body, required=True)
        body_md = patch_body.get("metadata") or {}
        if body_md.get("name") and body_md["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({body_md['name']}) does not match the name on the "
                f"URL ({name})"
            )
        return patch_body

    @staticmethod
    def apply_create_body(
        rt: ResourceType, name: str, patch_body: dict[str, Any], subresource: str | None
    ) -> dict[str, Any]:
        """The create body of an apply patch to an absent object (NotFound on a subresource)."""
        if subresource is not None:
            raise errors.not_found(rt.group, rt.plural, name)
        body = copy.deepcopy(patch_body)
        body.setdefault("metadata", {})["name"] = name
        return body

    @staticmethod
    def patched(
        rt: ResourceType, old: dict[str, Any], patch_body: Any, patch_type: str
    ) -> dict[str, Any]:
        """`old` with the patch applied, its resourceVersion checked and set to old's."""
        name = old["metadata"]["name"]
        if patch_type == MERGE:
            if not isinstance(patch_body, dict):
                raise errors.bad_request("a merge patch must be a JSON object")
            patched = patch.merge_patch(old, patch_body)
        elif patch_type == JSON_PATCH:
            patched = patch.json_patch(old, patch_body)
        elif patch_type == STRATEGIC:
            if rt.custom:
                raise errors.unsupported_media_type(CR_PATCH_TYPES)
            if not isinstance(patch_body, dict):
                raise errors.bad_request("a strategic merge patch must be a JSON object")
            # Approximation: strategic merge patch treated as a JSON merge patch.
            patched = patch.merge_patch(old, patch.strategic_as_merge(patch_body))
        elif patch_type == APPLY:
            patched = patch.apply_config(old, patch_body)
        else:
            raise errors.unsupported_media_type(CR_PATCH_TYPES if rt.custom else ALL_PATCH_TYPES)
        if not isinstance(patched, dict):
            raise errors.bad_request("the patched object is not a JSON object")
        patched_md = patched.get("metadata")
        if not isinstance(patched_md, dict):
            raise errors.bad_request("the patch removed metadata")
        if str(patched_md.get("resourceVersion", "")) not in (
            "",
            old["metadata"]["resourceVersion"],
        ):
            raise errors.conflict(rt.group, rt.plural, name)
        patched_md["resourceVersion"] = old["metadata"]["resourceVersion"]
        return patched

    def do_delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        propagation: str | None,
        preconditions: dict[str, Any],
        dry_run: bool = False,
    ) -> dict[str, Any]:
        old = self._require(rt, namespace, name)
        md = old["metadata"]
        if rt is NAMESPACE_TYPE and name in PROTECTED_NAMESPACES:
            raise errors.ApiError(
                403,
                "Forbidden",
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                {"name": name, "kind": "namespaces"},
            )
        want_uid = preconditions.get("uid")
        if want_uid and want_uid != md["uid"]:
            raise errors.conflict(
                rt.group, rt.plural, name,
                f"Precondition failed: UID in precondition: {want_uid}, UID in object meta: {md['uid']}",
            )  # fmt: skip
        want_rv = preconditions.get("resourceVersion")
        if want_rv and str(want_rv) != md["resourceVersion"]:
            raise errors.conflict(
                rt.group, rt.plural, name,
                f"Precondition failed: ResourceVersion in precondition: {want_rv}, "
                f"ResourceVersion in object meta: {md['resourceVersion']}",
            )  # fmt: skip
        if dry_run:
            return self.present(rt, old)
        if md.get("finalizers"):
            if md.get("deletionTimestamp"):
                return self.present(rt, old)
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = meta.now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            self._commit(rt, "MODIFIED", new, old)
            return self.present(rt, new)
        gone = copy.deepcopy(old)
        self._remove(rt, gone, propagation or "Background")
        return self.present(rt, gone)

    # ------------------------------------------------------------ commit, events, cascades

    def _commit(
        self, rt: ResourceType, kind: str, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        md = obj["metadata"]
        self._bucket(rt)[(md.get("namespace", ""), md["name"])] = obj
        self._emit(rt, kind, obj, old)

    def _remove(self, rt: ResourceType, obj: dict[str, Any], propagation: str) -> None:
        md = obj["metadata"]
        old = self._bucket(rt).pop((md.get("namespace", ""), md["name"]))
        self._rv += 1
        md["resourceVersion"] = str(self._rv)
        self._emit(rt, "DELETED", obj, old)
        if rt.storage_key == NAMESPACE_TYPE.storage_key:
            self._purge_namespace(md["name"])
        if propagation != "Orphan":
            self._collect_garbage(md["uid"], md.get("namespace", ""))

    def _emit(
        self, rt: ResourceType, kind: str, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        event = Event(
            self._rv, kind, rt.storage_key, obj["metadata"].get("namespace", ""), obj, old
        )
        if rt.storage_key == CRD_TYPE.storage_key:
            self._sync_crd(event)
        self._log.record(event)
        self._save_soon()
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("store listener failed", listener=repr(listener))

    def _sync_crd(self, event: Event) -> None:
        name = event.obj["metadata"]["name"]
        if event.type == "DELETED":
            key = _crd_key(event.obj)
            rt = self.type_for_key(key)
            if rt is not None:
                for obj in list(self._objects.get(key, {}).values()):
                    gone = copy.deepcopy(obj)
                    gone["metadata"]["finalizers"] = []
                    self._remove(rt, gone, "Background")
            self._objects.pop(key, None)
            self.registry.remove_crd(name)
            return
        self.registry.remove_crd(name)
        for rt in resource_types_from_crd(event.obj):
            self.registry.add(rt)

    def type_for_key(self, key: Key) -> ResourceType | None:
        for rt in self.registry.all():
            if rt.storage_key == key:
                return rt
        return None

    def _collect_garbage(self, owner_uid: str, owner_namespace: str) -> None:
        for key, bucket in list(self._objects.items()):
            rt = self.type_for_key(key)
            if rt is None:
                continue
            for (ns, name), obj in list(bucket.items()):
                if owner_namespace and ns != owner_namespace:
                    continue
                refs = obj["metadata"].get("ownerReferences") or []
                if not any(r.get("uid") == owner_uid for r in refs):
                    continue
                if (ns, name) not in bucket:
                    continue  # already collected through another path
                others = [r for r in refs if r.get("uid") != owner_uid and self._uid_exists(r)]
                if others:
                    new = copy.deepcopy(obj)
                    new["metadata"]["ownerReferences"] = [
                        r for r in refs if r.get("uid") != owner_uid
                    ]
                    self._commit(rt, "MODIFIED", new, obj)
                else:
                    self.do_delete(rt, ns, name, "Background", {})

    def _uid_exists(self, ref: dict[str, Any]) -> bool:
        uid = ref.get("uid")
        return any(
            obj["metadata"].get("uid") == uid
            for bucket in self._objects.values()
            for obj in bucket.values()
        )

    def _purge_namespace(self, namespace: str) -> None:
        for key, bucket in list(self._objects.items()):
            rt = self.type_for_key(key)
            if rt is None or not rt.namespaced:
                continue
            for (ns, name), obj in list(bucket.items()):
                if ns == namespace and (ns, name) in bucket:
                    gone = copy.deepcopy(obj)
                    gone["metadata"]["finalizers"] = []
                    self._remove(rt, gone, "Background")

    # ------------------------------------------------------------ watch

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """Call `listener(event)` synchronously after every committed change."""
        self._listeners.append(listener)

    def watch(
        self, rt: ResourceType, namespace: str | None, resource_version: str | None
    ) -> Watcher:
        """Open a watcher, pre-filled with synthetic ADDED events (rv unset/"0") or a replay."""
        ns = self._ns(rt, namespace) if namespace else None
        snapshot = [
            Event(self._rv, "ADDED", rt.storage_key, obj_ns, obj, None)
            for (obj_ns, _), obj in sorted(self._bucket(rt).items())
        ]
        return self._log.open(rt.storage_key, ns, resource_version, snapshot)

    def unwatch(self, watcher: Watcher) -> None:
        self._log.close(watcher)

    def close_watchers(self) -> None:
        """End every open watch stream (each gets a None sentinel)."""
        self._log.close_all()

    def compact(self) -> None:
        """Forget the history: watches from any resourceVersion before now get 410 Gone."""
        self._log.compact(self._rv)


def _direct(rt: ResourceType) -> None:
    """Refuse a synchronous write in a version that only a conversion webhook can store."""
    if rt.converts_by_webhook:
        raise errors.bad_request(
            f"{rt.api_version} {rt.kind} is converted by a webhook: write it over HTTP, or write "
            "the storage version in process"
        )


def _strip_rv(obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    md = dict(out.get("metadata") or {})
    md.pop("resourceVersion", None)
    out["metadata"] = md
    return out


def _crd_key(crd: dict[str, Any]) -> Key:
    spec = crd.get("spec") or {}
    return (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
