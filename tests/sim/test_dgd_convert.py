"""`sim.convert_dgd`: the v1alpha1 <-> v1beta1 mapping of Dynamo's conversion webhook, field by
field, on hand-written DGDs (no upstream files needed), and the notes for fields without a place."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sim import convert_dgd

ALPHA, BETA = "nvidia.com/v1alpha1", "nvidia.com/v1beta1"


def _alpha() -> dict[str, Any]:
    return {
        "apiVersion": ALPHA,
        "kind": "DynamoGraphDeployment",
        "metadata": {"name": "d", "namespace": "ns", "labels": {"a": "b"}},
        "spec": {
            "backendFramework": "sglang",
            "envs": [{"name": "G", "value": "1"}],
            "services": {
                "Frontend": {
                    "componentType": "frontend",
                    "replicas": 2,
                    "envFromSecret": "hf",
                    "extraPodMetadata": {"labels": {"pod": "x"}},
                },
                "prefill": {
                    "componentType": "worker",
                    "subComponentType": "prefill",
                    "replicas": 3,
                    "multinode": {"nodeCount": 2},
                    "sharedMemory": {"size": "16Gi"},
                    "scalingAdapter": {"enabled": True},
                    "runtimeVersionOverride": "1.3.0",
                    "resources": {
                        "limits": {"gpu": "8", "memory": "100Gi"},
                        "requests": {"cpu": "4", "custom": {"ephemeral-storage": "2Gi"}},
                    },
                    "envs": [{"name": "A", "value": "1"}],
                    "readinessProbe": {"httpGet": {"path": "/health", "port": 9090}},
                    "volumeMounts": [
                        {"name": "cache", "mountPoint": "/cache"},
                        {"name": "cc", "mountPoint": "/cc", "useAsCompilationCache": True},
                    ],
                    "extraPodSpec": {
                        "tolerations": [{"key": "gpu", "operator": "Exists"}],
                        "volumes": [{"name": "cache", "persistentVolumeClaim": {"claimName": "c"}}],
                        "containers": [{"name": "sidecar", "image": "busybox"}],
                        "mainContainer": {
                            "image": "img",
                            "args": ["--tp", "8"],
                            "env": [{"name": "B", "value": "2"}],
                        },
                    },
                },
                "decode": {
                    "componentType": "worker",
                    "subComponentType": "decode",
                    "sharedMemory": {"disabled": True},
                    "gpuMemoryService": {"enabled": True},
                },
            },
        },
    }


def test_v1alpha1_to_v1beta1_maps_every_field_to_its_place() -> None:
    alpha = _alpha()
    before = copy.deepcopy(alpha)
    beta, notes = convert_dgd(alpha, BETA)
    assert alpha == before  # the input is not mutated
    assert notes == []
    assert beta["apiVersion"] == BETA and beta["metadata"] == alpha["metadata"]
    spec = beta["spec"]
    assert spec["env"] == [{"name": "G", "value": "1"}] and "envs" not in spec
    frontend, prefill, decode = spec["components"]
    assert frontend == {
        "name": "Frontend",
        "type": "frontend",
        "replicas": 2,
        "podTemplate": {
            "metadata": {"labels": {"pod": "x"}},
            "spec": {"containers": [{"name": "main", "envFrom": [{"secretRef": {"name": "hf"}}]}]},
        },
    }
    assert (prefill["name"], prefill["type"], prefill["replicas"]) == ("prefill", "prefill", 3)
    assert prefill["multinode"] == {"nodeCount": 2} and prefill["sharedMemorySize"] == "16Gi"
    assert prefill["scalingAdapter"] == {} and prefill["runtimeVersionOverride"] == "1.3.0"
    assert prefill["compilationCache"] == {"pvcName": "cc", "mountPath": "/cc"}
    pod = prefill["podTemplate"]["spec"]
    assert pod["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert [c["name"] for c in pod["containers"]] == ["main", "sidecar"]
    main = pod["containers"][0]
    assert main["resources"] == {
        "requests": {"cpu": "4", "ephemeral-storage": "2Gi"},
        "limits": {"memory": "100Gi", "nvidia.com/gpu": "8"},
    }
    assert main["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert main["volumeMounts"] == [
        {"name": "cache", "mountPath": "/cache"},
        {"name": "cc", "mountPath": "/cc"},
    ]
    assert main["readinessProbe"] == {"httpGet": {"path": "/health", "port": 9090}}
    assert (main["image"], main["args"]) == ("img", ["--tp", "8"])
    assert decode["type"] == "decode" and decode["sharedMemorySize"] == "0"
    assert decode["experimental"] == {"gpuMemoryService": {"enabled": True}}


def test_v1beta1_to_v1alpha1_is_the_inverse_on_what_both_represent() -> None:
    beta, _ = convert_dgd(_alpha(), BETA)
    alpha, notes = convert_dgd(beta, ALPHA)
    assert notes == []
    services = alpha["spec"]["services"]
    assert list(services) == ["Frontend", "prefill", "decode"]
    prefill = services["prefill"]
    assert (prefill["componentType"], prefill["subComponentType"]) == ("worker", "prefill")
    assert prefill["resources"]["limits"] == {"memory": "100Gi", "gpu": "8"}
    assert prefill["resources"]["requests"] == {"cpu": "4", "custom": {"ephemeral-storage": "2Gi"}}
    assert prefill["sharedMemory"] == {"size": "16Gi"}
    assert prefill["scalingAdapter"] == {"enabled": True}
    assert prefill["envs"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert prefill["extraPodSpec"]["mainContainer"] == {"image": "img", "args": ["--tp", "8"]}
    assert prefill["extraPodSpec"]["containers"] == [{"name": "sidecar", "image": "busybox"}]
    assert prefill["volumeMounts"] == [
        {"name": "cache", "mountPoint": "/cache"},
        {"name": "cc", "mountPoint": "/cc", "useAsCompilationCache": True},
    ]
    assert services["decode"]["sharedMemory"] == {"disabled": True}
    assert services["decode"]["gpuMemoryService"] == {"enabled": True}
    # The Frontend's secret comes back as the container's envFrom, as Dynamo's webhook does.
    assert services["Frontend"]["extraPodSpec"]["mainContainer"]["envFrom"] == [
        {"secretRef": {"name": "hf"}}
    ]
    again, _ = convert_dgd(alpha, BETA)
    assert again == beta  # v1beta1 -> v1alpha1 -> v1beta1 is the identity


def test_fields_without_a_place_are_named_not_dropped_silently() -> None:
    alpha = _alpha()
    alpha["spec"]["pvcs"] = [{"name": "c", "create": False}]
    alpha["spec"]["services"]["Frontend"]["ingress"] = {"enabled": True}
    alpha["spec"]["services"]["decode"]["subComponentType"] = "other"
    _, notes = convert_dgd(alpha, BETA)
    assert notes == [
        "spec.pvcs has no place in nvidia.com/v1beta1",
        "spec.services.Frontend.ingress has no place in nvidia.com/v1beta1",
        "spec.services.decode.subComponentType 'other' has no place in nvidia.com/v1beta1",
    ]
    beta, _ = convert_dgd(_alpha(), BETA)
    beta["spec"]["components"][0]["frontendSidecar"] = "sidecar"
    beta["spec"]["components"][2]["experimental"]["grove"] = {}
    beta["spec"]["components"].append({"type": "worker"})
    _, notes = convert_dgd(beta, ALPHA)
    assert notes == [
        "spec.components[name=Frontend].frontendSidecar has no place in nvidia.com/v1alpha1",
        "spec.components[name=decode].experimental.grove has no place in nvidia.com/v1alpha1",
        "spec.components[3] has no name: left out",
    ]


def test_partial_objects_stay_partial_and_the_same_version_is_a_copy() -> None:
    partial = {"apiVersion": ALPHA, "spec": {"services": {"decode": {"replicas": 4}}}}
    beta, notes = convert_dgd(partial, BETA)
    assert beta == {"apiVersion": BETA, "spec": {"components": [{"name": "decode", "replicas": 4}]}}
    assert notes == []
    same, notes = convert_dgd(beta, BETA)
    assert same == beta and same is not beta and notes == []
    no_version, _ = convert_dgd({"spec": {"services": {"x": {"replicas": 1}}}}, BETA)
    assert no_version["spec"]["components"] == [{"name": "x", "replicas": 1}]
    with pytest.raises(ValueError, match=r"nvidia\.com/v2"):
        convert_dgd(partial, "nvidia.com/v2")
