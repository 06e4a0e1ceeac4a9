"""The emulator's Job controller for profiling Jobs: it runs our own rapid profiler (`sim.profile`)
where a cluster would run the profiler image, and speaks the image's output protocol.

For a Job labelled `app=dynamo-profiler` it reads the DGDR spec from the first container's
`--config`, marks the Job active, writes ConfigMap `dgdr-output-<name>` (`phase`, `message`) at each
sub-phase, then either `final_config.yaml` (the generated DGD), `pareto.json` and
`profiler_status: success` with the Job `Complete`, or `profiler_status: failed` and
`profiler_error` with the Job `Failed` (the sub-phase it failed in stays in `phase`). Other Jobs get
the emulator's default runner. For development and tests only, like the emulator itself.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import structlog
import yaml

from dgdr.domain.clock import now_rfc3339
from dgdr.domain.spec import DGDRSpec
from k8s.emulator.store import Store
from k8s.profiling import output_configmap_name

log = structlog.get_logger("k8s.emulated_jobs")

STEP_DELAY = 0.05


def _spec_of(job: dict[str, Any]) -> dict[str, Any]:
    args: list[str] = job["spec"]["template"]["spec"]["containers"][0].get("args") or []
    spec: dict[str, Any] = json.loads(args[args.index("--config") + 1])
    return spec


async def run_profiling_job(store: Store, job: dict[str, Any]) -> None:
    """A `job_runner` for `k8s.emulator.Emulator`."""
    meta = job["metadata"]
    labels = meta.get("labels") or {}
    if labels.get("app") != "dynamo-profiler":
        from k8s.emulator import default_job_runner

        await default_job_runner(store, job)
        return
    namespace, job_name = meta["namespace"], meta["name"]
    name = labels["dgdr.nvidia.com/name"]
    uid = (meta.get("annotations") or {}).get("dgdr.nvidia.com/uid", "")

    async def output(data: dict[str, str]) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": output_configmap_name(name),
                "namespace": namespace,
                "labels": {
                    "dgdr.nvidia.com/name": name,
                    "dgdr.nvidia.com/namespace": namespace,
                    "nvidia.com/managed-by": "dgdr",
                },
                "ownerReferences": [
                    {
                        "apiVersion": "nvidia.com/v1beta1",
                        "kind": "DynamoGraphDeploymentRequest",
                        "name": name,
                        "uid": uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "data": data,
        }
        await store.apply(body, field_manager="output-copier")

    async def job_status(status: dict[str, Any]) -> None:
        await store.update_status("batch", "v1", "jobs", namespace, job_name, status)

    started = now_rfc3339("seconds")
    await job_status({"active": 1, "startTime": started})
    steps: list[tuple[str, str]] = []
    try:
        import sim

        spec = _spec_of(job)
        parsed = DGDRSpec.model_validate(spec)
        result = await asyncio.to_thread(
            sim.profile,
            parsed,
            None,  # the spec carries the resolved hardware
            name=name,
            namespace=namespace,
            progress=lambda sub, text: steps.append((sub, text)),
        )
    except Exception as exc:  # sim.ProfilingError carries the sub-phase
        sub = getattr(exc, "sub_phase", None) or (steps[-1][0] if steps else "Initializing")
        text = getattr(exc, "message", None) or f"{exc.__class__.__name__}: {exc}"
        await output(
            {
                "phase": sub,
                "message": text,
                "profiler_status": "failed",
                "profiler_error": text,
            }
        )
        conditions = [
            {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
                "lastTransitionTime": now_rfc3339("seconds"),
            }
        ]
        await job_status({"failed": 1, "startTime": started, "conditions": conditions})
        log.info("profiling job failed", namespace=namespace, job=job_name, error=text)
        return
    for sub, text in steps:
        await output({"phase": sub, "message": text})
        await asyncio.sleep(STEP_DELAY)
    await output(
        {
            "phase": "Done",
            "message": result.message,
            "final_config.yaml": yaml.safe_dump_all(
                [*result.configmaps, result.selected_config], sort_keys=False
            ),
            "pareto.json": json.dumps(result.pareto),
            "profiler_status": "success",
        }
    )
    done = now_rfc3339("seconds")
    await job_status(
        {
            "succeeded": 1,
            "startTime": started,
            "completionTime": done,
            "conditions": [
                {"type": "Complete", "status": "True", "lastTransitionTime": done},
            ],
        }
    )
    log.info("profiling job complete", namespace=namespace, job=job_name)
