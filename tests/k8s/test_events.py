"""Stored DGDR events → Kubernetes Event (type, reason, message), with Dynamo's reasons, and the
Event names that make recording idempotent."""

from __future__ import annotations

from typing import Any

from dgdr.domain.model import Command, event_from_payload, event_payload
from k8s.adapter import request_manifest
from k8s.events import describe, event_name
from tests.dgdr.domain.builders import (
    SPEC,
    apply,
    delete,
    fail,
    observe,
    progress,
    result,
    run,
    start,
)

STORY: list[Command] = [
    apply(),
    start(),
    progress("SweepingPrefill"),
    fail(message="OOM while sweeping"),
    apply({**SPEC, "image": "img:2"}),  # revives the failed DGDR: generation 2
    start(2),
    progress("Done", 2),
    result(2),
    observe("pending", available=0),
    observe("successful"),
    observe("failed"),
    observe("deleted"),
]
CONFLICT: list[Command] = [apply(), start(), result(), observe("conflict")]


def stored(*commands: Command) -> list[tuple[str, dict[str, Any]]]:
    """The (type, payload) of each event the commands record, as the store holds them."""
    _, recorded = run(commands)
    return [(event.type, event_payload(event)) for event, _ in recorded]


def test_the_story_in_dynamos_reasons() -> None:
    told = [describe(event_from_payload(t, p)) for t, p in stored(*STORY)]
    assert [d[:2] for d in told if d is not None] == [
        ("Normal", "Initialized"),
        ("Normal", "ProfilingJobCreated"),
        ("Normal", "SweepingPrefill"),
        ("Warning", "SweepingPrefillFailed"),
        ("Normal", "SpecUpdated"),
        ("Normal", "Initialized"),
        ("Normal", "ProfilingJobCreated"),
        ("Normal", "Completed"),
        ("Normal", "SpecGenerated"),
        ("Normal", "Deploying"),
        ("Normal", "DeploymentCreated"),
        ("Normal", "DeploymentReady"),
        ("Warning", "DeploymentDegraded"),
        ("Warning", "DeploymentDeleted"),
    ]
    assert all(d is None or d[2] for d in told), "every Event has a message"
    conflict = [describe(event_from_payload(t, p)) for t, p in stored(*CONFLICT)][-1]
    assert conflict is not None and conflict[:2] == ("Warning", "DeploymentConflict")


def test_validation_failure_names_the_field() -> None:
    described = describe(
        event_from_payload(
            "ValidationFailed",
            {"generation": 1, "errors": [{"field": "spec.sla.ttft", "message": "must be > 0"}]},
        )
    )
    assert described is not None and described[:2] == ("Warning", "ValidationFailed")
    assert "spec.sla.ttft: must be > 0" in described[2]


def test_bookkeeping_events_are_not_recorded() -> None:
    commands = (apply(), start(), result(), observe("pending", replicas=2, available=0), delete())
    silent = {t for t, p in stored(*commands) if describe(event_from_payload(t, p)) is None}
    assert silent == {"Created", "DeploymentObserved", "Deleted"}


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
