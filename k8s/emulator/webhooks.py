"""Admission and conversion webhooks, called as kube-apiserver calls them.

Owns the writes and reads that leave the process: on a create or update through the HTTP API,
the mutating webhooks that `MutatingWebhookConfiguration` objects register (rules: apiGroups,
apiVersions, resources with `/status` for the subresource, operations, scope) are called one after
the other with an AdmissionReview v1 and their JSONPatch applied; the patched object goes through
the CRD schema again (prune, default, validate); then the validating webhooks of
`ValidatingWebhookConfiguration` objects are called; then the store commits. For a CRD with
`conversion.strategy: Webhook`, objects are kept in the storage version: a request in another
served version is converted through the CRD's conversion webhook (ConversionReview v1) on the way
in and the way out, on reads (get, list, watch) as on writes.

Webhooks are reached by `clientConfig.url` (https only) and verified with `clientConfig.caBundle`
(the system trust store when empty); `clientConfig.service` cannot be reached from the emulator
(there are no Services behind it) and counts as a failed call. A refusal is answered as
kube-apiserver answers it: the webhook's status code (403 when it gives none), reason (Forbidden)
and the message `<resource>.<group> "<name>" is forbidden: admission webhook "<webhook>" denied
the request: <message>`. A call that fails (unreachable, TLS, timeout `timeoutSeconds` default 10,
a non-200 answer, a malformed review) refuses the write with 500 InternalError `failed calling
webhook "<webhook>": ...` under `failurePolicy: Fail` (the default), and is skipped under
`Ignore`. A failed conversion is 500 InternalError `conversion webhook for <gvk> failed: ...`.
Writes without a matching webhook and without conversion take the store's synchronous path.

Simplifications (deliberate): webhooks always receive the object in the storage version (as with
`matchPolicy: Equivalent`, the default, when the rule names the storage version; under Equivalent a
rule matches when it names the request's or the storage version, under Exact the request's); `namespaceSelector`, `objectSelector` and
`matchConditions` are not evaluated (every matching rule applies); DELETE and CONNECT are not sent
to webhooks, nor is an update that changes nothing (it is answered as a no-op at once); in-process writes through the `Store`'s Python API do not call webhooks (the trusted
controllers' path), and the synchronous `Store.get/list` return stored objects unconverted (read
the storage version in process).

Failure semantics: every refusal raises `ApiError` before anything is committed; an update whose
object changed while its webhooks were being called is computed again (up to 5 times) from the
new object, as kube-apiserver retries a guaranteed update; a PUT with a stale resourceVersion gets
409 on the retry as it would have before.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import ssl
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog

from k8s.emulator import admission, errors, meta, patch
from k8s.emulator.admission import WriteOptions
from k8s.emulator.resources import MUTATING_TYPE, VALIDATING_TYPE, ResourceType
from k8s.emulator.store import APPLY, Store

log = structlog.get_logger("k8s.emulator")

ADMISSION_REVIEW = "admission.k8s.io/v1"
CONVERSION_REVIEW = "apiextensions.k8s.io/v1"
DEFAULT_TIMEOUT = 10.0
CONVERSION_TIMEOUT = 30.0
UPDATE_RETRIES = 5

Obj = dict[str, Any]
Compute = Callable[[Obj], Obj]


class CallFailed(Exception):
    """A webhook could not be called, or answered something that is not a review (internal)."""


class Webhooks:
    """The webhook side of the API server for one Store (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._session: aiohttp.ClientSession | None = None
        self._contexts: dict[str, ssl.SSLContext] = {}

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # ------------------------------------------------------------ writes

    async def create(self, rt: ResourceType, namespace: str, body: Any, opts: WriteOptions) -> Obj:
        storage = self._storage(rt)
        if storage is rt and not self._hooks(rt, "CREATE", None):
            return self.store.do_create(rt, namespace, body, opts)
        return await self._create(rt, namespace, body, opts, apply=False)

    async def _create(
        self, rt: ResourceType, namespace: str, body: Any, opts: WriteOptions, *, apply: bool
    ) -> Obj:
        storage = self._storage(rt)
        obj = self.store.prepare_create(rt, namespace, body, opts, apply=apply)
        obj = await self.convert(obj, storage)
        obj = await self._admit(storage, "CREATE", obj, None, None, opts)
        return await self.convert(self.store.commit_create(storage, obj, opts), rt)

    async def replace(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        subresource: str | None,
        opts: WriteOptions,
    ) -> Obj:
        if self._storage(rt) is rt and not self._hooks(rt, "UPDATE", subresource):
            return self.store.do_update(rt, namespace, name, body, subresource, opts)

        def compute(old: Obj) -> Obj:
            return admission.prepare_update(rt, old, body, subresource, opts)

        return await self._update(rt, namespace, name, compute, subresource, opts)

    async def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        patch_body: Any,
        patch_type: str,
        subresource: str | None,
        opts: WriteOptions,
    ) -> tuple[Obj, bool]:
        """Apply a patch; returns (object, created) — only apply patches create."""
        storage = self._storage(rt)
        if (
            storage is rt
            and not self._hooks(rt, "UPDATE", subresource)
            and not (patch_type == APPLY and self._hooks(rt, "CREATE", subresource))
        ):
            return self.store.do_patch(
                rt, namespace, name, patch_body, patch_type, subresource, opts
            )
        body = self.store.check_patch(rt, name, patch_body, patch_type, opts)
        if patch_type == APPLY and self.store.get(*_gvr(storage), namespace, name) is None:
            create = self.store.apply_create_body(rt, name, body, subresource)
            return await self._create(rt, namespace, create, opts, apply=True), True

        def compute(old: Obj) -> Obj:
            patched = self.store.patched(rt, old, body, patch_type)
            return admission.prepare_update(
                rt, old, patched, subresource, opts, require_rv=False, apply=patch_type == APPLY
            )

        return await self._update(rt, namespace, name, compute, subresource, opts), False

    async def _update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        compute: Compute,
        subresource: str | None,
        opts: WriteOptions,
    ) -> Obj:
        storage = self._storage(rt)
        for attempt in range(UPDATE_RETRIES):
            old = self.store.stored(storage, namespace, name)
            old_in_rt = await self.convert(copy.deepcopy(old), rt)
            new = compute(old_in_rt)
            if _without_rv(new) == _without_rv(old_in_rt):
                return old_in_rt  # no-op: no webhooks, no new resourceVersion
            new = await self.convert(new, storage)
            new = await self._admit(storage, "UPDATE", new, old, subresource, opts)
            if (
                self.store.stored(storage, namespace, name) is not old
                and attempt + 1 < UPDATE_RETRIES
            ):
                continue  # it changed while the webhooks ran: compute again from the new object
            return await self.convert(self.store.commit_update(storage, new, old, opts), rt)
        raise AssertionError("unreachable")  # the last attempt commits or raises

    # ------------------------------------------------------------ admission

    def _storage(self, rt: ResourceType) -> ResourceType:
        return self.store.registry.storage_type(rt) if rt.converts_by_webhook else rt

    def _hooks(
        self, rt: ResourceType, operation: str, subresource: str | None
    ) -> list[tuple[ResourceType, Obj]]:
        """(configuration type, webhook) of every registered webhook whose rules match."""
        if rt.group == MUTATING_TYPE.group:
            return []  # the API server never sends webhook configurations to webhooks
        equivalent = {rt.version, self._storage(rt).version}
        found = []
        for config_type in (MUTATING_TYPE, VALIDATING_TYPE):
            for config in self.store.list(*_gvr(config_type)):
                for hook in config.get("webhooks") or []:
                    exact = hook.get("matchPolicy") == "Exact"
                    versions = {rt.version} if exact else equivalent
                    rules = hook.get("rules") or []
                    if any(
                        _rule_matches(rule, rt, versions, operation, subresource) for rule in rules
                    ):
                        found.append((config_type, hook))
        return found

    async def _admit(
        self,
        rt: ResourceType,
        operation: str,
        obj: Obj,
        old: Obj | None,
        subresource: str | None,
        opts: WriteOptions,
    ) -> Obj:
        """Mutating webhooks, the schema again when they changed something, validating webhooks."""
        hooks = self._hooks(rt, operation, subresource)
        mutated = False
        for config_type, hook in hooks:
            if config_type is not MUTATING_TYPE:
                continue
            response = await self._review(hook, rt, operation, obj, old, subresource, opts)
            if response is not None and response.get("patch"):
                obj = _patched(hook, obj, response)
                mutated = True
        if mutated:
            admission.admit(rt, obj, opts, apply=False)
            if operation == "UPDATE" and old is not None and rt.tracks_generation:
                changed = meta.content(rt, obj) != meta.content(rt, old)
                base = int(old["metadata"].get("generation", 1))
                if subresource is None:
                    obj["metadata"]["generation"] = base + 1 if changed else base
        for config_type, hook in hooks:
            if config_type is VALIDATING_TYPE:
                await self._review(hook, rt, operation, obj, old, subresource, opts)
        return obj

    async def _review(
        self,
        hook: Obj,
        rt: ResourceType,
        operation: str,
        obj: Obj,
        old: Obj | None,
        subresource: str | None,
        opts: WriteOptions,
    ) -> Obj | None:
        """Call one admission webhook: its response, None when it failed and may be ignored;
        raises the refusal."""
        name = str(hook.get("name", ""))
        if opts.dry_run and hook.get("sideEffects") not in ("None", "NoneOnDryRun"):
            raise errors.bad_request(f'admission webhook "{name}" does not support dry run')
        md = obj["metadata"]
        request: Obj = {
            "uid": str(uuid.uuid4()),
            "kind": rt.gvk,
            "resource": {"group": rt.group, "version": rt.version, "resource": rt.plural},
            "requestKind": rt.gvk,
            "requestResource": {"group": rt.group, "version": rt.version, "resource": rt.plural},
            "name": md.get("name", ""),
            "operation": operation,
            "userInfo": {"username": "system:admin", "groups": ["system:masters"]},
            "object": obj,
            "oldObject": old,
            "dryRun": opts.dry_run,
            "options": {
                "apiVersion": "meta.k8s.io/v1",
                "kind": "CreateOptions" if operation == "CREATE" else "UpdateOptions",
            },
        }
        if subresource:
            request["subResource"] = subresource
        if rt.namespaced:
            request["namespace"] = md.get("namespace", "")
        review = {"apiVersion": ADMISSION_REVIEW, "kind": "AdmissionReview", "request": request}
        timeout = float(hook.get("timeoutSeconds") or DEFAULT_TIMEOUT)
        try:
            body = await self._post(hook.get("clientConfig") or {}, review, timeout)
            response = _admission_response(body, request["uid"])
        except CallFailed as exc:
            if hook.get("failurePolicy", "Fail") == "Ignore":
                log.warning("webhook call failed; ignored", webhook=name, error=str(exc))
                return None
            raise errors.ApiError(
                500,
                "InternalError",
                f'Internal error occurred: failed calling webhook "{name}": {exc}',
            ) from exc
        for text in response.get("warnings") or []:
            if isinstance(text, str) and text not in opts.warnings:
                opts.warnings.append(text)
        if not response.get("allowed"):
            raise _denied(name, rt, md.get("name", ""), response.get("status"))
        return response

    # ------------------------------------------------------------ conversion

    async def convert(self, obj: Obj, rt: ResourceType) -> Obj:
        """`obj` in `rt`'s version (through the conversion webhook when it is in another)."""
        return (await self.convert_all([obj], rt))[0]

    async def convert_all(self, objs: list[Obj], rt: ResourceType) -> list[Obj]:
        need = [i for i, o in enumerate(objs) if o.get("apiVersion") != rt.api_version]
        if not need:
            return objs
        if rt.conversion_webhook is None:
            out = list(objs)
            for i in need:
                out[i] = {**objs[i], "apiVersion": rt.api_version}  # strategy None
            return out
        source = f"{objs[need[0]].get('apiVersion')}, Kind={rt.kind}"
        request: Obj = {
            "uid": str(uuid.uuid4()),
            "desiredAPIVersion": rt.api_version,
            "objects": [objs[i] for i in need],
        }
        review = {"apiVersion": CONVERSION_REVIEW, "kind": "ConversionReview", "request": request}
        try:
            body = await self._post(
                rt.conversion_webhook.get("clientConfig") or {}, review, CONVERSION_TIMEOUT
            )
            converted = _converted(body, request)
        except CallFailed as exc:
            raise errors.ApiError(
                500,
                "InternalError",
                f"Internal error occurred: conversion webhook for {source} failed: {exc}",
            ) from exc
        out = list(objs)
        for i, obj in zip(need, converted, strict=True):
            out[i] = obj
        return out

    # ------------------------------------------------------------ HTTP

    def _ssl(self, ca_bundle: Any) -> ssl.SSLContext:
        key = str(ca_bundle or "")
        ctx = self._contexts.get(key)
        if ctx is None:
            if key:
                try:
                    pem = base64.b64decode(key, validate=True).decode()
                    ctx = ssl.create_default_context(cadata=pem)
                except (binascii.Error, UnicodeDecodeError, ssl.SSLError, ValueError) as exc:
                    raise CallFailed(f"clientConfig.caBundle is not a PEM bundle: {exc}") from exc
            else:
                ctx = ssl.create_default_context()
            self._contexts[key] = ctx
        return ctx

    async def _post(self, client_config: Obj, body: Obj, timeout: float) -> Any:
        url = client_config.get("url")
        if not url:
            service = client_config.get("service") or {}
            raise CallFailed(
                f"service {service.get('namespace')}/{service.get('name')} cannot be reached: "
                "the emulator calls webhooks by clientConfig.url only"
            )
        if not str(url).startswith("https://"):
            raise CallFailed(f'Post "{url}": webhook URLs must use https')
        ctx = self._ssl(client_config.get("caBundle"))
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                url, json=body, ssl=ctx, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as resp:
                text = await resp.text()
                if resp.status != 200:
                    raise CallFailed(
                        f'Post "{url}": the server responded with {resp.status}: {text[:200]}'
                    )
                return _json(text, url)
        except aiohttp.ClientConnectorError as exc:
            raise CallFailed(f'failed to call webhook: Post "{url}": {exc.os_error}') from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise CallFailed(f'failed to call webhook: Post "{url}": {reason}') from exc


