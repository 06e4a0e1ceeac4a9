"""Chaos suite: kill -9 of the service and of NATS, racing replicas and a fuzzer, each ending with
the invariant check of tests/invariants.py. Run on demand (not part of pytest):

    uv run python bench/chaos.py                      # every scenario, modest counts (~3 min)
    uv run python bench/chaos.py --full               # the issue's counts (50 service kills, ...)
    uv run python bench/chaos.py --scenario fuzz --fuzz 20000 --seed 7

Scenarios (each on its own fresh NATS in a temporary directory, with the roles' authorization on as
`dgdr up` has it by default; the service is `python -m dgdr --context service.json up --no-embedded`
as a subprocess, the load and the fuzzer act as `client`, the invariant check as `admin`):
- service-kill: SIGKILL of the service at random moments (start-up included) while a load
  applies, changes and deletes DGDRs; restarted each time;
- nats-kill: SIGKILL of a single nats-server under load, restarted on the same store;
- cluster-kill: a 3-node cluster with --replicas 3, SIGKILL of the DGDR_EVENTS stream leader's
  server under load, restarted later;
- race: two service replicas with applies, spec changes and deletes of the same names;
- fuzz: forged events as client (refused by NATS) and as admin (quarantined: the victim shows
  HistoryIntact False, a bystander stays Deployed, a delete of a victim is answered), malformed
  requests (bench/chaos_fuzz.py), each answered or dead-lettered; then a normal apply must be
  answered and deploy.

The phase each DGDR must end in follows from its outcomes (bench/chaos_support.py). The last line
is the summary; the exit code is 1 when any invariant was violated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.chaos_fuzz import FuzzResult, fuzz_events, fuzz_requests  # noqa: E402
from bench.chaos_support import (  # noqa: E402
    Load,
    Outcomes,
    Roles,
    ServiceProcess,
    SingleNats,
    converged,
    publish_request,
    supervise,
)
from events import subjects as s  # noqa: E402
from tests import invariants  # noqa: E402
from tests.nats_cluster import LocalCluster, stream_leader  # noqa: E402
from tests.support import manifest  # noqa: E402

DLQ = s.DEAD_LETTER_SUBJECT

SCENARIOS = ("service-kill", "nats-kill", "cluster-kill", "race", "fuzz")


@dataclass
class Totals:
    counts: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def add_load(self, load: Load) -> None:
        self.counts.update(load.counts)


async def finish(
    scenario: str, admin: Client, expected: dict[str, str | None], totals: Totals,
    settle: float = 90.0, drain: float = 60.0,
) -> None:  # fmt: skip
    """Wait for convergence (`settle` s) and quiescence (`drain` s), then check every invariant
    (as admin: the check reads every stream and rebuilds the projection)."""
    if not await converged(admin, expected, settle):
        totals.violations.append(f"{scenario}: not every DGDR reached its phase in {settle:.0f} s")
    if not await invariants.quiescent(admin.jetstream(), drain):
        totals.violations.append(f"{scenario}: the service's consumers kept a backlog")
    report = await invariants.check(admin, expected)
    totals.counts["damaged"] += len(report.damaged)
    totals.counts["events"] += report.events
    totals.counts["conflicts"] += report.documented_conflicts
    totals.violations.extend(f"{scenario}: {v}" for v in report.violations)
    dead = await dead_letters(admin)
    totals.counts["dead_lettered"] += dead.requests
    totals.counts["quarantined"] += dead.events


@dataclass
class DeadLetters:
    requests: int  # on dgdr.dlq.req
    events: int  # quarantine entries, on dgdr.dlq.evt.<seq>


async def dead_letters(admin: Client) -> DeadLetters:
    js = admin.jetstream()
    try:
        info = await js.stream_info(s.DEAD_LETTER_STREAM, subjects_filter=f"{DLQ}.>")
    except NotFoundError:
        return DeadLetters(0, 0)
    by_subject = info.state.subjects or {}
    requests = int(by_subject.get(f"{DLQ}.req", 0))
    events = sum(int(n) for k, n in by_subject.items() if k.startswith(f"{DLQ}.evt."))
    return DeadLetters(requests, events)


async def dead_lettered_request_ids(admin: Client, expected: int) -> tuple[set[str], int]:
    """(the first 36 characters of every dead-lettered request's id, how many had no id)."""
    ids: set[str] = set()
    without = 0
    if not expected:
        return ids, without
    sub = await admin.jetstream().subscribe(
        f"{DLQ}.req", ordered_consumer=True, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    try:
        for _ in range(expected):
            msg = await sub.next_msg(timeout=10)
            request_id = (msg.headers or {}).get("Dgdr-Request-Id")
            if request_id:
                ids.add(request_id[:36])
            else:
                without += 1
    finally:
        await sub.unsubscribe()
    return ids, without


@contextlib.asynccontextmanager
async def supervised(
    scenario: str, services: list[ServiceProcess], t: Totals
) -> AsyncIterator[None]:
    """Restart services that exit on their own while the scenario runs; each exit is a violation."""
    exits: list[str] = []
    task = asyncio.create_task(supervise(services, exits))
    try:
        yield
    finally:
        task.cancel()
        t.counts["service_exits"] += len(exits)
        t.violations.extend(f"{scenario}: {e}" for e in exits)


@dataclass
class Single:
    """One secured nats-server, the roles, and an admin connection (set by `single`)."""

    server: SingleNats
    roles: Roles
    admin: Client


@contextlib.asynccontextmanager
async def single(base: Path) -> AsyncIterator[Single]:
    server = SingleNats(base / "nats")
    roles = Roles.provision(base / "auth", [server.url])
    server.secure(roles)
    await server.start()
    admin = await roles.connect("admin")
    try:
        yield Single(server, roles, admin)
    finally:
        await admin.close()
        server.kill()


def _load(outcomes: Outcomes, rng: random.Random, prefix: str, names: int, ops: int) -> Load:
    return Load(outcomes, rng, [f"{prefix}{i:03d}" for i in range(names)], ops_per_name=ops)


def _expectations(load: Load, totals: Totals) -> dict[str, str | None]:
    expected, unknown = load.expected()
    totals.counts["no_outcome_names"] += unknown
    return expected


async def service_kill(base: Path, rng: random.Random, kills: int, names: int, t: Totals) -> None:
    async with single(base) as nats_:
        service = ServiceProcess(nats_.roles.contexts["service"], base / "service.log")
        outcomes = Outcomes()
        try:
            async with supervised("service-kill", [service], t):
                service.start()
                nc = await outcomes.connect(nats_.roles)
                load = _load(outcomes, rng, "sk", names, 4)
                faults_done = asyncio.Event()
                running = asyncio.create_task(load.run(nc, until=faults_done))
                try:
                    for _ in range(kills):
                        ups = service.times_up()
                        if rng.random() < 0.3:  # during start-up (it takes seconds here)
                            await asyncio.sleep(rng.uniform(0.2, 2.5))
                        else:  # once it is up, at a random moment of its work
                            await _until_up(service, ups)
                            await asyncio.sleep(rng.uniform(0.0, 2.0))
                        service.kill()
                        t.counts["service_kills"] += 1
                        t.counts["startup_kills"] += service.times_up() == ups
                        service.start()
                finally:
                    faults_done.set()
                await running
                t.add_load(load)
                await finish("service-kill", nats_.admin, _expectations(load, t), t)
        finally:
            service.stop()
            await outcomes.close()


async def _until_up(service: ServiceProcess, ups: int, timeout: float = 30.0) -> None:
    """Wait (at most `timeout` s) until the service's log says it is up once more than `ups`."""
    for _ in range(int(timeout / 0.05)):
        if service.times_up() != ups:
            return
        await asyncio.sleep(0.05)


async def nats_kill(base: Path, rng: random.Random, kills: int, names: int, t: Totals) -> None:
    async with single(base) as nats_:
        service = ServiceProcess(nats_.roles.contexts["service"], base / "service.log")
        outcomes = Outcomes()
        try:
            async with supervised("nats-kill", [service], t):
                service.start()
                nc = await outcomes.connect(nats_.roles)
                load = _load(outcomes, rng, "nk", names, 3)
                faults_done = asyncio.Event()
                running = asyncio.create_task(load.run(nc, until=faults_done))
                try:
                    for _ in range(kills):
                        await asyncio.sleep(rng.uniform(1.0, 3.0))
                        nats_.server.kill()
                        t.counts["nats_kills"] += 1
                        await asyncio.sleep(rng.uniform(0.2, 1.5))
                        await nats_.server.start()
                finally:
                    faults_done.set()
                await running
                t.add_load(load)
                await finish("nats-kill", nats_.admin, _expectations(load, t), t)
        finally:
            service.stop()
            await outcomes.close()


async def cluster_kill(base: Path, rng: random.Random, kills: int, names: int, t: Totals) -> None:
    cluster = LocalCluster(base / "cluster")
    roles = Roles.provision(base / "auth", cluster.urls)
    cluster.secure(roles.authorization, "admin", roles.passwords["admin"])
    await cluster.start()
    service = ServiceProcess(roles.contexts["service"], base / "service.log", replicas=3)
    outcomes = Outcomes()
    admin = await roles.connect("admin")
    try:
        async with supervised("cluster-kill", [service], t):
            service.start()
            nc = await outcomes.connect(roles)
            await invariants_ready(admin)
            load = _load(outcomes, rng, "ck", names, 3)
            faults_done = asyncio.Event()
            running = asyncio.create_task(load.run(nc, until=faults_done))
            try:
                for _ in range(kills):
                    await asyncio.sleep(rng.uniform(1.0, 3.0))
                    victim = cluster.node_named(await stream_leader(admin, s.EVENTS_STREAM))
                    cluster.kill(victim)
                    t.counts["nats_kills"] += 1
                    t.counts["leader_kills"] += 1
                    await asyncio.sleep(rng.uniform(1.0, 3.0))
                    await cluster.restart(victim)
            finally:
                faults_done.set()
            await running
            t.add_load(load)
            await finish("cluster-kill", admin, _expectations(load, t), t, 120)
    finally:
        service.stop()
        await outcomes.close()
        await admin.close()
        await cluster.stop()


async def invariants_ready(nc: Client, timeout: float = 60.0) -> None:
    """Wait until the service has created its layout (the status bucket exists)."""
    js = nc.jetstream()
    deadline = time.monotonic() + timeout
    while True:
        try:
            await js.stream_info(f"KV_{s.STATUS_BUCKET}")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def race(base: Path, rng: random.Random, names: int, t: Totals) -> None:
    async with single(base) as nats_:
        context = nats_.roles.contexts["service"]
        replicas = [ServiceProcess(context, base / f"replica{i}.log") for i in (1, 2)]
        outcomes = Outcomes()
        try:
            async with supervised("race", replicas, t):
                for replica in replicas:
                    replica.start()
                nc = await outcomes.connect(nats_.roles)
                # Few names, many requests each, all at once: both replicas take requests of a name.
                load = Load(outcomes, rng, [f"rc{i:02d}" for i in range(names)], ops_per_name=3)
                await invariants_ready(nats_.admin)
                await asyncio.gather(*(load.run(nc, first=None) for _ in range(4)))
                t.add_load(load)
                t.counts["race_runs"] += 1
                await finish("race", nats_.admin, _expectations(load, t), t)
        finally:
            for replica in replicas:
                replica.stop()
            await outcomes.close()


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


async def run_scenario(
    scenario: str, where: Path, rng: random.Random, args: argparse.Namespace, totals: Totals
) -> None:
    if scenario == "service-kill":
        await service_kill(where, rng, args.service_kills, args.dgdrs, totals)
    elif scenario == "nats-kill":
        await nats_kill(where, rng, args.nats_kills, args.dgdrs, totals)
    elif scenario == "cluster-kill":
        await cluster_kill(where, rng, args.leader_kills, args.dgdrs, totals)
    elif scenario == "race":
        await race(where, rng, 10, totals)
    else:
        await fuzz(where, rng, args.fuzz, totals)


async def main(args: argparse.Namespace) -> int:
    from dgdr.app.logs import configure

    configure("ERROR")
    rng = random.Random(args.seed)
    totals = Totals()
    chosen = args.scenario or list(SCENARIOS)
    keep = Path(args.keep) if args.keep else None
    with tempfile.TemporaryDirectory(prefix="dgdr-chaos-") as tmp:
        base = keep or Path(tmp)
        for scenario in chosen:
            started = time.monotonic()
            where = base / scenario
            where.mkdir(parents=True, exist_ok=True)
            try:
                await run_scenario(scenario, where, rng, args, totals)
            except Exception as exc:  # a scenario that cannot finish is a finding, not the end
                totals.violations.append(
                    f"{scenario}: did not finish: {type(exc).__name__} {str(exc)[:200]}"
                )
            totals.timings[scenario] = time.monotonic() - started
            print(f"{scenario}: {totals.timings[scenario]:.1f} s", flush=True)
    for violation in totals.violations:
        print(f"VIOLATION {violation}")
    print(summary(args.seed, totals))
    return 1 if totals.violations else 0


def summary(seed: int, totals: Totals) -> str:
    """The one-line summary (README, "Chaos suite", says what each count means)."""
    c = totals.counts
    return (
        f"chaos seed={seed}: kills service={c['service_kills']} "
        f"(in start-up {c['startup_kills']}) nats={c['nats_kills']} "
        f"(stream leader {c['leader_kills']}) race runs={c['race_runs']}; "
        f"applies={c['applies']} deletes={c['deletes']} accepted={c['accepted']} "
        f"invalid={c['invalid']} rejected={c['rejected']} unanswered={c['unanswered']}; "
        f"fuzzed requests={c['fuzzed']} (refused by NATS {c['refused_by_nats']}, answered "
        f"accepted/invalid/rejected {c['fuzz_accepted']}/{c['fuzz_invalid']}/"
        f"{c['fuzz_rejected']}, dead-lettered {c['fuzz_dead_lettered']}, neither "
        f"{c['fuzz_unanswered']}); forged events as client={c['forged_as_client']} "
        f"(refused {c['forged_refused']}) as admin={c['forged_as_admin']}; "
        f"dead letters={c['dead_lettered']} quarantined={c['quarantined']} "
        f"damaged DGDRs={c['damaged']} DeploymentConflict on a kept DGD={c['conflicts']}; "
        f"events={c['events']}; violations={len(totals.violations)}; "
        + " ".join(f"{k}={v:.0f}s" for k, v in totals.timings.items())
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="repeatable")
    parser.add_argument("--full", action="store_true", help="the issue's counts")
    parser.add_argument("--service-kills", type=int, default=None, help="default 10 (full 50)")
    parser.add_argument("--nats-kills", type=int, default=None, help="single server; 2 (full 3)")
    parser.add_argument("--leader-kills", type=int, default=None, help="cluster; 1 (full 2)")
    parser.add_argument("--fuzz", type=int, default=None, help="requests; 2000 (full 10000)")
    parser.add_argument("--dgdrs", type=int, default=None, help="names per load; 30 (full 100)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", help="keep logs and stores in this directory")
    args = parser.parse_args(argv)
    full = args.full
    defaults = {
        "service_kills": (10, 50),
        "nats_kills": (2, 3),
        "leader_kills": (1, 2),
        "fuzz": (2000, 10000),
        "dgdrs": (30, 100),
    }
    for key, (modest, issue) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, issue if full else modest)
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
