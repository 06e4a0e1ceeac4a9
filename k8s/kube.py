"""Connecting to a Kubernetes API server, and the names the adapter uses there.

`connect(kubeconfig)` returns a kubernetes-asyncio `ApiClient` for a kubeconfig file, or for the
in-cluster service account when no file is given and the process runs in a pod. A missing or broken
kubeconfig raises `k8s.kube.ClusterUnreachable` with a message that says what to pass instead; the
caller turns it into a CLI error, never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config.config_exception import ConfigException

from dgdr.domain.errors import ClusterUnreachable

T = TypeVar("T")

GROUP = "nvidia.com"
DGDR_VERSION = "v1beta1"
DGDR_PLURAL = "dynamographdeploymentrequests"
DGDR_KIND = "DynamoGraphDeploymentRequest"
# The DGD versions dgdr can create, newest first: it uses the newest one the cluster serves
# (Dynamo >= 1.4 serves v1beta1, older releases only v1alpha1). `DGD_VERSION` is the newest.
DGD_VERSIONS = ("v1beta1", "v1alpha1")
DGD_VERSION = DGD_VERSIONS[0]
DGD_PLURAL = "dynamographdeployments"
DGD_KIND = "DynamoGraphDeployment"
FINALIZER = "dgdr.nvidia.com/finalizer"
MERGE_PATCH = "application/merge-patch+json"
# Kept out of what the core stores: it is kubectl's bookkeeping, not the user's intent.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


async def connect(kubeconfig: str | Path | None = None) -> client.ApiClient:
    configuration = client.Configuration()
    try:
        if kubeconfig is not None:
            await config.load_kube_config(
                config_file=str(kubeconfig), client_configuration=configuration
            )
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            raise ClusterUnreachable(
                "no Kubernetes configuration: pass --kubeconfig PATH, run inside a pod, or use "
                "--cluster emulated"
            )
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        raise ClusterUnreachable(f"cannot load kubeconfig {kubeconfig}: {exc}") from exc
    return client.ApiClient(configuration)


async def get_or_none(read: Awaitable[T]) -> T | None:
    """The object `read` returns, or None when the API server says 404 Not Found."""
    try:
        return await read
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


async def served_dgd_version(api: client.ApiClient) -> str | None:
    """The newest of `DGD_VERSIONS` whose API resource list has DGDs (discovery), None if none."""
    objects = client.CustomObjectsApi(api)
    for version in DGD_VERSIONS:
        resources = await get_or_none(objects.get_api_resources(GROUP, version))
        names = [r.name for r in (resources.resources if resources is not None else None) or []]
        if DGD_PLURAL in names:
            return version
    return None


async def get_custom(
    objects: client.CustomObjectsApi, version: str, plural: str, namespace: str, name: str
) -> dict[str, Any] | None:
    """A nvidia.com custom object, or None when there is none of that name."""
    obj: dict[str, Any] | None = await get_or_none(
        objects.get_namespaced_custom_object(GROUP, version, namespace, plural, name)
    )
    return obj
