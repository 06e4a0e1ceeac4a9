"""The thorough profiling Job: Dynamo's shape, and overrides merged only through the allow-list."""

from __future__ import annotations

import json
from typing import Any

from k8s.job import profiling_job


def spec(**overrides: Any) -> dict[str, Any]:
    return {
        "model": "Qwen/Qwen3-8B",
        "backend": "vllm",
        "searchStrategy": "thorough",
        "image": "nvcr.io/nvidia/ai-dynamo/dynamo-planner:0.9.0",
        "overrides": {"profilingJob": overrides},
    }


def test_the_job_is_dynamos_shape() -> None:
    job, ignored = profiling_job("demo", "team", "uid-1", spec())
    assert ignored == []
    assert job["metadata"]["name"] == "profile-demo"
    assert job["metadata"]["labels"]["app"] == "dynamo-profiler"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    profiler = pod["containers"][0]
    assert profiler["image"] == "nvcr.io/nvidia/ai-dynamo/dynamo-planner:0.9.0"
    config = json.loads(profiler["args"][profiler["args"].index("--config") + 1])
    assert config["model"] == "Qwen/Qwen3-8B"
    assert {e["name"] for e in profiler["env"]} >= {"DGDR_NAME", "DGDR_NAMESPACE", "DGDR_UID"}
    assert pod["containers"][1]["name"] == "output-copier"


def test_allowed_overrides_are_merged() -> None:
    job, ignored = profiling_job(
        "demo",
        "team",
        "uid-1",
        spec(
            backoffLimit=2,
            activeDeadlineSeconds=600,
            ttlSecondsAfterFinished=60,
            template={
                "metadata": {"labels": {"team": "a"}, "annotations": {"x": "y"}},
                "spec": {
                    "tolerations": [{"key": "gpu", "operator": "Exists"}],
                    "nodeSelector": {"pool": "gpu"},
                    "priorityClassName": "high",
                    "imagePullSecrets": [{"name": "nvcr-imagepullsecret"}, {"name": "mine"}],
                    "securityContext": {"runAsUser": 2000},
                    "volumes": [
                        {"name": "profiling-output", "persistentVolumeClaim": {"claimName": "out"}}
                    ],
                    "containers": [
                        {
                            "name": "ignored-name",
                            "image": "my/profiler:1",
                            "resources": {"limits": {"cpu": "2"}},
                            "env": [
                                {"name": "DGDR_NAME", "value": "x"},
                                {"name": "HF_HOME", "value": "/h"},
                            ],
                        }
                    ],
                },
            },
        ),
    )
    assert ignored == []
    assert (job["spec"]["backoffLimit"], job["spec"]["activeDeadlineSeconds"]) == (2, 600)
    template = job["spec"]["template"]
    assert template["metadata"]["labels"]["team"] == "a"
    assert template["metadata"]["annotations"] == {"x": "y"}
    pod = template["spec"]
    assert pod["nodeSelector"] == {"pool": "gpu"} and pod["priorityClassName"] == "high"
    assert [s["name"] for s in pod["imagePullSecrets"]] == ["nvcr-imagepullsecret", "mine"]
    assert pod["securityContext"]["runAsUser"] == 2000 and pod["securityContext"]["fsGroup"] == 1000
    assert pod["volumes"] == [
        {"name": "profiling-output", "persistentVolumeClaim": {"claimName": "out"}}
    ]
    profiler = pod["containers"][0]
    assert profiler["name"] == "profiler" and profiler["image"] == "my/profiler:1"
    env = {e["name"]: e["value"] for e in profiler["env"]}
    assert env["DGDR_NAME"] == "x" and env["HF_HOME"] == "/h"


def test_fields_outside_the_allow_list_and_protected_labels_are_reported_not_applied() -> None:
    job, ignored = profiling_job(
        "demo",
        "team",
        "uid-1",
        spec(
            completions=3,
            template={
                "metadata": {"labels": {"app": "mine"}, "name": "x"},
                "spec": {
                    "hostNetwork": True,
                    "containers": [{"command": ["sh"]}, {"name": "extra"}],
                },
            },
        ),
    )
    prefix = "spec.overrides.profilingJob"
    assert sorted(ignored) == sorted(
        [
            f"{prefix}.completions",
            f"{prefix}.template.metadata.labels.app",
            f"{prefix}.template.metadata.name",
            f"{prefix}.template.spec.hostNetwork",
            f"{prefix}.template.spec.containers[1]",
            f"{prefix}.template.spec.containers[0].command",
        ]
    )
    assert job["spec"]["template"]["metadata"]["labels"]["app"] == "dynamo-profiler"
    assert "completions" not in job["spec"]
    assert "hostNetwork" not in job["spec"]["template"]["spec"]
