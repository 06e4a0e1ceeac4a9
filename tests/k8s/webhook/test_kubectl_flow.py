"""The whole kubectl flow through dgdr's webhooks: with the adapter and the service running on the
emulated cluster, a v1alpha1 DGDR applied with kubectl is stored as v1beta1, reaches the adapter and
is deployed, and reads back in v1alpha1 with Dynamo's v1alpha1 status; and `dgdr up --cluster
emulated` serves and registers the webhooks itself (defaulting and refusals through kubectl)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from events.server import free_port
from k8s.webhook import tls
from k8s.webhook.server import DEFAULT_IMAGE, WebhookServer, install
from tests.support import manifest, until

from ..conftest import Kube
from ..test_kubectl import KUBECTL

pytestmark = pytest.mark.timeout(120)

ALPHA_DGDR = {
    "apiVersion": "nvidia.com/v1alpha1",
    "kind": "DynamoGraphDeploymentRequest",
    "metadata": {"name": "legacy", "namespace": "default"},
    "spec": {
        "model": "Qwen/Qwen3-0.6B",
        "backend": "vllm",
        "autoApply": True,
        "profilingConfig": {
            "profilerImage": "nvcr.io/nvidia/ai-dynamo/dynamo-planner:0.9.0",
            "config": {"sla": {"ttft": 300, "itl": 20, "isl": 3000, "osl": 500}},
        },
    },
}


async def run_kubectl(kubeconfig: Path, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(kubeconfig.parent / "kc"),
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def hooked_kube(kube: Kube, tmp_path: Path) -> AsyncIterator[Kube]:
    assert kube.emulator is not None
    files = tls.generate(tmp_path / "tls", ["127.0.0.1"])
    server = WebhookServer(files)
    await install(kube.emulator.store, await server.start(), files.ca_bundle)
    try:
        yield kube
    finally:
        await server.stop()


async def test_a_v1alpha1_dgdr_applied_with_kubectl_reaches_the_adapter_as_v1beta1(
    hooked_kube: Kube, tmp_path: Path
) -> None:
    kc = hooked_kube.kubeconfig
    path = tmp_path / "legacy.yaml"
    path.write_text(yaml.safe_dump(ALPHA_DGDR))
    code, out, err = await run_kubectl(kc, "apply", "-f", str(path))
    assert code == 0 and "created" in out, err
    assert "nvidia.com/v1alpha1 DynamoGraphDeploymentRequest is deprecated" in err

    deployed = await hooked_kube.phase("legacy", "Deployed", timeout=60)
    assert deployed["apiVersion"] == "nvidia.com/v1beta1"
    assert deployed["spec"]["image"] == "nvcr.io/nvidia/ai-dynamo/dynamo-planner:0.9.0"
    assert deployed["spec"]["workload"] == {"isl": 3000, "osl": 500}
    dgd_name = deployed["status"]["dgdName"]
    assert await hooked_kube.get_dgd(dgd_name) is not None

    code, out, err = await run_kubectl(
        kc, "get", "dynamographdeploymentrequests.v1alpha1.nvidia.com", "legacy", "-o", "json"
    )
    assert code == 0, err
    alpha = json.loads(out)
    assert alpha["apiVersion"] == "nvidia.com/v1alpha1"
    assert alpha["status"]["state"] == "Ready"
    assert alpha["status"]["deployment"]["name"] == dgd_name
    assert alpha["spec"]["profilingConfig"]["config"]["sla"]["isl"] == 3000
    code, out, err = await run_kubectl(
        kc, "get", "dynamographdeploymentrequests.v1alpha1.nvidia.com"
    )
    assert code == 0, err
    header, row = out.splitlines()[:2]
    assert header.split() == ["NAME", "MODEL", "BACKEND", "STATE", "DGD-STATE", "AGE"]
    assert row.split()[:4] == ["legacy", "Qwen/Qwen3-0.6B", "Ready", "successful"]


async def test_dgdr_up_cluster_emulated_registers_the_webhooks(tmp_path: Path) -> None:
    kc = tmp_path / "kc" / "config"
    data = tmp_path / "data"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dgdr", "up", "--data-dir", str(data), "--port", str(free_port()),
        "--cluster", "emulated", "--write-kubeconfig", str(kc),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )  # fmt: skip
    try:

        def written() -> bool:
            assert proc.returncode is None, "dgdr up exited"
            return kc.is_file() and kc.stat().st_size > 0

        await until(written, 30, "dgdr up to write the kubeconfig")
        assert (data / "webhook-tls" / "ca.crt").is_file()
        bad = tmp_path / "bad.yaml"
        bad.write_text(yaml.safe_dump(manifest("bad", "default", backend="auto",
                                               searchStrategy="thorough")))  # fmt: skip
        code, _, err = await run_kubectl(kc, "apply", "-f", str(bad))
        assert code != 0 and "denied the request" in err, err
        long_name = tmp_path / "long.yaml"
        long_name.write_text(yaml.safe_dump(manifest("n" * 60, "default")))
        code, _, err = await run_kubectl(kc, "apply", "-f", str(long_name))
        assert code != 0 and "metadata.name: 60 characters" in err and "limit is 55" in err, err
        good = tmp_path / "good.yaml"
        good.write_text(yaml.safe_dump(manifest("good", "default", image=None)))
        code, _, err = await run_kubectl(kc, "apply", "-f", str(good))
        assert code == 0, err
        code, out, err = await run_kubectl(
            kc, "get", "dgdr", "good", "-o", "jsonpath={.spec.image}"
        )
        assert (code, out) == (0, DEFAULT_IMAGE), err
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.stderr is not None
        stderr = (await asyncio.wait_for(proc.stderr.read(), 30)).decode()
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0, stderr
