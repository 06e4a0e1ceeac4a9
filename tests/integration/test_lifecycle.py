"""End to end against a real nats-server: requests in, events stored, status projected to KV."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest

from dgdr.client import DgdrClient
from events import subjects
from tests.integration.conftest import Running, manifest
from tests.support import until


def reactor_has_handled(client: DgdrClient, seq: int) -> Callable[[], Awaitable[bool]]:
    """The reactor's durable consumer has acknowledged every event up to `seq`."""

    async def check() -> bool:
        info = await client.nc.jetstream().consumer_info(subjects.EVENTS_STREAM, "dgdr-reactor")
        return int(info.ack_floor.stream_seq or 0) >= seq

    return check


async def kv_consumers(client: DgdrClient) -> int:
    info = await client.nc.jetstream().stream_info(f"KV_{subjects.STATUS_BUCKET}")
    return int(info.state.consumer_count or 0)


async def test_apply_reaches_deployed_and_kv_is_the_projection_of_the_history(
    running: Running,
) -> None:
    c = running.client
    outcome = await c.apply(manifest("demo"))
    assert outcome["status"] == "accepted" and outcome["events"] == ["Created", "Validated"]
    # read-your-writes: the status at the returned resourceVersion is visible
    first = await c.wait("demo", resource_version=outcome["resourceVersion"], timeout=10)
    assert int(first["metadata"]["resourceVersion"]) >= int(outcome["resourceVersion"])
    obj = await c.wait("demo", phase="Deployed", timeout=30)
    st = obj["status"]
    assert st["phase"] == "Deployed" and st["dgdName"] == "demo-dgd"
    assert st["profilingJobName"] == "profile-demo" and "profilingPhase" not in st
    assert st["observedGeneration"] == 1
    assert {c["type"]: c["status"] for c in st["conditions"]} == {
        "Succeeded": "True",
        "Validation": "True",
        "Profiling": "True",
        "SLAMet": "True",
        "SpecGenerated": "True",
        "DeploymentReady": "True",
    }
    assert st["profilingResults"]["selectedConfig"]["kind"] == "DynamoGraphDeployment"
    assert st["profilingResults"]["pareto"], "the Pareto front is empty"
    assert st["deploymentInfo"]["availableReplicas"] == st["deploymentInfo"]["replicas"] > 0

    history = await c.history("demo")
    types = [e["type"] for e in history]
    assert types[:3] == ["Created", "Validated", "ProfilingStarted"]
    assert types[-1] == "DeploymentReady"
    assert {"ProfilingCompleted", "DeploymentStarted", "DeploymentCreated"} <= set(types)
    assert len({e["id"] for e in history}) == len(history)
    assert int(obj["metadata"]["resourceVersion"]) == history[-1]["sequence"]

    dgd = await running.service.cluster.get("default", "demo-dgd")  # type: ignore[union-attr]
    assert dgd is not None and dgd["status"]["state"] == "successful"
    assert dgd["metadata"]["labels"]["dgdr.nvidia.com/name"] == "demo"
    assert "ownerReferences" not in dgd["metadata"]

    # The live KV equals a full rebuild from the stream, byte for byte.
    projector = running.service.projector
    assert projector is not None
    live, rebuilt = await projector.values(), await projector.rebuild()
    assert live == rebuilt and subjects.status_key("default", "demo") in live


async def test_auto_apply_false_stops_at_ready_then_deploys_when_turned_on(
    running: Running,
) -> None:
    c = running.client
    m = manifest("review", autoApply=False)
    await c.apply(m)
    obj = await c.wait("review", phase="Ready", timeout=30)
    assert obj["status"]["dgdName"] == "review-dgd"
    assert [x["type"] for x in obj["status"]["conditions"]][:1] == ["Succeeded"]
    # once the reactor has handled the events that led to Ready, no DGD may have been applied
    await until(reactor_has_handled(c, int(obj["metadata"]["resourceVersion"])), 10, "the reactor")
    assert await running.service.cluster.get("default", "review-dgd") is None  # type: ignore[union-attr]

    m["spec"]["autoApply"] = True
    outcome = await c.apply(m)
    assert outcome["events"] == ["AutoApplyEnabled", "DeploymentStarted"]
    obj = await c.wait("review", phase="Deployed", timeout=30)
    assert obj["metadata"]["generation"] == 2


async def test_invalid_spec_is_reported_with_the_field_and_recorded_as_failed(
    running: Running,
) -> None:
    c = running.client
    bad = manifest("bad", sla={"ttft": 300, "e2eLatency": 9000})
    outcome = await c.apply(bad)
    assert outcome["status"] == "invalid"
    assert [e["field"] for e in outcome["errors"]] == ["spec.sla.e2eLatency"]
    obj = await c.wait("bad", resource_version=outcome["resourceVersion"], timeout=10)
    assert obj["status"]["phase"] == "Failed"
    validation = next(x for x in obj["status"]["conditions"] if x["type"] == "Validation")
    assert (validation["status"], validation["reason"]) == ("False", "ValidationFailed")
    # fixing the spec revives it
    fixed = manifest("bad")
    assert (await c.apply(fixed))["events"][:2] == ["SpecUpdated", "Validated"]
    await c.wait("bad", phase="Deployed", timeout=30)


