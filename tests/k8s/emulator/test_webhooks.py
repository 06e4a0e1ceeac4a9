"""The emulator calls admission and conversion webhooks as kube-apiserver does, with dgdr's webhook
server (k8s/webhook) registered on it over HTTPS: defaulting, validation refusals worded as the API
server words them, failurePolicy Fail/Ignore, caBundle verification, and a DGDR CRD whose v1alpha1
objects are stored as v1beta1 and read back in either version (get, list, watch), through the real
kubectl binary and plain HTTP."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from k8s.emulator import ApiError, Emulator
from k8s.webhook import server as webhook_server
from k8s.webhook import tls
from k8s.webhook.server import DEFAULT_IMAGE, WebhookServer, install, registrations
from tests.support import until

from .conftest import Kubectl, dgdr_manifest

pytestmark = pytest.mark.timeout(60)

DGDR = ("nvidia.com", "v1beta1", "dynamographdeploymentrequests")
ALPHA = ("nvidia.com", "v1alpha1", "dynamographdeploymentrequests")
VALIDATING = "vdynamographdeploymentrequest.kb.io"
DEPRECATED = (
    "nvidia.com/v1alpha1 DynamoGraphDeploymentRequest is deprecated; "
    "use nvidia.com/v1beta1 DynamoGraphDeploymentRequest"
)


@dataclass
class Hooked:
    emu: Emulator
    server: WebhookServer
    base_url: str
    ca_bundle: str


@pytest.fixture
async def hooked(emu: Emulator, tmp_path: Path) -> AsyncIterator[Hooked]:
    files = tls.generate(tmp_path / "tls", ["127.0.0.1"])
    server = WebhookServer(files)
    base_url = await server.start()
    await install(emu.store, base_url, files.ca_bundle)
    try:
        yield Hooked(emu, server, base_url, files.ca_bundle)
    finally:
        await server.stop()


def alpha_manifest(name: str = "old", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeploymentRequest",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "model": "Qwen/Qwen3-0.6B",
            "backend": "vllm",
            "enableGpuDiscovery": True,
            "profilingConfig": {
                "profilerImage": "nvcr.io/nvidia/ai-dynamo/dynamo-planner:0.9.0",
                "outputPVC": "results",
                "config": {
                    "sla": {"ttft": 300, "itl": 20, "isl": 3000, "osl": 500},
                    "sweep": {"prefill_interpolation_granularity": 8},
                },
            },
            **spec,
        },
    }


def write(tmp_path: Path, name: str, obj: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(obj))
    return str(path)


async def http(
    emu: Emulator, method: str, path: str, body: Any = None, ctype: str = "application/json"
) -> tuple[int, Any, list[str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, emu.url + path, data=None if body is None else json.dumps(body),
            headers={"Content-Type": ctype},
        ) as resp,
    ):  # fmt: skip
        return resp.status, await resp.json(), resp.headers.getall("Warning", [])


async def test_kubectl_applies_v1alpha1_stored_as_v1beta1_and_read_in_either(
    hooked: Hooked, kubectl: Kubectl, tmp_path: Path
) -> None:
    path = write(tmp_path, "old.yaml", alpha_manifest())
    applied = await kubectl("apply", "-f", path)
    assert applied.code == 0 and "created" in applied.out, applied.text
    assert DEPRECATED in applied.err  # the deprecated version's Warning, printed by kubectl

    stored = hooked.emu.store.get(*DGDR, "default", "old")
    assert stored is not None and stored["apiVersion"] == "nvidia.com/v1beta1"
    spec = stored["spec"]
    assert spec["image"] == "nvcr.io/nvidia/ai-dynamo/dynamo-planner:0.9.0"
    assert spec["sla"] == {"ttft": 300, "itl": 20}
    assert spec["workload"] == {"isl": 3000, "osl": 500}
    assert spec["autoApply"] is False  # v1alpha1's default, carried over

    beta = json.loads((await kubectl("get", "dgdr", "old", "-o", "json")).out)
    assert beta["apiVersion"] == "nvidia.com/v1beta1" and beta["spec"]["model"] == "Qwen/Qwen3-0.6B"
    got = await kubectl(
        "get", "dynamographdeploymentrequests.v1alpha1.nvidia.com", "old", "-o", "json"
    )
    alpha = json.loads(got.out)
    assert alpha["apiVersion"] == "nvidia.com/v1alpha1"
    assert alpha["spec"]["profilingConfig"]["outputPVC"] == "results"  # kept through v1beta1
    assert alpha["spec"]["profilingConfig"]["config"]["sweep"] == {
        "prefill_interpolation_granularity": 8
    }
    again = await kubectl("apply", "-f", path)  # kubectl's three-way patch, in v1alpha1
    assert again.code == 0 and "unchanged" in again.out, again.text
    assert hooked.emu.store.get(*DGDR, "default", "old") == stored


async def test_list_and_watch_in_v1alpha1_are_converted(hooked: Hooked) -> None:
    emu = hooked.emu
    await emu.store.create(*DGDR, "default", dgdr_manifest("new", image="img:1"))
    status, listed, warnings = await http(
        emu, "GET", "/apis/nvidia.com/v1alpha1/namespaces/default/dynamographdeploymentrequests"
    )
    assert status == 200 and listed["apiVersion"] == "nvidia.com/v1alpha1"
    (item,) = listed["items"]
    assert item["apiVersion"] == "nvidia.com/v1alpha1"
    assert item["spec"]["profilingConfig"]["profilerImage"] == "img:1"
    assert any("deprecated" in w for w in warnings)

    url = emu.url + "/apis/nvidia.com/v1alpha1/dynamographdeploymentrequests?watch=1"
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        first = json.loads(await asyncio.wait_for(resp.content.readline(), 10))
        assert first["type"] == "ADDED"
        assert first["object"]["apiVersion"] == "nvidia.com/v1alpha1"
        await emu.store.patch_status(*DGDR, "default", "new", {"phase": "Profiling"})
        second = json.loads(await asyncio.wait_for(resp.content.readline(), 10))
        assert second["type"] == "MODIFIED" and second["object"]["status"]["state"] == "Profiling"


async def test_defaulting_fills_the_profiler_image_on_create(
    hooked: Hooked, kubectl: Kubectl, tmp_path: Path
) -> None:
    path = write(tmp_path, "d.yaml", dgdr_manifest("d", image=None))
    assert (await kubectl("apply", "-f", path)).code == 0
    image = await kubectl("get", "dgdr", "d", "-o", "jsonpath={.spec.image}")
    assert image.out == DEFAULT_IMAGE
    given = write(tmp_path, "e.yaml", dgdr_manifest("e", image="my/planner:2"))
    assert (await kubectl("apply", "-f", given)).code == 0
    stored = hooked.emu.store.get(*DGDR, "default", "e")
    assert stored is not None and stored["spec"]["image"] == "my/planner:2"


async def test_an_invalid_spec_is_refused_with_the_webhooks_message(
    hooked: Hooked, kubectl: Kubectl, tmp_path: Path
) -> None:
    path = write(tmp_path, "t.yaml", dgdr_manifest("t", backend="auto", searchStrategy="thorough"))
    refused = await kubectl("apply", "-f", path)
    assert refused.code != 0
    assert (
        'dynamographdeploymentrequests.nvidia.com "t" is forbidden: admission webhook '
        f'"{VALIDATING}" denied the request:' in refused.err
    ), refused.err
    assert "thorough" in refused.err
    assert hooked.emu.store.get(*DGDR, "default", "t") is None

    status, body, _ = await http(
        hooked.emu, "POST", "/apis/nvidia.com/v1beta1/namespaces/default/dynamographdeploymentrequests",
        dgdr_manifest("t", backend="auto", searchStrategy="thorough"),
    )  # fmt: skip
    assert (status, body["code"], body["reason"]) == (403, 403, "Forbidden")
    assert body["details"] == {
        "name": "t",
        "group": "nvidia.com",
        "kind": "dynamographdeploymentrequests",
    }

    enum = write(tmp_path, "b.yaml", dgdr_manifest("b", backend="tensorflow"))
    schema = await kubectl("apply", "-f", enum)
    assert schema.code != 0 and "Unsupported value" in schema.err, schema.err
    assert hooked.emu.store.get(*DGDR, "default", "b") is None


@pytest.mark.parametrize("phase", ["Profiling", "Deploying", "Deployed"])
async def test_a_spec_update_in_a_frozen_phase_is_refused(
    hooked: Hooked, kubectl: Kubectl, tmp_path: Path, phase: str
) -> None:
    emu = hooked.emu
    path = write(tmp_path, "f.yaml", dgdr_manifest("f"))
    assert (await kubectl("apply", "-f", path)).code == 0
    await emu.store.patch_status(*DGDR, "default", "f", {"phase": phase})
    before = emu.store.get(*DGDR, "default", "f")
    changed = write(tmp_path, "f.yaml", dgdr_manifest("f", workload={"isl": 1000}))
    refused = await kubectl("apply", "-f", changed)
    assert refused.code != 0
    assert "spec updates are forbidden while the resource is in phase" in refused.err
    assert "denied the request" in refused.err and phase in refused.err
    assert emu.store.get(*DGDR, "default", "f") == before
    labelled = await kubectl("label", "dgdr", "f", "team=a")
    assert labelled.code == 0, labelled.text  # metadata changes are always admitted
    status = await emu.store.patch_status(*DGDR, "default", "f", {"phase": "Failed"})
    assert status["status"]["phase"] == "Failed"
    assert (await kubectl("apply", "-f", changed)).code == 0  # Failed: the webhook allows it


async def _register(emu: Emulator, base_url: str, ca_bundle: str, policy: str) -> None:
    for doc in registrations(base_url, ca_bundle):
        for hook in doc["webhooks"]:
            hook["failurePolicy"] = policy
        await emu.store.apply(doc, field_manager="test")


async def test_failure_policy_fail_refuses_and_ignore_admits(
    hooked: Hooked, kubectl: Kubectl, tmp_path: Path
) -> None:
    emu = hooked.emu
    await hooked.server.stop()  # the webhook is down
    path = write(tmp_path, "x.yaml", dgdr_manifest("x"))
    refused = await kubectl("apply", "-f", path)
    assert refused.code != 0
    assert f'failed calling webhook "{VALIDATING}"' in refused.err or (
        'failed calling webhook "mdynamographdeploymentrequestv1beta1.kb.io"' in refused.err
    ), refused.err
    assert emu.store.get(*DGDR, "default", "x") is None

    await _register(emu, hooked.base_url, hooked.ca_bundle, "Ignore")
    admitted = await kubectl("apply", "-f", path)
    assert admitted.code == 0, admitted.text
    stored = emu.store.get(*DGDR, "default", "x")
    assert stored is not None and "image" not in stored["spec"]  # the defaulting hook was skipped


async def test_the_ca_bundle_is_verified(hooked: Hooked, tmp_path: Path) -> None:
    other = tls.generate(tmp_path / "other", ["127.0.0.1"])
    await _register(hooked.emu, hooked.base_url, other.ca_bundle, "Fail")
    status, body, _ = await http(
        hooked.emu, "POST", "/apis/nvidia.com/v1beta1/namespaces/default/dynamographdeploymentrequests",
        dgdr_manifest("y", image=None),
    )  # fmt: skip
    assert status == 500 and "failed calling webhook" in body["message"]
    assert "certificate" in body["message"].lower()
    assert hooked.emu.store.get(*DGDR, "default", "y") is None


async def test_conversion_down_fails_v1alpha1_reads_but_not_v1beta1(hooked: Hooked) -> None:
    emu = hooked.emu
    await emu.store.create(*DGDR, "default", dgdr_manifest("z", image="img:1"))
    await hooked.server.stop()
    path = "/apis/nvidia.com/{}/namespaces/default/dynamographdeploymentrequests/z"
    status, body, _ = await http(emu, "GET", path.format("v1alpha1"))
    assert status == 500 and "conversion webhook for nvidia.com/v1beta1" in body["message"]
    status, body, _ = await http(emu, "GET", path.format("v1beta1"))
    assert status == 200 and body["spec"]["image"] == "img:1"


async def test_an_update_that_races_its_webhook_is_computed_again(
    hooked: Hooked, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merge patch whose object changes while its webhooks run is applied to the new object,
    as kube-apiserver retries a guaranteed update."""
    emu = hooked.emu
    await emu.store.create(*DGDR, "default", dgdr_manifest("r", image="img:1"))
    calls = 0
    tasks: list[asyncio.Task[Any]] = []
    real_validate = webhook_server.validate

    def validate(request: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:  # another writer labels the object while the webhook is deciding
            tasks.append(asyncio.get_running_loop().create_task(
                emu.store.patch(*DGDR, "default", "r", {"metadata": {"labels": {"raced": "yes"}}})
            ))  # fmt: skip
        return real_validate(request)

    monkeypatch.setattr(webhook_server, "validate", validate)
    await hooked.server.stop()  # served again with the patched handler, same port
    await hooked.server.start(port=int(hooked.base_url.rsplit(":", 1)[1]))
    status, body, _ = await http(
        emu, "PATCH", "/apis/nvidia.com/v1beta1/namespaces/default/dynamographdeploymentrequests/r",
        {"metadata": {"annotations": {"a": "b"}}}, "application/merge-patch+json",
    )  # fmt: skip
    assert status == 200, body
    await asyncio.gather(*tasks)
    assert calls == 2  # computed and reviewed again on the object the other writer left
    stored = emu.store.get(*DGDR, "default", "r")
    assert stored is not None
    assert stored["metadata"]["labels"] == {"raced": "yes"}
    assert stored["metadata"]["annotations"] == {"a": "b"}


def test_webhook_configurations_are_served_kinds(emu: Emulator) -> None:
    rt = emu.store.registry.lookup(
        "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations"
    )
    assert rt is not None and not rt.namespaced
    assert copy.deepcopy(rt.kind) == "ValidatingWebhookConfiguration"


async def test_in_process_reads_and_writes_of_a_converted_version_do_not_pretend(
    hooked: Hooked,
) -> None:
    emu = hooked.emu
    await emu.store.create(*DGDR, "default", dgdr_manifest("p", image="img:1"))
    seen = emu.store.get(*ALPHA, "default", "p")
    assert seen is not None and seen["apiVersion"] == "nvidia.com/v1beta1"  # unconverted, said so
    with pytest.raises(ApiError) as refused:
        await emu.store.create(*ALPHA, "default", alpha_manifest("q"))
    assert refused.value.code == 400
    assert emu.store.get(*DGDR, "default", "q") is None


async def test_a_v1alpha1_watch_ends_with_an_error_when_conversion_fails(hooked: Hooked) -> None:
    emu = hooked.emu
    await emu.store.create(*DGDR, "default", dgdr_manifest("w", image="img:1"))
    url = emu.url + "/apis/nvidia.com/v1alpha1/dynamographdeploymentrequests?watch=1"
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        first = json.loads(await asyncio.wait_for(resp.content.readline(), 10))
        assert first["type"] == "ADDED"
        await hooked.server.stop()
        await emu.store.patch_status(*DGDR, "default", "w", {"phase": "Profiling"})
        error = json.loads(await asyncio.wait_for(resp.content.readline(), 10))
        assert error["type"] == "ERROR" and error["object"]["code"] == 500
        assert "conversion webhook" in error["object"]["message"]
        assert await asyncio.wait_for(resp.content.read(), 10) == b""  # and the stream ends


# --------------------------------------------------------------------------- DGD conversion

DGD = ("nvidia.com", "v1beta1", "dynamographdeployments")
DGD_ALPHA = "dynamographdeployments.v1alpha1.nvidia.com"


def beta_dgd(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "nvidia.com/v1beta1",
        "kind": "DynamoGraphDeployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "backendFramework": "vllm",
            "components": [
                {
                    "name": "VllmWorker",
                    "type": "worker",
                    "replicas": 2,
                    "frontendSidecar": "fe",
                    "podTemplate": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "main",
                                    "image": "img:1",
                                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                                }
                            ]
                        }
                    },
                },
                {"name": "Frontend", "type": "frontend", "replicas": 1},
            ],
        },
    }


