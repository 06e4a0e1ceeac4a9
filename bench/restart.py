"""Benchmark: restarting the service on a store with N Deployed DGDRs.

    uv run python bench/restart.py [--dgdrs 1000 10000]

One embedded nats-server per size. The store is filled as the service would have left it, without
running every lifecycle through the service: N whole lifecycles to Deployed appended through
`JetStreamEventStore` (the decider's own events: apply, profiling, result with the example's real
Pareto front and DGD, deployment created and ready), their statuses written to the status bucket
(`Projector.rebuild()`), each DGD in the simulated cluster's bucket (successful, owned by its
DGDR), and the service's durable consumers created and every event acknowledged (the projector
and the reactor had handled them all).

Then `dgdr up --no-embedded` runs in its own process (from each `--checkouts` directory in turn),
twice: the first start on the filled store (after an upgrade nothing says which DGDs were
reported: every one is), stopped with SIGTERM once idle; then the restart, which is what the
figure is about. For each start it prints the seconds from spawning the process to its answer to
a request (an apply refused at admission: nothing recorded) and to idle (the time its threads ran
or waited for a core, /proc/<pid>/task/*/schedstat, under `IDLE_DEMAND` over the last second: the
first second of that quiet window is when it went idle), and its CPU seconds (/proc/<pid>/stat)
until each. On a loaded machine the wall times mostly measure the wait for a core: the CPU seconds
say what the start costs, and "imports alone" (a process importing what `dgdr up` imports, in the
same run) is the part of "ready" that no start-up change removes.

Goal (issue 11): restart ready <= 2 s, no busy tail (idle right after ready). To compare with the
code before a change, run this file from a checkout of that code (it only uses interfaces both
have), or pass both with `--checkouts OLD NEW`: they then share the filled store.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import nats
import yaml
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.event_path import up_args  # noqa: E402
from bench.rebuild import AT, lifecycle  # noqa: E402
from dgdr.client import DgdrClient  # noqa: E402
from dgdr.domain.decider import decide, evolve, initial_state  # noqa: E402
from dgdr.domain.model import Rejection  # noqa: E402
from dgdr.domain.target import LABEL_NAME, LABEL_NAMESPACE, OWNER_UID  # noqa: E402
from events import subjects  # noqa: E402
from events.connection import ConnectOptions  # noqa: E402
from events.envelope import AggregateId, wrap  # noqa: E402
from events.jetstream import JetStreamEventStore, ensure_bucket, ensure_layout  # noqa: E402
from events.server import EmbeddedNatsServer  # noqa: E402
from projections.projector import Projector  # noqa: E402
from sim import profile  # noqa: E402

IDLE_DEMAND = 0.03  # seconds run or waited to run, over the last second: below it, idle
TICK = 0.1
CLK_TCK = os.sysconf("SC_CLK_TCK")


def deployed_dgd(name: str, uid: str) -> dict[str, Any]:
    """The DGD the simulated cluster holds for a Deployed DGDR: one worker, successful."""
    return {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeployment",
        "metadata": {
            "name": f"{name}-dgd",
            "namespace": "default",
            "labels": {LABEL_NAME: name, LABEL_NAMESPACE: "default"},
            "annotations": {OWNER_UID: uid},
            "creationTimestamp": "2026-11-29T00:00:00Z",
            "readyAt": 0,
        },
        "spec": {"services": {"Worker": {"replicas": 1}}},
        "status": {
            "state": "successful",
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-29T00:00:00Z"}
            ],
        },
    }


async def fill(nc: Any, count: int, inflight: int = 32) -> None:
    js = nc.jetstream()
    kv = await ensure_layout(js)
    store = JetStreamEventStore(nc, js)
    cluster = await ensure_bucket(js, subjects.SIMULATED_CLUSTER_BUCKET, "simulated cluster")
    manifest = yaml.safe_load((ROOT / "examples" / "qwen3-0.6b.yaml").read_text())
    result = profile(manifest)

    async def one(i: int) -> None:
        name, uid = f"dgdr-{i:05d}", str(uuid.uuid4())
        agg = AggregateId("default", name, uid)
        state, expected = initial_state(), 0
        for command in lifecycle(name, uid, manifest, result):
            decision = decide(state, command)
            if isinstance(decision, Rejection):
                raise SystemExit(f"the lifecycle was rejected at {command!r}: {decision}")
            for event in decision:
                state = evolve(state, event, command.id)
            if decision:
                envs = wrap(decision, agg, command_id=command.id, at=AT, correlation_id=None)
                expected = await store.append(agg, envs, expected=expected, commit_id=command.id)
        if state.phase != "Deployed":
            raise SystemExit(f"{name} ended in {state.phase}, not Deployed")
        key = subjects.status_key("default", f"{name}-dgd")
        await cluster.put(key, json.dumps(deployed_dgd(name, uid), sort_keys=True).encode())

    pending = iter(range(count))

    async def worker() -> None:
        for i in pending:
            await one(i)

    await asyncio.gather(*(worker() for _ in range(inflight)))
    statuses = await Projector(js, kv, store).rebuild()
    for key, value in statuses.items():
        await kv.put(key, value)
    last = await store.last_sequence()
    for durable in ("dgdr-projector", "dgdr-reactor"):
        await acknowledge_all(js, durable, last)


async def acknowledge_all(js: Any, durable: str, last: int) -> None:
    """Create the service's durable consumer on the events stream (as `events.consumer` does)
    and acknowledge every event: what a service that handled them all leaves."""
    config = ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=5.0,
        max_deliver=-1,
        max_ack_pending=10_000,
        filter_subject=f"{subjects.EVENTS_PREFIX}.>",
    )
    await js.add_consumer(subjects.EVENTS_STREAM, config)
    sub = await js.pull_subscribe_bind(durable, stream=subjects.EVENTS_STREAM)
    seen = 0
    while seen < last:
        for msg in await sub.fetch(1000, timeout=10):
            await msg.ack()
            seen = max(seen, int(msg.metadata.sequence.stream))
    await js._nc.flush()
    await sub.unsubscribe()


def demand_seconds(pid: int) -> float:
    """Seconds the process's threads ran plus waited for a core (/proc/<pid>/task/*/schedstat):
    a busy process that a loaded machine leaves waiting still counts as busy."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            ran, waited, _ = (task / "schedstat").read_text().split()
            total += int(ran) + int(waited)
    return total / 1e9


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


