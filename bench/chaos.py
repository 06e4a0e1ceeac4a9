"""Chaos suite: kill -9 of the service and of NATS, racing replicas and a fuzzer, each ending with
the invariant check of tests/invariants.py. Run on demand (not part of pytest):

    uv run python bench/chaos.py                      # every scenario, modest counts (~3 min)
    uv run python bench/chaos.py --full               # the issue's counts (50 service kills, ...)
    uv run python bench/chaos.py --scenario fuzz --fuzz 20000 --seed 7

Scenarios (each on its own fresh NATS in a temporary directory; the service is `python -m dgdr up
--no-embedded --server URL` as a subprocess):
- service-kill: SIGKILL of the service at random moments (start-up included) while a load
  applies, changes and deletes DGDRs; restarted each time;
- nats-kill: SIGKILL of a single nats-server under load, restarted on the same store;
- cluster-kill: a 3-node cluster with --replicas 3, SIGKILL of the DGDR_EVENTS stream leader's
  server under load, restarted later;
- race: two service replicas with applies, spec changes and deletes of the same names;
- fuzz: malformed requests and events (bench/chaos_fuzz.py), then a normal apply must be answered.

The phase each DGDR must end in follows from its outcomes (bench/chaos_support.py). The last line
is the summary; the exit code is 1 when any invariant was violated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.chaos_fuzz import FuzzResult, fuzz_events, fuzz_requests  # noqa: E402
from bench.chaos_support import (  # noqa: E402
    Load,
    Outcomes,
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

SCENARIOS = ("service-kill", "nats-kill", "cluster-kill", "race", "fuzz")


@dataclass
class Totals:
    counts: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def add_load(self, load: Load) -> None:
        self.counts.update(load.counts)


async def finish(
    scenario: str, nc_servers: list[str], outcomes: Outcomes, expected: dict[str, str | None],
    totals: Totals, settle: float = 90.0, drain: float = 60.0,
) -> None:  # fmt: skip
    """Wait for convergence (`settle` s) and quiescence (`drain` s), then check every invariant."""
    assert outcomes.nc is not None
    nc = outcomes.nc
    if not await converged(nc, expected, settle):
        totals.violations.append(f"{scenario}: not every DGDR reached its phase in {settle:.0f} s")
    if not await invariants.quiescent(nc.jetstream(), drain):
        totals.violations.append(f"{scenario}: the service's consumers kept a backlog")
    report = await invariants.check(nc, expected)
    totals.counts["damaged"] += len(report.damaged)
    totals.counts["events"] += report.events
    totals.violations.extend(f"{scenario}: {v}" for v in report.violations)
    totals.counts["dead_lettered"] += await _stream_messages(nc, "DGDR_DEADLETTER")
    totals.counts["quarantined"] += await _stream_messages(nc, "QUARANTINE")


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


async def _stream_messages(nc: object, contains: str) -> int:
    js = nc.jetstream()  # type: ignore[attr-defined]
    total = 0
    for info in await js.streams_info():
        if contains in info.config.name:
            total += int(info.state.messages)
    return total


def _load(outcomes: Outcomes, rng: random.Random, prefix: str, names: int, ops: int) -> Load:
    return Load(outcomes, rng, [f"{prefix}{i:03d}" for i in range(names)], ops_per_name=ops)


def _expectations(load: Load, totals: Totals) -> dict[str, str | None]:
    expected, unknown = load.expected()
    totals.counts["no_outcome_names"] += unknown
    return expected


async def service_kill(base: Path, rng: random.Random, kills: int, names: int, t: Totals) -> None:
    server = SingleNats(base / "nats")
    await server.start()
    service = ServiceProcess(server.url, base / "service.log")
    outcomes = Outcomes()
    try:
        async with supervised("service-kill", [service], t):
            service.start()
            nc = await outcomes.connect([server.url])
            load = _load(outcomes, rng, "sk", names, 4)
            running = asyncio.create_task(load.run(nc))
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
            await running
            t.add_load(load)
            await finish("service-kill", [server.url], outcomes, _expectations(load, t), t)
    finally:
        service.stop()
        if outcomes.nc:
            await outcomes.nc.close()
        server.kill()


async def _until_up(service: ServiceProcess, ups: int, timeout: float = 30.0) -> None:
    """Wait (at most `timeout` s) until the service's log says it is up once more than `ups`."""
    for _ in range(int(timeout / 0.05)):
        if service.times_up() != ups:
            return
        await asyncio.sleep(0.05)


async def nats_kill(base: Path, rng: random.Random, kills: int, names: int, t: Totals) -> None:
    server = SingleNats(base / "nats")
    await server.start()
    service = ServiceProcess(server.url, base / "service.log")
    outcomes = Outcomes()
    try:
        async with supervised("nats-kill", [service], t):
            service.start()
            nc = await outcomes.connect([server.url])
            load = _load(outcomes, rng, "nk", names, 3)
            running = asyncio.create_task(load.run(nc))
            for _ in range(kills):
                await asyncio.sleep(rng.uniform(1.0, 3.0))
                server.kill()
                t.counts["nats_kills"] += 1
                await asyncio.sleep(rng.uniform(0.2, 1.5))
                await server.start()
            await running
            t.add_load(load)
            await finish("nats-kill", [server.url], outcomes, _expectations(load, t), t)
    finally:
        service.stop()
        if outcomes.nc:
            await outcomes.nc.close()
        server.kill()