def dgd_state(emu: Emulator, name: str) -> Any:
    obj = emu.store.get(*DGD, "default", name)
    return obj is not None and (obj.get("status") or {}).get("state")


async def test_a_v1beta1_dgd_reads_back_as_v1alpha1_with_services(
    hooked: Hooked, kubectl: Kubectl, tmp_path: Path
) -> None:
    from sim import convert_dgd

    emu = hooked.emu
    applied = await kubectl("apply", "-f", write(tmp_path, "d.yaml", beta_dgd("d")))
    assert applied.code == 0, applied.text
    await until(lambda: dgd_state(emu, "d") == "successful")
    stored = emu.store.get(*DGD, "default", "d")
    assert stored is not None and stored["apiVersion"] == "nvidia.com/v1beta1"
    assert "components" in stored["status"]

    got = await kubectl("get", DGD_ALPHA, "d", "-o", "json")
    assert got.code == 0, got.text
    alpha = json.loads(got.out)
    assert alpha["apiVersion"] == "nvidia.com/v1alpha1"
    assert alpha["spec"] == convert_dgd(stored, "nvidia.com/v1alpha1")[0]["spec"]
    assert alpha["spec"]["services"]["VllmWorker"]["replicas"] == 2
    assert alpha["spec"]["services"]["VllmWorker"]["resources"] == {"limits": {"gpu": "1"}}
    assert alpha["spec"]["services"]["Frontend"] == {"componentType": "frontend", "replicas": 1}
    assert alpha["status"]["services"]["VllmWorker"]["componentName"] == "d-vllmworker"
    assert alpha["status"]["state"] == "successful"

    table = await kubectl("get", DGD_ALPHA)
    assert table.code == 0, table.text
    assert table.out.splitlines()[1].split()[:3] == ["d", "True", "vllm"]

    # an edit in v1alpha1 keeps what v1alpha1 cannot hold (frontendSidecar, the order)
    patched = await kubectl(
        "patch", DGD_ALPHA, "d", "--type", "merge",
        "-p", json.dumps({"spec": {"services": {"Frontend": {"replicas": 3}}}}),
    )  # fmt: skip
    assert patched.code == 0, patched.text
    after = emu.store.get(*DGD, "default", "d")
    assert after is not None
    expected = beta_dgd("d")["spec"]
    expected["components"][1]["replicas"] = 3
    assert after["spec"] == expected


