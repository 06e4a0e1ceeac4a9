"""A cluster to test the adapter against: the API server emulator (or a real cluster when
DGDR_TEST_KUBECONFIG is set, for the tests marked `real_cluster_ok`), a real nats-server, the
service with the Kubernetes deployment target, and the adapter.

On the emulator the shipped k8s/manifests/rbac.yaml is applied and the adapter and the target run
as its ServiceAccount, system:serviceaccount:dgdr-system:dgdr (`Kube.service_api`), so a verb the
manifest lacks fails the test that needs it; the tests themselves act as the cluster admin
(`Kube.api`), as a kubectl user would."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from dgdr.app.service import Service, ServiceConfig
from dgdr.client import DgdrClient
from events.connection import ConnectOptions
from events.server import EmbeddedNatsServer
from events.subjects import EVENTS_STREAM
from k8s.adapter import KubernetesAdapter
from k8s.emulated_jobs import run_profiling_job
from k8s.emulator import Emulator, gpu_nodes
from k8s.kube import (
    DGD_PLURAL,
    DGD_VERSION,
    DGDR_PLURAL,
    DGDR_VERSION,
    GROUP,
    connect,
    get_custom,
)
from k8s.target import KubernetesTarget
from tests.support import manifest, until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RBAC_MANIFEST = Path(__file__).resolve().parents[2] / "k8s" / "manifests" / "rbac.yaml"
SERVICE_ACCOUNT = ("dgdr-system", "dgdr")  # rbac.yaml's
REACTOR_DURABLE = "dgdr-reactor"  # the service's reactor consumer (dgdr.app.service)
WAIT = 30.0  # seconds a cluster test waits for a condition (a full lifecycle takes a few)


def dgdr(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return manifest(name, namespace, **spec)


@dataclass
class Kube:
    emulator: Emulator | None
    kubeconfig: Path
    api: client.ApiClient
    nats: EmbeddedNatsServer
    service: Service | None = None
    adapter: KubernetesAdapter | None = None
    nats_client: DgdrClient | None = None
    _adapter_task: asyncio.Task[None] | None = None
    namespaces: list[str] | None = None
    extra: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    service_api: client.ApiClient | None = None  # the adapter's identity (None: `api`'s)

    @property
    def objects(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def batch(self) -> client.BatchV1Api:
        return client.BatchV1Api(self.api)

    async def start(self) -> None:
        api = self.service_api or self.api
        config = ServiceConfig(
            connect=ConnectOptions(url=self.nats.url),
            ack_wait=2.0,
            target=lambda js: KubernetesTarget(api, namespaces=self.namespaces),
        )
        self.service = Service(config)
        await self.service.start()
        self.nats_client = DgdrClient(ConnectOptions(url=self.nats.url))
        await self.nats_client.connect()
        await self.start_adapter()

    async def start_adapter(self) -> None:
        assert self.nats_client is not None
        self.adapter = KubernetesAdapter(
            self.service_api or self.api, self.nats_client, namespaces=self.namespaces, resync=1.0
        )
        self._adapter_task = asyncio.create_task(self.adapter.run())
        await asyncio.wait_for(self.adapter.informer.wait_synced(), 10)

    async def stop_adapter(self) -> None:
        if self._adapter_task is not None:
            self._adapter_task.cancel()
            with contextlib.suppress(BaseException):
                await self._adapter_task
            self._adapter_task = None

    async def stop(self) -> None:
        await self.stop_adapter()
        if self.nats_client is not None:
            await self.nats_client.close()
            self.nats_client = None
        if self.service is not None:
            await self.service.stop()
            self.service = None

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        ns = body["metadata"].get("namespace", "default")
        obj: dict[str, Any] = await self.objects.create_namespaced_custom_object(
            GROUP, DGDR_VERSION, ns, DGDR_PLURAL, body
        )
        return obj

    async def get(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        return await get_custom(self.objects, DGDR_VERSION, DGDR_PLURAL, namespace, name)

    async def get_dgd(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        return await get_custom(self.objects, DGD_VERSION, DGD_PLURAL, namespace, name)

    async def phase(
        self, name: str, phase: str, timeout: float = 30.0, namespace: str = "default"
    ) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            obj = await self.get(name, namespace)
            got = (obj or {}).get("status", {}).get("phase")
            if got == "Failed" and phase != "Failed":
                raise AssertionError(f"{name} failed: {obj and obj.get('status')}")
            return obj if got == phase else None

        result: dict[str, Any] = await until(reached, timeout, f"{name} to reach {phase}")
        return result

    async def reactor_caught_up(self) -> bool:
        """True once the service's reactor has handled (acked) every stored event: whatever
        it was going to do about them (create a DGD, start a Job) it has done."""
        assert self.service is not None and self.service.js is not None
        info = await self.service.js.consumer_info(EVENTS_STREAM, REACTOR_DURABLE)
        return info.num_pending == 0 and info.num_ack_pending == 0

    async def events(self, name: str, namespace: str = "default") -> list[Any]:
        listed = await self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name}"
        )
        return list(listed.items)


@pytest.fixture
async def real_kube(nats_server: EmbeddedNatsServer) -> AsyncIterator[Kube]:
    """The adapter and service against the cluster DGDR_TEST_KUBECONFIG names (its CRDs installed,
    Dynamo's operator running); skipped, with the reason in the summary, when it is not set."""
    path = os.environ.get("DGDR_TEST_KUBECONFIG")
    if not path:
        pytest.skip(
            "DGDR_TEST_KUBECONFIG is not set: the end-to-end test on a real cluster is skipped"
        )
    api = await connect(Path(path))
    kube = Kube(None, Path(path), api, nats_server)
    try:
        await kube.start()
        yield kube
    finally:
        await kube.stop()
        await api.close()


async def service_account_api(
    emulator: Emulator, tmp_path: Path, rbac: Path = RBAC_MANIFEST
) -> client.ApiClient:
    """`rbac` applied on the emulator, and a client that speaks as its ServiceAccount."""
    await emulator.apply_manifests(rbac)
    token = emulator.service_account_token(*SERVICE_ACCOUNT)
    return await connect(emulator.write_kubeconfig(tmp_path / "kubeconfig-dgdr", token))


@contextlib.asynccontextmanager
async def emulated_kube(
    nats_server: EmbeddedNatsServer,
    tmp_path: Path,
    crds: list[dict[str, Any]] | None = None,
    rbac: Path = RBAC_MANIFEST,
) -> AsyncIterator[Kube]:
    """The service and the adapter against a fresh emulator (2 H200 nodes) with `crds` installed
    (None: the emulator's default, our own CRDs), running as the ServiceAccount of `rbac`."""
    emulator = Emulator(
        nodes=gpu_nodes(2, "NVIDIA-H200-141GB-HBM3", 8, 143771),
        dgd_ready_delay=0.3,
        job_runner=run_profiling_job,
        crds=crds,
    )
    await emulator.start(port=0)
    kubeconfig = tmp_path / "kubeconfig"
    emulator.write_kubeconfig(kubeconfig)
    api = await connect(kubeconfig)
    service_api = await service_account_api(emulator, tmp_path, rbac)
    kube = Kube(emulator, kubeconfig, api, nats_server, service_api=service_api)
    try:
        await kube.start()
        yield kube
    finally:
        await kube.stop()
        await service_api.close()
        await api.close()
        await emulator.stop()


@pytest.fixture
async def kube(nats_server: EmbeddedNatsServer, tmp_path: Path) -> AsyncIterator[Kube]:
    async with emulated_kube(nats_server, tmp_path) as running:
        yield running