class Start:
    """One start of the service: seconds from the spawn to its first answer and to idle, and its
    CPU seconds until each (CPU carries better than wall time on a loaded machine)."""

    def __init__(self, ready: float, ready_cpu: float, idle: float, idle_cpu: float) -> None:
        self.ready, self.ready_cpu, self.idle, self.idle_cpu = ready, ready_cpu, idle, idle_cpu

    def __str__(self) -> str:
        return (
            f"ready {self.ready:6.2f} s (CPU {self.ready_cpu:5.2f} s) | idle {self.idle:6.2f} s "
            f"(CPU {self.idle_cpu:5.2f} s) | busy after ready {self.idle - self.ready:6.2f} s "
            f"(CPU {self.idle_cpu - self.ready_cpu:5.2f} s)"
        )


async def start_and_measure(url: str, code: Path) -> tuple[asyncio.subprocess.Process, Start]:
    """Spawn `dgdr up` and measure its start (`Start`)."""
    async with DgdrClient(ConnectOptions(url=url)) as client:
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *up_args(url),
            cwd=code,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        probe: dict[str, Any] = {  # refused at admission (no model): nothing is recorded
            "apiVersion": "nvidia.com/v1beta1",
            "kind": "DynamoGraphDeploymentRequest",
            "metadata": {"name": "ready-probe"},
            "spec": {},
        }
        outcome = await client.apply(probe, timeout=600)
        ready, ready_cpu = time.monotonic() - started, cpu_seconds(proc.pid)
        if outcome.get("status") != "invalid":
            raise SystemExit(f"the probe was not refused: {outcome}")
    samples: list[tuple[float, float, float]] = []  # (time, demand, CPU)
    while True:
        now = time.monotonic() - started
        samples.append((now, demand_seconds(proc.pid), cpu_seconds(proc.pid)))
        window = [s for s in samples if s[0] >= now - 1.0 - TICK / 2]
        quiet = samples[-1][1] - window[0][1] < IDLE_DEMAND
        if now - window[0][0] >= 1.0 - TICK / 2 and quiet:
            idle = max(ready, window[0][0])
            return proc, Start(ready, ready_cpu, idle, max(ready_cpu, window[0][2]))
        await asyncio.sleep(TICK)


async def imports_alone(code: Path) -> tuple[float, float]:
    """Seconds and CPU seconds a process takes to import what `dgdr up` imports, and exit: the
    part of "ready" that no start-up change can remove (the floor, measured in the same run)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import dgdr.cli.main, dgdr.cli.serve, dgdr.app.service", cwd=code
    )
    await proc.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return time.monotonic() - started, cpu


async def stop(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def measure(count: int, checkouts: list[Path]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNatsServer(Path(tmp) / "nats")
        await server.start()
        try:
            nc = await nats.connect(server.url)
            t0 = time.perf_counter()
            await fill(nc, count)
            await nc.close()
            print(f"{count} DGDRs Deployed: filled in {time.perf_counter() - t0:.1f} s", flush=True)
            for code in checkouts:
                wall, cpu = await imports_alone(code)
                print(f"  {code}: imports alone {wall:5.2f} s (CPU {cpu:5.2f} s)", flush=True)
                for label in ("first start", "restart"):
                    proc, start = await start_and_measure(server.url, code)
                    try:
                        print(f"    {label:12} {start}", flush=True)
                    finally:
                        await stop(proc)
        finally:
            await server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dgdrs", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument(
        "--checkouts",
        type=Path,
        nargs="+",
        default=[ROOT],
        help="the code to run `dgdr up` from, each in turn on the same store (before a change "
        "first: a later version's watermark key is not a DGD to an earlier one)",
    )
    args = parser.parse_args()
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")
    for count in args.dgdrs:
        await measure(count, [path.resolve() for path in args.checkouts])


if __name__ == "__main__":
    asyncio.run(main())