# --------------------------------------------------------------------------- helpers


def _gvr(rt: ResourceType) -> tuple[str, str, str]:
    return (rt.group, rt.version, rt.plural)


def _json(text: str, url: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CallFailed(f'Post "{url}": the response is not JSON: {exc}') from exc


def _without_rv(obj: Obj) -> Obj:
    md = dict(obj.get("metadata") or {})
    md.pop("resourceVersion", None)
    return {**obj, "metadata": md}


def _rule_matches(
    rule: Any, rt: ResourceType, versions: set[str], operation: str, subresource: str | None
) -> bool:
    if not isinstance(rule, dict):
        return False

    def allows(key: str, values: set[str]) -> bool:
        listed = rule.get(key) or []
        return "*" in listed or bool(values & set(listed))

    if not (allows("apiGroups", {rt.group}) and allows("apiVersions", versions)):
        return False
    if not allows("operations", {operation}):
        return False
    scope = rule.get("scope", "*")
    if scope != "*" and scope != ("Namespaced" if rt.namespaced else "Cluster"):
        return False
    if subresource is None:
        wanted = {rt.plural, "*", "*/*"}
    else:
        wanted = {f"{rt.plural}/{subresource}", f"{rt.plural}/*", f"*/{subresource}", "*/*"}
    return bool(wanted & set(rule.get("resources") or []))


def _admission_response(body: Any, uid: str) -> Obj:
    if not isinstance(body, dict) or body.get("kind") != "AdmissionReview":
        raise CallFailed("the webhook did not answer an AdmissionReview")
    response = body.get("response")
    if not isinstance(response, dict):
        raise CallFailed("the AdmissionReview has no response")
    if response.get("uid") != uid:
        raise CallFailed(f"expected response.uid={uid!r}, got {response.get('uid')!r}")
    return response


def _patched(hook: Obj, obj: Obj, response: Obj) -> Obj:
    name = hook.get("name", "")
    if response.get("patchType") != "JSONPatch":
        raise errors.ApiError(
            500, "InternalError",
            f'Internal error occurred: admission webhook "{name}" returned an unsupported '
            f"patchType {response.get('patchType')!r}",
        )  # fmt: skip
    try:
        operations = json.loads(base64.b64decode(response["patch"]))
        result = patch.json_patch(obj, operations)
    except (ValueError, binascii.Error, errors.ApiError) as exc:
        raise errors.ApiError(
            500, "InternalError",
            f'Internal error occurred: admission webhook "{name}" returned an unusable patch: {exc}',
        ) from exc  # fmt: skip
    if not isinstance(result, dict) or not isinstance(result.get("metadata"), dict):
        raise errors.ApiError(
            500, "InternalError",
            f'Internal error occurred: admission webhook "{name}" patched the object into a non-object',
        )  # fmt: skip
    return result


def _denied(webhook: str, rt: ResourceType, name: str, status: Any) -> errors.ApiError:
    """A refusal, worded as kube-apiserver's webhook admission plugin words it."""
    result = status if isinstance(status, dict) else {}
    code = int(result.get("code") or 403)
    denied_by = f'admission webhook "{webhook}" denied the request'
    if result.get("message"):
        message = f"{denied_by}: {result['message']}"
    elif result.get("reason"):
        message = f"{denied_by}: {result['reason']}"
    else:
        message = f"{denied_by} without explanation"
    resource = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
    if code == 500:
        return errors.ApiError(500, result.get("reason") or "InternalError",
                               f"Internal error occurred: {message}")  # fmt: skip
    return errors.ApiError(
        code,
        str(result.get("reason") or "Forbidden"),
        f'{resource} "{name or "Unknown"}" is forbidden: {message}',
        {"name": name or "Unknown", "group": rt.group, "kind": rt.plural},
    )


def _converted(body: Any, request: Obj) -> list[Obj]:
    if not isinstance(body, dict) or body.get("kind") != "ConversionReview":
        raise CallFailed("the webhook did not answer a ConversionReview")
    response = body.get("response")
    if not isinstance(response, dict) or response.get("uid") != request["uid"]:
        raise CallFailed("the ConversionReview response is missing or has another uid")
    result = response.get("result") or {}
    if result.get("status") != "Success":
        raise CallFailed(str(result.get("message") or "the conversion webhook reported a failure"))
    converted = response.get("convertedObjects")
    sent = request["objects"]
    if not isinstance(converted, list) or len(converted) != len(sent):
        raise CallFailed(f"expected {len(sent)} converted objects, got a different answer")
    for before, after in zip(sent, converted, strict=True):
        if not isinstance(after, dict) or after.get("apiVersion") != request["desiredAPIVersion"]:
            raise CallFailed(f"a converted object is not {request['desiredAPIVersion']}")
        if after.get("kind") != before.get("kind"):
            raise CallFailed("the conversion changed an object's kind")
        b_md, a_md = before.get("metadata") or {}, after.get("metadata") or {}
        for key in ("name", "namespace", "uid", "resourceVersion"):
            if b_md.get(key) != a_md.get(key):
                raise CallFailed(f"the conversion changed metadata.{key}, which it must not")
    return converted
