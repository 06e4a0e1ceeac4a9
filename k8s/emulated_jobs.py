"""The emulator's Job controller for profiling Jobs: it runs our own rapid profiler
(`sim.profile_async`) where a cluster would run the profiler image, and speaks the image's output
protocol.

For a Job labelled `app=dynamo-profiler` it reads the DGDR spec from the first container's
`--config`, marks the Job active, writes ConfigMap `dgdr-output-<name>` (`phase`, `message`) at each
sub-phase as the profile reaches it, then either `final_config.yaml` (the generated DGD),
`pareto.json` and `profiler_status: success` with the Job `Complete`, or `profiler_status: failed`
and `profiler_error` with the Job `Failed` (the sub-phase it failed in stays in `phase`). A
`ProfilingError` is the user's failure; any other exception is a bug of the profiler: it is logged
with its traceback and fails the Job the same way (a Job has no redelivery). Other Jobs get the
emulator's default runner. For development and tests only, like the emulator itself.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
import yaml

from dgdr.domain.clock import now_rfc3339
from dgdr.domain.errors import ProfilingError
from dgdr.domain.target import (
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_NAMESPACE,
    MANAGED_BY,
    OWNER_UID,
)
from k8s.emulator.store import Store
from k8s.profiling import output_configmap_name

log = structlog.get_logger("k8s.emulated_jobs")


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
    name = labels[LABEL_NAME]
    uid = (meta.get("annotations") or {}).get(OWNER_UID, "")

    async def output(data: dict[str, str]) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": output_configmap_name(name),
                "namespace": namespace,
                "labels": {
                    LABEL_NAME: name,
                    LABEL_NAMESPACE: namespace,
                    LABEL_MANAGED_BY: MANAGED_BY,
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
    reached = "Initializing"

    async def step(sub_phase: str, message: str) -> None:
        nonlocal reached
        reached = sub_phase
        await output({"phase": sub_phase, "message": message})

    try:
        import sim

        result = await sim.profile_async(_spec_of(job), None, report=step, name=name,
                                         namespace=namespace)  # fmt: skip
    except ProfilingError as exc:
        await _fail(output, job_status, started, exc.sub_phase, exc.message)
        log.info("profiling job failed", namespace=namespace, job=job_name, error=exc.message)
        return
    except Exception as exc:
        log.exception("profiling job hit a bug", namespace=namespace, job=job_name)
        await _fail(output, job_status, started, reached, f"{exc.__class__.__name__}: {exc}")
        return
    await output(
        {
            "phase": "Done",
            "message": result.message,
            "final_config.yaml": yaml.safe_dump_all(
                [*result.configmaps, result.selected_config], sort_keys=False
            ),
            "pareto.json": json.dumps(result.pareto),
            "sla_verdict": result.sla_verdict,
            "sla_summary": result.sla_summary,
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


async def _fail(
    output: Callable[[dict[str, str]], Awaitable[None]],
    job_status: Callable[[dict[str, Any]], Awaitable[None]],
    started: str,
    sub_phase: str,
    text: str,
) -> None:
    """The failed output ConfigMap (the sub-phase it failed in stays in `phase`), then the Job
    `Failed`, as the profiler image and the Job controller write them."""
    await output(
        {"phase": sub_phase, "message": text, "profiler_status": "failed", "profiler_error": text}
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