async def test_a_v1alpha1_dgd_is_stored_as_v1beta1_and_reads_back_the_same(
    hooked: Hooked, kubectl: Kubectl, tmp_path: Path
) -> None:
    from sim import convert_dgd

    emu = hooked.emu
    alpha = {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeployment",
        "metadata": {"name": "a", "namespace": "default"},
        "spec": {
            "backendFramework": "sglang",
            "pvcs": [{"name": "models"}],
            "services": {
                "Frontend": {"componentType": "frontend", "replicas": 1},
                "decode": {
                    "componentType": "worker",
                    "subComponentType": "decode",
                    "replicas": 2,
                    "dynamoNamespace": "ns-1",
                },
            },
        },
    }
    path = write(tmp_path, "a.yaml", alpha)
    applied = await kubectl("apply", "-f", path)
    assert applied.code == 0, applied.text
    stored = emu.store.get(*DGD, "default", "a")
    assert stored is not None and stored["apiVersion"] == "nvidia.com/v1beta1"
    assert stored["spec"] == convert_dgd(alpha, "nvidia.com/v1beta1")[0]["spec"]
    assert [c["name"] for c in stored["spec"]["components"]] == ["Frontend", "decode"]
    assert stored["spec"]["components"][1]["type"] == "decode"
    await until(lambda: dgd_state(emu, "a") == "successful")

    beta = json.loads((await kubectl("get", "dgd", "a", "-o", "json")).out)
    assert beta["apiVersion"] == "nvidia.com/v1beta1" and "components" in beta["spec"]
    back = json.loads((await kubectl("get", DGD_ALPHA, "a", "-o", "json")).out)
    assert back["spec"] == alpha["spec"]  # pvcs and dynamoNamespace kept through v1beta1
    assert set(back["status"]["services"]) == {"Frontend", "decode"}
    again = await kubectl("apply", "-f", path)  # kubectl's three-way patch, in v1alpha1
    assert again.code == 0 and "unchanged" in again.out, again.text


