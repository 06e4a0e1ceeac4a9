"""Thorough profiling on a cluster: the Job `profile-<name>` and its output ConfigMap
`dgdr-output-<name>`, the protocol Dynamo's profiler image speaks.

`ProfilingJobsOnCluster.start(...)` creates the Job (see `k8s.job`); a 409 AlreadyExists for a Job
carrying the same DGDR uid is success (a restart never creates a second Job), one carrying another
uid is reported as a profiling failure, not replaced. Override fields outside the allow-list are
reported as a Warning Event `ProfilingJobOverridesIgnored` on the DGDR, never dropped silently.

Two informers follow the outcome: the output ConfigMap's `phase`/`message` become sub-phase
progress; the Job's `Complete` condition turns `final_config.yaml` into the profiling result (the
`DynamoGraphDeployment` document, renamed as Dynamo does: `overrides.dgd.metadata.name` or
`<name>-dgd`), its `Failed` condition into a failure that keeps the last sub-phase. Every report
goes to the reactor, which makes it a command with a deterministic id, so repeats are no-ops.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import structlog
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from dgdr.domain.model import SlaVerdict
from dgdr.domain.phases import SUB_PHASES
from dgdr.domain.target import (
    LABEL_NAME,
    LABEL_NAMESPACE,
    OWNER_UID,
    ProfilingReporter,
    owned_labels,
)
from k8s.events import EventRecorder
from k8s.informer import Informer, InformerGroup
from k8s.job import profiling_job
from k8s.kube import get_or_none

log = structlog.get_logger("k8s.profiling")

OUTPUT_PREFIX = "dgdr-output-"
JOB_NAME_MAX = 63  # a Job's name becomes its pods' job-name label value
GENERATION = "dgdr.nvidia.com/generation"  # the DGDR generation a Job profiles


def output_configmap_name(name: str) -> str:
    return f"{OUTPUT_PREFIX}{name}"


def dgd_from_final_config(
    text: str, name: str, namespace: str, spec: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The DGD in a profiler's `final_config.yaml`, named and labelled for this DGDR, and the
    ConfigMaps before it (the planner's), as Dynamo's multi-document output has them."""
    docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    maps = [d for d in docs if d.get("kind") == "ConfigMap"]
    for cm in maps:
        cm.setdefault("metadata", {})["namespace"] = namespace
        cm["metadata"]["labels"] = owned_labels(cm, namespace, name)
    dgd = next((d for d in docs if d.get("kind") == "DynamoGraphDeployment"), None)
    if dgd is None:
        raise ValueError("final_config.yaml holds no DynamoGraphDeployment document")
    override = ((spec.get("overrides") or {}).get("dgd") or {}).get("metadata") or {}
    meta = dgd.setdefault("metadata", {})
    meta["name"] = override.get("name") or f"{name}-dgd"
    meta["namespace"] = namespace
    meta["labels"] = owned_labels(dgd, namespace, name)
    return dgd, maps


