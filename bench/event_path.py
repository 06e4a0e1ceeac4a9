"""Benchmark: the service's command path against raw JetStream, measured in the same run.

    uv run python bench/event_path.py [--dgdrs 600] [--inflight 32] [--raw 3000]

One embedded nats-server. First the floor: raw JetStream publish+ack with per-subject optimistic
concurrency (`Nats-Expected-Last-Subject-Sequence`), sequentially and with N publishers in flight.
Then the service (`dgdr up --roles requests,projector` in its own process, as deployed) handling apply
requests for many new DGDRs, N in flight: each is timed from publishing the request to its status
being visible in KV at the accepted resourceVersion (apply → event → projected status). Reactors and
profilers are not running, so only the command path is measured.

A command costs at least an event append, a status write and a request ack (three raw publishes),
so the goal is a service rate >= 1/3 of the raw rate at the same concurrency, and a single apply's
round trip (publish → outcome) p50 within 3x one raw publish+ack. Ratios, not absolute numbers,
are what carry between machines: both sides are measured here, now, on the same noisy machine.

Also, over the N-in-flight run: messages on the wire per apply, as the service's connections sent
and received them (the server's `/connz` before and after; a raw publish+ack is 1 + 1; goal
<= 3 + 3), and the service's CPU per apply (utime+stime of its processes, `/proc/<pid>/stat`;
goal <= 0.15 ms). Last, on a fresh server with the reactor running (`--roles
requests,projector,reactor`): apply → phase Profiling seen by a KV watcher, sequentially, p50/p99
(goal <= 5 / 20 ms), against a raw KV put → watcher in the same run.

Then the contract floor, on a fresh server: `bench/contract_floor.py` serves the same applies with
plain nats-py and no domain work (append a fixed event with subject OCC, create a fixed status,
publish the outcome, acknowledge the request), timed and counted exactly as the service is: what
the protocol and the Python client cost before dgdr's own code, on this machine (`--no-floor`
skips it).

`--profile FILE` profiles the first service process (cProfile, CPU time) over the N-in-flight run
only (not its start-up or the warm-up), writes the stats to FILE and prints where that CPU went by
package or module. cProfile inflates Python calls (generators most), so read the shares as a
ranking; the CPU per apply printed above is measured without it when `--profile` is not given.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
from nats.js.api import StorageType, StreamConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dgdr.client import DgdrClient  # noqa: E402
from events import subjects  # noqa: E402
from events.connection import ConnectOptions  # noqa: E402
from events.server import EmbeddedNatsServer, free_port  # noqa: E402

SPEC = {
    "model": "Qwen/Qwen3-0.6B",
    "sla": {"ttft": 300, "itl": 20},
    "hardware": {"gpuSku": "h200_sxm", "totalGpus": 8},
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "nvidia.com/v1beta1",
        "kind": "DynamoGraphDeploymentRequest",
        "metadata": {"name": name, "namespace": "bench"},
        "spec": SPEC,
    }


async def connections(monitor_url: str) -> dict[int, tuple[int, int]]:
    """{cid: (messages the client sent, messages it received)} of every open connection."""

    def read() -> dict[str, Any]:
        with urllib.request.urlopen(f"{monitor_url}/connz?limit=1024", timeout=10) as answer:
            return dict(json.loads(answer.read()))

    connz = await asyncio.to_thread(read)
    return {c["cid"]: (c["in_msgs"], c["out_msgs"]) for c in connz.get("connections") or []}


def cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def raw_occ(url: str, total: int, inflight: int) -> tuple[float, list[float]]:
    """msgs/s and per-publish latencies (s) of publish+ack with subject OCC, N publishers."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    stream = f"RAW{uuid.uuid4().hex[:8]}"
    await js.add_stream(
        StreamConfig(name=stream, subjects=[f"{stream.lower()}.>"], storage=StorageType.FILE)
    )
    payload = b"x" * 512
    latencies: list[float] = []
    per_worker = total // inflight

    async def worker(w: int) -> None:
        last: dict[str, int] = {}
        for i in range(per_worker):
            subject = f"{stream.lower()}.w{w}.s{i % 50}"
            t0 = time.perf_counter()
            ack = await js.publish(
                subject,
                payload,
                headers={
                    "Nats-Msg-Id": f"{w}-{i}",
                    "Nats-Expected-Last-Subject-Sequence": str(last.get(subject, 0)),
                },
            )
            latencies.append(time.perf_counter() - t0)
            last[subject] = ack.seq

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(inflight)))
    elapsed = time.perf_counter() - t0
    await js.delete_stream(stream)
    await nc.close()
    return per_worker * inflight / elapsed, latencies