async def test_malformed_requests_are_rejected_without_recording_anything(
    running: Running,
) -> None:
    c = running.client
    wrong = manifest("wrong")
    wrong["kind"] = "Deployment"
    outcome = await c.apply(wrong)
    assert outcome["status"] == "rejected"
    assert [e["field"] for e in outcome["errors"]] == ["kind"]
    bad_name = manifest("Bad_Name")
    outcome = await c.apply(bad_name)
    assert outcome["status"] == "rejected" and outcome["errors"][0]["field"] == "metadata.name"
    assert await c.history("wrong") == []


async def test_garbage_goes_to_the_dead_letter_stream_and_the_service_carries_on(
    running: Running,
) -> None:
    c = running.client
    js = c.nc.jetstream()
    reply = await c.nc.subscribe(subjects.result_subject("junk-1"), max_msgs=1)
    await js.publish("dgdr.req.default.junk", b"\x00not json", headers={"Nats-Msg-Id": "junk-1"})
    await js.publish("dgdr.req.default.junk", b"{}")  # no request id at all
    outcome = json.loads((await reply.next_msg(timeout=10)).data)
    assert outcome["status"] == "rejected" and outcome["reason"] == "MalformedRequest"
    dlq = await js.subscribe("dgdr.dlq.>", ordered_consumer=True)
    reasons = []
    for _ in range(2):
        msg = await dlq.next_msg(timeout=10)
        reasons.append(msg.headers["Dgdr-Dead-Letter-Reason"])
    assert any("not JSON" in r for r in reasons) and any("request id" in r for r in reasons)
    assert (await c.apply(manifest("after-junk")))["status"] == "accepted"


async def test_spec_change_while_deployed_is_rejected_and_records_nothing(
    running: Running,
) -> None:
    c = running.client
    await c.apply(manifest("frozen"))
    before = await c.wait("frozen", phase="Deployed", timeout=30)
    n = len(await c.history("frozen"))
    changed = manifest("frozen", model="Qwen/Qwen3-8B")
    outcome = await c.apply(changed)
    assert outcome["status"] == "invalid" and outcome["reason"] == "SpecChangeRejected"
    assert "Deployed" in outcome["message"]
    assert len(await c.history("frozen")) == n
    assert (await c.apply(manifest("frozen")))["events"] == []  # identical: a no-op
    assert (await c.get("frozen")) == before


async def test_delete_keeps_the_dgd_and_a_reapply_is_a_new_incarnation(running: Running) -> None:
    c = running.client
    cluster = running.service.cluster
    assert cluster is not None
    await c.apply(manifest("gone"))
    obj = await c.wait("gone", phase="Deployed", timeout=30)
    outcome = await c.delete("gone")
    assert outcome["status"] == "accepted" and outcome["events"] == ["Deleted"]

    async def gone() -> bool:
        return await c.get("gone") is None

    await until(gone, 10, "the deleted DGDR to leave the status bucket")
    assert await cluster.get("default", "gone-dgd") is not None, "deleting a DGDR deleted its DGD"
    assert (await c.delete("gone"))["reason"] == "NotFound"

    again = await c.apply(manifest("gone", autoApply=False))
    assert again["events"] == ["Created", "Validated"] and again["uid"] != obj["metadata"]["uid"]
    ready = await c.wait("gone", phase="Ready", timeout=30)
    assert ready["metadata"]["uid"] == again["uid"]
    uids = [e["aggregate"]["uid"] for e in await c.history("gone")]
    assert uids.index(again["uid"]) > 0 and len(set(uids)) == 2


async def test_degraded_and_deleted_deployments_are_tracked(running: Running) -> None:
    c = running.client
    cluster = running.service.cluster
    assert cluster is not None
    await c.apply(manifest("watched"))
    await c.wait("watched", phase="Deployed", timeout=30)
    assert await cluster.degrade("default", "watched-dgd")
    obj = await c.wait("watched", phase="Deploying", timeout=10)
    ready = next(x for x in obj["status"]["conditions"] if x["type"] == "DeploymentReady")
    assert ready["reason"] == "DeploymentDegraded"
    assert await cluster.recover("default", "watched-dgd")
    await c.wait("watched", phase="Deployed", timeout=10)
    assert await cluster.delete("default", "watched-dgd")
    obj = await c.wait("watched", phase="Failed", timeout=10)
    succeeded = next(x for x in obj["status"]["conditions"] if x["type"] == "Succeeded")
    assert succeeded["reason"] == "DeploymentDeleted"
    assert "dgdName" not in obj["status"]


