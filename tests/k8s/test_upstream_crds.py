"""The emulator with NVIDIA Dynamo's own CRDs installed instead of ours
(`/work/shared/reference/upstream/nvidia.com_dynamographdeployment{request,}s.yaml`, both serving
v1alpha1 and v1beta1; skipped with the reason when absent):

(a) it refuses what a real API server with those CRDs refuses, in kube-apiserver's words: an enum
    inside `allOf` (DGDR `spec.backend`), CEL rules of the DGD CRD (case-insensitively unique
    component names, `spec.restart` unset on create, `minAvailable` immutable on update), an
    embedded resource without kind (DGDR `spec.overrides.dgd`);
(b) every DGD of Dynamo's templates (`templates/*.yaml`, v1beta1) is accepted with nothing
    pruned, and the status the emulator's DGD controller writes is valid and kept whole;
(c) the whole kubectl flow (apply a DGDR, the service and adapter bring it to Deployed, the DGD
    is Ready) works with either CRD set; our own CRDs run the same flow, never skipped.

Dynamo's CRDs convert between versions with the operator's webhook; no operator runs here, so the
copies installed use `conversion: {strategy: None}` (objects keep their fields, only apiVersion
changes), which is what our own DGD CRD declares.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from events.server import EmbeddedNatsServer
from k8s.emulator import Emulator, cel, schema
from k8s.emulator.controllers import dgd_status
from k8s.emulator.resources import load_crd_manifests
from tests.support import manifest, until

from .conftest import EXAMPLES, Kube, emulated_kube
from .test_kubectl import kubectl

pytestmark = pytest.mark.timeout(120)

UPSTREAM = Path("/work/shared/reference/upstream")
CRD_FILES = (
    "nvidia.com_dynamographdeploymentrequests.yaml",
    "nvidia.com_dynamographdeployments.yaml",
)
TEMPLATES = sorted((UPSTREAM / "templates").glob("*.yaml")) if UPSTREAM.is_dir() else []
G, P = "nvidia.com", "dynamographdeployments"
MERGE = "application/merge-patch+json"


def upstream_crds() -> list[dict[str, Any]]:
    missing = [f for f in CRD_FILES if not (UPSTREAM / f).is_file()]
    if missing:
        pytest.skip(f"Dynamo's CRDs are not in {UPSTREAM} (missing {', '.join(missing)})")
    crds = load_crd_manifests(UPSTREAM / f for f in CRD_FILES)
    for crd in crds:
        crd["spec"]["conversion"] = {"strategy": "None"}  # no operator to serve the webhook
    return crds


def crds_for(which: str) -> list[dict[str, Any]]:
    return upstream_crds() if which == "upstream" else load_crd_manifests()


@pytest.fixture
async def upstream() -> AsyncIterator[Emulator]:
    emu = Emulator(crds=upstream_crds(), dgd_ready_delay=0.2)
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
async def objects(upstream: Emulator) -> AsyncIterator[client.CustomObjectsApi]:
    async with client.ApiClient(client.Configuration(host=upstream.url)) as api:
        yield client.CustomObjectsApi(api)


async def refused(call: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as caught:
        await call
    assert caught.value.status == 422, caught.value.body
    status: dict[str, Any] = json.loads(caught.value.body)
    assert status["reason"] == "Invalid"
    return status


def causes(status: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["field"], c["message"]) for c in status["details"]["causes"]]


# ---------------------------------------------------------------- (a) what the real server refuses


async def test_an_enum_inside_allof(objects: client.CustomObjectsApi) -> None:
    body = manifest("bad-backend", backend="tgi")
    status = await refused(
        objects.create_namespaced_custom_object(
            G, "v1beta1", "default", "dynamographdeploymentrequests", body
        )
    )
    assert status["message"] == (
        'DynamoGraphDeploymentRequest.nvidia.com "bad-backend" is invalid: spec.backend: '
        'Unsupported value: "tgi": supported values: "auto", "sglang", "trtllm", "vllm"'
    )


async def test_an_embedded_resource_without_kind(objects: client.CustomObjectsApi) -> None:
    overrides = {"dgd": {"apiVersion": "nvidia.com/v1beta1", "spec": {"components": []}}}
    body = manifest("no-kind", overrides=overrides)
    status = await refused(
        objects.create_namespaced_custom_object(
            G, "v1beta1", "default", "dynamographdeploymentrequests", body
        )
    )
    assert causes(status) == [("spec.overrides.dgd.kind", "Required value")]


def template(name: str) -> dict[str, Any]:
    path = UPSTREAM / "templates" / f"{name}.yaml"
    if not path.is_file():
        pytest.skip(f"Dynamo's DGD template {path} is not there")
    return read_yaml(path)


def read_yaml(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(path.read_text())
    return body


async def test_cel_rules_of_the_dgd_crd(objects: client.CustomObjectsApi) -> None:
    body = template("vllm-agg")
    twins = copy.deepcopy(body)
    twins["spec"]["components"].append({**twins["spec"]["components"][0], "name": "frontend"})
    status = await refused(
        objects.create_namespaced_custom_object(G, "v1beta1", "default", P, twins)
    )
    assert status["message"] == (
        f'DynamoGraphDeployment.nvidia.com "{body["metadata"]["name"]}" is invalid: '
        'spec.components: Invalid value: "array": component names must be unique case-insensitively'
    )
    restart = copy.deepcopy(body)
    restart["spec"]["restart"] = {"id": "r1"}
    status = await refused(
        objects.create_namespaced_custom_object(G, "v1beta1", "default", P, restart)
    )
    assert causes(status) == [
        (
            "spec",
            'Invalid value: "object": spec.restart must be unset on create; set spec.restart.id '
            "after creation to request a restart",
        )
    ]
    body["spec"]["components"][0]["minAvailable"] = 1
    await objects.create_namespaced_custom_object(G, "v1beta1", "default", P, body)
    name = body["metadata"]["name"]
    # the transition rule: minAvailable is immutable once set; restart may be set on an update
    components = copy.deepcopy(body["spec"]["components"])
    components[0]["minAvailable"] = 2
    components[0]["replicas"] = 2
    status = await refused(
        objects.patch_namespaced_custom_object(
            G,
            "v1beta1",
            "default",
            P,
            name,
            {"spec": {"components": components}},
            _content_type=MERGE,
        )
    )
    assert causes(status) == [
        ("spec.components[0]", 'Invalid value: "object": minAvailable is immutable after creation')
    ]
    patched = await objects.patch_namespaced_custom_object(
        G, "v1beta1", "default", P, name, {"spec": {"restart": {"id": "r1"}}}, _content_type=MERGE
    )
    assert patched["spec"]["restart"] == {"id": "r1"}


# ---------------------------------------------------------------- (b) Dynamo's own DGDs


def contains(whole: Any, part: Any) -> bool:
    """Whether every field of `part` is in `whole` with the same value (defaults may add more)."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(
            k in whole and contains(whole[k], v) for k, v in part.items()
        )
    if isinstance(part, list):
        return (
            isinstance(whole, list) and len(whole) == len(part) and all(map(contains, whole, part))
        )
    return bool(whole == part) and type(whole) is type(part)


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
async def test_dynamo_templates_are_accepted_whole_and_get_a_valid_status(
    upstream: Emulator, path: Path
) -> None:
    body = read_yaml(path)
    version = body["apiVersion"].split("/")[1]
    created = await upstream.store.create(G, version, P, "default", copy.deepcopy(body))
    assert contains(created["spec"], body["spec"]), f"{path.name}: fields were pruned"
    name = body["metadata"]["name"]

    def successful() -> dict[str, Any] | None:
        obj = upstream.store.get(G, version, P, "default", name)
        return obj if obj and (obj.get("status") or {}).get("state") == "successful" else None

    obj = await until(successful, 10, f"{name} to be successful")
    expected = dgd_status(obj, "successful")
    for volatile in ("conditions",):
        expected.pop(volatile)
    assert contains(obj["status"], expected), "the status lost fields to pruning"
    shape = "components" if isinstance(body["spec"].get("components"), list) else "services"
    names = (
        [c["name"] for c in body["spec"]["components"]]
        if shape == "components"
        else list(body["spec"]["services"])
    )
    assert sorted(obj["status"][shape]) == sorted(names)
    rt = upstream.store.registry.lookup(G, version, P)
    assert rt is not None and rt.schema is not None
    stored = copy.deepcopy(obj)
    assert schema.prune(rt.schema, stored) == [] and stored == obj
    assert schema.validate(rt.schema, obj) == []


