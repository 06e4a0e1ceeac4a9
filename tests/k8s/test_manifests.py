"""The shipped manifests: the DGDR CRD covers every spec field with the spec's enums and defaults,
carries Dynamo's printer columns, and the RBAC grants no verb the service does not use; the
Deployment serves metrics and probes; `kubectl apply -k k8s/manifests` installs all of them."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from dgdr.domain.spec import Backend, DGDRSpec, GpuSku, SearchStrategy
from k8s.emulator import Emulator

MANIFESTS = Path(__file__).resolve().parents[2] / "k8s" / "manifests"


def load(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


def dgdr_schema() -> dict[str, Any]:
    (crd,) = load("dgdr-crd.yaml")
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def spec_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{info.alias or name}"
        out.append((path, info))
        inner = [a for a in getattr(info.annotation, "__args__", (info.annotation,)) if a]
        for arg in inner:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                out.extend(spec_fields(arg, path + "."))
    return out


def schema_at(path: str) -> dict[str, Any]:
    node = dgdr_schema()
    for part in path.split("."):
        assert part in node.get("properties", {}), f"CRD has no property spec.{path}"
        node = node["properties"][part]
    return node


@pytest.mark.parametrize("path", [p for p, _ in spec_fields(DGDRSpec)])
def test_every_spec_field_is_in_the_crd(path: str) -> None:
    assert schema_at(path)["type"]


@pytest.mark.parametrize(
    ("path", "enum"),
    [("backend", Backend), ("searchStrategy", SearchStrategy), ("hardware.gpuSku", GpuSku)],
)
def test_enums_match_the_spec(path: str, enum: Any) -> None:
    assert schema_at(path)["enum"] == [e.value for e in enum]


def test_defaults_match_the_spec() -> None:
    for path, info in spec_fields(DGDRSpec):
        default = info.default
        if (
            default is None
            or isinstance(default, BaseModel)
            or not isinstance(default, str | int | bool)
        ):
            continue
        value = default.value if hasattr(default, "value") else default
        assert schema_at(path).get("default") == value, path


def test_model_is_required() -> None:
    assert dgdr_schema()["required"] == ["model"]


def test_printer_columns_are_dynamos() -> None:
    (crd,) = load("dgdr-crd.yaml")
    cols = {
        c["name"]: c["jsonPath"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]
    }
    assert cols == {
        "Model": ".spec.model",
        "Backend": ".spec.backend",
        "Phase": ".status.phase",
        "Profiling": ".status.profilingPhase",
        "Reason": '.status.conditions[?(@.type=="Succeeded")].reason',
        "Message": '.status.conditions[?(@.type=="Succeeded")].message',
        "DGD": ".status.dgdName",
        "Age": ".metadata.creationTimestamp",
    }
    assert crd["spec"]["names"]["shortNames"] == ["dgdr"]
    assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_dgd_crd_has_state_enum_and_columns() -> None:
    (crd,) = load("dgd-crd.yaml")
    version = crd["spec"]["versions"][0]
    assert version["name"] == "v1alpha1"
    assert crd["spec"]["names"]["shortNames"] == ["dgd"]
    state = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["state"]
    assert state["enum"] == ["initializing", "pending", "successful", "failed"]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Ready", "Backend", "Age"]


def test_the_dgd_crd_is_converted_by_the_dgdr_crds_webhook() -> None:
    (dgd,) = load("dgd-crd.yaml")
    (dgdr,) = load("dgdr-crd.yaml")
    assert dgd["spec"]["conversion"]["strategy"] == "Webhook"
    assert dgd["spec"]["conversion"] == dgdr["spec"]["conversion"]
    assert dgd["metadata"]["annotations"] == dgdr["metadata"]["annotations"]  # cainjector
    storage = [v["name"] for v in dgd["spec"]["versions"] if v["storage"]]
    assert storage == ["v1beta1"]


def test_rbac_deletes_only_dgdrs_it_mirrored_and_leases_stay_namespaced() -> None:
    docs = load("rbac.yaml")
    cluster_role = next(d for d in docs if d["kind"] == "ClusterRole")
    for rule in cluster_role["rules"]:
        # a DGDR object that mirrored a DGDR deleted through NATS goes with it; nothing else
        # (never a DGD: it outlives its DGDR)
        deletable = rule["resources"] == ["dynamographdeploymentrequests"]
        assert deletable or "delete" not in rule["verbs"], rule
        assert "*" not in rule["verbs"], rule
        assert "coordination.k8s.io" not in rule["apiGroups"]
    role = next(d for d in docs if d["kind"] == "Role")
    assert all(rule["resources"] == ["leases"] for rule in role["rules"])
    deployment = load("deployment.yaml")[0]
    pod = deployment["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert args[args.index("--lease-namespace") + 1] == role["metadata"]["namespace"]
    assert pod["serviceAccountName"] == next(
        d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"
    )


def test_the_deployment_serves_the_webhooks_where_the_manifests_send_them() -> None:
    docs = load("webhooks.yaml")
    service = next(d for d in docs if d["kind"] == "Service")
    certificate = next(d for d in docs if d["kind"] == "Certificate")
    pod = load("deployment.yaml")[0]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    port = int(args[args.index("--webhook-port") + 1])
    assert port == service["spec"]["ports"][0]["targetPort"]
    assert port in [p["containerPort"] for p in container["ports"]]
    cert_dir = args[args.index("--webhook-cert-dir") + 1]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == cert_dir)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == certificate["spec"]["secretName"]
    labels = (
        pod.get("labels") or load("deployment.yaml")[0]["spec"]["template"]["metadata"]["labels"]
    )
    assert service["spec"]["selector"].items() <= labels.items()


def test_the_deployment_serves_metrics_and_probes_on_one_port() -> None:
    deployment, metrics_service = load("deployment.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    port = int(args[args.index("--metrics-addr") + 1].rpartition(":")[2])
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named["metrics"] == port
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert metrics_service["kind"] == "Service"
    assert metrics_service["spec"]["ports"][0]["targetPort"] == "metrics"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert metrics_service["spec"]["selector"].items() <= labels.items()


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    shipped = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(shipped)


KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"
# cert-manager's two kinds webhooks.yaml uses, as a cluster with cert-manager installed serves them
# (schemaless here: their fields are cert-manager's to check).
CERT_MANAGER_CRDS = [
    {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.cert-manager.io"},
        "spec": {
            "group": "cert-manager.io",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    for kind, plural in (("Issuer", "issuers"), ("Certificate", "certificates"))
]


async def kubectl(kubeconfig: Path, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(kubeconfig.parent / "kc"),
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


@pytest.mark.timeout(90)
async def test_kubectl_apply_k_installs_every_manifest(tmp_path: Path) -> None:
    """On a cluster with cert-manager and nothing of dgdr's: `kubectl apply --dry-run=server -k`
    passes every object through the API server's validation, then `kubectl apply -k` creates
    them all."""
    emulator = Emulator(crds=CERT_MANAGER_CRDS)
    await emulator.start()
    try:
        kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig")
        # a server-side dry run cannot place objects in a namespace it has not created
        code, out = await kubectl(kubeconfig, "create", "namespace", "dgdr-system", "--save-config")
        assert code == 0, out
        code, out = await kubectl(kubeconfig, "apply", "--dry-run=server", "-k", str(MANIFESTS))
        assert code == 0, out
        expected = [
            (d["kind"], d["metadata"]["name"])
            for name in yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
            for d in load(name)
        ]
        dry = [line for line in out.splitlines() if line.endswith("(server dry run)")]
        assert len(dry) == len(expected), out
        assert "Warning" not in out and "rror" not in out, out
        assert emulator.store.get("apps", "v1", "deployments", "dgdr-system", "dgdr") is None
        code, out = await kubectl(kubeconfig, "apply", "-k", str(MANIFESTS))
        assert code == 0, out
        code, out = await kubectl(kubeconfig, "get", "-k", str(MANIFESTS), "-o", "name")
        assert code == 0, out
        assert len(out.split()) == len(expected), out
        assert "deployment.apps/dgdr" in out.split()
    finally:
        await emulator.stop()
