"""The command handler on the in-memory store: caches are hints, the store decides."""

from __future__ import annotations

from dgdr.app.handler import CommandHandler
from dgdr.domain.model import Apply, Delete, StartProfiling
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


async def test_the_edge_can_name_the_models_it_serves() -> None:
    store = InMemoryEventStore()
    known = ["Qwen/Qwen3-0.6B", "Qwen/Qwen3-8B"]
    cmd = Apply(id="r1", at=AT, spec={**SPEC, "model": "acme/x"}, known_models=known)
    out = await CommandHandler(store).handle("ns", "m", cmd)
    assert out.status == "invalid" and out.errors[0]["field"] == "spec.model"
    assert "Qwen/Qwen3-8B" in out.errors[0]["message"]
    ok = Apply(id="r2", at=AT, spec=SPEC, known_models=known)
    assert (await CommandHandler(store).handle("ns", "m", ok)).events == (
        "SpecUpdated",
        "Validated",
    )
