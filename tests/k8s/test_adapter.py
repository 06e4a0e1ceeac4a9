"""The adapter against the API server emulator, through kubernetes-asyncio: apply → Deployed with
Dynamo's status and Events; autoApply false; deletion with the finalizer; the DGD outlives its DGDR;
a deleted DGD fails the DGDR; a foreign DGD is not adopted; 409s are retried; an expired watch
relists; a restart creates nothing twice; GPU discovery from node labels."""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from typing import Any

import pytest
import yaml

from k8s.adapter import GENERATED_DGD_SPEC
from k8s.kube import DGD_PLURAL, DGD_VERSION, DGDR_PLURAL, FINALIZER, GROUP
from tests.support import until

from .conftest import WAIT, Kube, dgdr

pytestmark = pytest.mark.timeout(90)


async def apply_to_deployed(kube: Kube, name: str) -> None:
    """The end-to-end story, on the emulator or on a real cluster."""
    created = await kube.create(dgdr(name))
    obj = await kube.phase(name, "Deployed", timeout=300 if kube.emulator is None else 30)
    status = obj["status"]
    assert status["dgdName"] == f"{name}-dgd"
    succeeded = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert (succeeded["status"], succeeded["reason"]) == ("True", "Deployed")
    assert status["deploymentInfo"]["availableReplicas"] >= 1
    assert FINALIZER in obj["metadata"]["finalizers"]
    assert obj["metadata"]["generation"] == 1

    dgd = await kube.get_dgd(f"{name}-dgd")
    assert dgd is not None
    meta = dgd["metadata"]
    assert meta["labels"]["dgdr.nvidia.com/name"] == name
    assert meta["labels"]["dgdr.nvidia.com/namespace"] == "default"
    assert meta["labels"]["nvidia.com/managed-by"] == "dgdr"
    assert meta["annotations"]["dgdr.nvidia.com/uid"] == created["metadata"]["uid"]
    assert not meta.get("ownerReferences")

    async def story() -> list[str] | None:
        reasons = [e.reason for e in await kube.events(name)]
        return reasons if "DeploymentReady" in reasons else None

    reasons = await until(story, WAIT, what="DeploymentReady event")
    for reason in ("Initialized", "ProfilingJobCreated", "SpecGenerated", "DeploymentCreated"):
        assert reason in reasons
    assert all(n == 1 for n in Counter(reasons).values()), reasons

    await kube.objects.delete_namespaced_custom_object(
        GROUP, "v1beta1", "default", "dynamographdeploymentrequests", name
    )

    async def gone() -> bool:
        return await kube.get(name) is None

    await until(gone, WAIT, what="the DGDR to be deleted (finalizer removed)")
    assert await kube.get_dgd(f"{name}-dgd") is not None, "the DGD must outlive its DGDR"


async def test_apply_reaches_deployed_with_status_events_and_an_unowned_dgd(kube: Kube) -> None:
    await apply_to_deployed(kube, "demo")


async def test_the_same_story_on_a_real_cluster(real_kube: Kube) -> None:
    name = f"dgdr-e2e-{uuid.uuid4().hex[:6]}"
    try:
        await apply_to_deployed(real_kube, name)
    finally:
        with contextlib.suppress(Exception):
            await real_kube.objects.delete_namespaced_custom_object(
                GROUP, DGD_VERSION, "default", DGD_PLURAL, f"{name}-dgd"
            )


async def test_auto_apply_false_stops_at_ready_without_a_dgd(kube: Kube) -> None:
    await kube.create(dgdr("review", autoApply=False))
    obj = await kube.phase("review", "Ready")
    assert obj["status"]["profilingResults"]["selectedConfig"]["metadata"]["name"] == "review-dgd"
    await until(kube.reactor_caught_up, WAIT, what="the reactor to handle every event")
    assert await kube.get_dgd("review-dgd") is None

    async def annotated() -> dict[str, Any] | None:
        got = await kube.get("review")
        spec = ((got or {}).get("metadata", {}).get("annotations") or {}).get(GENERATED_DGD_SPEC)
        return yaml.safe_load(spec) if spec else None

    generated = await until(annotated, WAIT, what="the generated-dgd-spec annotation")
    assert generated == obj["status"]["profilingResults"]["selectedConfig"]


