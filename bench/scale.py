"""Benchmark: the service at 1k, 5k and 10k live DGDRs: memory, list, single read, restart.

    uv run python bench/scale.py [--levels 1000,5000,10000] [--inflight 64] [--reads 500]

One embedded nats-server and the service (`dgdr up --no-embedded`, every role, simulated cluster
with no rollout delay) in its own process, as deployed. At each level, DGDRs are applied through
`DgdrClient` (N in flight) until that many are Deployed, then it prints:

- service RSS (VmRSS of the service's process) and per DGDR; goal <= 200 MB at 10k;
- list: `DgdrClient.list(all_namespaces=True)` against a raw KV watch of every value of the
  status bucket, in the same run (best of 3 each); goal <= 2x raw;
- single read: `DgdrClient.get` p50/p99 against a raw `kv.get` of the same keys;
- restart: the service stopped (SIGTERM) and started again; the time from starting the process
  until it answers a request (the apply of an unchanged spec, through the request stream), and
  the busy tail after that (until its CPU use stays under 10% of a core for a second); goal
  ready <= 2 s.

Ratios, not absolute numbers, carry between machines: both sides are measured here, now, on the
same machine. The default levels are small, for development; the issue's run is
`--levels 1000,5000,10000`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.event_path import up_args  # noqa: E402
from dgdr.client import DgdrClient  # noqa: E402
from dgdr.domain.errors import DgdrError  # noqa: E402
from events import subjects  # noqa: E402
from events.connection import ConnectOptions  # noqa: E402
from events.server import EmbeddedNatsServer  # noqa: E402

NAMESPACE = "scale"
SPEC = {
    "model": "Qwen/Qwen3-0.6B",
    "sla": {"ttft": 300, "itl": 20},
    "hardware": {"gpuSku": "h200_sxm", "totalGpus": 8},
}
DEPLOYED = b'"phase":"Deployed"'
FAILED = b'"phase":"Failed"'
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def name_of(i: int) -> str:
    return f"d{i:05d}"


async def spawn_service(url: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *up_args(url, "--rollout-delay", "0"),
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def started(url: str, client: DgdrClient) -> asyncio.subprocess.Process:
    """A new service, once it has set NATS up (the first start) and answers requests."""
    proc = await spawn_service(url)
    async with asyncio.timeout(120):
        while True:
            try:
                await apply(client, name_of(0), timeout=30)
                return proc
            except DgdrError:  # the streams are not there yet
                await asyncio.sleep(0.2)


async def stop_service(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        await proc.wait()


async def apply(client: DgdrClient, name: str, timeout: float) -> None:
    """Apply SPEC under `name`, waiting up to `timeout` s for the outcome (long: on a loaded
    machine the service may take a while, and the bench must not stop for it)."""
    body = {
        "apiVersion": "nvidia.com/v1beta1",
        "kind": "DynamoGraphDeploymentRequest",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": SPEC,
    }
    outcome = await client.submit(NAMESPACE, name, body, timeout=timeout)
    if outcome["status"] != "accepted":
        raise RuntimeError(f"apply {name}: {outcome}")


class Deployments:
    """A raw KV watch of the status bucket counting Deployed and Failed DGDRs (a byte search, so
    the bench process spends little CPU on it)."""

    def __init__(self) -> None:
        self.deployed: set[str] = set()
        self.failed: set[str] = set()
        self.changed = asyncio.Event()

    async def follow(self, client: DgdrClient) -> None:
        kv = await client.kv()
        watcher = await kv.watch(f"{subjects.escape(NAMESPACE)}.>")
        async for entry in watcher:
            if entry is None or not entry.value:
                continue
            if DEPLOYED in entry.value:
                self.deployed.add(entry.key)
            elif FAILED in entry.value:
                self.failed.add(entry.key)
            self.changed.set()

    async def until(self, count: int, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while len(self.deployed) < count:
                if self.failed:
                    raise RuntimeError(f"{len(self.failed)} DGDRs failed, e.g. {min(self.failed)}")
                self.changed.clear()
                await self.changed.wait()


async def apply_range(client: DgdrClient, first: int, last: int, inflight: int) -> None:
    names = iter(range(first, last))

    async def worker() -> None:
        for i in names:
            await apply(client, name_of(i), timeout=600)

    await asyncio.gather(*(worker() for _ in range(inflight)))


async def raw_watch_all(client: DgdrClient) -> int:
    """Every live value of the status bucket through nats-py's KV watch (the raw baseline)."""
    kv = await client.kv()
    watcher = await kv.watch(">", ignore_deletes=True)
    count = 0
    async for entry in watcher:
        if entry is None:
            break
        count += 1
    await watcher.stop()  # type: ignore[no-untyped-call]
    return count


