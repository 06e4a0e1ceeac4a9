"""The chaos suite's fuzzer: malformed requests on dgdr.req.* and malformed events on dgdr.evt.*.

Requests, sent as the `client` role: random bytes, JSON nested 1,000 deep (in the body and in
`overrides.dgd`), request ids of 5,000 characters (each unique, so JetStream does not deduplicate
them), wrong types in the spec (`autoApply: 'yes'`, `totalGpus: '8'`, `concurrency: 2.5`), ~990 KB
manifests, 2 MB payloads (above the server's max payload: refused before they reach the service,
counted), no `Nats-Msg-Id` header, bodies that are not objects, unknown actions, wrong kind or
apiVersion, names that do not match the subject.

Events: garbage bytes, JSON without events, and a forged `DeploymentReady` with no concurrency
header and a payload the domain refuses, on the subjects of a few victim DGDRs, sent twice: as
`client` (NATS must refuse them: only `service` may publish on dgdr.evt.>; the subject's message
count is read before and after as `admin`, so a stored one is counted, not assumed away), then as
`admin` (stored: the service must quarantine each, once, and show the victim `HistoryIntact` False).

Nothing is assumed about what the service does with them: `FuzzResult` counts what was published,
what NATS refused, and (filled in from the outcomes) what was answered. `fuzz` is the chaos suite's
scenario: victims, forged events, requests, the accounting of answers and dead letters, and a normal
apply that must still be answered and deploy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats.errors
from nats.aio.client import Client

from bench.chaos_check import (
    Totals,
    dead_lettered_request_ids,
    dead_letters,
    finish,
    single,
    supervised,
)
from bench.chaos_support import Outcomes, ServiceProcess, converged, publish_request
from events import subjects as s
from tests import invariants
from tests.support import manifest

# Megabyte payloads are rare (each is stored): about 1 in 100 requests.
CASE_WEIGHTS = [
    ("bytes", 10), ("deep_body", 10), ("deep_overrides", 10), ("huge_id", 3),
    ("wrong_types", 10), ("big_manifest", 1), ("over_max_payload", 1), ("no_id", 10),
    ("not_object", 10), ("unknown_action", 10), ("wrong_kind", 10), ("name_mismatch", 10),
]  # fmt: skip
CASES = [case for case, _ in CASE_WEIGHTS]
DEEP = "__deep__"


def _with_deep(body: dict[str, Any], depth: int = 1000) -> bytes:
    """`body` as JSON with the string DEEP replaced by an object nested `depth` levels (built as
    text: json.dumps itself would hit the recursion limit)."""
    deep = '{"a":' * depth + "0" + "}" * depth
    return json.dumps(body).replace(json.dumps(DEEP), deep).encode()


def _request_case(rng: random.Random, name: str) -> tuple[str, bytes, str | None]:
    """(case, body, request id or None) for one malformed request."""
    case = rng.choices(CASES, weights=[w for _, w in CASE_WEIGHTS])[0]
    request_id: str | None = str(uuid.uuid4())
    body: Any
    if case == "bytes":
        return case, rng.randbytes(rng.randint(1, 300)), request_id
    if case == "deep_body":
        return case, _with_deep(manifest(name, workload=DEEP)), request_id
    if case == "deep_overrides":
        return case, _with_deep(manifest(name, overrides={"dgd": DEEP})), request_id
    if case == "huge_id":
        request_id = (str(uuid.uuid4()) + "x" * 5000)[:5000]  # unique in its first 36 chars
        body = manifest(name)
    elif case == "wrong_types":
        body = manifest(
            name,
            autoApply=rng.choice(["yes", 1, None]),
            hardware={"gpuSku": "h200_sxm", "totalGpus": rng.choice(["8", 1e9, 2.5, -1])},
            workload={"isl": 3000, "osl": 500, "concurrency": 2.5},
            sla={"ttft": rng.choice([1e40, "300", None]), "itl": 20},
        )
    elif case == "big_manifest":
        body = manifest(name)
        body["metadata"]["annotations"] = {"filler": "y" * 990_000}
    elif case == "over_max_payload":
        body = manifest(name)
        body["metadata"]["annotations"] = {"filler": "z" * 2_000_000}
    elif case == "no_id":
        request_id = None
        body = manifest(name)
    elif case == "not_object":
        body = rng.choice([[1, 2], 3, "text", None, True])
    elif case == "unknown_action":
        body = {"action": rng.choice(["explode", "", 7])}
    elif case == "wrong_kind":
        body = manifest(name)
        body[rng.choice(["kind", "apiVersion"])] = "Nope"
    else:  # name_mismatch
        body = manifest(name + "-other")
    return case, json.dumps(body).encode(), request_id


def garbage_events(rng: random.Random, uid: str, name: str) -> list[tuple[str, bytes]]:
    """Malformed commits for one victim DGDR's subject: (case, data)."""
    forged = {
        "events": [
            {
                "id": str(uuid.uuid4()),
                "type": "DeploymentReady",
                "schemaVersion": 1,
                "aggregate": {"namespace": "default", "name": name, "uid": uid},
                "time": "2026-01-01T00:00:00Z",
                "payload": {"replicas": "many"},
            }
        ]
    }
    return [
        ("garbage", rng.randbytes(64)),
        ("no_events", b'{"hello": "world"}'),
        ("forged", json.dumps(forged).encode()),
    ]


