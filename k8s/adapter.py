"""The Kubernetes adapter: DGDR objects in the cluster ↔ requests and projections in the core.

Level-triggered. Desired state is the DGDR object in the cluster; the core's state is its
projection in NATS KV. The adapter diffs the two and acts; every action is safe to repeat, so a
restart at any moment only repeats harmless work:
- A DGDR whose `metadata.generation` the adapter has not submitted yet → an apply request with id
  `k8s:<uid>:<generation>` (JetStream drops a repeat of that id, and the decider treats a repeated
  spec as a no-op). The object's uid becomes the incarnation's uid in the core. A spec the core
  refuses without recording anything (a spec change while Profiling, reason `SpecChangeRejected`;
  a spec Dynamo's admission would refuse, `Invalid`) becomes a Warning Event with that reason.
- Our finalizer `dgdr.nvidia.com/finalizer` is added before the first request. When the object is
  being deleted, a delete request (`k8s-delete:<uid>`) is sent while the core still holds that
  incarnation; once it does not, the finalizer is removed and Kubernetes deletes the object. The
  DGD is never touched (no owner reference): it outlives its DGDR.
- Every projection change is written through the status subresource with the object's
  resourceVersion as precondition; a 409 re-reads the object and tries again (up to 8 times, then
  the next change or resync converges).
- The generated DGD is also written, as YAML, to the annotation `nvidia.com/generated-dgd-spec`
  while it is waiting to be deployed (phase Ready, or Deploying before the DGD is observed), and
  the annotation is emptied once the DGD exists, as Dynamo's controller does (its message for
  Ready points users there).
- Every stored event becomes a Kubernetes Event (see `k8s.events`), through the durable consumer
  `dgdr-k8s-events`, keyed by (uid, sequence).
- An object stands for the core's incarnation named by its annotation `dgdr.nvidia.com/uid`, or
  without it for the one of its own uid. When the core holds the name under another uid (applied
  with `dgdr apply`, or left by an emulator that forgot its objects), `name_claim` decides from the
  uids and the specs: the same spec → the object is adopted (the annotation is set to the core's
  uid: the same request, now visible to kubectl; its DGD, created for that uid, stays consistent);
  a different spec → nothing is submitted, and the object gets status phase Pending with condition
  Succeeded False, reason `NameInUse`, and a Warning Event of that reason saying whose the name is
  and what to do. It is level-triggered: once the core's DGDR is deleted, the next resync submits
  the object as usual.
- One front door per DGDR: a DGDR of the core with no object (applied with `dgdr apply`) is
  mirrored as one, annotated with the core's uid and with `dgdr.nvidia.com/mirrored-generation`,
  the generation that holds the core's spec (so what was mirrored is never handed back, even after
  a restart, and a spec the CRD or the defaulting webhook filled in is not taken for a change). The
  core is the source of truth for the spec: a mirror's spec follows the core's (merge patch under
  its resourceVersion); a kubectl edit of it (a later generation) goes to the core as any edit
  does. When the core's DGDR is deleted, an object that stood for it is deleted too.
Handler failures are logged; the informer's resync (default 30 s) retries them.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from typing import Any, Literal

import structlog
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from dgdr.client import DgdrClient
from dgdr.domain.clock import now_rfc3339
from dgdr.domain.spec import DGDRSpec, parse_spec
from dgdr.domain.target import OWNER_UID
from events import subjects as s
from events.consumer import run_consumer
from events.jetstream import decode_message
from k8s.events import EventRecorder, describe, event_name
from k8s.informer import Informer, InformerGroup, WorkQueueObserver
from k8s.kube import (
    DGDR_PLURAL,
    DGDR_VERSION,
    FINALIZER,
    GROUP,
    LAST_APPLIED,
    MERGE_PATCH,
    get_custom,
)

log = structlog.get_logger("k8s.adapter")

STATUS_RETRIES = 8
GENERATED_DGD_SPEC = "nvidia.com/generated-dgd-spec"
EVENTS_DURABLE = "dgdr-k8s-events"
MIRRORED_GENERATION = "dgdr.nvidia.com/mirrored-generation"


def incarnation(obj: dict[str, Any]) -> str:
    """The uid of the core's incarnation this object stands for (see the module docstring)."""
    m = obj["metadata"]
    return str((m.get("annotations") or {}).get(OWNER_UID) or m["uid"])


NameClaim = Literal["free", "same", "adopt", "held"]


