"""What every chaos scenario shares: the run's totals, a secured single nats-server with an admin
connection, the supervisor that restarts a service which exits on its own (each exit a violation),
and `finish`, which waits for convergence and quiescence and then runs the invariant check of
tests/invariants.py as `admin`, adding its violations and the dead-letter and quarantine counts
(`dgdr.dlq.req`, `dgdr.dlq.evt.<seq>` on `DGDR_DEADLETTER`) to the totals.

Failure semantics: nothing here raises for a finding; a DGDR that does not settle in time, a
backlog, or a broken invariant is a line in `Totals.violations`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from bench.chaos_support import Load, Roles, ServiceProcess, SingleNats, converged, supervise
from events import subjects as s
from tests import invariants

DLQ = s.DEAD_LETTER_SUBJECT


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