async def test_the_generated_spec_annotation_is_emptied_once_the_dgd_exists(kube: Kube) -> None:
    await kube.create(dgdr("later", autoApply=False))
    await kube.phase("later", "Ready")

    async def annotation() -> str | None:
        got = await kube.get("later")
        return ((got or {}).get("metadata", {}).get("annotations") or {}).get(GENERATED_DGD_SPEC)

    assert "kind: DynamoGraphDeployment" in await until(annotation, WAIT, what="annotation")
    obj = await kube.get("later")
    assert obj is not None
    obj["spec"]["autoApply"] = True
    await kube.objects.replace_namespaced_custom_object(
        GROUP, "v1beta1", "default", DGDR_PLURAL, "later", obj
    )
    await kube.phase("later", "Deployed")

    async def emptied() -> bool:
        return await annotation() == ""

    await until(emptied, WAIT, what="the annotation to be emptied once deployed")


async def test_deleting_the_dgdr_keeps_the_dgd_and_forgets_the_incarnation(kube: Kube) -> None:
    await kube.create(dgdr("keep"))
    await kube.phase("keep", "Deployed")
    await kube.objects.delete_namespaced_custom_object(
        GROUP, "v1beta1", "default", "dynamographdeploymentrequests", "keep"
    )

    async def gone() -> bool:
        return await kube.get("keep") is None

    await until(gone, WAIT, what="the DGDR to be deleted (finalizer removed)")
    assert kube.nats_client is not None
    assert await kube.nats_client.get("keep") is None
    assert await kube.get_dgd("keep-dgd") is not None

    # created again (kubectl delete + apply): the new DGDR takes over the DGD its predecessor left
    again = await kube.create(dgdr("keep", sla={"ttft": 500, "itl": 30}))
    await kube.phase("keep", "Deployed")
    dgd = await kube.get_dgd("keep-dgd")
    assert dgd is not None
    assert dgd["metadata"]["annotations"]["dgdr.nvidia.com/uid"] == again["metadata"]["uid"]


async def test_deleting_the_dgd_fails_the_dgdr(kube: Kube) -> None:
    await kube.create(dgdr("victim"))
    await kube.phase("victim", "Deployed")
    await kube.objects.delete_namespaced_custom_object(
        GROUP, DGD_VERSION, "default", DGD_PLURAL, "victim-dgd"
    )
    obj = await kube.phase("victim", "Failed")
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "DeploymentReady")
    assert ready["reason"] == "DeploymentDeleted"


async def test_a_foreign_dgd_of_the_same_name_is_not_adopted(kube: Kube) -> None:
    foreign = {
        "apiVersion": f"{GROUP}/{DGD_VERSION}",
        "kind": "DynamoGraphDeployment",
        "metadata": {"name": "taken-dgd", "namespace": "default", "labels": {"team": "other"}},
        "spec": {"components": [{"name": "Frontend", "type": "frontend", "replicas": 1}]},
    }
    await kube.objects.create_namespaced_custom_object(
        GROUP, DGD_VERSION, "default", DGD_PLURAL, foreign
    )
    await kube.create(dgdr("taken"))
    obj = await kube.phase("taken", "Failed")
    succeeded = next(c for c in obj["status"]["conditions"] if c["type"] == "DeploymentReady")
    assert succeeded["reason"] == "DeploymentConflict"
    dgd = await kube.get_dgd("taken-dgd")
    assert dgd is not None and dgd["metadata"]["labels"] == {"team": "other"}


async def test_status_conflicts_are_retried(kube: Kube) -> None:
    kube.emulator.inject_conflicts(3, plural="dynamographdeploymentrequests", subresource="status")
    await kube.create(dgdr("racy"))
    await kube.phase("racy", "Deployed")
    assert kube.adapter is not None and kube.adapter.conflicts >= 3