def name_claim(obj: dict[str, Any], projection: dict[str, Any] | None) -> NameClaim:
    """What the object may do with its name in the core: `free` (nothing there), `same` (it stands
    for the incarnation there), `adopt` (another uid, the same spec: the same request) or `held`
    (another uid and another spec: someone else's DGDR)."""
    if projection is None:
        return "free"
    if projection.get("metadata", {}).get("uid") == incarnation(obj):
        return "same"
    return "adopt" if same_spec(projection.get("spec"), request_manifest(obj)["spec"]) else "held"


def same_spec(a: Any, b: Any) -> bool:
    """Equal as specs: with the defaults filled in (the CRD's schema defaults what the core was
    sent without them), or, when either does not parse, as written."""
    parsed_a, parsed_b = parse_spec(a), parse_spec(b)
    if isinstance(parsed_a, DGDRSpec) and isinstance(parsed_b, DGDRSpec):
        return parsed_a == parsed_b
    return bool(a == b)


def name_in_use_message(namespace: str, name: str, held_by: str) -> str:
    return (
        f"the name {name} is held in dgdr by another DGDR (uid {held_by}) with a different spec, "
        f"so this one was not submitted: delete that one (dgdr delete {name} -n {namespace}; its "
        "DGD is kept) and this object is submitted on the next resync, or use another name"
    )


def request_manifest(obj: dict[str, Any]) -> dict[str, Any]:
    """What the core is asked to apply: the user's intent, without the cluster's bookkeeping."""
    m = obj["metadata"]
    bookkeeping = (LAST_APPLIED, GENERATED_DGD_SPEC, OWNER_UID, MIRRORED_GENERATION)
    annotations = {k: v for k, v in (m.get("annotations") or {}).items() if k not in bookkeeping}
    meta: dict[str, Any] = {"name": m["name"], "namespace": m["namespace"], "uid": incarnation(obj)}
    if m.get("labels"):
        meta["labels"] = dict(m["labels"])
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": obj.get("apiVersion", f"{GROUP}/{DGDR_VERSION}"),
        "kind": obj.get("kind", "DynamoGraphDeploymentRequest"),
        "metadata": meta,
        "spec": copy.deepcopy(obj.get("spec") or {}),
    }


def generated_spec_annotation(status: dict[str, Any]) -> str:
    """The value of `GENERATED_DGD_SPEC` for a status: the selected DGD as YAML while it waits to
    be deployed (Ready, or Deploying before any replica is reported), else empty."""
    selected = (status.get("profilingResults") or {}).get("selectedConfig")
    phase = status.get("phase")
    waiting = phase == "Ready" or (phase == "Deploying" and "deploymentInfo" not in status)
    if not waiting or not isinstance(selected, dict):
        return ""
    return yaml.safe_dump(selected, sort_keys=False)


def _same_incarnation(projection: dict[str, Any] | None, uid: str) -> bool:
    return projection is not None and projection.get("metadata", {}).get("uid") == uid