def up_args(url: str, *options: str) -> list[str]:
    """`python` arguments for the service on `url` in its own process, as the benches run it:
    `-m dgdr --server URL up --no-embedded OPTIONS --log-level WARNING`."""
    return [
        "-m",
        "dgdr",
        "--server",
        url,
        "up",
        "--no-embedded",
        *options,
        "--log-level",
        "WARNING",
    ]


# `python -c PROFILED FILE -m dgdr ...`: the service, profiled (cProfile, CPU time) only between
# SIGUSR1 and SIGUSR2, which writes the stats to FILE: the measured run, not start-up and warm-up.
PROFILED = """
import cProfile, os, runpy, signal, sys, time
stats, profile = sys.argv.pop(1), cProfile.Profile(time.process_time)
def write(*_):
    profile.disable()
    profile.dump_stats(stats + ".tmp")
    os.replace(stats + ".tmp", stats)
signal.signal(signal.SIGUSR1, lambda *_: profile.enable())
signal.signal(signal.SIGUSR2, write)
sys.argv = sys.argv[2:]
runpy.run_module("dgdr", run_name="__main__", alter_sys=True)
"""


async def start_service(
    url: str, roles: str, profile: str | None = None
) -> asyncio.subprocess.Process:
    profiler = ["-c", PROFILED, profile] if profile else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *profiler,
        *up_args(url, "--roles", roles),
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    await answering(url, "the service")
    return proc


async def answering(url: str, what: str) -> None:
    """Return once a `dgdr get` on `url` answers (30 s at most): the process serving it is up."""
    for _ in range(300):
        try:
            async with DgdrClient(ConnectOptions(url=url)) as c:
                await c.list()
                return
        except Exception:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


def write_profile(service: asyncio.subprocess.Process, stats: Path) -> None:
    """Have the profiled service write its stats (SIGUSR2) and wait until they are written (the
    service writes them to a temporary file, then renames it)."""
    stats.unlink(missing_ok=True)
    service.send_signal(signal.SIGUSR2)
    deadline = time.monotonic() + 30
    while not stats.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the profiled service did not write {stats}")
        time.sleep(0.05)


def profile_summary(stats: Path, applies: int, top: int = 14) -> list[str]:
    """The profiled CPU time by where it was spent (own time of each function, summed): a
    third-party package, a package of this project, a standard-library module or C builtins.
    cProfile's own overhead inflates Python calls, so shares, not totals, are what to read."""
    import pstats

    spent: dict[str, float] = {}
    for (file, _, function), (_, _, own, _, _) in pstats.Stats(str(stats)).stats.items():  # type: ignore[attr-defined]
        if "site-packages/" in file:
            where = file.split("site-packages/", 1)[1].split("/", 1)[0]
        elif file.startswith(str(ROOT)):
            where = "/".join(Path(file).relative_to(ROOT).parts[:2])
        elif "/asyncio/" in file:
            where = "asyncio (stdlib)"
        elif file == "~":
            where = "builtins (C): " + function.split(" of ", 1)[-1].strip("<>'")[:40]
        else:
            where = "stdlib " + Path(file).name
        spent[where] = spent.get(where, 0.0) + own
    total = sum(spent.values()) or 1.0
    ranked = sorted(spent.items(), key=lambda item: -item[1])[:top]
    return [f"total {total / applies * 1e3:.3f} ms per apply (profiled)"] + [
        f"{share / total:6.1%}  {share / applies * 1e3:6.3f} ms  {where}" for where, share in ranked
    ]


