"""k8s/manifests/rbac.yaml is exactly what the service needs: every verb it grants is used by one
operation of the adapter, the target, the profiling Jobs, the Event recorder or the leader
election, which works as the manifest's ServiceAccount on the emulator and is refused (403, as
Kubernetes refuses it) once that verb alone is taken out of a copy of the manifest. The emulator
is a fresh one per case; the cases' setup acts as the cluster admin."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from dgdr.client import DgdrClient
from events.connection import ConnectOptions
from k8s.adapter import KubernetesAdapter
from k8s.emulator import Emulator, gpu_nodes
from k8s.events import EventRecorder
from k8s.informer import Informer
from k8s.kube import DGDR_PLURAL, DGDR_VERSION, FINALIZER, GROUP, connect
from k8s.leader import LeaderElector
from k8s.profiling import ProfilingJobsOnCluster
from k8s.target import KubernetesTarget
from tests.support import manifest

from .conftest import RBAC_MANIFEST, service_account_api

pytestmark = pytest.mark.timeout(60)

DGDRS, DGDS = DGDR_PLURAL, "dynamographdeployments"
LEASE_NAMESPACE = "dgdr-system"  # rbac.yaml's leader-election Role, as deployment.yaml runs it


@dataclass
class Reports:
    """The reactor's side of profiling reports, recorded."""

    failures: list[str] = field(default_factory=list)

    async def profiling_progress(self, *args: Any) -> None:
        return None

    async def profiling_result(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def profiling_failure(
        self, namespace: str, name: str, uid: str, sub_phase: str | None, message: str
    ) -> None:
        self.failures.append(message)


@dataclass
class Cluster:
    emulator: Emulator
    admin: client.ApiClient
    service: client.ApiClient  # the ServiceAccount's
    dgdr: dict[str, Any]  # a DGDR "demo" in default, created by the admin


Operation = Callable[[Cluster], Awaitable[Any]]


async def sync_once(informer: Informer) -> None:
    """One list, then one watch the server ends after a second (or a refusal of either)."""
    informer.watch_timeout = 1
    await informer._watch(await informer._relist())


def adapter(c: Cluster) -> KubernetesAdapter:
    unused = DgdrClient(ConnectOptions(url="nats://127.0.0.1:1"))  # never connected
    return KubernetesAdapter(c.service, unused)


async def read_dgdr(c: Cluster) -> None:
    assert await adapter(c)._read("default", "demo") is not None


async def follow_dgdrs(c: Cluster) -> None:
    await sync_once(adapter(c).informer.members[0])


async def add_finalizer(c: Cluster) -> None:
    assert await adapter(c)._patch_meta(c.dgdr, {"finalizers": [FINALIZER]})


async def mirror_dgdr(c: Cluster) -> None:
    projection = {"metadata": {"uid": "from-nats"}, "spec": c.dgdr["spec"]}
    assert await adapter(c).mirror("default", "applied-through-nats", projection, None)


async def delete_mirror(c: Cluster) -> None:
    assert await adapter(c).delete_mirror(c.dgdr)


async def write_status(c: Cluster) -> None:
    projection = {"metadata": {"uid": c.dgdr["metadata"]["uid"]}, "status": {"phase": "Pending"}}
    assert await adapter(c).write_status("default", "demo", projection, c.dgdr)


def dgd(name: str = "demo-dgd") -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1beta1", "kind": "DynamoGraphDeployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"components": [{"name": "Frontend", "componentType": "frontend"}]}}  # fmt: skip


PLANNER_CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "planner-config"}, "data": {"k": "v"}}  # fmt: skip


async def create_dgd(c: Cluster) -> None:
    assert await KubernetesTarget(c.service).apply_dgd(dgd(), "uid-1") == "created"


async def create_dgd_with_configmap(c: Cluster) -> None:
    target = KubernetesTarget(c.service)
    assert await target.apply_dgd(dgd(), "uid-1", [PLANNER_CONFIGMAP]) == "created"


async def read_existing_dgd(c: Cluster) -> None:
    objects = client.CustomObjectsApi(c.admin)
    await objects.create_namespaced_custom_object(GROUP, "v1beta1", "default", DGDS, dgd())
    assert await KubernetesTarget(c.service).apply_dgd(dgd(), "uid-1") == "conflict"


async def take_over_dgd(c: Cluster) -> None:
    target = KubernetesTarget(c.service)
    assert await target.apply_dgd(dgd(), "uid-1") == "created"
    assert await target.apply_dgd(dgd(), "uid-2") == "adopted"  # its DGDR re-created