async def cluster_kill(base: Path, rng: random.Random, kills: int, names: int, t: Totals) -> None:
    cluster = LocalCluster(base / "cluster")
    await cluster.start()
    service = ServiceProcess(cluster.url, base / "service.log", replicas=3)
    outcomes = Outcomes()
    try:
        async with supervised("cluster-kill", [service], t):
            service.start()
            nc = await outcomes.connect(cluster.urls)
            await invariants_ready(nc)
            load = _load(outcomes, rng, "ck", names, 3)
            running = asyncio.create_task(load.run(nc))
            for _ in range(kills):
                await asyncio.sleep(rng.uniform(1.0, 3.0))
                victim = cluster.node_named(await stream_leader(nc, s.EVENTS_STREAM))
                cluster.kill(victim)
                t.counts["nats_kills"] += 1
                t.counts["leader_kills"] += 1
                await asyncio.sleep(rng.uniform(1.0, 3.0))
                await cluster.restart(victim)
            await running
            t.add_load(load)
            await finish("cluster-kill", cluster.urls, outcomes, _expectations(load, t), t, 120)
    finally:
        service.stop()
        if outcomes.nc:
            await outcomes.nc.close()
        await cluster.stop()


async def invariants_ready(nc: object, timeout: float = 60.0) -> None:
    """Wait until the service has created its layout (the status bucket exists)."""
    js = nc.jetstream()  # type: ignore[attr-defined]
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
    server = SingleNats(base / "nats")
    await server.start()
    replicas = [ServiceProcess(server.url, base / f"replica{i}.log") for i in (1, 2)]
    outcomes = Outcomes()
    try:
        async with supervised("race", replicas, t):
            for replica in replicas:
                replica.start()
            nc = await outcomes.connect([server.url])
            # Few names, many requests each, all at once: both replicas take requests of one name.
            load = Load(outcomes, rng, [f"rc{i:02d}" for i in range(names)], ops_per_name=3)
            await invariants_ready(nc)
            burst = [load.run(nc, first=None) for _ in range(4)]
            await asyncio.gather(*burst)
            t.add_load(load)
            await finish("race", [server.url], outcomes, _expectations(load, t), t)
    finally:
        for replica in replicas:
            replica.stop()
        if outcomes.nc:
            await outcomes.nc.close()
        server.kill()


async def fuzz(base: Path, rng: random.Random, count: int, t: Totals) -> None:
    server = SingleNats(base / "nats")
    await server.start()
    service = ServiceProcess(server.url, base / "service.log")
    outcomes = Outcomes()
    result = FuzzResult()
    try:
        async with supervised("fuzz", [service], t):
            service.start()
            nc = await outcomes.connect([server.url])
            victims: dict[str, str] = {}
            for name in ("fe0", "fe1", "fe2"):
                request_id = f"victim-{name}"
                await publish_request(
                    nc, s.request_subject("default", name), _body(name), request_id
                )
                outcome = await outcomes.wait(request_id, 60)
                if outcome and outcome.get("uid"):
                    victims[name] = str(outcome["uid"])
            await fuzz_events(nc, rng, victims, result)
            await fuzz_requests(nc, rng, count, [f"fz{i:02d}" for i in range(50)], result)
            t.counts["fuzzed"] += sum(result.published.values()) + sum(
                result.refused_by_nats.values()
            )
            t.counts["fuzzed_events"] += result.events_published
            t.counts["refused_by_nats"] += sum(result.refused_by_nats.values())
            # Liveness: a normal apply after all of it is answered, and deploys.
            probe_id = "after-fuzz"
            await publish_request(
                nc, s.request_subject("default", "alive"), _body("alive"), probe_id
            )
            alive = await outcomes.wait(probe_id, 30) is not None
            if not alive:
                t.violations.append("fuzz: a normal apply after the fuzz got no answer in 30 s")
            wait = 60.0 if alive else 5.0  # a stopped service will not catch up: don't wait long
            await invariants.quiescent(nc.jetstream(), wait)
            answered = Counter(
                outcomes.by_id[i]["status"] for i in result.with_id if i in outcomes.by_id
            )
            unanswered = Counter(
                case for i, case in result.with_id.items() if i not in outcomes.by_id
            )
            t.counts.update({f"fuzz_{k}": v for k, v in answered.items()})
            t.counts["fuzz_unanswered"] += sum(unanswered.values())
            if unanswered:
                t.violations.append(f"fuzz: requests never answered, by case: {dict(unanswered)}")
            dead = await _stream_messages(nc, "DGDR_DEADLETTER")
            expected: dict[str, str | None] = {s.status_key("default", "alive"): "Deployed"}
            await finish("fuzz", [server.url], outcomes, expected, t, wait, wait)
            if dead < result.without_id:
                t.violations.append(
                    f"fuzz: {result.without_id} requests had no request id, {dead} dead letters"
                )
    finally:
        service.stop()
        if outcomes.nc:
            await outcomes.nc.close()
        server.kill()


def _body(name: str) -> bytes:
    import json

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
    c = totals.counts
    print(
        f"chaos seed={args.seed}: kills service={c['service_kills']} "
        f"(in start-up {c['startup_kills']}) nats={c['nats_kills']} "
        f"(stream leader {c['leader_kills']}); applies={c['applies']} deletes={c['deletes']} "
        f"accepted={c['accepted']} invalid={c['invalid']} rejected={c['rejected']} "
        f"unanswered={c['unanswered'] + c['fuzz_unanswered']}; fuzzed requests={c['fuzzed']} "
        f"(refused by NATS {c['refused_by_nats']}, answered accepted/invalid/rejected "
        f"{c['fuzz_accepted']}/{c['fuzz_invalid']}/{c['fuzz_rejected']}) "
        f"events={c['fuzzed_events']}; dead-lettered={c['dead_lettered']} "
        f"quarantined={c['quarantined']} damaged DGDRs={c['damaged']}; "
        f"violations={len(totals.violations)}; "
        + " ".join(f"{k}={v:.0f}s" for k, v in totals.timings.items())
    )
    return 1 if totals.violations else 0


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