async def service_path(
    url: str, count: int, inflight: int, prefix: str
) -> tuple[float, list[float], list[float]]:
    """DGDRs/s from request to projected status, round trips (s) to outcome and to projection."""
    async with DgdrClient(ConnectOptions(url=url)) as c:
        kv = await c.kv()
        projected: dict[str, tuple[int, float]] = {}
        waiters: dict[str, tuple[int, asyncio.Future[float]]] = {}

        async def watch() -> None:
            watcher = await kv.watch(f"{subjects.escape('bench')}.>")
            async for entry in watcher:
                if entry is None or not entry.value:
                    continue
                rv = int(json.loads(entry.value)["metadata"]["resourceVersion"])
                now = time.perf_counter()
                projected[entry.key] = (rv, now)
                want = waiters.get(entry.key)
                if want and rv >= want[0] and not want[1].done():
                    want[1].set_result(now)

        watcher_task = asyncio.create_task(watch())
        outcome_rtt: list[float] = []
        full_rtt: list[float] = []
        queue: asyncio.Queue[str] = asyncio.Queue()
        for i in range(count):
            queue.put_nowait(f"{prefix}{i}")

        async def worker() -> None:
            loop = asyncio.get_running_loop()
            while not queue.empty():
                name = queue.get_nowait()
                key = subjects.status_key("bench", name)
                t0 = time.perf_counter()
                outcome = await c.submit("bench", name, manifest(name))
                t1 = time.perf_counter()
                assert outcome["status"] == "accepted", outcome
                rv = int(outcome["resourceVersion"])
                seen = projected.get(key)
                if seen and seen[0] >= rv:
                    done = seen[1]
                else:
                    fut: asyncio.Future[float] = loop.create_future()
                    waiters[key] = (rv, fut)
                    seen = projected.get(key)
                    done = seen[1] if seen and seen[0] >= rv else await fut
                outcome_rtt.append(t1 - t0)
                full_rtt.append(max(done, t1) - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(inflight)))
        elapsed = time.perf_counter() - t0
        watcher_task.cancel()
        return count / elapsed, outcome_rtt, full_rtt


async def raw_kv_watch(url: str, count: int) -> list[float]:
    """Seconds from a KV put to a watcher seeing it, one put at a time."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    bucket = f"RAWKV{uuid.uuid4().hex[:8]}"
    kv = await js.create_key_value(bucket=bucket)
    watcher = await kv.watch(">")
    async for entry in watcher:  # the initial marker: nothing stored yet
        if entry is None:
            break
    latencies = []
    value = b"x" * 2048
    for i in range(count):
        t0 = time.perf_counter()
        await kv.put(f"k{i}", value)
        async for entry in watcher:
            if entry is not None and entry.key == f"k{i}":
                break
        latencies.append(time.perf_counter() - t0)
    await watcher.stop()
    await js.delete_key_value(bucket)
    await nc.close()
    return latencies


async def profiling_seen(url: str, count: int, first: int = 0) -> list[float]:
    """Seconds from publishing an apply to a KV watcher seeing its phase Profiling, one at a time
    (the reactor decides Pending → Profiling; the projector writes both)."""
    async with DgdrClient(ConnectOptions(url=url)) as c:
        kv = await c.kv()
        seen: dict[str, asyncio.Future[float]] = {}

        async def watch() -> None:
            watcher = await kv.watch(f"{subjects.escape('bench')}.>")
            async for entry in watcher:
                if entry is None or not entry.value:
                    continue
                if json.loads(entry.value)["status"]["phase"] != "Profiling":
                    continue
                waiting = seen.get(entry.key)
                if waiting is not None and not waiting.done():
                    waiting.set_result(time.perf_counter())

        watcher_task = asyncio.create_task(watch())
        latencies = []
        loop = asyncio.get_running_loop()
        for i in range(first, first + count):
            name = f"prof{i}"
            seen[subjects.status_key("bench", name)] = fut = loop.create_future()
            t0 = time.perf_counter()
            outcome = await c.submit("bench", name, manifest(name))
            assert outcome["status"] == "accepted", outcome
            async with asyncio.timeout(30):
                latencies.append(await fut - t0)
        watcher_task.cancel()
        return latencies


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="dgdr-bench-") as tmp:
        server = await EmbeddedNatsServer(tmp, monitor_port=free_port()).start()
        try:
            await run(server.url, server.monitor_url or "", args)
        finally:
            await server.stop()
    if args.profiling <= 0:
        return
    with tempfile.TemporaryDirectory(prefix="dgdr-bench-") as tmp:
        server = await EmbeddedNatsServer(tmp).start()
        try:
            await run_profiling(server.url, args)
        finally:
            await server.stop()


async def run_profiling(url: str, args: argparse.Namespace) -> None:
    await raw_kv_watch(url, 50)  # warm-up
    raw = await raw_kv_watch(url, args.profiling)
    service = await start_service(url, "requests,projector,reactor")
    try:
        await profiling_seen(url, 20)  # warm-up
        seen = await profiling_seen(url, args.profiling, first=20)
    finally:
        service.terminate()
        await service.wait()
    p50, p99 = statistics.median(seen), pct(seen, 0.99)
    print(
        f"  raw KV put -> watcher, sequential: p50 {statistics.median(raw) * 1e3:.2f} ms, "
        f"p99 {pct(raw, 0.99) * 1e3:.2f} ms"
    )
    print(
        f"  apply -> phase Profiling seen by a KV watcher (reactor running), sequential: "
        f"p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms "
        f"(goal p50 <= 5 ms, p99 <= 20 ms: {'met' if p50 <= 0.005 and p99 <= 0.020 else 'NOT met'})"
    )


@dataclasses.dataclass
class Measured:
    """One side's figures: sequential applies, then N in flight (messages and CPU over those)."""

    seq_rate: float
    single_rtt: list[float]
    n_rate: float
    full_n: list[float]
    per_in: float
    per_out: float
    cpu_ms: float


