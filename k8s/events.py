"""DGDR transitions as Kubernetes Events, with Dynamo's reasons, so `kubectl describe` tells the story.

`describe(event_type, payload)` is the pure mapping from a stored event to (type, reason, message),
or None for bookkeeping events that would only be noise (`Created`, `DeploymentObserved`, `Deleted`).

`EventRecorder.record` writes one core/v1 Event per stored event. Its name is derived from the
DGDR's uid and the event's stream sequence (`<name>.<uid8>.<seq>.<index>`), so recording the same
stored event twice (a redelivery, a restart) hits 409 AlreadyExists and changes nothing. An Event
for a DGDR that has no object in the cluster (applied through NATS, or already gone) is skipped.
Other API errors raise, and the consumer redelivers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from k8s.kube import DGDR_KIND, DGDR_VERSION, GROUP

log = structlog.get_logger("k8s.events")

NORMAL, WARNING = "Normal", "Warning"
COMPONENT = "dgdr"


def _errors(payload: dict[str, Any]) -> str:
    errs = payload.get("errors") or []
    return "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errs) or "invalid spec"


def describe(event_type: str, payload: dict[str, Any]) -> tuple[str, str, str] | None:
    """(Event type, reason, message) for a stored DGDR event, or None when it is not worth one."""
    p = payload
    match event_type:
        case "Validated":
            return NORMAL, "Initialized", f"Spec validated: {p.get('message', '')}".strip()
        case "ValidationFailed":
            return WARNING, "ValidationFailed", f"Validation failed: {_errors(p)}"
        case "SpecUpdated":
            return NORMAL, "SpecUpdated", f"Spec generation {p.get('generation')} accepted"
        case "ProfilingStarted":
            return NORMAL, "ProfilingJobCreated", f"Profiling job {p.get('jobName')} started"
        case "ProfilingProgressed":
            return NORMAL, str(p.get("subPhase", "Profiling")), str(p.get("message", ""))
        case "ProfilingFailed":
            sub = p.get("subPhase")
            reason = f"{sub}Failed" if sub else "ProfilingJobFailed"
            return WARNING, reason, f"Profiling failed: {p.get('message', '')}"
        case "ProfilingCompleted":
            return NORMAL, "SpecGenerated", f"Generated DGD {p.get('dgdName')}: {p.get('message')}"
        case "AutoApplyEnabled":
            return NORMAL, "AutoApplyEnabled", "autoApply turned on: deploying the generated DGD"
        case "DeploymentStarted":
            return NORMAL, "Deploying", f"Deploying DGD {p.get('dgdName')}"
        case "DeploymentCreated":
            return NORMAL, "DeploymentCreated", f"Created DGD {p.get('dgdName')}"
        case "DeploymentReady":
            return (
                NORMAL,
                "DeploymentReady",
                f"DGD is ready: {p.get('availableReplicas', 0)}/{p.get('replicas', 0)} replicas "
                "available",
            )
        case "DeploymentDegraded":
            return WARNING, "DeploymentDegraded", f"DGD state is {p.get('state')}: redeploying"
        case "DeploymentDeleted":
            return (
                WARNING,
                "DeploymentDeleted",
                f"DGD {p.get('dgdName')} was deleted by someone else; the DGDR has failed",
            )
        case "DeploymentFailed":
            return WARNING, str(p.get("reason") or "DeploymentFailed"), str(p.get("message", ""))
    return None


def event_name(dgdr_name: str, uid: str, seq: int, index: int) -> str:
    return f"{dgdr_name}.{uid[:8]}.{seq:x}.{index}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    def __init__(self, api: client.ApiClient, *, instance: str) -> None:
        self.core = client.CoreV1Api(api)
        self.instance = instance

    async def emit(
        self,
        involved: dict[str, Any],
        name: str,
        etype: str,
        reason: str,
        message: str,
        *,
        at: str | None = None,
    ) -> bool:
        """Create the Event unless one of that name exists; False when it did (or the namespace
        is gone)."""
        meta = involved["metadata"]
        when = at or _now()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{DGDR_VERSION}",
                "kind": DGDR_KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "type": etype,
            "reason": reason,
            "message": message[:1024],
            "count": 1,
            "firstTimestamp": when,
            "lastTimestamp": when,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.instance,
        }
        try:
            await self.core.create_namespaced_event(meta["namespace"], body)  # type: ignore[arg-type]
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise
        return True
