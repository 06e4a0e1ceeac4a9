"""The emulator through kubernetes_asyncio and raw HTTP: metadata, optimistic concurrency,
status subresource, patches, validation, finalizers, garbage collection, leases, runtime CRDs."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from k8s.emulator import Emulator
from tests.support import until

from .conftest import Kubectl, dgdr_manifest

pytestmark = pytest.mark.timeout(30)

G, V, P = "nvidia.com", "v1beta1", "dynamographdeploymentrequests"
MERGE = "application/merge-patch+json"


def status_of(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


async def test_metadata_and_errors(emu: Emulator, api: client.ApiClient) -> None:
    objects = client.CustomObjectsApi(api)
    created = await objects.create_namespaced_custom_object(G, V, "default", P, dgdr_manifest())
    md = created["metadata"]
    assert md["generation"] == 1 and md["uid"] and md["creationTimestamp"].endswith("Z")
    assert int(md["resourceVersion"]) > 0
    with pytest.raises(ApiException) as dup:
        await objects.create_namespaced_custom_object(G, V, "default", P, dgdr_manifest())
    assert dup.value.status == 409
    assert status_of(dup.value)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as missing:
        await objects.get_namespaced_custom_object(G, V, "default", P, "nope")
    body = status_of(missing.value)
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'dynamographdeploymentrequests.nvidia.com "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": "nvidia.com", "kind": "dynamographdeploymentrequests"},
        "code": 404,
    }
    with pytest.raises(ApiException) as no_ns:
        await objects.create_namespaced_custom_object(G, V, "elsewhere", P, dgdr_manifest())
    assert no_ns.value.status == 404
    assert status_of(no_ns.value)["message"] == 'namespaces "elsewhere" not found'
    generated = dgdr_manifest()
    generated["metadata"] = {"generateName": "demo-"}
    obj = await objects.create_namespaced_custom_object(G, V, "default", P, generated)
    assert obj["metadata"]["name"].startswith("demo-") and len(obj["metadata"]["name"]) == 10

    # a no-op update keeps the resourceVersion and makes no event
    rv_before = emu.store.resource_version
    same = await objects.replace_namespaced_custom_object(G, V, "default", P, "demo", created)
    assert same["metadata"]["resourceVersion"] == md["resourceVersion"]
    assert emu.store.resource_version == rv_before
    noop = await objects.patch_namespaced_custom_object(
        G, V, "default", P, "demo", {"spec": {"backend": "vllm"}}, _content_type=MERGE
    )
    assert noop["metadata"]["resourceVersion"] == md["resourceVersion"]
    assert (
        "POST",
        "/apis/nvidia.com/v1beta1/namespaces/default/dynamographdeploymentrequests",
    ) in emu.requests


async def test_invalid_is_422_with_causes(api: client.ApiClient) -> None:
    objects = client.CustomObjectsApi(api)
    with pytest.raises(ApiException) as err:
        await objects.create_namespaced_custom_object(
            G, V, "default", P, dgdr_manifest(backend="foo", workload={"isl": 0})
        )
    body = status_of(err.value)
    assert err.value.status == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith(
        'DynamoGraphDeploymentRequest.nvidia.com "demo" is invalid: ['
    )
    assert body["details"]["kind"] == "DynamoGraphDeploymentRequest"
    assert {c["field"] for c in body["details"]["causes"]} == {"spec.backend", "spec.workload.isl"}
    with pytest.raises(ApiException) as strict:
        await objects.create_namespaced_custom_object(
            G, V, "default", P, dgdr_manifest(foo=1), field_validation="Strict"
        )
    assert strict.value.status == 400
    assert 'strict decoding error: unknown field "spec.foo"' in status_of(strict.value)["message"]


async def test_warning_header_and_table(emu: Emulator) -> None:
    async with aiohttp.ClientSession(emu.url) as http:
        url = f"/apis/{G}/{V}/namespaces/default/{P}"
        async with http.post(url, json=dgdr_manifest(foo=1, bar=2)) as resp:
            assert resp.status == 201
            assert sorted(resp.headers.getall("Warning")) == [
                '299 - "unknown field \\"spec.bar\\""',
                '299 - "unknown field \\"spec.foo\\""',
            ]
            assert "foo" not in (await resp.json())["spec"]
        accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        async with http.get(url, headers={"Accept": accept}) as resp:
            table = await resp.json()
        assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
        assert table["rows"][0]["cells"][:3] == ["demo", "Qwen/Qwen3-0.6B", "vllm"]
        assert table["rows"][0]["object"]["metadata"]["name"] == "demo"
        async with http.get(
            url + "?includeObject=Object", headers={"Accept": accept.replace("v=v1;", "v=v1beta1;")}
        ) as resp:
            table = await resp.json()
        assert table["apiVersion"] == "meta.k8s.io/v1beta1"
        assert table["rows"][0]["object"]["spec"]["model"] == "Qwen/Qwen3-0.6B"
        async with http.get("/openapi/v2") as resp:
            assert resp.status == 404


async def test_status_subresource(emu: Emulator, api: client.ApiClient) -> None:
    objects = client.CustomObjectsApi(api)
    body = dgdr_manifest()
    body["status"] = {"phase": "Deployed"}
    created = await objects.create_namespaced_custom_object(G, V, "default", P, body)
    assert "status" not in created  # the main endpoint ignores status
    created["status"] = {"phase": "Profiling", "profilingPhase": "Initializing"}
    put = await objects.replace_namespaced_custom_object_status(G, V, "default", P, "demo", created)
    assert put["status"]["phase"] == "Profiling" and put["metadata"]["generation"] == 1
    patched = await objects.patch_namespaced_custom_object_status(
        G, V, "default", P, "demo",
        {"status": {"phase": "Deployed"}, "spec": {"model": "ignored"}, "metadata": {"labels": {"x": "y"}}},
        _content_type=MERGE,
    )  # fmt: skip
    assert patched["status"] == {"phase": "Deployed", "profilingPhase": "Initializing"}
    assert patched["spec"]["model"] == "Qwen/Qwen3-0.6B" and "labels" not in patched["metadata"]
    assert patched["metadata"]["generation"] == 1
    main = await objects.patch_namespaced_custom_object(
        G, V, "default", P, "demo", {"status": {"phase": "Failed"}, "spec": {"image": "i"}},
        _content_type=MERGE,
    )  # fmt: skip
    assert main["status"]["phase"] == "Deployed" and main["metadata"]["generation"] == 2
    # a stale resourceVersion is a conflict, on the main endpoint and on /status
    stale = dict(created)
    with pytest.raises(ApiException) as err:
        await objects.replace_namespaced_custom_object_status(G, V, "default", P, "demo", stale)
    assert err.value.status == 409 and status_of(err.value)["reason"] == "Conflict"
    with pytest.raises(ApiException) as err:
        await objects.patch_namespaced_custom_object(
            G, V, "default", P, "demo",
            {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "spec": {"image": "j"}},
            _content_type=MERGE,
        )  # fmt: skip
    assert err.value.status == 409
    with pytest.raises(ApiException) as err:
        await objects.patch_namespaced_custom_object_status(
            G, V, "default", P, "demo", {"status": {"phase": "Nope"}}, _content_type=MERGE
        )
    assert err.value.status == 422 and "status.phase" in status_of(err.value)["message"]
    # injected conflicts, then success
    emu.inject_conflicts(2, plural=P, subresource="status")
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            await objects.patch_namespaced_custom_object_status(
                G, V, "default", P, "demo", {"status": {"phase": "Ready"}}, _content_type=MERGE
            )
        assert err.value.status == 409
    await objects.patch_namespaced_custom_object(
        G, V, "default", P, "demo", {"spec": {"image": "k"}}, _content_type=MERGE
    )  # the main endpoint is not affected
    done = await objects.patch_namespaced_custom_object_status(
        G, V, "default", P, "demo", {"status": {"phase": "Ready"}}, _content_type=MERGE
    )
    assert done["status"]["phase"] == "Ready"


async def test_patch_types(api: client.ApiClient) -> None:
    objects = client.CustomObjectsApi(api)
    core = client.CoreV1Api(api)
    await objects.create_namespaced_custom_object(G, V, "default", P, dgdr_manifest())
    with pytest.raises(ApiException) as err:
        await objects.patch_namespaced_custom_object(
            G, V, "default", P, "demo", [{"op": "test", "path": "/spec/backend", "value": "x"}],
            _content_type="application/json-patch+json",
        )  # fmt: skip
    assert err.value.status == 422
    moved = await objects.patch_namespaced_custom_object(
        G, V, "default", P, "demo",
        [{"op": "add", "path": "/metadata/annotations", "value": {"a/b": "1"}},
         {"op": "copy", "from": "/metadata/annotations/a~1b", "path": "/spec/image"}],
        _content_type="application/json-patch+json",
    )  # fmt: skip
    assert moved["spec"]["image"] == "1"
    with pytest.raises(ApiException) as err:
        await objects.patch_namespaced_custom_object(
            G, V, "default", P, "demo", {"spec": {"image": "2"}},
            _content_type="application/strategic-merge-patch+json",
        )  # fmt: skip
    assert err.value.status == 415
    assert status_of(err.value)["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )
    with pytest.raises(ApiException) as err:
        await objects.patch_namespaced_custom_object(
            G, V, "default", P, "applied", dgdr_manifest("applied"),
            _content_type="application/apply-patch+yaml",
        )  # fmt: skip
    assert err.value.status == 422 and "fieldManager" in status_of(err.value)["message"]
    await objects.patch_namespaced_custom_object(
        G,
        V,
        "default",
        P,
        "applied",
        dgdr_manifest("applied"),
        field_manager="me",
        force=True,
        _content_type="application/apply-patch+yaml",
    )  # fmt: skip  (201 Created: kubernetes_asyncio returns no body for it)
    applied = await objects.patch_namespaced_custom_object(
        G, V, "default", P, "applied", {**dgdr_manifest("applied"), "spec": {"image": "i"}},
        field_manager="me", _content_type="application/apply-patch+yaml",
    )  # fmt: skip
    assert applied["spec"]["searchStrategy"] == "rapid" and applied["spec"]["image"] == "i"
    assert applied["spec"]["model"] == "Qwen/Qwen3-0.6B"  # apply merges onto the live object
    await core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm"), data={"a": "1"})
    )
    cm = await core.patch_namespaced_config_map(
        "cm",
        "default",
        {"data": {"b": "2"}},
        _content_type="application/strategic-merge-patch+json",
    )
    assert cm.data == {"a": "1", "b": "2"}


async def test_finalizers_and_garbage_collection(emu: Emulator, api: client.ApiClient) -> None:
    objects = client.CustomObjectsApi(api)
    core = client.CoreV1Api(api)
    body = dgdr_manifest()
    body["metadata"]["finalizers"] = ["nvidia.com/cleanup"]
    obj = await objects.create_namespaced_custom_object(G, V, "default", P, body)
    dgd = await objects.create_namespaced_custom_object(
        G, "v1alpha1", "default", "dynamographdeployments",
        {"apiVersion": "nvidia.com/v1alpha1", "kind": "DynamoGraphDeployment",
         "metadata": {"name": "owner"}, "spec": {"services": {}}},
    )  # fmt: skip
    for name, owner in [("owned-by-dgd", dgd), ("owned-by-dgdr", obj)]:
        await core.create_namespaced_config_map(
            "default",
            {
                "metadata": {
                    "name": name,
                    "ownerReferences": [
                        {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                         "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}
                    ],
                }
            },
        )  # fmt: skip
    with pytest.raises(ApiException) as err:
        await objects.delete_namespaced_custom_object(
            G, V, "default", P, "demo", body={"preconditions": {"uid": "not-it"}}
        )
    assert err.value.status == 409
    marked = await objects.delete_namespaced_custom_object(G, V, "default", P, "demo")
    assert (
        marked["metadata"]["deletionTimestamp"]
        and marked["metadata"]["deletionGracePeriodSeconds"] == 0
    )
    again = await objects.delete_namespaced_custom_object(G, V, "default", P, "demo")
    assert again["metadata"]["resourceVersion"] == marked["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as err:
        await objects.patch_namespaced_custom_object(
            G, V, "default", P, "demo", {"metadata": {"finalizers": ["nvidia.com/cleanup", "new"]}},
            _content_type=MERGE,
        )  # fmt: skip
    assert err.value.status == 422 and "no new finalizers" in status_of(err.value)["message"]
    spec_change = await objects.patch_namespaced_custom_object(
        G, V, "default", P, "demo", {"spec": {"image": "x"}}, _content_type=MERGE
    )
    assert spec_change["metadata"]["generation"] == 2
    assert emu.store.get("", "v1", "configmaps", "default", "owned-by-dgdr") is not None
    await objects.patch_namespaced_custom_object(
        G, V, "default", P, "demo", {"metadata": {"finalizers": None}}, _content_type=MERGE
    )
    assert emu.store.get(G, V, P, "default", "demo") is None
    assert emu.store.get("", "v1", "configmaps", "default", "owned-by-dgdr") is None
    assert emu.store.get("", "v1", "configmaps", "default", "owned-by-dgd") is not None
    gone = await objects.delete_namespaced_custom_object(
        G, "v1alpha1", "default", "dynamographdeployments", "owner"
    )
    assert gone["metadata"]["name"] == "owner"
    assert emu.store.get("", "v1", "configmaps", "default", "owned-by-dgd") is None


async def test_leases_optimistic_concurrency(api: client.ApiClient) -> None:
    leases = client.CoordinationV1Api(api)
    lease = await leases.create_namespaced_lease(
        "default",
        client.V1Lease(
            metadata=client.V1ObjectMeta(name="leader"),
            spec=client.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15),
        ),
    )
    stale = await leases.read_namespaced_lease("leader", "default")
    lease.spec.holder_identity = "b"
    updated = await leases.replace_namespaced_lease("leader", "default", lease)
    assert updated.spec.holder_identity == "b"
    assert updated.metadata.resource_version != stale.metadata.resource_version
    stale.spec.holder_identity = "c"
    with pytest.raises(ApiException) as err:
        await leases.replace_namespaced_lease("leader", "default", stale)
    assert err.value.status == 409
    assert (await leases.read_namespaced_lease("leader", "default")).spec.holder_identity == "b"


async def test_jobs_status_and_default_runner(emu: Emulator, api: client.ApiClient) -> None:
    batch = client.BatchV1Api(api)
    job = client.V1Job(
        metadata=client.V1ObjectMeta(name="j"),
        spec=client.V1JobSpec(
            template=client.V1PodTemplateSpec(
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="c", image="busybox")],
                    restart_policy="Never",
                )
            )
        ),
    )
    await batch.create_namespaced_job("default", job)

    async def finished() -> Any:
        status = (await batch.read_namespaced_job_status("j", "default")).status
        return status if status.succeeded else None

    status = await until(finished, 4, "the default runner to finish the Job")
    assert status.succeeded == 1 and status.active is None
    assert {c.type for c in status.conditions} == {"SuccessCriteriaMet", "Complete"}


async def test_runtime_crd(emu: Emulator, api: client.ApiClient, kubectl: Kubectl) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": [
                        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                        {"name": "Detail", "type": "string", "jsonPath": ".spec.size", "priority": 1},
                    ],
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {"size": {"type": "integer", "default": 1}}}}}},
                }
            ],
        },
    }  # fmt: skip
    ext = client.ApiextensionsV1Api(api)
    await ext.create_custom_resource_definition(crd)
    listed = await ext.list_custom_resource_definition()
    assert "widgets.example.com" in [c.metadata.name for c in listed.items]
    objects = client.CustomObjectsApi(api)
    widget = await objects.create_namespaced_custom_object(
        "example.com", "v1", "default", "widgets",
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}},
    )  # fmt: skip
    assert widget["spec"] == {"size": 1}
    narrow = await kubectl("get", "wd")
    assert narrow.out.splitlines()[0].split() == ["NAME", "SIZE"], narrow.text
    wide = await kubectl("get", "widgets", "-o", "wide")
    assert wide.out.splitlines()[0].split() == ["NAME", "SIZE", "DETAIL"]
    assert wide.out.splitlines()[1].split() == ["w", "1", "1"]
    await ext.delete_custom_resource_definition("widgets.example.com")
    with pytest.raises(ApiException) as err:
        await objects.get_namespaced_custom_object("example.com", "v1", "default", "widgets", "w")
    assert err.value.status == 404