async def measure(
    url: str,
    monitor_url: str,
    start: Callable[[], Awaitable[list[asyncio.subprocess.Process]]],
    args: argparse.Namespace,
    profile: str | None = None,
) -> Measured:
    """Start the processes that serve applies, time them sequentially and N in flight (the
    messages their connections sent and received, and their CPU, over the latter), stop them."""
    procs = await start()
    own = await connections(monitor_url)  # open now: the serving processes' connections only
    try:
        await service_path(url, 50, 1, "warm")  # warm-up: connections, consumers, caches
        seq_rate, single_rtt, _ = await service_path(url, args.single, 1, "one")
        before, cpu_before = await connections(monitor_url), sum(cpu_seconds(p.pid) for p in procs)
        if profile:
            procs[0].send_signal(signal.SIGUSR1)
        n_rate, _, full_n = await service_path(url, args.dgdrs, args.inflight, "many")
        after, cpu_after = await connections(monitor_url), sum(cpu_seconds(p.pid) for p in procs)
        if profile:
            write_profile(procs[0], Path(profile))
    finally:
        for proc in procs:
            proc.terminate()
            await proc.wait()
    sent = sum(after[c][0] - before[c][0] for c in own if c in after and c in before)
    received = sum(after[c][1] - before[c][1] for c in own if c in after and c in before)
    return Measured(
        seq_rate,
        single_rtt,
        n_rate,
        full_n,
        received / args.dgdrs,
        sent / args.dgdrs,
        (cpu_after - cpu_before) / args.dgdrs * 1e3,
    )