def _condition(job: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype and cond.get("status") == "True":
            return dict(cond)
    return None


class ProfilingJobsOnCluster:
    def __init__(self, api: client.ApiClient, *, namespaces: list[str] | None = None) -> None:
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.reporter: ProfilingReporter | None = None
        self.recorder = EventRecorder(api, instance="dgdr-profiling")
        self.specs: dict[str, dict[str, Any]] = {}  # uid → the spec the Job was started with

        def jobs(ns: str | None) -> Informer:
            fn: Any = (
                self.batch.list_namespaced_job if ns else self.batch.list_job_for_all_namespaces
            )
            return Informer(
                fn,
                {"namespace": ns} if ns else {},
                handler=self._on_job,
                what="jobs",
                label_selector="app=dynamo-profiler",
            )

        def outputs(ns: str | None) -> Informer:
            core = self.core
            fn: Any = (
                core.list_namespaced_config_map if ns else core.list_config_map_for_all_namespaces
            )
            return Informer(
                fn,
                {"namespace": ns} if ns else {},
                handler=self._on_output,
                what="configmaps",
                label_selector=LABEL_NAME,
            )

        self.jobs = InformerGroup(jobs, namespaces)
        self.outputs = InformerGroup(outputs, namespaces)
        self._tasks: list[asyncio.Task[None]] = []

    def run(self, reporter: ProfilingReporter) -> None:
        self.reporter = reporter
        self._tasks = [
            asyncio.create_task(self.jobs.run(), name="profiling-jobs"),
            asyncio.create_task(self.outputs.run(), name="profiling-outputs"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        self._tasks = []

    async def start(
        self, namespace: str, name: str, uid: str, generation: int, spec: dict[str, Any]
    ) -> None:
        assert self.reporter is not None, "run() first"
        if not spec.get("image"):
            await self.reporter.profiling_failure(
                namespace,
                name,
                uid,
                "Initializing",
                "spec.image is required for searchStrategy thorough: set it to the Dynamo "
                "profiler image (e.g. nvcr.io/nvidia/ai-dynamo/dynamo-planner:<version>)",
            )
            return
        job, ignored = profiling_job(name, namespace, uid, spec)
        if len(job["metadata"]["name"]) > JOB_NAME_MAX:
            await self.reporter.profiling_failure(
                namespace,
                name,
                uid,
                "Initializing",
                f"the profiling Job name {job['metadata']['name']!r} is longer than "
                f"{JOB_NAME_MAX} characters (Kubernetes labels its pods with it): use a DGDR name "
                f"of at most {JOB_NAME_MAX - len('profile-')} characters",
            )
            return
        job["metadata"]["annotations"][GENERATION] = str(generation)
        self.specs[uid] = spec
        if ignored:
            involved = {"metadata": {"namespace": namespace, "name": name, "uid": uid}}
            await self.recorder.emit(
                involved,
                f"{name}.{uid[:8]}.overrides.{generation}",
                "Warning",
                "ProfilingJobOverridesIgnored",
                "overrides.profilingJob fields outside the allow-list were not applied: "
                + ", ".join(ignored),
            )
        try:
            await self.batch.create_namespaced_job(namespace, job)  # type: ignore[arg-type]
            created = True
        except ApiException as exc:
            if exc.status != 409:
                raise
            created = False
            existing = await self.batch.read_namespaced_job(job["metadata"]["name"], namespace)
            owner = (existing.metadata.annotations or {}).get(OWNER_UID)
            if owner != uid:
                await self.reporter.profiling_failure(
                    namespace,
                    name,
                    uid,
                    "Initializing",
                    f"a Job {job['metadata']['name']} that belongs to another DGDR exists; "
                    "delete it and apply again",
                )
                return
        log.info("profiling job", namespace=namespace, dgdr=name, uid=uid, created=created)

    def _job_for(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.jobs.get((namespace, f"profile-{name}"))

    async def _on_output(self, kind: str, cm: dict[str, Any]) -> None:
        meta = cm["metadata"]
        if kind == "DELETED" or not meta["name"].startswith(OUTPUT_PREFIX):
            return
        labels = meta.get("labels") or {}
        name = labels.get(LABEL_NAME, meta["name"][len(OUTPUT_PREFIX) :])
        namespace = labels.get(LABEL_NAMESPACE, meta["namespace"])
        job = self._job_for(namespace, name)
        uid = ((job or {}).get("metadata", {}).get("annotations") or {}).get(OWNER_UID)
        data = cm.get("data") or {}
        phase = data.get("phase")
        if uid and self.reporter and phase in SUB_PHASES:
            await self.reporter.profiling_progress(
                namespace, name, uid, phase, data.get("message") or phase
            )

    async def _read_output(self, namespace: str, name: str) -> dict[str, str]:
        cm = await get_or_none(
            self.core.read_namespaced_config_map(output_configmap_name(name), namespace)
        )
        return dict(cm.data or {}) if cm is not None else {}

    async def _on_job(self, kind: str, job: dict[str, Any]) -> None:
        meta = job["metadata"]
        labels = meta.get("labels") or {}
        uid = (meta.get("annotations") or {}).get(OWNER_UID)
        name, namespace = labels.get(LABEL_NAME), meta["namespace"]
        if kind == "DELETED" or not uid or not name or self.reporter is None:
            return
        failed, complete = _condition(job, "Failed"), _condition(job, "Complete")
        if not failed and not complete:
            return
        data = await self._read_output(namespace, name)
        phase = data.get("phase") if data.get("phase") in SUB_PHASES else None
        if complete and data.get("final_config.yaml"):
            spec = self.specs.get(uid) or _spec_from_job(job)
            try:
                dgd, maps = dgd_from_final_config(data["final_config.yaml"], name, namespace, spec)
            except (ValueError, yaml.YAMLError) as exc:
                await self.reporter.profiling_failure(
                    namespace, name, uid, "GeneratingDGD", f"unusable final_config.yaml: {exc}"
                )
                return
            pareto = json.loads(data.get("pareto.json") or "[]")
            message = data.get("message") or f"profiling Job {meta['name']} completed"
            await self.reporter.profiling_result(
                namespace,
                name,
                uid,
                dgd,
                pareto,
                message,
                maps,
                _sla_verdict(data.get("sla_verdict")),
                str(data.get("sla_summary") or "") or None,
            )
            return
        if complete and not data:
            return  # the sidecar has not written its last ConfigMap yet: wait for it
        reason = data.get("profiler_error") or data.get("message") or (failed or {}).get("message")
        await self.reporter.profiling_failure(
            namespace,
            name,
            uid,
            phase,
            f"profiling Job {meta['name']} failed: {reason or 'no output was written'}",
        )


def _spec_from_job(job: dict[str, Any]) -> dict[str, Any]:
    """The DGDR spec the Job was started with (its `--config`), after a restart."""
    containers = job["spec"]["template"]["spec"]["containers"]
    args: list[str] = containers[0].get("args") or []
    if "--config" in args:
        parsed: dict[str, Any] = json.loads(args[args.index("--config") + 1])
        return parsed
    return {}


def _sla_verdict(value: Any) -> SlaVerdict | None:
    """The output ConfigMap's `sla_verdict`; None for a profiler that writes none (or nonsense)."""
    verdicts: tuple[SlaVerdict, ...] = ("met", "missed", "unverified")
    return next((v for v in verdicts if v == value), None)
