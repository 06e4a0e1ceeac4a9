"""The command handler on the in-memory store: caches are hints, the store decides."""

from __future__ import annotations

from typing import Any

from dgdr.app.handler import CommandHandler
from dgdr.app.states import Loaded
from dgdr.domain.errors import ConcurrencyConflict
from dgdr.domain.model import (
    Apply,
    Delete,
    ObserveDeployment,
    ReportProfilingResult,
    StartProfiling,
)
from events.envelope import Commit
from events.store import InMemoryEventStore

AT = "2026-01-01T00:00:00.000Z"
SPEC = {"model": "Qwen/Qwen3-0.6B", "hardware": {"gpuSku": "h200_sxm"}}


def apply(cid: str, **spec: object) -> Apply:
    return Apply(id=cid, at=AT, spec={**SPEC, **spec})


async def test_create_then_replay_of_the_same_request_records_nothing() -> None:
    store = InMemoryEventStore()
    first = await CommandHandler(store).handle("ns", "a", apply("r1"))
    assert first.status == "accepted" and first.events == ("Created", "Validated")
    # a redelivered request reaches another replica with an empty cache
    again = await CommandHandler(store).handle("ns", "a", apply("r1"))
    assert again.status == "accepted" and again.events == ()
    assert again.uid == first.uid
    assert len(await store.history("ns", "a")) == 1


async def test_a_refusal_decided_on_a_stale_cache_is_checked_against_the_store() -> None:
    store = InMemoryEventStore()
    a, b = CommandHandler(store), CommandHandler(store)
    invalid = await a.handle("ns", "x", apply("r1", sla={"ttft": 1, "e2eLatency": 2}))
    assert invalid.status == "invalid"
    fixed = await b.handle("ns", "x", apply("r2"))  # replica b fixes the spec: generation 2
    assert fixed.events == ("SpecUpdated", "Validated")
    # replica a still caches generation 1 in Failed; starting generation 2 must not be refused
    out = await a.handle(
        "ns",
        "x",
        StartProfiling(id="s2", at=AT, generation=2, job_name="profile-x"),
        expected_uid=fixed.uid,
    )
    assert out.status == "accepted" and out.events == ("ProfilingStarted",)


async def test_a_stale_cache_conflicts_and_is_reloaded_before_appending() -> None:
    store = InMemoryEventStore()
    a, b = CommandHandler(store), CommandHandler(store)
    await a.handle("ns", "y", apply("r1", autoApply=False))
    await b.handle("ns", "y", apply("r2", autoApply=False, model="Qwen/Qwen3-8B"))
    out = await a.handle("ns", "y", apply("r3", autoApply=False, model="Qwen/Qwen3-32B"))
    assert out.status == "accepted" and out.events == ("SpecUpdated", "Validated")
    commits = await store.history("ns", "y")
    assert [c.envelopes[0].payload.get("generation") for c in commits] == [1, 2, 3]


async def test_delete_on_an_empty_cache_finds_the_dgdr_and_recreate_gets_a_new_uid() -> None:
    store = InMemoryEventStore()
    created = await CommandHandler(store).handle("ns", "z", apply("r1"))
    deleted = await CommandHandler(store).handle("ns", "z", Delete(id="d1", at=AT))
    assert deleted.events == ("Deleted",)
    again = await CommandHandler(store).handle("ns", "z", apply("r2"))
    assert again.events == ("Created", "Validated") and again.uid != created.uid
    stale = await CommandHandler(store).handle(
        "ns",
        "z",
        StartProfiling(id="s", at=AT, generation=1, job_name="j"),
        expected_uid=created.uid,
    )
    assert stale.status == "rejected" and stale.reason == "Stale"


async def test_the_edge_can_say_why_the_profiler_cannot_take_the_model() -> None:
    store = InMemoryEventStore()
    refusal = "unknown model 'acme/x': use one of Qwen/Qwen3-0.6B, Qwen/Qwen3-8B"
    cmd = Apply(id="r1", at=AT, spec={**SPEC, "model": "acme/x"}, model_refusal=refusal)
    out = await CommandHandler(store).handle("ns", "m", cmd)
    assert out.status == "invalid" and out.errors[0] == {"field": "spec.model", "message": refusal}
    ok = Apply(id="r2", at=AT, spec=SPEC, model_refusal=None)
    assert (await CommandHandler(store).handle("ns", "m", ok)).events == (
        "SpecUpdated",
        "Validated",
    )


async def test_a_spec_refused_at_admission_records_nothing_and_names_the_fields() -> None:
    store = InMemoryEventStore()
    out = await CommandHandler(store).handle(
        "ns", "bad", apply("r1", autoApply="false", workload={"isl": 2.5})
    )
    assert out.status == "invalid" and out.reason == "Invalid"
    assert sorted(e["field"] for e in out.errors) == ["spec.autoApply", "spec.workload.isl"]
    assert "nothing was recorded" in out.message
    assert (out.events, out.resource_version, out.uid) == ((), None, None)
    assert await store.history("ns", "bad") == []
    assert await store.latest("ns", "bad") is None


