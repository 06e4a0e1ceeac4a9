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

Modules: this one (the kill and race scenarios, the summary, the options), bench/chaos_check.py
(totals, the secured server, `finish` and the invariant check), bench/chaos_support.py (roles,
processes, load, the phase each DGDR must end in), bench/chaos_fuzz.py (the fuzzer and its scenario).
The last line is the summary; the exit code is 1 when any invariant was violated.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.chaos_check import (  # noqa: E402
    Totals,
    finish,
    invariants_ready,
    single,
    supervised,
)
from bench.chaos_fuzz import fuzz  # noqa: E402
from bench.chaos_support import Load, Outcomes, Roles, ServiceProcess  # noqa: E402
from events import subjects as s  # noqa: E402
from tests.nats_cluster import LocalCluster, stream_leader  # noqa: E402

SCENARIOS = ("service-kill", "nats-kill", "cluster-kill", "race", "fuzz")


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
                load.dump(base / "requests.jsonl")
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
                load.dump(base / "requests.jsonl")
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
            load.dump(base / "requests.jsonl")
            await finish("cluster-kill", admin, _expectations(load, t), t, 120)
    finally:
        service.stop()
        await outcomes.close()
        await admin.close()
        await cluster.stop()


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
                load.dump(base / "requests.jsonl")
                t.counts["race_runs"] += 1
                await finish("race", nats_.admin, _expectations(load, t), t)
        finally:
            for replica in replicas:
                replica.stop()
            await outcomes.close()


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
        f"invalid={c['invalid']} rejected={c['rejected']} unanswered={c['unanswered']} "
        f"(names not judged {c['no_outcome_names']}); "
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
