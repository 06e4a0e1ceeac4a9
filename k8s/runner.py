"""Wiring for `dgdr up --cluster emulated|kubernetes`: the API server (an emulator, or the one a
kubeconfig names), the deployment target the service's reactor uses, and the adapter under a
leader Lease.

`KubernetesSide.open()` connects (and starts the emulator first when asked, with dgdr's admission
and conversion webhooks served over HTTPS and registered on it: k8s/webhook); `target` is the factory
the service takes; `start_adapter(nats_url)` runs the adapter in this process as one candidate for
the Lease; `close()` stops all of it. A kubeconfig that cannot be loaded raises
`k8s.kube.ClusterUnreachable` before anything starts.

On the emulated cluster dgdr is installed as on a real one: k8s/manifests/rbac.yaml is applied, and
the adapter and the target speak as its ServiceAccount (system:serviceaccount:dgdr-system:dgdr,
through DATA_DIR/kubeconfig-dgdr), so the emulator's RBAC refuses what the manifest does not grant.
A Lease namespace other than the manifest's gets the manifest's leader-election Role and
RoleBinding copied into it, as an operator installing with `--lease-namespace` would. The
kubeconfig written for kubectl (`--write-kubeconfig`, default DATA_DIR/kubeconfig) is the admin's.
"""

from __future__ import annotations

import asyncio
import copy
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import structlog
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from nats.js import JetStreamContext

from dgdr.client import DgdrClient
from dgdr.domain.errors import ClusterUnreachable
from events.connection import ConnectOptions
from k8s.adapter import KubernetesAdapter
from k8s.informer import WorkQueueObserver
from k8s.kube import (
    DGD_PLURAL,
    DGD_VERSION,
    DGDR_PLURAL,
    DGDR_VERSION,
    GROUP,
    connect,
    served_dgd_version,
)
from k8s.leader import LeaderElector
from k8s.target import KubernetesTarget

log = structlog.get_logger("k8s.runner")

RBAC_MANIFEST = Path(__file__).parent / "manifests" / "rbac.yaml"
SERVICE_ACCOUNT = ("dgdr-system", "dgdr")  # rbac.yaml's
SERVICE_KUBECONFIG = "kubeconfig-dgdr"


def lease_rbac_in(namespace: str, manifest: Path = RBAC_MANIFEST) -> list[dict[str, Any]]:
    """The manifest's Roles and RoleBindings (the leader election's) moved to `namespace`."""
    docs = [d for d in yaml.safe_load_all(manifest.read_text()) if isinstance(d, dict)]
    moved = []
    for doc in docs:
        if doc.get("kind") in ("Role", "RoleBinding"):
            doc = copy.deepcopy(doc)
            doc["metadata"]["namespace"] = namespace
            moved.append(doc)
    return moved


@dataclass
class ClusterOptions:
    mode: str  # "emulated" or "kubernetes"
    kubeconfig: Path | None = None  # kubernetes: the file to read (None → in-cluster)
    write_kubeconfig: Path | None = None  # emulated: where to write one for kubectl
    namespaces: list[str] | None = None  # the namespaces to watch (None → all)
    lease_namespace: str = "default"
    lease_duration: int = 15
    emulator_port: int = 0
    nodes: int = 4  # emulated: GPU nodes, labelled as the emulator's gpu_nodes() labels them
    dgd_ready_delay: float = 1.0
    # dgdr's DGDR webhooks over HTTPS: emulated, always (this port, or any free one) and registered
    # on the emulator; kubernetes, only when a port is given (the cluster's Service and
    # webhooks.yaml point at it), on all interfaces.
    webhook_port: int | None = None
    # tls.crt, tls.key (and ca.crt) to serve the webhooks with, e.g. cert-manager's Secret mounted;
    # None: a self-signed CA and certificate generated into DATA_DIR/webhook-tls.
    webhook_cert_dir: Path | None = None


async def check_crds(api: client.ApiClient) -> None:
    """Fail fast, saying what to install, when the cluster does not serve the two CRDs."""
    objects = client.CustomObjectsApi(api)
    try:
        dgd_version = await served_dgd_version(api) or DGD_VERSION
    except (aiohttp.ClientError, OSError) as exc:
        raise ClusterUnreachable(f"cannot reach the Kubernetes API server: {exc}") from exc
    for version, plural in ((DGDR_VERSION, DGDR_PLURAL), (dgd_version, DGD_PLURAL)):
        try:
            await objects.list_cluster_custom_object(GROUP, version, plural, limit=1)
        except ApiException as exc:
            if exc.status == 404:
                raise ClusterUnreachable(
                    f"the cluster does not serve {plural}.{GROUP}/{version}: install the CRDs "
                    "with kubectl apply -f k8s/manifests/dgdr-crd.yaml -f "
                    "k8s/manifests/dgd-crd.yaml"
                ) from exc
            if exc.status in (401, 403):
                raise ClusterUnreachable(
                    f"not allowed to list {plural}.{GROUP} ({exc.status}): apply "
                    "k8s/manifests/rbac.yaml and run as its ServiceAccount"
                ) from exc
            raise
        except (aiohttp.ClientError, OSError) as exc:
            raise ClusterUnreachable(f"cannot reach the Kubernetes API server: {exc}") from exc