def test_templates_are_there() -> None:
    if not UPSTREAM.is_dir():
        pytest.skip(f"{UPSTREAM} is not there")
    assert len(TEMPLATES) >= 1


# ---------------------------------------------------------------- (c) the kubectl flow, both CRD sets


@pytest.fixture(params=["ours", "upstream"])
async def crd_kube(
    request: pytest.FixtureRequest, nats_server: EmbeddedNatsServer, tmp_path: Path
) -> AsyncIterator[Kube]:
    async with emulated_kube(nats_server, tmp_path, crds_for(request.param)) as running:
        yield running


async def test_the_kubectl_flow_with_either_crd_set(crd_kube: Kube) -> None:
    kc = crd_kube.kubeconfig
    applied = await kubectl(kc, "apply", "-f", str(EXAMPLES / "qwen3-0.6b.yaml"))
    assert "created" in applied and "Warning" not in applied, applied
    await kubectl(
        kc,
        "wait",
        "--for=jsonpath={.status.phase}=Deployed",
        "dgdr/qwen3-0-6b",
        "--timeout=60s",
        timeout=70,
    )
    row = (await kubectl(kc, "get", "dgdr", "qwen3-0-6b")).splitlines()[1]
    assert "Deployed" in row and "qwen3-0-6b-dgd" in row, row
    dgd = (await kubectl(kc, "get", "dgd", "qwen3-0-6b-dgd")).splitlines()[1]
    assert "True" in dgd and "vllm" in dgd, dgd
    assert crd_kube.emulator is not None
    obj = await crd_kube.get_dgd("qwen3-0-6b-dgd")
    assert obj is not None and obj["status"]["state"] == "successful"


