"""Benchmark: reading everything back, against raw JetStream in the same run.

    uv run python bench/rebuild.py [--dgdrs 2000]

One embedded nats-server. The events stream is filled with `--dgdrs` whole lifecycles as the
service records them (Created+Validated, ProfilingStarted, five progress reports, the profiling
result with the example's real Pareto front and DGD, deployment started, created, ready: the
decider's own events, appended through `JetStreamEventStore`), and the status bucket with their
projected statuses. Then, each against its raw floor:

- rebuild: `Projector.rebuild()` (every status recomputed from the stream) against an ordered
  consumer that only receives every message in a callback;
- read all statuses: `Projector.values()` (run at every start) against a KV watch of all values
  (nats-py's `KeyValue.watch`, last value per key, until its end marker);
- list: `DgdrClient.list(all_namespaces=True)` (what `dgdr get` shows) against the same KV watch.

Each line gives the wall-clock times and their ratio (the figure the goal is about), then this
process's CPU seconds per side and their ratio: on a shared machine the wall-clock ratio swings
with the load, the CPU ratio much less. Every rebuild is checked to give the same bytes as the
first, and the values read back to be those bytes.

`--profile` runs each of our sides once more under cProfile and prints where its time goes.

Goal (issue 11): rebuild <= 1.5x raw, read all statuses <= 1.5x raw, list <= 2x raw. Ratios, not absolute numbers,
carry between machines: both sides are measured here, now, on the same noisy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dgdr.app.reactors import progress_command, result_command  # noqa: E402
from dgdr.client import DgdrClient  # noqa: E402
from dgdr.domain.decider import decide, evolve, initial_state  # noqa: E402
from dgdr.domain.model import (  # noqa: E402
    Apply,
    Command,
    ObserveDeployment,
    Rejection,
    StartProfiling,
)
from events import subjects  # noqa: E402
from events.connection import ConnectOptions  # noqa: E402
from events.envelope import AggregateId, wrap  # noqa: E402
from events.jetstream import JetStreamEventStore, ensure_layout  # noqa: E402
from events.server import EmbeddedNatsServer  # noqa: E402
from projections.projector import Projector  # noqa: E402
from sim import profile  # noqa: E402

AT = "2026-11-29T00:00:00.000Z"
STAGES = ("Initializing", "SweepingPrefill", "SweepingDecode", "SelectingConfig", "GeneratingDGD")


def lifecycle(name: str, uid: str, manifest: dict[str, Any], result: Any) -> list[Command]:
    """The commands that bring a DGDR to Deployed, as the service decides them."""
    spec = manifest["spec"]
    commands: list[Command] = [
        Apply(id=f"apply-{uid}", at=AT, spec=spec, labels={}, discovered_hardware={}),
        StartProfiling(id=f"start-{uid}", at=AT, generation=1, job_name=f"profile-{name}"),
    ]
    commands += [progress_command(uid, 1, None, stage, f"{stage} ...") for stage in STAGES]
    dgd = {**result.selected_config, "metadata": {"name": f"{name}-dgd"}}
    commands.append(
        result_command(
            uid, 1, None, dgd, result.pareto, result.message, result.configmaps, result.sla_verdict
        )
    )
    for observed, available in (("pending", 0), ("successful", 1)):
        commands.append(
            ObserveDeployment(
                id=f"observe:{uid}:{name}-dgd:{observed}:1:{available}",  # the reactor's ids
                at=AT,
                dgd_name=f"{name}-dgd",
                observed=observed,
                replicas=1,
                available_replicas=available,
            )
        )
    return commands


async def fill(store: JetStreamEventStore, count: int, inflight: int) -> int:
    manifest = yaml.safe_load((ROOT / "examples" / "qwen3-0.6b.yaml").read_text())
    result = profile(manifest)
    events_written = 0

    async def one(i: int) -> None:
        nonlocal events_written
        name, uid = f"dgdr-{i:05d}", str(uuid.uuid4())
        agg = AggregateId("default", name, uid)
        state, expected = initial_state(), 0
        for command in lifecycle(name, uid, manifest, result):
            decision = decide(state, command)
            if isinstance(decision, Rejection):
                raise SystemExit(f"the lifecycle was rejected at {command!r}: {decision}")
            if not decision:
                continue
            for event in decision:
                state = evolve(state, event, command.id)
            envs = wrap(decision, agg, command_id=command.id, at=AT, correlation_id=None)
            expected = await store.append(agg, envs, expected=expected, commit_id=command.id)
            events_written += len(envs)

    pending = iter(range(count))

    async def worker() -> None:
        for i in pending:
            await one(i)

    await asyncio.gather(*(worker() for _ in range(inflight)))
    return events_written


async def raw_read_all(nc: Any, last: int) -> float:
    done = asyncio.Event()
    received = 0

    async def take(msg: Any) -> None:
        nonlocal received
        received += 1
        if msg.metadata.sequence.stream >= last:
            done.set()

    t0 = time.perf_counter()
    sub = await nc.jetstream().subscribe(
        f"{subjects.EVENTS_PREFIX}.>", ordered_consumer=True, cb=take
    )
    await done.wait()
    elapsed = time.perf_counter() - t0
    await sub.unsubscribe()
    return elapsed


async def raw_watch_all(kv: Any) -> tuple[float, int]:
    t0 = time.perf_counter()
    watcher = await kv.watchall()
    count = 0
    async for entry in watcher:
        if entry is None:
            break
        count += 1
    elapsed = time.perf_counter() - t0
    await watcher.stop()
    return elapsed, count


def best(samples: list[float]) -> float:
    return min(samples)


class Cpu:
    """This process's CPU seconds per side (best run): on a machine shared with other work the
    wall-clock ratio swings with the load, the CPU ratio much less (the server's CPU is not in
    it: both sides ask the same of the server)."""

    def __init__(self) -> None:
        self.raw: list[float] = []
        self.ours: list[float] = []

    @contextlib.contextmanager
    def side(self, samples: list[float]) -> Iterator[None]:
        t0 = time.process_time()
        yield
        samples.append(time.process_time() - t0)

    def ratio(self) -> str:
        return f"| cpu {best(self.raw):6.3f} s vs {best(self.ours):6.3f} s, ratio {best(self.ours) / best(self.raw):5.2f}"


async def profiled(label: str, run: Callable[[], Awaitable[Any]], lines: int = 25) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    await run()
    profiler.disable()
    print(f"--- profile: {label} (tottime, top {lines})")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dgdrs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side; the best counts")
    parser.add_argument("--profile", action="store_true", help="profile each of our sides once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNatsServer(Path(tmp) / "nats")
        await server.start()
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            kv = await ensure_layout(js)
            store = JetStreamEventStore(nc, js)
            t0 = time.perf_counter()
            written = await fill(store, args.dgdrs, 32)
            last = await store.last_sequence()
            print(
                f"filled: {args.dgdrs} DGDRs, {written} events in {last} messages "
                f"({time.perf_counter() - t0:.1f} s)"
            )
            projector = Projector(js, kv, store)
            rebuilt = await projector.rebuild()
            for key, value in rebuilt.items():
                await kv.put(key, value)
            size = sum(map(len, rebuilt.values())) / max(1, len(rebuilt))
            print(
                f"statuses: {len(rebuilt)} in {subjects.STATUS_BUCKET}, {size / 1024:.1f} KiB each"
            )

            raw, ours, cpu = [], [], Cpu()
            for _ in range(args.repeat):
                with cpu.side(cpu.raw):
                    raw.append(await raw_read_all(nc, last))
                t0 = time.perf_counter()
                with cpu.side(cpu.ours):
                    again = await projector.rebuild()
                ours.append(time.perf_counter() - t0)
                assert again == rebuilt
            print(
                f"rebuild      raw ordered consumer {best(raw):7.3f} s | "
                f"Projector.rebuild() {best(ours):7.3f} s | ratio {best(ours) / best(raw):5.2f} "
                f"(goal <= 1.5) {cpu.ratio()}"
            )

            raw, ours, cpu = [], [], Cpu()
            for _ in range(args.repeat):
                with cpu.side(cpu.raw):
                    elapsed, count = await raw_watch_all(kv)
                assert count == len(rebuilt), (count, len(rebuilt))
                raw.append(elapsed)
                t0 = time.perf_counter()
                with cpu.side(cpu.ours):
                    values = await projector.values()
                ours.append(time.perf_counter() - t0)
                assert values == rebuilt
            print(
                f"read all     raw KV watch         {best(raw):7.3f} s | "
                f"Projector.values()  {best(ours):7.3f} s | ratio {best(ours) / best(raw):5.2f} "
                f"(goal <= 1.5) {cpu.ratio()}"
            )

            client = DgdrClient(ConnectOptions(url=server.url))
            await client.connect()
            try:
                raw, ours, cpu = [], [], Cpu()
                for _ in range(args.repeat):
                    with cpu.side(cpu.raw):
                        raw.append((await raw_watch_all(kv))[0])
                    t0 = time.perf_counter()
                    with cpu.side(cpu.ours):
                        listed = await client.list(all_namespaces=True)
                    ours.append(time.perf_counter() - t0)
                    assert len(listed) == len(rebuilt)
                    del listed  # freed here, not inside the next run's timing
                print(
                    f"list         raw KV watch         {best(raw):7.3f} s | "
                    f"DgdrClient.list()   {best(ours):7.3f} s | "
                    f"ratio {best(ours) / best(raw):5.2f} (goal <= 2)   {cpu.ratio()}"
                )
                if args.profile:
                    await profiled("Projector.rebuild()", projector.rebuild)
                    await profiled("Projector.values()", projector.values)
                    await profiled("DgdrClient.list()", lambda: client.list(all_namespaces=True))
            finally:
                await client.close()
        finally:
            await nc.close()
            await server.stop()
            log = Path(tmp) / "nats" / "nats-server.log"
            trouble = (
                [
                    line
                    for line in log.read_text().splitlines()
                    if "[ERR]" in line or "[WRN]" in line
                ]
                if log.exists()
                else []
            )
            for line in trouble[:10]:
                print(f"nats-server: {line}")


if __name__ == "__main__":
    asyncio.run(main())