async def test_a_dgd_that_is_not_ours_is_not_adopted(running: Running) -> None:
    c = running.client
    cluster = running.service.cluster
    assert cluster is not None
    foreign = {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeployment",
        "metadata": {"name": "taken-dgd", "namespace": "default"},
        "spec": {},
    }
    assert await cluster.apply_dgd(foreign, "someone-else") == "created"
    await c.apply(manifest("taken"))
    obj = await c.wait("taken", phase="Failed", timeout=30)
    succeeded = next(x for x in obj["status"]["conditions"] if x["type"] == "Succeeded")
    assert succeeded["reason"] == "DeploymentConflict" and "taken-dgd" in succeeded["message"]


async def test_unknown_model_is_a_validation_error_listing_the_known_models(
    running: Running,
) -> None:
    c = running.client
    outcome = await c.apply(manifest("mystery", model="acme/never-heard-of-it"))
    assert outcome["status"] == "invalid"
    (error,) = outcome["errors"]
    assert error["field"] == "spec.model" and "Qwen/Qwen3-0.6B" in error["message"]
    obj = await c.wait("mystery", resource_version=outcome["resourceVersion"], timeout=10)
    assert obj["status"]["phase"] == "Failed" and "profilingPhase" not in obj["status"]


async def test_a_model_outside_the_catalog_deploys_dynamos_naive_config_with_the_sla_unverified(
    running: Running,
) -> None:
    c = running.client
    outcome = await c.apply(manifest("tiny", model="Qwen/Qwen2.5-0.5B"))
    assert outcome["status"] == "accepted", outcome
    obj = await c.wait("tiny", phase="Deployed", timeout=30)
    conditions = {x["type"]: x for x in obj["status"]["conditions"]}
    sla = conditions["SLAMet"]
    assert (sla["status"], sla["reason"]) == ("Unknown", "SLAUnverified")
    assert "SLA unverified" in sla["message"] and "Qwen/Qwen2.5-0.5B" in sla["message"]
    selected = obj["status"]["profilingResults"]["selectedConfig"]
    assert selected["apiVersion"] == "nvidia.com/v1beta1"
    worker = next(x for x in selected["spec"]["components"] if x["type"] == "worker")
    args = worker["podTemplate"]["spec"]["containers"][0]["args"]
    assert args[args.index("--model") + 1] == "Qwen/Qwen2.5-0.5B"


@pytest.mark.timeout(90)
async def test_two_replicas_share_the_work_without_duplicates(running: Running) -> None:
    from dgdr.app.service import Service
    from tests.integration.conftest import fast_config

    second = Service(fast_config(running.server.url))
    await second.start()
    try:
        c = running.client
        names = [f"r{i}" for i in range(12)]
        outcomes = await asyncio.gather(*(c.apply(manifest(n)) for n in names))
        assert all(o["status"] == "accepted" for o in outcomes)
        await asyncio.gather(*(c.wait(n, phase="Deployed", timeout=60) for n in names))
        for n in names:
            types = [e["type"] for e in await c.history(n)]
            assert types.count("Created") == 1 and types.count("ProfilingCompleted") == 1
            assert types.count("DeploymentCreated") == 1
    finally:
        await second.stop()


async def test_client_applies_a_bare_spec_and_a_multi_document_file(
    running: Running, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    c = running.client
    spec = manifest("x")["spec"]
    outcome = await c.apply_spec("from-spec", {**spec, "autoApply": False}, labels={"team": "a"})
    assert outcome["status"] == "accepted"
    obj = await c.wait("from-spec", phase="Ready", timeout=30)
    assert obj["metadata"]["labels"] == {"team": "a"}
    import yaml

    docs = [manifest("doc-a", autoApply=False), manifest("doc-b", autoApply=False)]
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    outcomes = await c.apply_file(path)
    assert [o["status"] for o in outcomes] == ["accepted", "accepted"]
    for doc, o in zip(docs, outcomes, strict=True):  # read-your-writes before listing
        await c.wait(doc["metadata"]["name"], resource_version=o["resourceVersion"], timeout=10)
    names = [o["metadata"]["name"] for o in await c.list()]
    assert {"doc-a", "doc-b", "from-spec"} <= set(names)


async def test_watch_streams_every_change_of_one_dgdr(running: Running) -> None:
    c = running.client
    phases: list[str] = []

    async def follow() -> None:
        async for _, name, obj in c.watch("watched-live"):
            assert name == "watched-live"
            if obj is not None:
                phase = obj["status"]["phase"]
                if not phases or phases[-1] != phase:
                    phases.append(phase)
                if phase == "Deployed":
                    return

    watchers = await kv_consumers(c)
    task = asyncio.create_task(follow())

    async def watching() -> bool:
        return await kv_consumers(c) > watchers

    await until(watching, 10, "the watch to start")
    await c.apply(manifest("watched-live"))
    await asyncio.wait_for(task, 30)
    assert phases[0] in ("Pending", "Profiling") and phases[-1] == "Deployed"
    assert "Deploying" in phases