async def follow_dgds(c: Cluster) -> None:
    target = KubernetesTarget(c.service)

    async def observe(*args: Any) -> None:
        return None

    await target.start(observe)
    await target.stop()
    assert target.informer is not None
    await sync_once(target.informer.members[0])


async def discover_gpus(c: Cluster) -> None:
    target = KubernetesTarget(c.service)
    await target.core.list_node()  # what discover_hardware asks; refused, it finds no facts
    assert await target.discover_hardware()


async def record_event(c: Cluster) -> None:
    assert await EventRecorder(c.service, instance="t").emit(c.dgdr, "demo.e", "Normal", "R", "m")


THOROUGH = {"searchStrategy": "thorough", "image": "nvcr.io/nvidia/ai-dynamo/dynamo-planner:1"}


async def profiling(c: Cluster) -> tuple[ProfilingJobsOnCluster, Reports]:
    jobs, reports = ProfilingJobsOnCluster(c.service), Reports()
    jobs.reporter = reports
    return jobs, reports


async def start_job(c: Cluster) -> None:
    jobs, reports = await profiling(c)
    uid = c.dgdr["metadata"]["uid"]
    await jobs.start("default", "demo", uid, 1, {**c.dgdr["spec"], **THOROUGH})
    assert reports.failures == []


async def start_job_over_anothers(c: Cluster) -> None:
    jobs, reports = await profiling(c)
    body = {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "profile-demo", "annotations": {"dgdr.nvidia.com/uid": "other"}},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "i"}]}}}}  # fmt: skip
    await client.BatchV1Api(c.admin).create_namespaced_job("default", body)  # type: ignore[arg-type]
    await jobs.start("default", "demo", c.dgdr["metadata"]["uid"], 1, THOROUGH)
    assert reports.failures and "belongs to another DGDR" in reports.failures[0]


async def follow_jobs(c: Cluster) -> None:
    jobs, _ = await profiling(c)
    await sync_once(jobs.jobs.members[0])


async def follow_outputs(c: Cluster) -> None:
    jobs, _ = await profiling(c)
    await sync_once(jobs.outputs.members[0])


async def read_output(c: Cluster) -> None:
    jobs, _ = await profiling(c)
    assert await jobs._read_output("default", "demo") == {}


def elector(c: Cluster) -> LeaderElector:
    return LeaderElector(c.service, identity="a", namespace=LEASE_NAMESPACE)


async def take_lease(c: Cluster) -> None:
    assert await elector(c)._try_acquire_or_renew()


async def renew_lease(c: Cluster) -> None:
    leader = elector(c)
    assert await leader._try_acquire_or_renew()  # create
    assert await leader._try_acquire_or_renew()  # get, then update


# (apiGroup, resource[/subresource], verb) → an operation that needs it, and what its refusal says
NEEDS: dict[tuple[str, str, str], tuple[Operation, str]] = {
    ("nvidia.com", DGDRS, "get"): (read_dgdr, 'cannot get resource "{r}"'),
    ("nvidia.com", DGDRS, "list"): (follow_dgdrs, 'cannot list resource "{r}"'),
    ("nvidia.com", DGDRS, "watch"): (follow_dgdrs, 'cannot watch resource "{r}"'),
    ("nvidia.com", DGDRS, "patch"): (add_finalizer, 'cannot patch resource "{r}"'),
    ("nvidia.com", DGDRS, "create"): (mirror_dgdr, 'cannot create resource "{r}"'),
    ("nvidia.com", DGDRS, "delete"): (delete_mirror, 'cannot delete resource "{r}"'),
    ("nvidia.com", f"{DGDRS}/status", "update"): (write_status, 'cannot update resource "{r}"'),
    ("nvidia.com", f"{DGDRS}/finalizers", "update"): (start_job, "blockOwnerDeletion"),
    ("nvidia.com", DGDS, "get"): (read_existing_dgd, 'cannot get resource "{r}"'),
    ("nvidia.com", DGDS, "list"): (follow_dgds, 'cannot list resource "{r}"'),
    ("nvidia.com", DGDS, "watch"): (follow_dgds, 'cannot watch resource "{r}"'),
    ("nvidia.com", DGDS, "create"): (create_dgd, 'cannot create resource "{r}"'),
    ("nvidia.com", DGDS, "update"): (take_over_dgd, 'cannot update resource "{r}"'),
    ("nvidia.com", f"{DGDS}/finalizers", "update"): (create_dgd_with_configmap, "blockOwner"),
    ("batch", "jobs", "get"): (start_job_over_anothers, 'cannot get resource "{r}"'),
    ("batch", "jobs", "list"): (follow_jobs, 'cannot list resource "{r}"'),
    ("batch", "jobs", "watch"): (follow_jobs, 'cannot watch resource "{r}"'),
    ("batch", "jobs", "create"): (start_job, 'cannot create resource "{r}"'),
    ("", "configmaps", "get"): (read_output, 'cannot get resource "{r}"'),
    ("", "configmaps", "list"): (follow_outputs, 'cannot list resource "{r}"'),
    ("", "configmaps", "watch"): (follow_outputs, 'cannot watch resource "{r}"'),
    ("", "configmaps", "create"): (create_dgd_with_configmap, 'cannot create resource "{r}"'),
    ("", "events", "create"): (record_event, 'cannot create resource "{r}"'),
    ("", "nodes", "list"): (discover_gpus, 'cannot list resource "{r}"'),
    ("coordination.k8s.io", "leases", "get"): (take_lease, 'cannot get resource "{r}"'),
    ("coordination.k8s.io", "leases", "create"): (take_lease, 'cannot create resource "{r}"'),
    ("coordination.k8s.io", "leases", "update"): (renew_lease, 'cannot update resource "{r}"'),
}