async def test_without_dgdrs_webhook_server_the_dgd_crd_converts_nothing(emu: Emulator) -> None:
    crd = emu.store.get("apiextensions.k8s.io", "v1", "customresourcedefinitions", None,
                        "dynamographdeployments.nvidia.com")  # fmt: skip
    assert crd is not None and crd["spec"]["conversion"] == {"strategy": "None"}
    await emu.store.create(
        "nvidia.com", "v1alpha1", "dynamographdeployments", "default",
        {"apiVersion": "nvidia.com/v1alpha1", "kind": "DynamoGraphDeployment",
         "metadata": {"name": "plain"}, "spec": {"services": {"Frontend": {"replicas": 1}}}},
    )  # fmt: skip
    status, got, _ = await http(
        emu, "GET", "/apis/nvidia.com/v1alpha1/namespaces/default/dynamographdeployments/plain"
    )
    assert status == 200 and got["spec"]["services"] == {"Frontend": {"replicas": 1}}


async def test_a_v1alpha1_dgd_without_services_gets_a_status_once_converted(
    hooked: Hooked,
) -> None:
    status, _, _ = await http(
        hooked.emu, "POST", "/apis/nvidia.com/v1alpha1/namespaces/default/dynamographdeployments",
        {"apiVersion": "nvidia.com/v1alpha1", "kind": "DynamoGraphDeployment",
         "metadata": {"name": "empty"}, "spec": {"backendFramework": "vllm"}},
    )  # fmt: skip
    assert status == 201
    await until(lambda: dgd_state(hooked.emu, "empty") == "successful")
