"""DGDR transitions as Kubernetes Events, so `kubectl describe` tells the story `dgdr describe` tells.

`describe(event_type, payload)` is a stored event as a Kubernetes Event: (type, reason, message) from
the one description of events (`dgdr.domain.describe`), or None for bookkeeping events that would only
be noise (`Created`, `DeploymentObserved`, `Deleted`). A payload that is not a valid event of its type
raises (pydantic's ValidationError), as it does everywhere the history is folded.

`EventRecorder.emit` writes one core/v1 Event per stored event. Its name is derived from the
DGDR's uid and the event's stream sequence (`<name>.<uid8>.<seq>.<index>`), so recording the same
stored event twice (a redelivery, a restart) hits 409 AlreadyExists and changes nothing. An Event
for a DGDR that has no object in the cluster (applied through NATS, or already gone) is skipped.
Other API errors raise, and the consumer redelivers.
"""

from __future__ import annotations

from typing import Any

import structlog
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from dgdr.domain.clock import now_rfc3339
from dgdr.domain.describe import describe as describe_event
from dgdr.domain.model import Event
from k8s.kube import DGDR_KIND, DGDR_VERSION, GROUP

log = structlog.get_logger("k8s.events")

COMPONENT = "dgdr"


def describe(event: Event) -> tuple[str, str, str] | None:
    """(Event type, reason, message) for a DGDR event, or None when it is not worth one."""
    described = describe_event(event)
    if not described.noteworthy:
        return None
    return described.type, described.reason, described.message


def event_name(dgdr_name: str, uid: str, seq: int, index: int) -> str:
    return f"{dgdr_name}.{uid[:8]}.{seq:x}.{index}"


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
        when = at or now_rfc3339("seconds")
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