class KubernetesAdapter:
    def __init__(
        self,
        api: client.ApiClient,
        nats: DgdrClient,
        *,
        namespaces: list[str] | None = None,
        instance: str = "dgdr",
        resync: float = 30.0,
        observer: WorkQueueObserver | None = None,
    ) -> None:
        self.api, self.nats = api, nats
        self.namespaces = set(namespaces or ())  # empty: every namespace
        self.objects = client.CustomObjectsApi(api)
        self.recorder = EventRecorder(api, instance=instance)
        self.informer = InformerGroup(
            lambda ns: Informer.custom(
                api,
                group=GROUP,
                version=DGDR_VERSION,
                plural=DGDR_PLURAL,
                namespace=ns,
                handler=self.on_dgdr,
                resync=resync,
                observer=observer,
            ),
            namespaces,
        )
        self.submitted: dict[str, int] = {}  # uid → last generation handed to the core
        self.conflicts = 0

    # ------------------------------------------------------------------------------ running

    async def run(self) -> None:
        """Until cancelled: the DGDR informer, the projection watch, the Event recorder."""
        tasks = [asyncio.create_task(self.informer.run(), name="dgdr-informer")]
        try:
            await self.informer.wait_synced()
            tasks.append(asyncio.create_task(self._follow_projections(), name="status-writer"))
            tasks.append(asyncio.create_task(self._record_events(), name="event-recorder"))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=5)

    def _watched(self, namespace: str) -> bool:
        return not self.namespaces or namespace in self.namespaces

    # ----------------------------------------------------------------------- cluster → core

    async def on_dgdr(self, kind: str, obj: dict[str, Any]) -> None:
        m = obj["metadata"]
        uid, ns, name = m["uid"], m["namespace"], m["name"]
        if kind == "DELETED":
            self.submitted.pop(uid, None)
            return
        finalizers: list[str] = list(m.get("finalizers") or [])
        if m.get("deletionTimestamp"):
            if FINALIZER in finalizers:
                await self._finalize(obj, finalizers)
            return
        if FINALIZER not in finalizers and not await self._patch_meta(
            obj, {"finalizers": [*finalizers, FINALIZER]}
        ):
            return  # changed under us: the informer brings the newer object
        generation = int(m.get("generation") or 1)
        if self.submitted.get(uid) != generation:
            projection = await self.nats.get(name, namespace=ns)
            claim = name_claim(obj, projection)
            if claim in ("adopt", "held"):
                assert projection is not None
                await self._claim_name(obj, claim, projection, generation)
                return
            core_has_it = projection is not None and same_spec(
                projection.get("spec"), request_manifest(obj)["spec"]
            )
            mirrored = str((m.get("annotations") or {}).get(MIRRORED_GENERATION, ""))
            mirrored_generation = int(mirrored) if mirrored.isdigit() else 0
            if claim == "same" and (core_has_it or generation <= mirrored_generation):
                self.submitted[uid] = generation  # nothing to submit (e.g. mirrored from it)
            if self.submitted.get(uid) != generation:
                await self._submit(obj, generation)
        if kind in ("ADDED", "SYNC"):
            await self.write_status(ns, name, await self.nats.get(name, namespace=ns), obj)

    async def _submit(self, obj: dict[str, Any], generation: int) -> None:
        """Hand the object's spec to the core; a refusal that records nothing becomes a Warning
        Event with the core's reason."""
        m = obj["metadata"]
        uid, name = m["uid"], m["name"]
        outcome = await self.nats.apply(request_manifest(obj), request_id=f"k8s:{uid}:{generation}")
        self.submitted[uid] = generation
        status = outcome.get("status")
        log.info("apply", namespace=m["namespace"], name=name, uid=uid, generation=generation,
                 outcome=status)  # fmt: skip
        # refused with nothing recorded: `rejected`, or `invalid` at admission (no events)
        if status == "rejected" or (status == "invalid" and not outcome.get("events")):
            fields = "; ".join(f"{e['field']}: {e['message']}" for e in outcome.get("errors", []))
            await self.recorder.emit(
                obj,
                f"{name}.{uid[:8]}.rejected.{generation}",
                "Warning",
                str(outcome.get("reason") or "Invalid"),
                "; ".join(m for m in (str(outcome.get("message", "")), fields) if m),
            )

    async def _claim_name(
        self,
        obj: dict[str, Any],
        claim: NameClaim,
        projection: dict[str, Any],
        generation: int,
    ) -> None:
        """The core holds the object's name under another uid: adopt it, or say why not."""
        m = obj["metadata"]
        held_by = str(projection["metadata"]["uid"])
        bound = log.bind(namespace=m["namespace"], name=m["name"], uid=m["uid"], held_by=held_by)
        if claim == "adopt":
            if await self._patch_meta(obj, {"annotations": {OWNER_UID: held_by}}):
                bound.info("adopted the incarnation of the same name and spec")
            return  # the informer brings the annotated object: it is then the same incarnation
        message = name_in_use_message(m["namespace"], m["name"], held_by)
        condition = {
            "type": "Succeeded",
            "status": "False",
            "reason": "NameInUse",
            "message": message,
            "lastTransitionTime": now_rfc3339("seconds"),
            "observedGeneration": generation,
        }
        current = obj.get("status") or {}
        if (current.get("conditions") or [{}])[0].get("message") != message:
            status = {
                "phase": "Pending",
                "observedGeneration": generation,
                "conditions": [condition],
            }
            with contextlib.suppress(ApiException):  # 404/409: the next pass writes it
                await self.objects.replace_namespaced_custom_object_status(
                    GROUP, DGDR_VERSION, m["namespace"], DGDR_PLURAL, m["name"],
                    {**obj, "status": status},
                )  # fmt: skip
        event = f"{m['name']}.{m['uid'][:8]}.nameinuse.{generation}"
        if await self.recorder.emit(obj, event, "Warning", "NameInUse", message):
            bound.warning("name held by another DGDR; not submitted")

    async def _merge_patch(
        self, obj: dict[str, Any], metadata: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Merge-patch the DGDR's `metadata`; the object afterwards, None when it is gone (404) or
        changed under a `resourceVersion` precondition given in `metadata` (409)."""
        m = obj["metadata"]
        try:
            patched: dict[str, Any] = await self.objects.patch_namespaced_custom_object(  # type: ignore[call-arg]
                GROUP,
                DGDR_VERSION,
                m["namespace"],
                DGDR_PLURAL,
                m["name"],
                {"metadata": metadata},
                _content_type=MERGE_PATCH,
            )
        except ApiException as exc:
            if exc.status in (404, 409):
                return None
            raise
        return patched

    async def _patch_meta(self, obj: dict[str, Any], changes: dict[str, Any]) -> bool:
        precondition = {"resourceVersion": obj["metadata"]["resourceVersion"]}
        return await self._merge_patch(obj, {**changes, **precondition}) is not None

    async def _finalize(self, obj: dict[str, Any], finalizers: list[str]) -> None:
        m = obj["metadata"]
        ns, name, uid = m["namespace"], m["name"], incarnation(obj)
        if _same_incarnation(await self.nats.get(name, namespace=ns), uid):
            outcome = await self.nats.delete(name, namespace=ns, request_id=f"k8s-delete:{uid}")
            log.info("delete", namespace=ns, name=name, uid=uid, outcome=outcome.get("status"))
            for _ in range(50):
                if not _same_incarnation(await self.nats.get(name, namespace=ns), uid):
                    break
                await asyncio.sleep(0.1)
            else:
                return  # not gone yet: the next resync tries again
        rest = [f for f in finalizers if f != FINALIZER]
        if await self._patch_meta(obj, {"finalizers": rest or None}):
            log.info("finalizer removed", namespace=ns, name=name, uid=uid)

    # ----------------------------------------------------------------------- core → cluster

    async def _follow_projections(self) -> None:
        async for ns, name, projection in self.nats.watch(all_namespaces=True):
            if not self._watched(ns):
                continue
            cached = self.informer.get((ns, name))
            try:
                if projection is None:
                    await self._unmirror(cached)
                    continue
                cached = await self.mirror(ns, name, projection, cached)
                await self.write_status(ns, name, projection, cached)
            except ApiException as exc:  # e.g. the namespace does not exist in the cluster
                log.warning("not mirrored", namespace=ns, name=name, status=exc.status,
                            reason=exc.reason)  # fmt: skip
            except Exception:
                log.exception("mirror or status write failed", namespace=ns, name=name)

    async def mirror(
        self, namespace: str, name: str, projection: dict[str, Any], obj: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """A DGDR of the core as an object in the cluster: created when there is none (applied
        through NATS), its spec kept as the core's when it stands for that incarnation (the core
        is the source of truth for the spec). The generation written is marked submitted, so
        what was mirrored is never handed back. The object afterwards (None: not there)."""
        uid = str(projection["metadata"]["uid"])
        obj = obj or await self._read(namespace, name)
        spec = projection.get("spec") or {}
        if obj is None:
            pm = projection.get("metadata") or {}
            body = {
                "apiVersion": f"{GROUP}/{DGDR_VERSION}",
                "kind": "DynamoGraphDeploymentRequest",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": dict(pm.get("labels") or {}),
                    "annotations": {
                        **(pm.get("annotations") or {}),
                        OWNER_UID: uid,
                        MIRRORED_GENERATION: "1",  # a new object's generation
                    },
                    "finalizers": [FINALIZER],
                },
                "spec": spec,
            }
            action = "mirrored"
            write = self.objects.create_namespaced_custom_object(
                GROUP, DGDR_VERSION, namespace, DGDR_PLURAL, body
            )
        elif (
            incarnation(obj) == uid
            and (obj["metadata"].get("annotations") or {}).get(OWNER_UID)
            and not same_spec(spec, request_manifest(obj)["spec"])
        ):
            action = "spec followed"
            removed = {k: None for k in obj.get("spec") or {} if k not in spec}
            rv = obj["metadata"]["resourceVersion"]
            write = self.objects.patch_namespaced_custom_object(  # type: ignore[call-arg]
                GROUP, DGDR_VERSION, namespace, DGDR_PLURAL, name,
                {"metadata": {"resourceVersion": rv, "annotations": {MIRRORED_GENERATION: str(
                    int(obj["metadata"].get("generation") or 1) + 1)}},
                 "spec": {**removed, **spec}},
                _content_type=MERGE_PATCH,
            )  # fmt: skip
        else:
            return obj
        try:
            written: dict[str, Any] = await write
        except ApiException as exc:
            if exc.status != 409:  # refused: the caller logs it, the next change tries again
                raise
            return None  # changed meanwhile: the informer brings it
        wm = written["metadata"]
        self.submitted[wm["uid"]] = int(wm.get("generation") or 1)
        log.info(action, namespace=namespace, name=name, uid=uid)
        return written

    async def _unmirror(self, obj: dict[str, Any] | None) -> None:
        """The core's DGDR is gone: an object that stood for it (annotated) goes too; the
        finalizer sees the incarnation gone and lets Kubernetes delete it."""
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        m = obj["metadata"]
        if not (m.get("annotations") or {}).get(OWNER_UID):
            return  # a kubectl user's object: its own lifecycle
        if _same_incarnation(
            await self.nats.get(m["name"], namespace=m["namespace"]), incarnation(obj)
        ):
            return
        await self.delete_mirror(obj)

    async def delete_mirror(self, obj: dict[str, Any]) -> bool:
        """Delete the object (that exact one: a uid precondition); False when it was not there."""
        m = obj["metadata"]
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=m["uid"]))
        try:
            await self.objects.delete_namespaced_custom_object(
                GROUP, DGDR_VERSION, m["namespace"], DGDR_PLURAL, m["name"], body=options
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise
            return False
        log.info("mirror deleted", namespace=m["namespace"], name=m["name"], uid=m["uid"])
        return True

    async def write_status(
        self,
        namespace: str,
        name: str,
        projection: dict[str, Any] | None,
        obj: dict[str, Any] | None = None,
    ) -> bool:
        """Write the projection's status onto the object (same incarnation only); True if written."""
        if projection is None:
            return False
        desired = projection.get("status") or {}
        for _ in range(STATUS_RETRIES):
            if obj is None:
                obj = await self._read(namespace, name)
                if obj is None:
                    return False
            if not _same_incarnation(projection, incarnation(obj)):
                return False
            obj = await self._sync_generated_spec(obj, desired)
            if obj.get("status") == desired:
                return False
            body = {**obj, "status": desired}
            try:
                await self.objects.replace_namespaced_custom_object_status(
                    GROUP, DGDR_VERSION, namespace, DGDR_PLURAL, name, body
                )
            except ApiException as exc:
                if exc.status == 404:
                    return False
                if exc.status != 409:
                    raise
                self.conflicts += 1
                obj = None  # re-read and try again
                continue
            return True
        log.warning("status write gave up after conflicts", namespace=namespace, name=name)
        return False

    async def _sync_generated_spec(
        self, obj: dict[str, Any], status: dict[str, Any]
    ) -> dict[str, Any]:
        """Set or empty the generated-spec annotation (a merge patch of that key alone: it
        cannot undo anyone else's change, so it needs no resourceVersion precondition); the
        object as it is afterwards."""
        m = obj["metadata"]
        current = (m.get("annotations") or {}).get(GENERATED_DGD_SPEC)
        wanted = generated_spec_annotation(status)
        if current == wanted or (current is None and not wanted):
            return obj
        patched = await self._merge_patch(obj, {"annotations": {GENERATED_DGD_SPEC: wanted}})
        return obj if patched is None else patched

    async def _read(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await get_custom(self.objects, DGDR_VERSION, DGDR_PLURAL, namespace, name)

    async def _record_events(self) -> None:
        async def on_commit(msg: Any) -> None:
            commit = decode_message(msg, int(msg.metadata.sequence.stream))
            agg = commit.aggregate
            if commit.damage is not None or not self._watched(agg.namespace):
                return
            obj = self.informer.get((agg.namespace, agg.name))
            if obj is None or incarnation(obj) != agg.uid:
                obj = await self._read(agg.namespace, agg.name)
            if obj is None or incarnation(obj) != agg.uid:
                return  # not a DGDR of this cluster (applied through NATS), or gone
            for index, env in enumerate(commit.envelopes):
                described = describe(env.event)  # decoded once per envelope
                if described is None:
                    continue
                etype, reason, message = described
                await self.recorder.emit(
                    obj,
                    event_name(agg.name, agg.uid, commit.seq, index),
                    etype,
                    reason,
                    message,
                    at=env.time[:19] + "Z",
                )

        await run_consumer(
            self.nats.nc,
            self.nats.nc.jetstream(),
            stream=s.EVENTS_STREAM,
            durable=EVENTS_DURABLE,
            subject=f"{s.EVENTS_PREFIX}.>",
            handler=on_commit,
        )
