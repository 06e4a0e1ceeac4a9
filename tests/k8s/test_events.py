"""Stored DGDR events → Kubernetes Event (type, reason, message), with Dynamo's reasons."""

from __future__ import annotations

import pytest

from k8s.adapter import request_manifest
from k8s.events import describe, event_name


@pytest.mark.parametrize(
    ("event_type", "payload", "expected"),
    [
        ("Validated", {"message": "h200_sxm x8"}, ("Normal", "Initialized")),
        (
            "ValidationFailed",
            {"errors": [{"field": "spec.sla.ttft", "message": "must be > 0"}]},
            ("Warning", "ValidationFailed"),
        ),
        ("ProfilingStarted", {"jobName": "profile-x"}, ("Normal", "ProfilingJobCreated")),
        (
            "ProfilingProgressed",
            {"subPhase": "SweepingPrefill", "message": "m"},
            ("Normal", "SweepingPrefill"),
        ),
        (
            "ProfilingFailed",
            {"subPhase": "SelectingConfig", "message": "m"},
            ("Warning", "SelectingConfigFailed"),
        ),
        ("ProfilingCompleted", {"dgdName": "x-dgd", "message": "m"}, ("Normal", "SpecGenerated")),
        ("DeploymentCreated", {"dgdName": "x-dgd"}, ("Normal", "DeploymentCreated")),
        ("DeploymentReady", {"replicas": 2, "availableReplicas": 2}, ("Normal", "DeploymentReady")),
        ("DeploymentDegraded", {"state": "failed"}, ("Warning", "DeploymentDegraded")),
        ("DeploymentDeleted", {"dgdName": "x-dgd"}, ("Warning", "DeploymentDeleted")),
        (
            "DeploymentFailed",
            {"reason": "DeploymentConflict", "message": "m"},
            ("Warning", "DeploymentConflict"),
        ),
    ],
)
def test_transitions_map_to_dynamo_reasons(
    event_type: str, payload: dict[str, object], expected: tuple[str, str]
) -> None:
    described = describe(event_type, payload)
    assert described is not None and described[:2] == expected
    assert described[2]


def test_validation_failure_names_the_field() -> None:
    described = describe(
        "ValidationFailed", {"errors": [{"field": "spec.sla.ttft", "message": "must be > 0"}]}
    )
    assert described is not None and "spec.sla.ttft: must be > 0" in described[2]


@pytest.mark.parametrize("event_type", ["Created", "DeploymentObserved", "Deleted"])
def test_bookkeeping_events_are_not_recorded(event_type: str) -> None:
    assert describe(event_type, {}) is None


def test_event_names_are_stable_per_stored_event() -> None:
    uid = "0123456789abcdef"
    assert event_name("demo", uid, 255, 1) == "demo.01234567.ff.1"
    assert event_name("demo", uid, 255, 1) != event_name("demo", uid, 256, 1)


def test_request_manifest_keeps_intent_and_drops_cluster_bookkeeping() -> None:
    obj = {
        "apiVersion": "nvidia.com/v1beta1",
        "kind": "DynamoGraphDeploymentRequest",
        "metadata": {
            "name": "demo",
            "namespace": "team",
            "uid": "u-1",
            "generation": 3,
            "resourceVersion": "42",
            "finalizers": ["dgdr.nvidia.com/finalizer"],
            "labels": {"app": "x"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "a": "b"},
        },
        "spec": {"model": "Qwen/Qwen3-0.6B"},
        "status": {"phase": "Pending"},
    }
    assert request_manifest(obj) == {
        "apiVersion": "nvidia.com/v1beta1",
        "kind": "DynamoGraphDeploymentRequest",
        "metadata": {
            "name": "demo",
            "namespace": "team",
            "uid": "u-1",
            "labels": {"app": "x"},
            "annotations": {"a": "b"},
        },
        "spec": {"model": "Qwen/Qwen3-0.6B"},
    }