async def start_floor(url: str) -> list[asyncio.subprocess.Process]:
    """`bench/contract_floor.py` on `url` in its own process, once it answers."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bench" / "contract_floor.py"), "--server", url, cwd=ROOT
    )
    await answering(url, "the contract floor")
    return [proc]


async def run(url: str, monitor_url: str, args: argparse.Namespace) -> None:
    n = args.inflight
    await raw_occ(url, 500, 1)  # warm-up
    raw_seq_rate, raw_seq_lat = await raw_occ(url, args.raw, 1)
    raw_n_rate, _ = await raw_occ(url, args.raw * 2, n)

    async def services() -> list[asyncio.subprocess.Process]:
        return [
            await start_service(url, roles, args.profile if i == 0 else None)
            for i, roles in enumerate(args.processes.split("/"))
        ]

    ours = await measure(url, monitor_url, services, args, args.profile)
    floor = None
    if args.floor:
        with tempfile.TemporaryDirectory(prefix="dgdr-bench-") as tmp:
            server = await EmbeddedNatsServer(tmp, monitor_port=free_port()).start()
            try:
                floor = await measure(
                    server.url,
                    server.monitor_url or "",
                    functools.partial(start_floor, server.url),
                    args,
                )
            finally:
                await server.stop()
    report(args, raw_seq_rate, raw_seq_lat, raw_n_rate, ours, floor)


def report(
    args: argparse.Namespace,
    raw_seq_rate: float,
    raw_seq_lat: list[float],
    raw_n_rate: float,
    ours: Measured,
    floor: Measured | None,
) -> None:
    n = args.inflight
    raw_p50 = statistics.median(raw_seq_lat)
    rows = [
        (
            "raw publish+ack with subject OCC, sequential",
            f"{raw_seq_rate:,.0f} msg/s",
            f"p50 {raw_p50 * 1e3:.3f} ms, p99 {pct(raw_seq_lat, 0.99) * 1e3:.3f} ms",
        ),
        (f"raw publish+ack with subject OCC, {n} in flight", f"{raw_n_rate:,.0f} msg/s", ""),
    ]
    for who, m in (("service", ours), ("contract floor", floor)):
        if m is None:
            continue
        rows += [
            (
                f"{who} apply, sequential (publish -> outcome)",
                f"{m.seq_rate:,.0f} /s",
                f"p50 {statistics.median(m.single_rtt) * 1e3:.3f} ms, "
                f"p99 {pct(m.single_rtt, 0.99) * 1e3:.3f} ms",
            ),
            (
                f"{who} apply -> event -> projected status, {n} in flight",
                f"{m.n_rate:,.0f} DGDR/s",
                f"p50 {statistics.median(m.full_n) * 1e3:.1f} ms, "
                f"p99 {pct(m.full_n, 0.99) * 1e3:.1f} ms",
            ),
        ]
    width = max(len(r[0]) for r in rows)
    print(
        f"nats-server 2.15.1 embedded, {os.cpu_count()} CPUs; {args.dgdrs} DGDRs, "
        f"{args.raw} raw publishes per run; service processes: {args.processes}"
    )
    for label, rate, extra in rows:
        print(f"  {label:<{width}}  {rate:>14}  {extra}")
    print(
        f"messages per apply on the service's connections: {ours.per_in:.2f} in + "
        f"{ours.per_out:.2f} out (raw publish+ack: 1 + 1; goal <= 3 + 3: "
        f"{'met' if ours.per_in <= 3 and ours.per_out <= 3 else 'NOT met'})"
    )
    print(
        f"service CPU per apply: {ours.cpu_ms:.3f} ms "
        f"(goal <= 0.15 ms: {'met' if ours.cpu_ms <= 0.15 else 'NOT met'})"
    )
    rate_ratio = ours.n_rate / raw_n_rate
    rtt_ratio = statistics.median(ours.single_rtt) / raw_p50
    print(
        f"ratio service/raw rate at {n} in flight: {rate_ratio:.3f} "
        f"(goal >= 0.333: {'met' if rate_ratio >= 1 / 3 else 'NOT met'})"
    )
    print(
        f"ratio single apply p50 / raw publish p50: {rtt_ratio:.2f}x "
        f"(goal <= 3x: {'met' if rtt_ratio <= 3 else 'NOT met'})"
    )
    if floor is not None:
        print(
            f"contract floor (bench/contract_floor.py: the same messages from plain nats-py, no "
            f"domain work): {floor.per_in:.2f} in + {floor.per_out:.2f} out, "
            f"CPU {floor.cpu_ms:.3f} ms per apply; "
            f"rate / raw {floor.n_rate / raw_n_rate:.3f}, "
            f"single p50 / raw {statistics.median(floor.single_rtt) / raw_p50:.2f}x; "
            f"service / floor: rate {ours.n_rate / floor.n_rate:.2f}, "
            f"CPU {ours.cpu_ms / floor.cpu_ms:.2f}x"
        )
    if args.profile:
        print(
            f"where the service's CPU went over the {n}-in-flight run (cProfile, {args.profile}):"
        )
        for line in profile_summary(Path(args.profile), args.dgdrs):
            print(f"  {line}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dgdrs", type=int, default=600, help="DGDRs applied with N in flight")
    parser.add_argument("--single", type=int, default=300, help="sequential applies")
    parser.add_argument("--inflight", type=int, default=32)
    parser.add_argument("--raw", type=int, default=3000, help="raw publishes per measurement")
    parser.add_argument(
        "--processes",
        default="requests,projector",
        help="service processes and their roles, '/'-separated (e.g. requests/projector)",
    )
    parser.add_argument(
        "--profiling",
        type=int,
        default=200,
        help="sequential applies timed to phase Profiling with the reactor running (0: skip)",
    )
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip the contract floor (bench/contract_floor.py on a fresh server)",
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="profile the first service process (cProfile) over the N-in-flight run, "
        "writing its stats to FILE",
    )
    asyncio.run(main(parser.parse_args()))
