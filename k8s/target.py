"""The Kubernetes deployment target: generated DGDs become DynamoGraphDeployment objects, and GPU
facts come from node labels.

- DGDs are created and watched in the newest version the cluster serves (`nvidia.com/v1beta1`
  since Dynamo 1.4, else `v1alpha1`; asked once through discovery); a generated DGD of the other
  version is converted with `sim.convert_dgd`, and what has no place in the target version is
  logged as a warning.
- `apply_dgd` looks before it leaps (`dgdr.domain.target.claim`): a DGD of that name that carries
  our owner annotation is left alone (`exists`); one a deleted DGDR of the same name left (our
  labels name it) is taken over (`adopted`: replaced with the generated spec, labels and the new
  owner annotation, under its resourceVersion; a 409 raises and the redelivery looks again); any
  other one is never adopted (`conflict`). It creates the DGD in the DGDR's
  namespace with labels `dgdr.nvidia.com/name`, `dgdr.nvidia.com/namespace`,
  `nvidia.com/managed-by` and annotation `dgdr.nvidia.com/uid`, and no owner reference, so it
  outlives its DGDR. A create that races another (409 AlreadyExists) reads the winner and answers as
  above, so a crash and restart never creates a second DGD.
- `start(observe)` runs an informer over DGDs that carry our label: every DGD is reported at start
  and on each change, as `dgdr.domain.target.observe_dgd` reads it (`deleted` once it is gone); an
  observation that fails (NATS unavailable) is retried until it is recorded, never dropped.
- The planner's ConfigMaps are created with the DGD and owned by it (controller ownerReference), so
  they live as long as the DGD does; a restart between the two creates the missing ones only.
- `searchStrategy: thorough` runs as the profiling Job `profile-<name>` (see `k8s.profiling`).
- `discover_hardware` reads `nvidia.com/gpu.product`, `nvidia.com/gpu.count` and
  `nvidia.com/gpu.memory` from the nodes (as NVIDIA GPU feature discovery writes them). The most
  common product wins; `totalGpus` = GPUs on nodes with that product, capped at 32 as Dynamo does.
  An unknown product or no labelled node gives no facts, and validation names the fields to set.
API errors other than the ones named raise; the reactor's consumer redelivers the event.
"""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from typing import Any

import structlog
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from dgdr.domain.spec import normalise_gpu_sku
from dgdr.domain.target import (
    LABEL_NAME,
    LABEL_NAMESPACE,
    OWNER_UID,
    ApplyResult,
    Observer,
    ProfilingReporter,
    claim,
    observe_dgd,
    owned_labels,
)
from k8s.informer import Informer, InformerGroup
from k8s.kube import DGD_KIND, DGD_PLURAL, DGD_VERSION, GROUP, get_custom, served_dgd_version
from k8s.profiling import ProfilingJobsOnCluster

log = structlog.get_logger("k8s.target")

TOTAL_GPUS_CAP = 32
LABEL_GPU_PRODUCT = "nvidia.com/gpu.product"
LABEL_GPU_COUNT = "nvidia.com/gpu.count"
LABEL_GPU_MEMORY = "nvidia.com/gpu.memory"


def hardware_from_nodes(nodes: list[dict[str, str]]) -> dict[str, Any]:
    """GPU facts from node label maps (pure; see the module docstring)."""
    gpu_nodes = [n for n in nodes if n.get(LABEL_GPU_PRODUCT) and n.get(LABEL_GPU_COUNT)]
    if not gpu_nodes:
        return {}
    product, _ = Counter(n[LABEL_GPU_PRODUCT] for n in gpu_nodes).most_common(1)[0]
    same = [n for n in gpu_nodes if n[LABEL_GPU_PRODUCT] == product]
    sku = normalise_gpu_sku(product)
    if sku is None:
        log.warning("unknown GPU product on nodes; not used", product=product)
        return {}
    counts = [int(n[LABEL_GPU_COUNT]) for n in same if n[LABEL_GPU_COUNT].isdigit()]
    if not counts:
        return {}
    facts: dict[str, Any] = {
        "gpuSku": sku.value,
        "numGpusPerNode": max(counts),
        "totalGpus": min(TOTAL_GPUS_CAP, sum(counts)),
    }
    memory = [n.get(LABEL_GPU_MEMORY, "") for n in same]
    if memory and memory[0].isdigit():
        facts["vramMb"] = int(memory[0])
    return facts