async def test_an_expired_watch_relists_and_keeps_following(kube: Kube) -> None:
    assert kube.adapter is not None
    assert kube.emulator is not None
    before = kube.adapter.informer.relists
    # The watch ends, a DGDR is created and the history compacted before the informer can watch
    # again (none of these yields to the event loop): its resourceVersion is now too old (410).
    kube.emulator.expire_watches()
    body = dgdr("after-expiry")
    await kube.emulator.store.create(GROUP, "v1beta1", DGDR_PLURAL, "default", body)
    kube.emulator.compact()
    await kube.phase("after-expiry", "Deployed")
    assert kube.adapter.informer.relists > before


async def test_a_restart_mid_deploy_creates_nothing_twice(kube: Kube) -> None:
    await kube.create(dgdr("crashy"))

    async def deploying() -> bool:
        obj = await kube.get("crashy")
        return (obj or {}).get("status", {}).get("phase") in ("Deploying", "Deployed")

    await until(deploying, WAIT, what="Deploying")
    await kube.stop()
    await kube.start()
    await kube.phase("crashy", "Deployed")
    dgds = await kube.objects.list_namespaced_custom_object(
        GROUP, DGD_VERSION, "default", DGD_PLURAL
    )
    assert [d["metadata"]["name"] for d in dgds["items"]] == ["crashy-dgd"]

    async def story() -> list[str] | None:
        reasons = [e.reason for e in await kube.events("crashy")]
        return reasons if "DeploymentReady" in reasons else None

    reasons = await until(story, WAIT, what="DeploymentReady event")
    assert all(n == 1 for n in Counter(reasons).values()), reasons
    assert kube.nats_client is not None
    history = await kube.nats_client.history("crashy")
    types = [e["type"] for e in history]
    assert types.count("DeploymentCreated") == 1 and types.count("Created") == 1


async def test_gpu_facts_are_discovered_from_node_labels(kube: Kube) -> None:
    await kube.create(dgdr("discover", hardware=None))
    obj = await kube.phase("discover", "Deployed")
    assert kube.nats_client is not None
    history = await kube.nats_client.history("discover")
    validated = next(e for e in history if e["type"] == "Validated")
    hardware: dict[str, Any] = validated["payload"]["hardware"]
    assert hardware["gpuSku"] == "h200_sxm"
    assert (hardware["numGpusPerNode"], hardware["totalGpus"]) == (8, 16)
    assert hardware["vramMb"] == 143771
    assert obj["status"]["phase"] == "Deployed"


async def test_a_spec_change_while_deployed_is_refused_with_an_event(kube: Kube) -> None:
    await kube.create(dgdr("frozen"))
    await kube.phase("frozen", "Deployed")
    await kube.objects.patch_namespaced_custom_object(
        GROUP,
        "v1beta1",
        "default",
        "dynamographdeploymentrequests",
        "frozen",
        {"spec": {"workload": {"isl": 1000, "osl": 500}}},
        _content_type="application/merge-patch+json",
    )

    async def refused() -> bool:
        return "SpecChangeRejected" in [e.reason for e in await kube.events("frozen")]

    await until(refused, WAIT, what="SpecChangeRejected event")
    obj = await kube.get("frozen")
    assert obj is not None and obj["status"]["phase"] == "Deployed"


async def test_no_gpu_facts_anywhere_is_a_validation_failure_naming_the_fields(kube: Kube) -> None:
    for node in (await kube.core.list_node()).items:
        await kube.core.delete_node(node.metadata.name)
    await kube.create(dgdr("blind", hardware=None))
    obj = await kube.phase("blind", "Failed")
    validation = next(c for c in obj["status"]["conditions"] if c["type"] == "Validation")
    assert validation["reason"] == "ValidationFailed"
    assert "spec.hardware.gpuSku" in validation["message"]


