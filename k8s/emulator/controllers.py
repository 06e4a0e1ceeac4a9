"""Simulated controllers: stand-ins for the controllers nobody runs here (Dynamo's operator, the Job
controller), so objects created through the emulator move on as in a cluster.

Owns:
- `DgdController`: for each DynamoGraphDeployment that appears or whose generation changes, writes
  status `pending` (Ready False, every component with 0 ready replicas), then after
  `dgd_ready_delay` seconds `successful` (Ready True, all replicas ready and available,
  observedGeneration = generation). The status has the shape of the DGD's version and validates
  against Dynamo's own CRD: a v1alpha1 DGD (`spec.services` map) gets `status.services.<name>` with
  `componentKind` (Deployment, or LeaderWorkerSet for a multinode service), `componentName`
  (`<dgd>-<service lowercased>`, required by v1alpha1), `componentNames`, `replicas`,
  `updatedReplicas`, `readyReplicas`, `availableReplicas`; a v1beta1 DGD (`spec.components` list)
  gets `status.components.<name>` with the same fields but `componentName`; both get `state`,
  `observedGeneration` and one `Ready` condition (type, status, reason, message,
  lastTransitionTime, observedGeneration). It is written through the version of that shape. The annotation `emulator.dgdr.dev/fate` makes it misbehave:
  `fail` (failed instead of successful), `degrade` (successful, then failed `dgd_ready_delay` later),
  `vanish` (deleted `dgd_ready_delay` after becoming successful). `dgd_status()` builds the status
  `Emulator.set_dgd_state` writes.
- `JobController`: starts `job_runner(store, job)` as a task for each created batch/v1 Job
  (cancelled if the Job is deleted). `default_job_runner` marks the Job active, then after 1 s
  succeeded with SuccessCriteriaMet and Complete conditions.
Both write through the store, exactly like a client (new resourceVersions, watch events).

Failure semantics: a controller task whose object disappeared (404) or changed under it (409) just
stops; any other exception is logged and the task ends. Tasks are cancelled on `Emulator.stop()`.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from k8s.emulator import errors, meta
from k8s.emulator.store import Event, Store

log = structlog.get_logger("k8s.emulator")

DGD_KEY = ("nvidia.com", "dynamographdeployments")
JOB_KEY = ("batch", "jobs")
FATE_ANNOTATION = "emulator.dgdr.dev/fate"

JobRunner = Callable[[Store, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Component:
    """One service (v1alpha1) or component (v1beta1) of a DGD, as the operator would run it."""

    name: str
    replicas: int
    multinode: bool

    def kind(self) -> str:
        # Dynamo's operator without Grove: a Deployment, or a LeaderWorkerSet across nodes.
        return "LeaderWorkerSet" if self.multinode else "Deployment"

    def resource_name(self, dgd_name: str) -> str:
        return f"{dgd_name}-{self.name.lower()}"


def _replicas(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def _multinode(entry: dict[str, Any]) -> bool:
    multinode = entry.get("multinode")
    count = multinode.get("nodeCount", 2) if isinstance(multinode, dict) else 1
    return isinstance(count, int) and count > 1


def components(obj: dict[str, Any]) -> tuple[str, list[Component]]:
    """The DGD's shape ("components" for v1beta1's list, "services" for v1alpha1's map) and its
    components in spec order."""
    spec = obj.get("spec") or {}
    listed = spec.get("components")
    if isinstance(listed, list):
        return "components", [
            Component(str(c["name"]), _replicas(c.get("replicas", 1)), _multinode(c))
            for c in listed
            if isinstance(c, dict) and c.get("name")
        ]
    services = spec.get("services")
    if not isinstance(services, dict):
        return "services", []
    return "services", [
        Component(name, _replicas(s.get("replicas", 1)), _multinode(s))
        for name, s in services.items()
        if isinstance(s, dict)
    ]


def _component_status(c: Component, dgd_name: str, shape: str, ready: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"componentKind": c.kind()}
    if shape == "services":
        entry["componentName"] = c.resource_name(dgd_name)  # required in v1alpha1 (deprecated)
    entry["componentNames"] = [c.resource_name(dgd_name)]
    entry["replicas"] = c.replicas
    entry["updatedReplicas"] = c.replicas
    entry["readyReplicas"] = c.replicas if ready else 0
    entry["availableReplicas"] = c.replicas if ready else 0
    return entry


def dgd_status(obj: dict[str, Any], state: str, shape: str | None = None) -> dict[str, Any]:
    """The status Dynamo's operator writes for a DGD in `state`: `status.services` for a v1alpha1
    DGD (`spec.services`), `status.components` for a v1beta1 one (`spec.components`), or the
    `shape` given."""
    ready = state == "successful"
    found, parts = components(obj)
    shape = shape or found
    md = obj["metadata"]
    generation = md.get("generation", 1)
    status = copy.deepcopy(obj.get("status") or {})
    status.pop("services" if shape == "components" else "components", None)
    status["state"] = state
    status["observedGeneration"] = generation
    status[shape] = {c.name: _component_status(c, md["name"], shape, ready) for c in parts}
    if ready:
        condition = {
            "type": "Ready",
            "status": "True",
            "reason": "all_resources_are_ready",
            "message": "All resources are ready",
        }
    else:
        waiting = "; ".join(f"{c.name}: 0/{c.replicas} ready" for c in parts) or "no components"
        condition = {
            "type": "Ready",
            "status": "False",
            "reason": "some_resources_are_not_ready" if state != "failed" else "deployment_failed",
            "message": f"Resources not ready: {waiting}",
        }
    previous = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    old_ready = next((c for c in previous if c.get("type") == "Ready"), None)
    same = old_ready is not None and old_ready.get("status") == condition["status"]
    condition["lastTransitionTime"] = (
        old_ready.get("lastTransitionTime", meta.now()) if same and old_ready else meta.now()
    )
    condition["observedGeneration"] = generation
    status["conditions"] = [c for c in previous if c.get("type") != "Ready"] + [condition]
    return status


class DgdController:
    """Drives DynamoGraphDeployment status (stands in for Dynamo's operator)."""

    def __init__(self, store: Store, ready_delay: float) -> None:
        self.store = store
        self.ready_delay = ready_delay
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._generations: dict[tuple[str, str], int] = {}

    def on_event(self, event: Event) -> None:
        if event.key != DGD_KEY:
            return
        md = event.obj["metadata"]
        key = (md.get("namespace", ""), md["name"])
        if event.type == "DELETED":
            self._generations.pop(key, None)
            task = self._tasks.pop(key, None)
            if task is not None and task is not asyncio.current_task():
                task.cancel()
            return
        generation = int(md.get("generation", 1))
        if md.get("deletionTimestamp") or self._generations.get(key) == generation:
            return
        self._generations[key] = generation
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        previous = self._tasks.pop(key, None)
        if previous is not None:
            previous.cancel()
        self._tasks[key] = loop.create_task(self._run(key), name=f"dgd-controller {key}")

    async def _run(self, key: tuple[str, str]) -> None:
        namespace, name = key
        try:
            await self._write(namespace, name, "pending")
            await asyncio.sleep(self.ready_delay)
            fate = self._fate(namespace, name)
            if fate == "fail":
                await self._write(namespace, name, "failed")
                return
            await self._write(namespace, name, "successful")
            if fate == "degrade":
                await asyncio.sleep(self.ready_delay)
                await self._write(namespace, name, "failed")
            elif fate == "vanish":
                await asyncio.sleep(self.ready_delay)
                rt = self.store.type_for_key(DGD_KEY)
                if rt is not None:
                    self.store.do_delete(rt, namespace, name, "Background", {})
        except errors.ApiError as exc:
            log.debug("dgd controller stopped", namespace=namespace, name=name, reason=exc.reason)
        except Exception:
            log.exception("dgd controller failed", namespace=namespace, name=name)
        finally:
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]

    def _fate(self, namespace: str, name: str) -> str:
        rt = self.store.type_for_key(DGD_KEY)
        obj = self.store.get(rt.group, rt.version, rt.plural, namespace, name) if rt else None
        if obj is None:
            raise errors.not_found(DGD_KEY[0], DGD_KEY[1], name)
        return str((obj["metadata"].get("annotations") or {}).get(FATE_ANNOTATION, ""))

    async def _write(self, namespace: str, name: str, state: str) -> None:
        self.write_state(namespace, name, state)

    def write_state(self, namespace: str, name: str, state: str) -> dict[str, Any]:
        """Write the status for `state` through the version whose schema has the DGD's shape
        (v1beta1 for `spec.components`, v1alpha1 for `spec.services`), so it validates."""
        rt = self.store.type_for_key(DGD_KEY)
        if rt is None:
            raise errors.not_found(DGD_KEY[0], DGD_KEY[1], name)
        obj = self.store.get(rt.group, rt.version, rt.plural, namespace, name)
        if obj is None:
            raise errors.not_found(rt.group, rt.plural, name)
        shape, _ = components(obj)
        version = "v1beta1" if shape == "components" else "v1alpha1"
        rt = self.store.registry.lookup(rt.group, version, rt.plural) or rt
        if rt.converts_by_webhook:  # stored as v1beta1 whatever its spec holds (no components)
            rt, shape = self.store.registry.storage_type(rt), "components"
        return self.store.set_status(rt, namespace, name, dgd_status(obj, state, shape))

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def default_job_runner(store: Store, job: dict[str, Any]) -> None:
    """Mark the Job active, then after 1 s succeeded/Complete (no pods are run)."""
    md = job["metadata"]
    namespace, name = md.get("namespace", "default"), md["name"]
    start = meta.now()
    await store.patch_status(
        "batch", "v1", "jobs", namespace, name, {"active": 1, "ready": 0, "startTime": start}
    )
    await asyncio.sleep(1.0)
    done = meta.now()
    conditions = [
        {
            "type": kind,
            "status": "True",
            "reason": "CompletionsReached",
            "message": "Reached expected number of succeeded pods",
            "lastProbeTime": done,
            "lastTransitionTime": done,
        }
        for kind in ("SuccessCriteriaMet", "Complete")
    ]
    await store.patch_status(
        "batch",
        "v1",
        "jobs",
        namespace,
        name,
        {
            "active": None,
            "ready": 0,
            "succeeded": 1,
            "completionTime": done,
            "conditions": conditions,
        },
    )


class JobController:
    """Runs `job_runner` for every created Job (stands in for the Job controller and kubelet)."""

    def __init__(self, store: Store, runner: JobRunner) -> None:
        self.store = store
        self.runner = runner
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def on_event(self, event: Event) -> None:
        if event.key != JOB_KEY:
            return
        uid = event.obj["metadata"]["uid"]
        if event.type == "DELETED":
            task = self._tasks.pop(uid, None)
            if task is not None and task is not asyncio.current_task():
                task.cancel()
            return
        if event.type != "ADDED" or uid in self._tasks:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        job = copy.deepcopy(event.obj)
        self._tasks[uid] = loop.create_task(
            self._run(uid, job), name=f"job {job['metadata']['name']}"
        )

    async def _run(self, uid: str, job: dict[str, Any]) -> None:
        try:
            await self.runner(self.store, job)
        except errors.ApiError as exc:
            log.debug("job runner stopped", job=job["metadata"]["name"], reason=exc.reason)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job runner failed", job=job["metadata"]["name"])
        finally:
            if self._tasks.get(uid) is asyncio.current_task():
                del self._tasks[uid]

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
