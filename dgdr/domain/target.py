"""The deployment-target port: where generated DGDs go, and where GPU facts come from.

Two implementations: `dgdr.app.simcluster.SimulatedCluster` (a cluster kept in NATS KV, for laptops and
tests) and `k8s.target.KubernetesTarget` (a Kubernetes API server). The reactor only sees this port.

Failure semantics every implementation keeps:
- `apply_dgd` is idempotent: a DGD that exists and carries the owner's uid is left alone (`exists`);
  one its predecessor left (a DGDR of the same name and namespace, deleted: deleting a DGDR keeps its
  DGD) is taken over (`adopted`: the generated spec and the new owner's uid written onto it); any
  other one is never adopted (`conflict`). `claim` is that judgement. Transport errors raise, and
  the reactor's consumer redelivers the event.
- `start(observe)` reports the current state of every managed DGD first (level-triggered), then each
  change; the decider ignores observations that change nothing, so repeats are harmless.
- `discover_hardware` returns only what it found (empty when nothing), never a guess.

`observe_dgd` is the one rule both implementations use to turn a DGD into what they report (pure).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

from dgdr.domain.model import DeploymentObservation, SlaVerdict

# (dgdr namespace, dgdr name, owner uid, dgd name, observed, replicas, available replicas)
Observer = Callable[[str, str, str, str, str, int, int], Awaitable[None]]

ApplyResult = Literal["created", "exists", "adopted", "conflict"]
Claim = Literal["exists", "adopted", "conflict"]

LABEL_NAME = "dgdr.nvidia.com/name"
LABEL_NAMESPACE = "dgdr.nvidia.com/namespace"
LABEL_MANAGED_BY = "nvidia.com/managed-by"
MANAGED_BY = "dgdr"
OWNER_UID = "dgdr.nvidia.com/uid"
# Every fact `discover_hardware` may return; a spec that states them all needs no discovery.
DISCOVERED_FACTS = ("gpuSku", "numGpusPerNode", "totalGpus", "vramMb")


class DeploymentTarget(Protocol):
    async def discover_hardware(self) -> dict[str, Any]:
        """GPU facts as node labels state them: gpuSku, numGpusPerNode, totalGpus, vramMb."""
        ...

    async def apply_dgd(
        self,
        dgd: dict[str, Any],
        owner_uid: str,
        resources: list[dict[str, Any]] | None = None,
    ) -> ApplyResult:
        """Create the DGD unless it exists (see the module's failure semantics), and the
        `resources` that go with it (the planner's ConfigMaps), owned by the DGD."""
        ...

    async def start(self, observe: Observer | None = None) -> None: ...

    async def stop(self) -> None: ...


class ProfilingReporter(Protocol):
    """Where a profiling Job's progress goes (the reactor turns each call into a command with a
    deterministic id, so a report repeated after a restart decides nothing)."""

    async def profiling_progress(
        self, namespace: str, name: str, uid: str, sub_phase: str, message: str
    ) -> None: ...

    async def profiling_result(
        self,
        namespace: str,
        name: str,
        uid: str,
        dgd: dict[str, Any],
        pareto: list[dict[str, Any]],
        message: str,
        resources: list[dict[str, Any]] | None = None,
        sla_verdict: SlaVerdict | None = None,
        sla_summary: str | None = None,
    ) -> None: ...

    async def profiling_failure(
        self, namespace: str, name: str, uid: str, sub_phase: str | None, message: str
    ) -> None: ...


@runtime_checkable
class ProfilingJobs(Protocol):
    """A target that runs `searchStrategy: thorough` profiling as its own Job (a cluster does;
    the simulated cluster does not, and the profiling worker runs it instead)."""

    def attach_profiling(self, reporter: ProfilingReporter) -> None: ...

    async def start_profiling_job(
        self, namespace: str, name: str, uid: str, generation: int, spec: dict[str, Any]
    ) -> None: ...


def owned_labels(dgd: dict[str, Any], namespace: str, name: str) -> dict[str, str]:
    """The labels that tie a DGD to its DGDR (Dynamo's, so its tooling finds them too)."""
    labels = dict(dgd.get("metadata", {}).get("labels") or {})
    labels.update({LABEL_NAME: name, LABEL_NAMESPACE: namespace, LABEL_MANAGED_BY: MANAGED_BY})
    return labels


def claim(dgd: dict[str, Any], owner_uid: str, namespace: str, name: str) -> Claim:
    """What the DGDR `namespace/name` (incarnation `owner_uid`) may do with the existing `dgd` of
    the name it generated: `exists` when it carries that uid; `adopted` when our labels say it
    was made for a DGDR of the same name and namespace (a predecessor: a name has one live
    incarnation, so the DGDR that made it was deleted, and deleting a DGDR keeps its DGD); else
    `conflict` (someone else's: Dynamo checks the owner before adopting, since its issue #13876)."""
    meta = dgd.get("metadata") or {}
    if (meta.get("annotations") or {}).get(OWNER_UID) == owner_uid:
        return "exists"
    labels = meta.get("labels") or {}
    made_for_this_name = (
        labels.get(LABEL_NAME) == name
        and labels.get(LABEL_NAMESPACE, meta.get("namespace")) == namespace
        and labels.get(LABEL_MANAGED_BY) == MANAGED_BY
    )
    return "adopted" if made_for_this_name else "conflict"


class Observation(NamedTuple):
    """What a target reports about one managed DGD: `Observer`'s arguments, in its order."""

    namespace: str  # the DGDR's namespace
    name: str  # the DGDR's name
    owner_uid: str
    dgd_name: str
    state: DeploymentObservation
    replicas: int
    available: int


def _spec_replicas(spec: dict[str, Any]) -> list[Any]:
    """Each component's `replicas` (None when unstated), from either DGD version's spec:
    v1beta1 `spec.components` (a list) or v1alpha1 `spec.services` (a map)."""
    components = spec.get("components")
    if isinstance(components, list):
        return [c.get("replicas") for c in components if isinstance(c, dict)]
    services = spec.get("services")
    if isinstance(services, dict):
        return [s.get("replicas") for s in services.values() if isinstance(s, dict)]
    return []


def replica_counts(dgd: dict[str, Any]) -> tuple[int, int]:
    """(replicas, available) summed over the reported components (v1beta1 `status.components`,
    v1alpha1 `status.services`: both maps of name to counts), as Dynamo's deploymentInfo does;
    before any component is reported, the spec's replica counts (1 for a component that states
    none), all of them available once the DGD is `successful` (a target that reports readiness
    without per-component counts, like the simulated cluster) and none before."""
    status = dgd.get("status") or {}
    reported = status.get("components") or status.get("services") or {}
    if isinstance(reported, dict) and reported:
        counts = [c for c in reported.values() if isinstance(c, dict)]
        replicas = sum(int(c.get("replicas") or 0) for c in counts)
        available = sum(int(c.get("availableReplicas") or 0) for c in counts)
        return replicas, available
    stated = _spec_replicas(dgd.get("spec") or {})
    replicas = sum(1 if r is None else int(r or 0) for r in stated)
    return replicas, replicas if status.get("state") == "successful" else 0


def observe_dgd(dgd: dict[str, Any], *, gone: bool = False) -> Observation | None:
    """The observation of `dgd` (None when no DGDR manages it: no owner annotation or no name
    label). `gone` says the DGD no longer exists; then it is `deleted` with nothing available.
    A state other than `pending`, `successful` or `failed` (or none yet) counts as `pending`."""
    meta = dgd.get("metadata") or {}
    labels = meta.get("labels") or {}
    owner_uid = (meta.get("annotations") or {}).get(OWNER_UID)
    if not owner_uid or LABEL_NAME not in labels:
        return None
    reported = (dgd.get("status") or {}).get("state")
    state: DeploymentObservation = (
        "deleted"
        if gone
        else reported
        if reported in ("pending", "successful", "failed")
        else "pending"
    )
    replicas, available = replica_counts(dgd)
    return Observation(
        namespace=str(labels.get(LABEL_NAMESPACE) or meta.get("namespace", "")),
        name=str(labels[LABEL_NAME]),
        owner_uid=str(owner_uid),
        dgd_name=str(meta.get("name", "")),
        state=state,
        replicas=replicas,
        available=0 if gone else available,
    )