async def test_an_adapter_scoped_to_namespaces_leaves_the_others_alone(kube: Kube) -> None:
    await kube.core.create_namespace({"metadata": {"name": "team-a"}})  # type: ignore[arg-type]
    await kube.stop()
    kube.namespaces = ["team-a"]
    await kube.start()
    await kube.create(dgdr("outside"))
    await kube.create(dgdr("inside", namespace="team-a"))
    await kube.phase("inside", "Deployed", namespace="team-a")
    assert await kube.get_dgd("inside-dgd", "team-a") is not None
    outside = await kube.get("outside")
    assert outside is not None and not outside.get("status")
    assert not outside["metadata"].get("finalizers")
    assert kube.nats_client is not None and await kube.nats_client.get("outside") is None


async def test_planner_configmaps_are_created_with_the_dgd_and_owned_by_it(kube: Kube) -> None:
    await kube.create(
        dgdr(
            "planned",
            model="Qwen/Qwen3-8B",
            image="nvcr.io/nvidia/ai-dynamo/dynamo-planner:0.9.0",
            sla={"ttft": 500, "itl": 20},
            features={"planner": {}},
        )
    )
    await kube.phase("planned", "Deployed")
    dgd = await kube.get_dgd("planned-dgd")
    assert dgd is not None and dgd["apiVersion"] == f"{GROUP}/v1beta1"
    planner = next(c for c in dgd["spec"]["components"] if c["name"] == "Planner")
    volumes = planner["podTemplate"]["spec"]["volumes"]
    names = sorted(v["configMap"]["name"] for v in volumes)
    for cm_name in names:
        cm = await kube.core.read_namespaced_config_map(cm_name, "default")
        (owner,) = cm.metadata.owner_references
        assert (owner.kind, owner.name, owner.uid) == (
            "DynamoGraphDeployment",
            "planned-dgd",
            dgd["metadata"]["uid"],
        )
        assert cm.metadata.labels["dgdr.nvidia.com/name"] == "planned"

    # They live as long as the DGD: deleting the DGDR keeps them, deleting the DGD takes them.
    await kube.objects.delete_namespaced_custom_object(
        GROUP, "v1beta1", "default", DGDR_PLURAL, "planned"
    )

    async def gone() -> bool:
        return await kube.get("planned") is None

    await until(gone, WAIT, what="the DGDR to go")
    assert (await kube.core.read_namespaced_config_map(names[0], "default")).data
    await kube.objects.delete_namespaced_custom_object(
        GROUP, DGD_VERSION, "default", DGD_PLURAL, "planned-dgd"
    )

    async def collected() -> bool:
        listed = await kube.core.list_namespaced_config_map(
            "default", label_selector="dgdr.nvidia.com/name=planned"
        )
        return not listed.items

    await until(collected, WAIT, what="the ConfigMaps to be garbage-collected with the DGD")


async def test_a_spec_stating_every_gpu_fact_is_not_followed_by_a_node_listing(kube: Kube) -> None:
    assert kube.emulator is not None
    full = {"gpuSku": "h200_sxm", "totalGpus": 8, "numGpusPerNode": 8, "vramMb": 143771}
    before = len(kube.emulator.requests)
    await kube.create(dgdr("stated", hardware=full))
    await kube.phase("stated", "Deployed")
    listed = [p for _, p in kube.emulator.requests[before:] if p.startswith("/api/v1/nodes")]
    assert listed == []
    await kube.create(dgdr("partial"))  # no vramMb: discovery is asked
    await kube.phase("partial", "Deployed")
    assert any(p.startswith("/api/v1/nodes") for _, p in kube.emulator.requests[before:])