class KubernetesSide:
    def __init__(self, options: ClusterOptions) -> None:
        self.options = options
        self.api: client.ApiClient | None = None
        self.emulator: Any = None
        self.webhooks: Any = None  # k8s.webhook.server.WebhookServer, with the emulator
        self.kubeconfig: Path | None = options.kubeconfig
        self.adapter: KubernetesAdapter | None = None
        self.elector: LeaderElector | None = None
        self._nats: DgdrClient | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self, data_dir: Path) -> None:
        opts = self.options
        if opts.mode == "emulated":
            from k8s.emulated_jobs import run_profiling_job
            from k8s.emulator import Emulator, gpu_nodes

            self.emulator = Emulator(
                nodes=gpu_nodes(opts.nodes),
                dgd_ready_delay=opts.dgd_ready_delay,
                job_runner=run_profiling_job,
                data_dir=data_dir / "emulator",  # its objects outlive a restart, as the store's
            )
            await self.emulator.start(port=opts.emulator_port)
            await self._serve_webhooks(data_dir, "127.0.0.1")
            self.kubeconfig = opts.write_kubeconfig or data_dir / "kubeconfig"
            self.emulator.write_kubeconfig(self.kubeconfig)  # the admin's, for kubectl
            self.api = await connect(await self._install_service_account(data_dir))
        else:
            if opts.webhook_port is not None:
                await self._serve_webhooks(data_dir, "0.0.0.0")
            self.api = await connect(self.kubeconfig)
        await check_crds(self.api)

    async def _install_service_account(self, data_dir: Path) -> Path:
        """rbac.yaml on the emulator (its leader-election Role also in the Lease namespace), and
        a kubeconfig that speaks as its ServiceAccount; the kubeconfig's path."""
        emulator, lease_namespace = self.emulator, self.options.lease_namespace
        await emulator.apply_manifests(RBAC_MANIFEST)
        if lease_namespace != SERVICE_ACCOUNT[0]:
            namespace = {"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": lease_namespace}}  # fmt: skip
            for doc in [namespace, *lease_rbac_in(lease_namespace)]:
                await emulator.store.apply(doc, field_manager="kubectl")
        token = emulator.service_account_token(*SERVICE_ACCOUNT)
        path: Path = emulator.write_kubeconfig(data_dir / SERVICE_KUBECONFIG, token)
        return path

    async def _serve_webhooks(self, data_dir: Path, host: str) -> None:
        """dgdr's webhooks over HTTPS; on the emulated cluster, also registered there (with the
        generated CA): kubectl's DGDR writes are then defaulted, validated and converted by them,
        and DGDs converted between v1alpha1 and v1beta1."""
        from k8s.webhook import tls
        from k8s.webhook.server import WebhookServer, install

        opts = self.options
        if opts.webhook_cert_dir is not None:
            files = tls.load(opts.webhook_cert_dir)
        else:
            hosts = ["127.0.0.1", "localhost", "dgdr-webhook.dgdr-system.svc"]
            files = tls.generate(data_dir / "webhook-tls", hosts)
        self.webhooks = WebhookServer(files)
        base_url = await self.webhooks.start(host, opts.webhook_port or 0)
        if self.emulator is not None:
            await install(self.emulator.store, base_url, files.ca_bundle)

    def target(self, js: JetStreamContext) -> KubernetesTarget:
        assert self.api is not None, "open() first"
        return KubernetesTarget(self.api, namespaces=self.options.namespaces)

    async def start_adapter(
        self, nats: ConnectOptions, observer: WorkQueueObserver | None = None
    ) -> None:
        assert self.api is not None, "open() first"
        identity = f"{socket.gethostname()}-{os.getpid()}"
        self._nats = DgdrClient(nats)
        await self._nats.connect()
        self.adapter = KubernetesAdapter(
            self.api,
            self._nats,
            namespaces=self.options.namespaces,
            instance=identity,
            observer=observer,
        )
        self.elector = LeaderElector(
            self.api,
            identity=identity,
            namespace=self.options.lease_namespace,
            lease_duration=self.options.lease_duration,
        )
        self._task = asyncio.create_task(self.elector.run(self._supervised))

    async def _supervised(self) -> None:
        """The adapter while this replica leads; a failure is logged and the adapter started
        again (it is level-triggered, so a fresh start converges), never left dead."""
        assert self.adapter is not None
        while True:
            try:
                if self._nats is not None:
                    await self._nats.connect()  # again, when the server closed the connection
                await self.adapter.run()
            except Exception:
                log.exception("adapter failed; starting it again")
                await asyncio.sleep(1.0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5)
        if self._nats is not None:
            await self._nats.close()
        if self.api is not None:
            await self.api.close()
        if self.emulator is not None:
            await self.emulator.stop()
        if self.webhooks is not None:
            await self.webhooks.stop()