class KubernetesTarget:
    def __init__(self, api: client.ApiClient, *, namespaces: list[str] | None = None) -> None:
        self.api = api
        self.objects = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.namespaces = namespaces
        self._observe: Observer | None = None
        self._task: asyncio.Task[None] | None = None
        self.informer: InformerGroup | None = None
        self.profiling = ProfilingJobsOnCluster(api, namespaces=namespaces)
        self._dgd_version: str | None = None

    async def dgd_version(self) -> str:
        """The DGD version to create and watch: the newest one the cluster serves (asked once)."""
        if self._dgd_version is None:
            self._dgd_version = await served_dgd_version(self.api) or DGD_VERSION
            log.info("dgd version", version=f"{GROUP}/{self._dgd_version}")
        return self._dgd_version

    def attach_profiling(self, reporter: ProfilingReporter) -> None:
        self.profiling.run(reporter)

    async def start_profiling_job(
        self, namespace: str, name: str, uid: str, generation: int, spec: dict[str, Any]
    ) -> None:
        await self.profiling.start(namespace, name, uid, generation, spec)

    async def discover_hardware(self) -> dict[str, Any]:
        """GPU facts from node labels; none when nodes cannot be listed (e.g. RBAC without the
        cluster-wide node read), so validation names the spec fields to set instead."""
        try:
            nodes = await self.core.list_node()
        except ApiException as exc:
            log.warning("nodes cannot be listed: no GPU discovery", status=exc.status)
            return {}
        return hardware_from_nodes([dict(n.metadata.labels or {}) for n in nodes.items])

    async def _get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await get_custom(self.objects, await self.dgd_version(), DGD_PLURAL, namespace, name)

    async def apply_dgd(
        self,
        dgd: dict[str, Any],
        owner_uid: str,
        resources: list[dict[str, Any]] | None = None,
    ) -> ApplyResult:
        meta = dgd["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        current = await self._get(namespace, name)
        if current is not None:
            return await self._existing(current, dgd, owner_uid, resources or [])
        body = await self._body(dgd, owner_uid)
        version = await self.dgd_version()
        try:
            created: dict[str, Any] = await self.objects.create_namespaced_custom_object(
                GROUP, version, namespace, DGD_PLURAL, body
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
            winner = await self._get(namespace, name)
            if winner is None:  # created and deleted in between: let the redelivery decide
                raise
            return await self._existing(winner, dgd, owner_uid, resources or [])
        log.info("dgd created", namespace=namespace, dgd=name, owner=owner_uid)
        await self._create_owned(created, resources or [])
        return "created"

    async def _existing(
        self,
        current: dict[str, Any],
        dgd: dict[str, Any],
        owner_uid: str,
        resources: list[dict[str, Any]],
    ) -> ApplyResult:
        """The DGD of that name exists: keep it, take it over, or report the conflict."""
        labels = dgd["metadata"].get("labels") or {}
        meta = current["metadata"]
        verdict = claim(
            current,
            owner_uid,
            labels.get(LABEL_NAMESPACE, meta["namespace"]),
            labels.get(LABEL_NAME, meta["name"]),
        )
        if verdict == "adopted":
            body = await self._body(dgd, owner_uid)
            body["metadata"]["resourceVersion"] = meta["resourceVersion"]
            current = await self.objects.replace_namespaced_custom_object(
                GROUP, await self.dgd_version(), meta["namespace"], DGD_PLURAL, meta["name"], body
            )
            log.info(
                "dgd taken over", namespace=meta["namespace"], dgd=meta["name"], owner=owner_uid
            )
        if verdict != "conflict":  # a crash between the DGD and its ConfigMaps: finish the job
            await self._create_owned(current, resources)
        return verdict

    async def _body(self, dgd: dict[str, Any], owner_uid: str) -> dict[str, Any]:
        """The DGD to write: in the served version, with our labels and owner annotation."""
        meta = dgd["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        version = await self.dgd_version()
        body = copy.deepcopy(dgd)
        if body.get("apiVersion") != f"{GROUP}/{version}":
            from sim import (
                convert_dgd,  # here, like every sim import: the service starts without it
            )

            body, notes = convert_dgd(body, f"{GROUP}/{version}")
            for note in notes:
                log.warning("dgd conversion", dgd=name, version=version, note=note)
        body["apiVersion"], body["kind"] = f"{GROUP}/{version}", DGD_KIND
        labels = body["metadata"].get("labels") or {}
        dgdr_name = labels.get(LABEL_NAME, name)
        dgdr_namespace = labels.get(LABEL_NAMESPACE, namespace)
        body["metadata"]["labels"] = owned_labels(body, dgdr_namespace, dgdr_name)
        body["metadata"].setdefault("annotations", {})[OWNER_UID] = owner_uid
        body["metadata"].pop("ownerReferences", None)
        body.pop("status", None)
        return body

    async def _create_owned(self, dgd: dict[str, Any], resources: list[dict[str, Any]]) -> None:
        """Create each ConfigMap owned by the DGD (so it lives and goes with it); one that exists
        already is left as it is (its name carries a hash of its content)."""
        meta = dgd["metadata"]
        owner = {
            "apiVersion": dgd.get("apiVersion") or f"{GROUP}/{await self.dgd_version()}",
            "kind": DGD_KIND,
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        for resource in resources:
            if resource.get("kind") != "ConfigMap":
                log.warning("additional resource skipped", kind=resource.get("kind"))
                continue
            body = copy.deepcopy(resource)
            body["metadata"]["namespace"] = meta["namespace"]
            body["metadata"]["ownerReferences"] = [owner]
            try:
                await self.core.create_namespaced_config_map(meta["namespace"], body)  # type: ignore[arg-type]
            except ApiException as exc:
                if exc.status != 409:
                    raise

    async def _on_dgd(self, kind: str, dgd: dict[str, Any]) -> None:
        """Report a DGD's change, again until it is recorded: the informer coalesces later
        changes of this DGD meanwhile and reports the newest one next, so none is lost."""
        observation = observe_dgd(dgd, gone=kind == "DELETED")
        if self._observe is None or observation is None:
            return
        pause, attempt = 0.2, 1
        while True:
            try:
                await self._observe(*observation)
                return
            except Exception as exc:
                log.warning(
                    "observation failed; retrying",
                    dgd=observation.dgd_name,
                    attempt=attempt,
                    retry_in=pause,
                    error=f"{type(exc).__name__}: {exc}",
                )
            await asyncio.sleep(pause)
            pause, attempt = min(pause * 2, 5.0), attempt + 1

    async def start(self, observe: Observer | None = None) -> None:
        if observe is None:
            return
        self._observe = observe
        version = await self.dgd_version()
        self.informer = InformerGroup(
            lambda ns: Informer.custom(
                self.api,
                group=GROUP,
                version=version,
                plural=DGD_PLURAL,
                namespace=ns,
                label_selector=LABEL_NAME,
                handler=self._on_dgd,
            ),
            self.namespaces,
        )
        self._task = asyncio.create_task(self.informer.run())

    async def stop(self) -> None:
        await self.profiling.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5)
            self._task = None
