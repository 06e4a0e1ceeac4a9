"""`dgdr up --cluster kubernetes` fails fast, saying what to do, when the cluster cannot serve it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dgdr.domain.errors import ClusterUnreachable
from k8s.emulator import Emulator
from k8s.informer import Informer
from k8s.kube import connect
from k8s.runner import ClusterOptions, KubernetesSide
from tests.support import until

pytestmark = pytest.mark.timeout(60)


async def test_a_cluster_without_the_crds_is_refused_with_the_install_command(
    tmp_path: Path,
) -> None:
    emulator = Emulator(crds=[])
    await emulator.start(port=0)
    kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig")
    side = KubernetesSide(ClusterOptions(mode="kubernetes", kubeconfig=kubeconfig))
    try:
        with pytest.raises(ClusterUnreachable) as err:
            await side.open(tmp_path)
        assert "kubectl apply -f k8s/manifests/dgdr-crd.yaml" in str(err.value)
    finally:
        await side.close()
        await emulator.stop()


async def test_an_informer_list_error_is_an_api_error_not_a_parse_error(tmp_path: Path) -> None:
    from kubernetes_asyncio.client.exceptions import ApiException

    emulator = Emulator(crds=[])
    await emulator.start(port=0)
    api = await connect(emulator.write_kubeconfig(tmp_path / "kubeconfig"))

    async def ignore(kind: str, obj: dict[str, object]) -> None:
        return None

    informer = Informer.custom(
        api,
        group="nvidia.com",
        version="v1beta1",
        plural="dynamographdeploymentrequests",
        handler=ignore,
    )
    try:
        with pytest.raises(ApiException) as err:
            await informer._relist()
        assert err.value.status == 404
    finally:
        await api.close()
        await emulator.stop()


def test_a_missing_kubeconfig_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dgdr", "up", "--kubeconfig", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--kubeconfig: no such file" in done.stderr and "Traceback" not in done.stderr


async def test_an_unexpected_watch_failure_lists_again_instead_of_ending(tmp_path: Path) -> None:
    import asyncio

    emulator = Emulator()
    await emulator.start(port=0)
    api = await connect(emulator.write_kubeconfig(tmp_path / "kubeconfig"))

    async def ignore(kind: str, obj: dict[str, object]) -> None:
        return None

    informer = Informer.custom(
        api,
        group="nvidia.com",
        version="v1beta1",
        plural="dynamographdeploymentrequests",
        handler=ignore,
    )
    real_watch = informer._watch
    calls = 0

    async def flaky_watch(resource_version: str) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("Line is too long")  # what aiohttp raises on an oversized line
        return await real_watch(resource_version)

    informer._watch = flaky_watch  # type: ignore[method-assign]
    task = asyncio.create_task(informer.run())
    try:
        await until(lambda: informer.relists >= 2, 5, "a second list after the failed watch")
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await api.close()
        await emulator.stop()


async def test_a_failed_adapter_is_started_again_while_leading() -> None:
    import asyncio

    runs = 0

    class Adapter:
        async def run(self) -> None:
            nonlocal runs
            runs += 1
            if runs == 1:
                raise RuntimeError("boom")
            await asyncio.Event().wait()

    side = KubernetesSide(ClusterOptions(mode="kubernetes"))
    side.adapter = Adapter()  # type: ignore[assignment]
    task = asyncio.create_task(side._supervised())
    try:
        await until(lambda: runs == 2, 5, "the adapter to be started again")
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_emulated_cluster_runs_the_adapter_as_the_manifests_service_account(
    tmp_path: Path,
) -> None:
    import json

    from kubernetes_asyncio import client
    from kubernetes_asyncio.client.exceptions import ApiException

    from k8s.leader import LeaderElector

    side = KubernetesSide(ClusterOptions(mode="emulated", nodes=1))
    admin = None
    try:
        await side.open(tmp_path)
        assert side.api is not None and side.kubeconfig is not None
        with pytest.raises(ApiException) as refused:
            await client.CoreV1Api(side.api).list_namespaced_pod("default")
        assert refused.value.status == 403
        assert json.loads(refused.value.body)["message"] == (
            'pods is forbidden: User "system:serviceaccount:dgdr-system:dgdr" cannot list '
            'resource "pods" in API group "" in the namespace "default"'
        )
        # the Lease namespace (`dgdr up`'s default) got rbac.yaml's leader-election Role
        elector = LeaderElector(side.api, identity="x", namespace=side.options.lease_namespace)
        assert await elector._try_acquire_or_renew()
        admin = await connect(side.kubeconfig)  # what kubectl gets: the cluster admin
        await client.CoreV1Api(admin).list_namespaced_pod("default")
    finally:
        if admin is not None:
            await admin.close()
        await side.close()