@dataclass
class FuzzResult:
    published: Counter[str] = field(default_factory=Counter)  # by case
    refused_by_nats: Counter[str] = field(default_factory=Counter)
    with_id: dict[str, str] = field(default_factory=dict)  # request id -> case
    without_id: int = 0
    events_as_client: int = 0  # forged events sent as client
    events_refused: int = 0  # ... that NATS refused (not stored)
    events_stored_by_client: int = 0  # ... that were stored anyway (a hole in the permissions)
    events_as_admin: int = 0  # forged events stored as admin (each must be quarantined)


async def fuzz_requests(
    nc: Client, rng: random.Random, count: int, names: list[str], result: FuzzResult
) -> None:
    js = nc.jetstream()
    for _ in range(count):
        name = rng.choice(names)
        case, body, request_id = _request_case(rng, name)
        headers = {"Nats-Msg-Id": request_id} if request_id else None
        try:
            await js.publish(
                s.request_subject("default", name),
                body,
                stream=s.REQUESTS_STREAM,
                headers=headers,
                timeout=5,
            )
        except (nats.errors.Error, TimeoutError):
            result.refused_by_nats[case] += 1
            continue
        result.published[case] += 1
        if request_id:
            result.with_id[request_id] = case
        else:
            result.without_id += 1


async def _messages_on(js: Any, subject: str) -> int:
    info = await js.stream_info(s.EVENTS_STREAM, subjects_filter=subject)
    return int(sum((info.state.subjects or {}).values()))


async def fuzz_events(
    client: Client,
    admin: Client,
    rng: random.Random,
    victims: dict[str, str],
    result: FuzzResult,
) -> None:
    """The malformed commits on each victim's events subject (name -> uid): first as `client`
    (each must be refused), then as `admin` (each is stored)."""
    cjs, ajs = client.jetstream(), admin.jetstream()
    for name, uid in victims.items():
        subject = s.events_subject("default", name, uid)
        cases = garbage_events(rng, uid, name)
        before = await _messages_on(ajs, subject)
        for _case, data in cases:
            result.events_as_client += 1
            # a refused publish is never acknowledged: it times out
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await cjs.publish(subject, data, stream=s.EVENTS_STREAM, timeout=2)
        stored = await _messages_on(ajs, subject) - before
        result.events_stored_by_client += stored
        result.events_refused += len(cases) - stored
        for _case, data in cases:
            await ajs.publish(subject, data, stream=s.EVENTS_STREAM)
            result.events_as_admin += 1


async def _apply(outcomes: Outcomes, nc: Client, name: str, request_id: str) -> dict | None:  # type: ignore[type-arg]
    await publish_request(nc, s.request_subject("default", name), _body(name), request_id)
    return await outcomes.wait(request_id, 60)


async def _status(admin: Client, name: str) -> dict | None:  # type: ignore[type-arg]
    kv = await admin.jetstream().key_value(s.STATUS_BUCKET)
    try:
        entry = await kv.get(s.status_key("default", name))
    except Exception:
        return None
    return json.loads(entry.value) if entry.value else None


def _history_damaged(obj: dict | None) -> bool:  # type: ignore[type-arg]
    conditions = (obj or {}).get("status", {}).get("conditions", [])
    return any(c["type"] == "HistoryIntact" and c["status"] == "False" for c in conditions)


async def _until(check: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.2)
    return False