async def test_a_later_validation_failure_is_recorded_and_answered_invalid() -> None:
    store = InMemoryEventStore()
    out = await CommandHandler(store).handle("ns", "f", apply("r1", sla={"ttft": -5}))
    assert out.status == "invalid" and out.reason == "ValidationFailed"
    assert out.events == ("Created", "ValidationFailed") and out.resource_version is not None
    assert [e["field"] for e in out.errors] == ["spec.sla.ttft"]
    assert len(await store.history("ns", "f")) == 1


async def test_a_refused_update_leaves_the_existing_dgdr_unchanged() -> None:
    store = InMemoryEventStore()
    created = await CommandHandler(store).handle("ns", "u", apply("r1"))
    out = await CommandHandler(store).handle("ns", "u", apply("r2", backend="onnx"))
    assert out.status == "invalid" and [e["field"] for e in out.errors] == ["spec.backend"]
    assert out.uid == created.uid and out.resource_version == created.resource_version
    assert len(await store.history("ns", "u")) == 1


async def test_a_spec_change_while_profiling_is_refused_with_dynamos_message() -> None:
    store = InMemoryEventStore()
    h = CommandHandler(store)
    created = await h.handle("ns", "p", apply("r1"))
    start = StartProfiling(id="s1", at=AT, generation=1, job_name="profile-p")
    await h.handle("ns", "p", start, expected_uid=created.uid)
    out = await CommandHandler(store).handle("ns", "p", apply("r2", model="Qwen/Qwen3-8B"))
    assert out.status == "invalid" and out.reason == "SpecChangeRejected"
    assert out.message == (
        "spec updates are forbidden while the resource is in phase 'Profiling'; "
        "delete and recreate the resource to change its spec"
    )
    assert [e["field"] for e in out.errors] == ["spec"]
    assert len(await store.history("ns", "p")) == 2


class ConflictCountingStore(InMemoryEventStore):
    def __init__(self) -> None:
        super().__init__()
        self.conflicts = 0
        self.loaded_after: list[int] = []

    async def append(self, *args: Any, **kwargs: Any) -> int:
        try:
            return await super().append(*args, **kwargs)
        except ConcurrencyConflict:
            self.conflicts += 1
            raise

    async def history(self, namespace: str, name: str, after: int = 0) -> list[Commit]:
        self.loaded_after.append(after)
        return await super().history(namespace, name, after)


def observe(cid: str, seen: str) -> ObserveDeployment:
    return ObserveDeployment(id=cid, at=AT, dgd_name="w-dgd", observed=seen, replicas=1,  # type: ignore[arg-type]
                             available_replicas=1 if seen == "successful" else 0)  # fmt: skip


async def deploying(store: InMemoryEventStore, handler: CommandHandler) -> tuple[str, Loaded]:
    out = await handler.handle("ns", "w", apply("r1"))
    assert out.uid is not None
    uid = out.uid
    await handler.handle("ns", "w", StartProfiling(id="s", at=AT, generation=1, job_name="j"))
    dgd = {"kind": "DynamoGraphDeployment", "metadata": {"name": "w-dgd"}}
    result = ReportProfilingResult(id="res", at=AT, generation=1, dgd_name="w-dgd",
                                   selected_config=dgd, message="ok")  # fmt: skip
    assert (await handler.handle("ns", "w", result)).events[-1] == "DeploymentStarted"
    held = handler.states.get("ns", "w")
    assert held is not None and held.state.phase == "Deploying"
    return uid, held


async def test_a_stale_known_state_conflicts_is_brought_up_to_date_and_decided_again() -> None:
    store = ConflictCountingStore()
    uid, held = await deploying(store, CommandHandler(store))
    # another replica records that the DGD was created while the reactor still holds `held`
    assert (await CommandHandler(store).handle("ns", "w", observe("o1", "pending"))).events == (
        "DeploymentCreated",
        "DeploymentObserved",
    )
    reactor_side = CommandHandler(store)
    out = await reactor_side.handle(
        "ns", "w", observe("o2", "successful"), expected_uid=uid, known=held
    )
    assert out.status == "accepted" and out.events == ("DeploymentReady",)  # not Created twice
    assert store.conflicts == 1
    assert store.loaded_after[-1] == held.version  # only the commits it lacked were read
    types = [e.type for c in await store.history("ns", "w") for e in c.envelopes]
    assert types.count("DeploymentCreated") == 1


async def test_a_decision_retried_on_the_version_it_was_made_on_is_stored_once() -> None:
    store = ConflictCountingStore()
    uid, held = await deploying(store, CommandHandler(store))
    first = await CommandHandler(store).handle("ns", "w", observe("o1", "successful"))
    assert first.events == ("DeploymentCreated", "DeploymentReady")
    # a replica that holds the state `first` was decided on decides it again (a lost ack)
    again = await CommandHandler(store).handle(
        "ns", "w", observe("o1", "successful"), expected_uid=uid, known=held
    )
    assert again.resource_version == first.resource_version
    types = [e.type for c in await store.history("ns", "w") for e in c.envelopes]
    assert types.count("DeploymentReady") == 1