async def best_of(n: int, call: object) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        await call()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return min(times)


async def single_reads(client: DgdrClient, level: int, reads: int) -> tuple[list[float], ...]:
    kv = await client.kv()
    picks = [name_of(random.randrange(level)) for _ in range(reads)]
    ours, raw = [], []
    for name in picks:
        t0 = time.perf_counter()
        await kv.get(subjects.status_key(NAMESPACE, name))
        t1 = time.perf_counter()
        await client.get(name, namespace=NAMESPACE)
        t2 = time.perf_counter()
        raw.append(t1 - t0)
        ours.append(t2 - t1)
    return ours, raw


async def busy_tail(pid: int, limit: float) -> float:
    """Seconds until the process's CPU use stays under 10% of a core for a second."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        before = cpu_seconds(pid)
        await asyncio.sleep(1.0)
        if cpu_seconds(pid) - before < 0.1:
            return time.perf_counter() - t0 - 1.0
    return limit


async def restart(
    url: str, proc: asyncio.subprocess.Process, client: DgdrClient
) -> tuple[asyncio.subprocess.Process, float, float]:
    await stop_service(proc)
    t0 = time.perf_counter()
    proc = await spawn_service(url)
    await apply(client, name_of(0), timeout=600)  # an unchanged spec: the service answers
    ready = time.perf_counter() - t0
    return proc, ready, await busy_tail(proc.pid, limit=300)


async def run(url: str, args: argparse.Namespace) -> None:
    levels = [int(x) for x in args.levels.split(",")]
    async with DgdrClient(ConnectOptions(url=url), namespace=NAMESPACE) as client:
        proc = await started(url, client)
        deployments = Deployments()
        follower = asyncio.create_task(deployments.follow(client))
        try:
            print(
                f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; levels {levels}; "
                f"{args.inflight} applies in flight; {args.reads} single reads",
                flush=True,
            )
            applied = 0
            for level in levels:
                t0 = time.perf_counter()
                await apply_range(client, applied, level, args.inflight)
                applied = level
                await deployments.until(level, timeout=args.timeout)
                took = time.perf_counter() - t0
                rss = rss_mb(proc.pid)
                raw_s = await best_of(3, lambda: raw_watch_all(client))
                list_s = await best_of(3, lambda: client.list(all_namespaces=True))
                ours, raw = await single_reads(client, level, args.reads)
                proc, ready, tail = await restart(url, proc, client)
                ratio = list_s / raw_s
                print(f"{level} DGDRs Deployed ({took:.0f} s to apply and deploy them)")
                print(
                    f"  service RSS            {rss:8.1f} MB ({rss * 1024 / level:.1f} KB per "
                    f"DGDR){'  goal <= 200 MB: ' + ('met' if rss <= 200 else 'NOT met') if level >= 10_000 else ''}"
                )
                print(
                    f"  list                   {list_s:8.3f} s vs raw KV watch {raw_s:.3f} s: "
                    f"{ratio:.2f}x (goal <= 2x: {'met' if ratio <= 2 else 'NOT met'})"
                )
                print(
                    f"  single read p50/p99    {statistics.median(ours) * 1e3:8.3f} / "
                    f"{pct(ours, 0.99) * 1e3:.3f} ms vs raw kv.get "
                    f"{statistics.median(raw) * 1e3:.3f} / {pct(raw, 0.99) * 1e3:.3f} ms"
                )
                print(
                    f"  restart                {ready:8.2f} s to answer a request "
                    f"(goal <= 2 s: {'met' if ready <= 2 else 'NOT met'}), then busy "
                    f"{tail:.1f} s",
                    flush=True,
                )
        finally:
            follower.cancel()
            await stop_service(proc)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="dgdr-scale-") as tmp:
        server = await EmbeddedNatsServer(tmp).start()
        try:
            await run(server.url, args)
        finally:
            await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--levels", default="200,500", help="DGDR counts, comma-separated, increasing"
    )
    parser.add_argument("--inflight", type=int, default=64, help="applies in flight")
    parser.add_argument("--reads", type=int, default=500, help="single reads per level")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to reach each level")
    asyncio.run(main(parser.parse_args()))