async def test_a_name_dgdr_holds_with_another_spec_gets_a_status_and_an_event(kube: Kube) -> None:
    assert kube.nats_client is not None
    await kube.stop_adapter()  # `dgdr apply` and `kubectl create` before the adapter mirrors
    outcome = await kube.nats_client.apply(dgdr("shared"))
    assert outcome["status"] == "accepted"
    held_by = outcome["uid"]
    await kube.create(dgdr("shared", sla={"ttft": 500, "itl": 30}))
    await kube.start_adapter()

    async def told() -> dict[str, Any] | None:
        obj = await kube.get("shared")
        status = (obj or {}).get("status") or {}
        return obj if status.get("conditions", [{}])[0].get("reason") == "NameInUse" else None

    obj = await until(told, WAIT, what="a NameInUse status")  # before: no status at all
    assert obj["status"]["phase"] == "Pending"
    message = obj["status"]["conditions"][0]["message"]
    assert held_by in message and "dgdr delete shared -n default" in message
    events = [e for e in await kube.events("shared") if e.reason == "NameInUse"]
    assert events and events[0].type == "Warning" and events[0].message == message
    projection = await kube.nats_client.get("shared")
    assert projection is not None and projection["metadata"]["uid"] == held_by  # untouched

    # the name is freed: the object is submitted on the next resync and goes its own way
    await kube.nats_client.delete("shared")
    obj = await kube.phase("shared", "Deployed")
    projection = await kube.nats_client.get("shared")
    assert projection is not None and projection["metadata"]["uid"] == obj["metadata"]["uid"]
    assert projection["spec"]["sla"] == {"ttft": 500, "itl": 30}


async def test_a_name_dgdr_holds_with_the_same_spec_is_adopted(kube: Kube) -> None:
    assert kube.nats_client is not None
    await kube.stop_adapter()  # as after an emulator that forgot its objects restarted
    outcome = await kube.nats_client.apply(dgdr("twin"))
    assert outcome["status"] == "accepted"
    await kube.create(dgdr("twin"))
    await kube.start_adapter()
    obj = await kube.phase("twin", "Deployed")
    assert obj["metadata"]["annotations"]["dgdr.nvidia.com/uid"] == outcome["uid"]
    dgd = await kube.get_dgd("twin-dgd")
    assert (
        dgd is not None and dgd["metadata"]["annotations"]["dgdr.nvidia.com/uid"] == outcome["uid"]
    )

    # deleting the object deletes the incarnation it stands for
    await kube.objects.delete_namespaced_custom_object(
        GROUP, "v1beta1", "default", DGDR_PLURAL, "twin"
    )

    async def gone() -> bool:
        assert kube.nats_client is not None
        return await kube.get("twin") is None and await kube.nats_client.get("twin") is None

    await until(gone, WAIT, what="the DGDR and its incarnation to be deleted")


async def test_a_dgdr_applied_through_nats_appears_as_an_object_and_goes_with_it(
    kube: Kube,
) -> None:
    assert kube.nats_client is not None
    outcome = await kube.nats_client.apply(dgdr("from-nats"))
    assert outcome["status"] == "accepted"
    obj = await kube.phase("from-nats", "Deployed")  # before: no object, kubectl saw nothing
    assert obj["metadata"]["annotations"]["dgdr.nvidia.com/uid"] == outcome["uid"]
    assert FINALIZER in obj["metadata"]["finalizers"]
    history = await kube.nats_client.history("from-nats")
    assert [e["type"] for e in history].count("Created") == 1
    assert "SpecUpdated" not in [e["type"] for e in history]  # the mirror was not handed back
    assert obj["metadata"]["annotations"]["dgdr.nvidia.com/mirrored-generation"] == "1"

    await kube.stop_adapter()  # nor after a restart, when the adapter remembers nothing
    await kube.start_adapter()

    def seen_again() -> bool:
        assert kube.adapter is not None
        return obj["metadata"]["uid"] in kube.adapter.submitted

    await until(seen_again, WAIT, what="the restarted adapter to look at the mirror")
    assert await kube.nats_client.history("from-nats") == history

    await kube.nats_client.delete("from-nats")  # `dgdr delete`: the object goes too

    async def gone() -> bool:
        return await kube.get("from-nats") is None

    await until(gone, WAIT, what="the mirrored object to be deleted")
    assert await kube.get_dgd("from-nats-dgd") is not None  # the DGD outlives its DGDR
