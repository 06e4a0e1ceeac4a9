"""dgdr's webhook server over HTTPS: the defaulting, validating and conversion reviews it answers, and
the TLS a client must verify with the generated CA."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from k8s.emulator.resources import emulator_crds, load_crd_manifests
from k8s.webhook import tls
from k8s.webhook.server import (
    CONVERT_PATH,
    DEFAULT_IMAGE,
    MUTATE_PATH,
    VALIDATE_PATH,
    WebhookServer,
    crd_with_conversion,
    registrations,
)
from tests.support import manifest

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[WebhookServer]:
    files = tls.generate(tmp_path / "tls", ["127.0.0.1", "localhost"])
    srv = WebhookServer(files)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def post(srv: WebhookServer, path: str, body: Any, *, verify: bool = True) -> Any:
    ctx = ssl.create_default_context(cadata=srv.tls.ca_pem.decode()) if verify else None
    async with (
        aiohttp.ClientSession() as session,
        session.post(srv.url + path, json=body, ssl=ctx if ctx else True) as resp,
    ):
        if resp.status != 200:
            return resp.status, await resp.text()
        return await resp.json()


def admission(operation: str, obj: Any, old: Any = None) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "operation": operation,
            "name": "q",
            "namespace": "default",
            "object": obj,
            "oldObject": old,
        },
    }


def dgdr(**spec: Any) -> dict[str, Any]:
    return manifest("q", "default", **spec)


async def test_defaulting_fills_an_empty_image_on_create_only(server: WebhookServer) -> None:
    body = await post(server, MUTATE_PATH, admission("CREATE", dgdr(image=None)))
    response = body["response"]
    assert body["kind"] == "AdmissionReview" and response["uid"] == "u-1"
    assert response["allowed"] is True and response["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(response["patch"]))
    assert patch == [{"op": "add", "path": "/spec/image", "value": DEFAULT_IMAGE}]
    assert DEFAULT_IMAGE.startswith("nvcr.io/nvidia/ai-dynamo/dynamo-planner:")

    given = await post(server, MUTATE_PATH, admission("CREATE", dgdr(image="my/img:1")))
    assert "patch" not in given["response"]
    update = await post(server, MUTATE_PATH, admission("UPDATE", dgdr(image=None), dgdr()))
    assert "patch" not in update["response"]


async def test_validation_refuses_as_dynamo_does(server: WebhookServer) -> None:
    ok = await post(server, VALIDATE_PATH, admission("CREATE", dgdr()))
    assert ok["response"] == {"uid": "u-1", "allowed": True}

    thorough = dgdr(backend="auto", searchStrategy="thorough")
    refused = (await post(server, VALIDATE_PATH, admission("CREATE", thorough)))["response"]
    assert refused["allowed"] is False
    assert refused["status"]["code"] == 403 and refused["status"]["reason"] == "Forbidden"
    assert "thorough" in refused["status"]["message"]

    old = {**dgdr(), "status": {"phase": "Profiling"}}
    changed = dgdr(model="Qwen/Qwen3-8B")
    frozen = (await post(server, VALIDATE_PATH, admission("UPDATE", changed, old)))["response"]
    assert frozen["allowed"] is False
    assert frozen["status"]["message"].startswith(
        "spec updates are forbidden while the resource is in phase"
    )
    old["status"]["phase"] = "Failed"
    assert (await post(server, VALIDATE_PATH, admission("UPDATE", changed, old)))["response"][
        "allowed"
    ]


async def test_conversion_review(server: WebhookServer) -> None:
    alpha = {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeploymentRequest",
        "metadata": {"name": "q", "namespace": "default"},
        "spec": {"model": "m", "backend": "vllm", "profilingConfig": {"profilerImage": "i:1"}},
    }
    review = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": "c-1", "desiredAPIVersion": "nvidia.com/v1beta1", "objects": [alpha]},
    }
    body = await post(server, CONVERT_PATH, review)
    response = body["response"]
    assert response["uid"] == "c-1" and response["result"] == {"status": "Success"}
    (converted,) = response["convertedObjects"]
    assert converted["apiVersion"] == "nvidia.com/v1beta1"
    assert converted["spec"] == {"model": "m", "backend": "vllm", "image": "i:1"}

    review["request"]["objects"] = [{**alpha, "kind": "Other"}]
    failed = (await post(server, CONVERT_PATH, review))["response"]
    assert failed["result"]["status"] == "Failure" and failed["convertedObjects"] == []


async def test_conversion_review_converts_dgds_and_dgdrs_by_kind(server: WebhookServer) -> None:
    dgd = {
        "apiVersion": "nvidia.com/v1beta1",
        "kind": "DynamoGraphDeployment",
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {"backendFramework": "vllm", "components": [{"name": "Frontend", "replicas": 1}]},
    }
    dgdr = {
        "apiVersion": "nvidia.com/v1beta1",
        "kind": "DynamoGraphDeploymentRequest",
        "metadata": {"name": "q", "namespace": "default"},
        "spec": {"model": "m", "backend": "vllm", "image": "i:1"},
    }
    review = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {
            "uid": "c-2", "desiredAPIVersion": "nvidia.com/v1alpha1", "objects": [dgd, dgdr],
        },
    }  # fmt: skip
    response = (await post(server, CONVERT_PATH, review))["response"]
    assert response["result"] == {"status": "Success"}
    alpha_dgd, alpha_dgdr = response["convertedObjects"]
    assert alpha_dgd["apiVersion"] == "nvidia.com/v1alpha1"
    assert alpha_dgd["spec"] == {
        "backendFramework": "vllm",
        "services": {"Frontend": {"replicas": 1}},
    }
    assert alpha_dgdr["spec"]["profilingConfig"]["profilerImage"] == "i:1"


async def test_bad_bodies_get_400(server: WebhookServer) -> None:
    status, text = await post(server, VALIDATE_PATH, {"kind": "Nope"})
    assert status == 400 and "AdmissionReview" in text


async def test_a_client_that_does_not_trust_the_ca_is_refused(server: WebhookServer) -> None:
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await post(server, VALIDATE_PATH, admission("CREATE", dgdr()), verify=False)


def test_registrations_point_at_the_url_with_the_ca_bundle() -> None:
    hooks = registrations("https://127.0.0.1:9443", "Q0E=")
    kinds = sorted(h["kind"] for h in hooks)
    assert kinds == ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
    urls = {w["clientConfig"]["url"] for h in hooks for w in h["webhooks"]}
    assert urls == {
        "https://127.0.0.1:9443" + MUTATE_PATH,
        "https://127.0.0.1:9443" + VALIDATE_PATH,
    }
    assert all(w["clientConfig"]["caBundle"] == "Q0E=" for h in hooks for w in h["webhooks"])
    assert all(w["failurePolicy"] == "Fail" for h in hooks for w in h["webhooks"])

    crd = next(c for c in load_crd_manifests() if c["spec"]["names"]["kind"].endswith("Request"))
    converted = crd_with_conversion(crd, "https://127.0.0.1:9443", "Q0E=")
    config = converted["spec"]["conversion"]["webhook"]["clientConfig"]
    assert config == {"url": "https://127.0.0.1:9443/convert", "caBundle": "Q0E="}
    # the DGD CRD as the emulator alone installs it (strategy None) gets its manifest's webhook
    (dgd_crd,) = [
        c for c in emulator_crds() if c["spec"]["names"]["kind"] == "DynamoGraphDeployment"
    ]
    assert dgd_crd["spec"]["conversion"] == {"strategy": "None"}
    dgd_converted = crd_with_conversion(dgd_crd, "https://127.0.0.1:9443", "Q0E=")
    assert dgd_converted["spec"]["conversion"] == {
        "strategy": "Webhook",
        "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": config},
    }
    versions = {v["name"]: v for v in crd["spec"]["versions"]}
    assert versions["v1beta1"]["storage"] is True and versions["v1alpha1"]["storage"] is False
    assert versions["v1alpha1"]["deprecationWarning"] == (
        "nvidia.com/v1alpha1 DynamoGraphDeploymentRequest is deprecated; "
        "use nvidia.com/v1beta1 DynamoGraphDeploymentRequest"
    )