# ---------------------------------------------------------------- every CEL rule of Dynamo's CRDs

FULL_SAMPLES: dict[str, Any] = {
    "object": {
        "name": "main", "image": "img", "type": "epp", "eppConfig": {}, "configMapRef": {},
        "replicas": 2, "minAvailable": 1, "restart": {"id": "r"}, "create": True, "size": "1Gi",
        "storageClass": "s", "volumeAccessMode": "ReadWriteOnce", "disabled": False, "job": {},
        "checkpointRef": "", "extraClientPods": [], "extraClientContainers": [], "mode": "intraPod",
        "labelKey": "a/b", "enforcement": "preferred", "preferredWeight": 1,
        "nvidia.com/vllm-distributed-executor-backend": "MP",
    },
    "array": [{"name": "a", "type": "epp"}, {"name": "B"}],
    "string": "example.com/zone",
}  # fmt: skip


def test_every_cel_rule_of_dynamos_crds_compiles_and_evaluates() -> None:
    found: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            found.extend((rule, node) for rule in node.get("x-kubernetes-validations") or ())
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(upstream_crds())
    assert len(found) >= 31  # Dynamo's DGD CRD (the DGDR CRD has none)
    for rule, node in found:
        program = cel.compile_expression(rule["rule"])
        assert program.runner is not None, (rule, program.error)
        value = FULL_SAMPLES[node.get("type", "object")]
        old = value if program.uses_old_self else None
        problems = cel.validate({**node, "x-kubernetes-validations": [rule]}, value, old)
        broken = ("evaluating rule", "signature for rule", "rule compile error")
        assert not [p for p in problems if any(b in p.detail for b in broken)], (rule, problems)