def message_of(exc: ApiException) -> str:
    """The refusal's message: the Status body's, or (the informer's list, kubernetes-asyncio's
    watch) the reason that carries it."""
    raw = exc.body or exc.reason or ""
    with contextlib.suppress(ValueError):
        return str(json.loads(raw)["message"])
    return str(raw)


def grants(docs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for doc in docs
        if doc["kind"] in ("Role", "ClusterRole")
        for rule in doc["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def without(grant: tuple[str, str, str]) -> list[dict[str, Any]]:
    """rbac.yaml's documents with that one verb taken out (a rule left with none dropped)."""
    group, resource, verb = grant
    docs = [d for d in yaml.safe_load_all(RBAC_MANIFEST.read_text()) if d]
    for doc in docs:
        if doc["kind"] not in ("Role", "ClusterRole"):
            continue
        for rule in doc["rules"]:
            if group in rule["apiGroups"] and resource in rule["resources"]:
                rule["verbs"] = [v for v in rule["verbs"] if v != verb]
        doc["rules"] = [r for r in doc["rules"] if r["verbs"]]
    return docs


def test_every_verb_granted_is_one_an_operation_needs() -> None:
    docs = [d for d in yaml.safe_load_all(RBAC_MANIFEST.read_text()) if d]
    assert grants(docs) == set(NEEDS)


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path, rbac: Path) -> AsyncIterator[Cluster]:
    emulator = Emulator(nodes=gpu_nodes(1))
    await emulator.start(port=0)
    admin = await connect(emulator.write_kubeconfig(tmp_path / "kubeconfig"))
    service = await service_account_api(emulator, tmp_path, rbac)
    try:
        objects = client.CustomObjectsApi(admin)
        created = await objects.create_namespaced_custom_object(
            GROUP, DGDR_VERSION, "default", DGDRS, manifest("demo", "default")
        )
        yield Cluster(emulator, admin, service, created)
    finally:
        await service.close()
        await admin.close()
        await emulator.stop()


@pytest.mark.parametrize("grant", sorted(NEEDS), ids=lambda g: "/".join(x or "core" for x in g))
async def test_the_operation_works_with_the_manifest(
    tmp_path: Path, grant: tuple[str, str, str]
) -> None:
    operation, _ = NEEDS[grant]
    async with cluster(tmp_path, RBAC_MANIFEST) as c:
        await operation(c)


@pytest.mark.parametrize("grant", sorted(NEEDS), ids=lambda g: "/".join(x or "core" for x in g))
async def test_the_operation_is_refused_without_its_verb(
    tmp_path: Path, grant: tuple[str, str, str]
) -> None:
    operation, refusal = NEEDS[grant]
    copy = tmp_path / "rbac.yaml"
    copy.write_text(yaml.safe_dump_all(without(grant)))
    async with cluster(tmp_path, copy) as c:
        with pytest.raises(ApiException) as refused:
            await operation(c)
    assert refused.value.status == 403
    text = message_of(refused.value)
    assert refusal.format(r=grant[1]) in text, text
    if "blockOwner" not in refusal and grant != ("", "nodes", "list"):
        assert "system:serviceaccount:dgdr-system:dgdr" in text