async def fuzz(base: Path, rng: random.Random, count: int, t: Totals) -> None:
    async with single(base) as nats_:
        admin = nats_.admin
        service = ServiceProcess(nats_.roles.contexts["service"], base / "service.log")
        outcomes = Outcomes()
        result = FuzzResult()
        try:
            async with supervised("fuzz", [service], t):
                service.start()
                nc = await outcomes.connect(nats_.roles)
                await _fuzz_events(nc, admin, outcomes, rng, result, t)
                await fuzz_requests(nc, rng, count, [f"fz{i:02d}" for i in range(50)], result)
                t.counts["fuzzed"] += sum(result.published.values()) + sum(
                    result.refused_by_nats.values()
                )
                t.counts["refused_by_nats"] += sum(result.refused_by_nats.values())
                # Liveness: a normal apply after all of it is answered, and deploys.
                alive = await _apply(outcomes, nc, "alive", "after-fuzz") is not None
                if not alive:
                    t.violations.append("fuzz: a normal apply after the fuzz got no answer in 60 s")
                wait = 60.0 if alive else 5.0  # a stopped service will not catch up: don't wait
                await invariants.quiescent(admin.jetstream(), wait)
                await _account_requests(admin, outcomes, result, t)
                expected: dict[str, str | None] = {
                    s.status_key("default", "alive"): "Deployed",
                    s.status_key("default", "fe2"): "Deployed",
                }
                await finish("fuzz", admin, expected, t, wait, wait)
        finally:
            service.stop()
            await outcomes.close()


async def _fuzz_events(
    nc: Client, admin: Client, outcomes: Outcomes, rng: random.Random, result: FuzzResult,
    t: Totals,
) -> None:  # fmt: skip
    """Victims fe0 and fe1 get forged events (as client, then as admin); fe2 is a bystander.
    Then the damage must show on the victims only, and a delete of a victim must be answered."""
    victims: dict[str, str] = {}
    for name in ("fe0", "fe1", "fe2"):
        outcome = await _apply(outcomes, nc, name, f"victim-{name}")
        if outcome and outcome.get("uid"):
            victims[name] = str(outcome["uid"])
        else:
            t.violations.append(f"fuzz: the apply of {name} got no answer with a uid: {outcome}")
    expected: dict[str, str | None] = {s.status_key("default", n): "Deployed" for n in victims}
    if not await converged(admin, expected, 60):
        t.violations.append("fuzz: the victims did not deploy in 60 s before the forged events")
    bystander = victims.pop("fe2", None)
    await fuzz_events(nc, admin, rng, victims, result)
    t.counts["forged_as_client"] += result.events_as_client
    t.counts["forged_refused"] += result.events_refused
    t.counts["forged_as_admin"] += result.events_as_admin
    if result.events_stored_by_client:
        t.violations.append(
            f"fuzz: {result.events_stored_by_client} events forged as client were stored"
        )

    async def damage_shows() -> bool:
        return all([_history_damaged(await _status(admin, n)) for n in victims])

    if not await _until(damage_shows, 30):
        t.violations.append("fuzz: not every victim shows HistoryIntact False within 30 s")
    if bystander is not None:
        other = await _status(admin, "fe2")
        phase = (other or {}).get("status", {}).get("phase")
        if phase != "Deployed" or _history_damaged(other):
            t.violations.append(f"fuzz: the bystander fe2 was affected (phase {phase})")

    async def quarantined() -> bool:
        return (await dead_letters(admin)).events >= result.events_as_admin

    if not await _until(quarantined, 30):
        have = (await dead_letters(admin)).events
        t.violations.append(
            f"fuzz: {result.events_as_admin} events forged as admin, {have} quarantined"
        )
    if "fe1" in victims:
        delete_id = "delete-damaged-fe1"
        body = json.dumps({"action": "delete"}).encode()
        await publish_request(nc, s.request_subject("default", "fe1"), body, delete_id)
        if await outcomes.wait(delete_id, 30) is None:
            t.violations.append("fuzz: the delete of a DGDR with damaged history got no answer")


async def _account_requests(
    admin: Client, outcomes: Outcomes, result: FuzzResult, t: Totals
) -> None:
    """Each fuzzed request that reached the stream got an outcome or a dead-letter entry."""
    dead = await dead_letters(admin)
    ids, without = await dead_lettered_request_ids(admin, dead.requests)
    answered = Counter(outcomes.by_id[i]["status"] for i in result.with_id if i in outcomes.by_id)
    dropped = Counter(
        case for i, case in result.with_id.items() if i not in outcomes.by_id and i[:36] not in ids
    )
    t.counts.update({f"fuzz_{k}": v for k, v in answered.items()})
    t.counts["fuzz_dead_lettered"] += (
        sum(1 for i in result.with_id if i not in outcomes.by_id and i[:36] in ids) + without
    )
    t.counts["fuzz_unanswered"] += sum(dropped.values())
    if dropped:
        t.violations.append(
            f"fuzz: requests neither answered nor dead-lettered, by case: {dict(dropped)}"
        )
    if without < result.without_id:
        t.violations.append(
            f"fuzz: {result.without_id} requests had no request id, {without} dead letters"
        )


def _body(name: str) -> bytes:
    return json.dumps(manifest(name)).encode()
