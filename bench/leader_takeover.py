"""Benchmark: how long a standby takes to take the adapter's Lease over once the leader stops,
against the baseline the design allows, both measured in the same run.

    uv run python bench/leader_takeover.py [--trials 5] [--lease-duration 1] [--renew-every 0.2]

One in-process API server emulator. A standby may take the Lease only after it has seen the
holder's record unchanged for `lease_duration` (local monotonic clock), and it looks every
`renew_every` seconds, each look costing one Lease read. So the floor is the lease duration, and
what the elector adds on top is measured in *poll cycles*: one `renew_every` sleep plus one Lease
read, timed here on this machine first (the baseline). The goal is a takeover within the lease
duration plus two poll cycles (one to see the last renewal, one to see it expire), i.e. an
overhead ratio <= 2; the test this came from allowed about five (lease + 1 s at 0.2 s per cycle).
Ratios, not seconds, are what carry between machines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from kubernetes_asyncio import client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dgdr.app.logs import configure  # noqa: E402
from k8s.emulator import Emulator  # noqa: E402
from k8s.leader import LeaderElector  # noqa: E402


async def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition did not hold in time")
        await asyncio.sleep(0.002)


async def poll_cycle(api: client.ApiClient, lease: str, renew_every: float, n: int = 20) -> float:
    """Seconds one standby look takes here: a Lease read plus the sleep between looks."""
    leases = client.CoordinationV1Api(api)
    started = time.monotonic()
    for _ in range(n):
        await leases.read_namespaced_lease(lease, "default")
        await asyncio.sleep(renew_every)
    return (time.monotonic() - started) / n


async def trial(
    api: client.ApiClient, lease: str, duration: int, renew_every: float
) -> tuple[float, float]:
    """(takeover seconds, standby poll cycle seconds) for one leader stopping."""

    async def lead() -> None:
        await asyncio.Event().wait()

    electors = [
        LeaderElector(
            api, identity=who, name=lease, lease_duration=duration, renew_every=renew_every
        )
        for who in ("a", "b")
    ]
    tasks = [asyncio.create_task(e.run(lead)) for e in electors]
    try:
        await wait_for(lambda: any(e.is_leader for e in electors))
        leader = next(e for e in electors if e.is_leader)
        standby = next(e for e in electors if e is not leader)
        await wait_for(lambda: standby.holder == leader.identity)
        cycle = await poll_cycle(api, lease, renew_every)
        leader_task = tasks[electors.index(leader)]
        stopped = time.monotonic()
        leader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leader_task
        await wait_for(lambda: standby.is_leader)
        return time.monotonic() - stopped, cycle
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def main(trials: int, duration: int, renew_every: float) -> None:
    emulator = Emulator()
    await emulator.start()
    try:
        async with client.ApiClient(client.Configuration(host=emulator.url)) as api:
            results = [
                await trial(api, f"bench-lease-{i}", duration, renew_every) for i in range(trials)
            ]
    finally:
        await emulator.stop()
    takeovers = [t for t, _ in results]
    cycle = statistics.median(c for _, c in results)
    takeover = statistics.median(takeovers)
    overhead = (takeover - duration) / cycle
    print(f"lease duration {duration} s, renew every {renew_every} s, {trials} trials")
    print(f"baseline: one standby poll cycle (Lease read + sleep) {cycle * 1000:.0f} ms")
    print(
        "takeover after the leader stops: median "
        f"{takeover:.3f} s [{min(takeovers):.3f}-{max(takeovers):.3f}]"
    )
    print(f"takeover / lease duration: {takeover / duration:.2f}x")
    verdict = "ok" if overhead <= 2 else "SLOWER THAN THE GOAL"
    print(f"overhead beyond the lease: {overhead:.2f} poll cycles (goal <= 2): {verdict}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--lease-duration", type=int, default=1)
    parser.add_argument("--renew-every", type=float, default=0.2)
    args = parser.parse_args()
    configure("WARNING")
    asyncio.run(main(args.trials, args.lease_duration, args.renew_every))
