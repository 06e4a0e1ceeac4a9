"""DGD conversion v1alpha1 <-> v1beta1 for the conversion webhook: the spec mapped by
`sim.convert_dgd`, the status by Dynamo's mapping, round trips lossless through the
nvidia.com/dgd-spec and nvidia.com/dgd-status annotations, edits in the other version keeping what
they did not touch, and refusals."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from dgdr.domain.errors import RequestRejected
from k8s.webhook.dgd_conversion import ANN_SPEC, ANN_STATUS, V1ALPHA1, V1BETA1, convert
from sim import convert_dgd


def beta_dgd() -> dict[str, Any]:
    return {
        "apiVersion": V1BETA1,
        "kind": "DynamoGraphDeployment",
        "metadata": {"name": "d", "namespace": "default", "uid": "u-1", "resourceVersion": "7"},
        "spec": {
            "backendFramework": "vllm",
            "env": [{"name": "A", "value": "1"}],
            "components": [  # not in name order, and a field v1alpha1 has no place for
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
        "status": {
            "state": "successful",
            "observedGeneration": 1,
            "components": {
                "VllmWorker": {
                    "componentKind": "Deployment",
                    "componentNames": ["d-vllmworker"],
                    "replicas": 2,
                    "updatedReplicas": 2,
                    "readyReplicas": 2,
                },
            },
            "rollingUpdate": {"phase": "Completed", "updatedComponents": ["VllmWorker"]},
        },
    }


def alpha_dgd() -> dict[str, Any]:
    return {
        "apiVersion": V1ALPHA1,
        "kind": "DynamoGraphDeployment",
        "metadata": {"name": "a", "namespace": "default", "annotations": {"team": "x"}},
        "spec": {
            "backendFramework": "sglang",
            "pvcs": [{"name": "models"}],  # no place in v1beta1
            "services": {
                "Frontend": {"componentType": "frontend", "replicas": 1},
                "decode": {
                    "componentType": "worker",
                    "subComponentType": "decode",
                    "replicas": 2,
                    "dynamoNamespace": "ns-1",
                    "serviceName": "legacy",
                    "resources": {"limits": {"gpu": "2"}},
                },
            },
        },
    }


def test_v1beta1_reads_as_v1alpha1_with_services_and_back_exactly() -> None:
    beta = beta_dgd()
    alpha = convert(beta, V1ALPHA1)
    assert alpha["apiVersion"] == V1ALPHA1
    assert alpha["spec"] == convert_dgd(beta, V1ALPHA1)[0]["spec"]
    assert set(alpha["spec"]["services"]) == {"VllmWorker", "Frontend"}
    assert alpha["spec"]["services"]["VllmWorker"]["resources"] == {"limits": {"gpu": "1"}}
    assert alpha["status"]["services"]["VllmWorker"]["componentName"] == "d-vllmworker"
    assert "components" not in alpha["status"]
    assert alpha["status"]["rollingUpdate"] == {
        "phase": "Completed",
        "updatedServices": ["VllmWorker"],
    }
    md = alpha["metadata"]
    assert {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion")} == {
        "name": "d", "namespace": "default", "uid": "u-1", "resourceVersion": "7",
    }  # fmt: skip
    assert json.loads(md["annotations"][ANN_SPEC]) == beta["spec"]
    assert convert(alpha, V1BETA1) == beta  # order and frontendSidecar restored, no annotation left
    assert beta == beta_dgd()  # the input is not mutated


def test_v1alpha1_reads_as_v1beta1_and_back_exactly() -> None:
    alpha = alpha_dgd()
    beta = convert(alpha, V1BETA1)
    assert beta["spec"] == convert_dgd(alpha, V1BETA1)[0]["spec"]
    assert [c["name"] for c in beta["spec"]["components"]] == ["Frontend", "decode"]
    assert "pvcs" not in beta["spec"]
    assert beta["metadata"]["annotations"]["team"] == "x"
    assert json.loads(beta["metadata"]["annotations"][ANN_SPEC]) == alpha["spec"]
    assert convert(beta, V1ALPHA1) == alpha


def test_a_mapping_that_loses_nothing_adds_no_annotation() -> None:
    alpha = {
        "apiVersion": V1ALPHA1,
        "kind": "DynamoGraphDeployment",
        "metadata": {"name": "p"},
        "spec": {"backendFramework": "vllm", "services": {"Frontend": {"replicas": 1}}},
        "status": {"state": "pending"},
    }
    beta = convert(alpha, V1BETA1)
    assert beta["spec"] == {
        "backendFramework": "vllm",
        "components": [{"name": "Frontend", "replicas": 1}],
    }
    assert "annotations" not in beta["metadata"]
    assert convert(beta, V1ALPHA1) == alpha


def test_an_edit_in_the_other_version_keeps_what_it_did_not_touch() -> None:
    alpha = convert(beta_dgd(), V1ALPHA1)
    alpha["spec"]["services"]["Frontend"]["replicas"] = 3
    alpha["spec"]["backendFramework"] = "sglang"
    beta = convert(alpha, V1BETA1)
    expected = beta_dgd()["spec"]
    expected["backendFramework"] = "sglang"
    expected["components"][1]["replicas"] = 3
    assert beta["spec"] == expected  # VllmWorker (untouched) keeps frontendSidecar; order kept

    beta = convert(alpha_dgd(), V1BETA1)
    beta["spec"]["components"][0]["replicas"] = 4  # Frontend
    alpha = convert(beta, V1ALPHA1)
    assert alpha["spec"]["pvcs"] == [{"name": "models"}]  # no place in v1beta1: kept
    assert alpha["spec"]["services"]["decode"] == alpha_dgd()["spec"]["services"]["decode"]
    assert alpha["spec"]["services"]["Frontend"] == {"componentType": "frontend", "replicas": 4}

    beta["spec"]["components"][1]["replicas"] = 5  # decode edited too: mapped, its extras lost
    decode = convert(beta, V1ALPHA1)["spec"]["services"]["decode"]
    assert decode["replicas"] == 5 and "dynamoNamespace" not in decode


def test_status_round_trips_through_its_annotation() -> None:
    alpha = alpha_dgd()
    alpha["status"] = {
        "state": "successful",
        "services": {"decode": {"componentKind": "Deployment", "componentName": "old-name",
                                "componentNames": ["a-decode"], "replicas": 2,
                                "updatedReplicas": 2}},
    }  # fmt: skip
    beta = convert(alpha, V1BETA1)
    assert beta["status"]["components"]["decode"]["componentNames"] == ["a-decode"]
    assert "componentName" not in beta["status"]["components"]["decode"]
    assert json.loads(beta["metadata"]["annotations"][ANN_STATUS]) == alpha["status"]
    assert convert(beta, V1ALPHA1) == alpha
    beta["status"]["components"]["decode"]["readyReplicas"] = 2  # changed since: mapped
    assert convert(beta, V1ALPHA1)["status"]["services"]["decode"]["componentName"] == "a-decode"


@pytest.mark.parametrize("saved", ["not json", "[1, 2]", "{}"])
def test_a_foreign_or_stale_annotation_is_ignored(saved: str) -> None:
    beta = beta_dgd()
    beta["metadata"]["annotations"] = {ANN_SPEC: saved}
    alpha = convert(beta, V1ALPHA1)
    assert alpha["spec"] == convert_dgd(beta_dgd(), V1ALPHA1)[0]["spec"]
    assert json.loads(alpha["metadata"]["annotations"][ANN_SPEC]) == beta["spec"]


@pytest.mark.parametrize(
    ("obj", "desired"),
    [
        ({**beta_dgd(), "kind": "DynamoGraphDeploymentRequest"}, V1ALPHA1),
        ({**beta_dgd(), "apiVersion": "nvidia.com/v2"}, V1ALPHA1),
        (beta_dgd(), "nvidia.com/v2"),
        ("not an object", V1ALPHA1),
    ],
)
def test_what_is_not_a_dgd_of_a_served_version_is_refused(obj: Any, desired: str) -> None:
    with pytest.raises(RequestRejected):
        convert(copy.deepcopy(obj), desired)
