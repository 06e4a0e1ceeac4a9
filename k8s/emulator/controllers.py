"""Simulated controllers: stand-ins for the controllers nobody runs here (Dynamo's operator, the Job
controller), so objects created through the emulator move on as in a cluster.

Owns:
- `DgdController`: for each DynamoGraphDeployment that appears or whose generation changes, writes
  status `pending` (Ready False, every service of `spec.services` with 0 ready replicas), then after
  `dgd_ready_delay` seconds `successful` (Ready True, all replicas ready and available,
  observedGeneration = generation). The annotation `emulator.dgdr.dev/fate` makes it misbehave:
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
from typing import Any

import structlog

from k8s.emulator import errors, meta
from k8s.emulator.store import Event, Store

log = structlog.get_logger("k8s.emulator")

DGD_KEY = ("nvidia.com", "dynamographdeployments")
JOB_KEY = ("batch", "jobs")
FATE_ANNOTATION = "emulator.dgdr.dev/fate"

JobRunner = Callable[[Store, dict[str, Any]], Awaitable[None]]


def _services(obj: dict[str, Any]) -> dict[str, int]:
    services = (obj.get("spec") or {}).get("services") or {}
    out = {}
    for name, svc in services.items() if isinstance(services, dict) else ():
        replicas = svc.get("replicas", 1) if isinstance(svc, dict) else 1
        out[name] = replicas if isinstance(replicas, int) and not isinstance(replicas, bool) else 1
    return out


def dgd_status(obj: dict[str, Any], state: str) -> dict[str, Any]:
    """The status Dynamo's operator writes for a DGD in `state`."""
    ready = state == "successful"
    services = _services(obj)
    status = copy.deepcopy(obj.get("status") or {})
    status["state"] = state
    status["observedGeneration"] = obj["metadata"].get("generation", 1)
    status["services"] = {
        name: {
            "componentKind": "Deployment",
            "replicas": r,
            "updatedReplicas": r,
            "readyReplicas": r if ready else 0,
            "availableReplicas": r if ready else 0,
        }
        for name, r in services.items()
    }
    if ready:
        condition = {
            "type": "Ready",
            "status": "True",
            "reason": "all_resources_are_ready",
            "message": "All resources are ready",
        }
    else:
        waiting = ", ".join(f"{n}: 0/{r} ready" for n, r in services.items()) or "no services"
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
        rt = self.store.type_for_key(DGD_KEY)
        if rt is None:
            raise errors.not_found(DGD_KEY[0], DGD_KEY[1], name)
        obj = self.store.get(rt.group, rt.version, rt.plural, namespace, name)
        if obj is None:
            raise errors.not_found(rt.group, rt.plural, name)
        return self.store.set_status(rt, namespace, name, dgd_status(obj, state))

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
