"""Processes and load for bench/chaos.py: the roles' credentials, a single nats-server it can
SIGKILL, `dgdr up` as a subprocess, and a load generator that applies, changes and deletes DGDRs and
keeps every outcome.

Authorization is on, as with `dgdr up`'s default: `Roles.provision` writes, with
`events.auth.provision`, one password per role, the nats-server `authorization` block and one NATS
CLI context per role (`<dir>/contexts/{service,client,admin}.json`). The servers start with that
block, the service runs with `--context service.json`, the load and the fuzzer's requests act as
`client`, and the invariant check (which must read everything) as `admin`.

The expected end state of a name follows from its outcomes, not from what was sent: the request
whose outcome recorded events (a non-empty `events`) with the highest resourceVersion is the last
decision a client caused on that name. A delete implies absent; an apply whose outcome was
`invalid` with `ValidationFailed` implies Failed; a valid apply implies Deployed with autoApply
true and Ready with autoApply false. A request refused at admission (nothing recorded) or a no-op
changes nothing. A name with a request that never got an outcome has no expectation (counted).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client

from events import auth
from events import subjects as s
from events.server import find_nats_server, free_port
from tests.support import manifest

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Roles:
    """Where the servers are and each role's credentials and context file."""

    servers: list[str]
    passwords: dict[str, str]
    contexts: dict[str, Path]
    config_file: Path  # the nats-server `authorization` block

    @classmethod
    def provision(cls, directory: Path, servers: list[str]) -> Roles:
        done = auth.provision(directory, ",".join(servers))
        return cls(servers, dict(done.passwords), dict(done.contexts), done.config_file)

    @property
    def authorization(self) -> str:
        return self.config_file.read_text()

    async def connect(self, role: str, **options: Any) -> Client:
        """A connection as `role` that reconnects for ever, quietly (killed servers are the point)."""

        async def quiet(_error: Exception) -> None:
            pass

        options.setdefault("error_cb", quiet)
        return await nats.connect(
            self.servers,
            user=role,
            password=self.passwords[role],
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
            **options,
        )


class SingleNats:
    """One nats-server with JetStream on a fixed port and store, killable with SIGKILL, with the
    roles' authorization once `secure(roles)` was called."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.config: Path | None = None

    def secure(self, roles: Roles) -> None:
        self.config = roles.config_file

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _spawn(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "server.log").open("ab") as log:
            config = ["-c", str(self.config)] if self.config else []
            self.proc = subprocess.Popen(
                [find_nats_server(), *config, "-js", "-a", "127.0.0.1", "-p", str(self.port),
                 "-sd", str(self.directory / "store")],
                stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip

    async def start(self) -> None:
        self._spawn()
        deadline = time.monotonic() + 20
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nats-server did not start: see {self.directory}") from None
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class ServiceProcess:
    """`python -m dgdr --context CONTEXT up --no-embedded` (the service role's context, which names
    the servers), in its own process group."""

    def __init__(
        self, context: Path, log: Path, replicas: int = 1, rollout_delay: float = 0.3
    ) -> None:
        self.context, self.log, self.replicas = context, log, replicas
        self.rollout_delay = rollout_delay
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dgdr", "--context", str(self.context), "up", "--no-embedded",
                 "--replicas", str(self.replicas), "--rollout-delay", str(self.rollout_delay),
                 "--log-level", "WARNING"],
                stdout=log, stderr=log, cwd=ROOT, start_new_session=True,
            )  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def times_up(self) -> int:
        """How many times a service writing to this log said it was up (start-up finished)."""
        try:
            return self.log.read_text(errors="replace").count("dgdr is up")
        except OSError:
            return 0

    def kill(self) -> None:
        if self.alive:
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.alive:
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


async def supervise(services: list[ServiceProcess], exits: list[str]) -> None:
    """Restart a service that exited on its own (as systemd or Kubernetes would), recording
    each such exit: a service must survive what NATS does, so every exit is a finding."""
    while True:
        await asyncio.sleep(0.5)
        for service in services:
            proc = service.proc
            if proc is None or proc.poll() is None or proc.returncode == -signal.SIGKILL:
                continue
            tail = service.log.read_text(errors="replace").strip().splitlines()[-1:]
            exits.append(
                f"{service.log.name} exited with {proc.returncode}: {' '.join(tail)[:160]}"
            )
            service.start()


class Outcomes:
    """Every outcome published on dgdr.res.>, by request id, and how often our link dropped."""

    def __init__(self) -> None:
        self.by_id: dict[str, dict[str, Any]] = {}
        self.disconnects = 0
        self.nc: Client | None = None

    async def connect(self, roles: Roles) -> Client:
        """Connect as `client` and record every outcome."""

        async def dropped() -> None:
            self.disconnects += 1

        self.nc = await roles.connect("client", disconnected_cb=dropped)

        async def on_outcome(msg: Any) -> None:
            try:
                outcome = json.loads(msg.data)
                self.by_id[str(outcome["requestId"])] = outcome
            except (ValueError, KeyError, TypeError):
                pass

        await self.nc.subscribe(f"{s.RESULTS_PREFIX}.>", cb=on_outcome)
        return self.nc

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()

    async def wait(self, request_id: str, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while request_id not in self.by_id:
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.05)
        return self.by_id[request_id]


async def publish_request(
    nc: Client, subject: str, body: bytes, request_id: str | None, timeout: float = 60.0
) -> bool:
    """Publish to DGDR_REQUESTS until the stream acknowledges it (the same id on every try)."""
    headers = {"Nats-Msg-Id": request_id} if request_id is not None else None
    deadline = time.monotonic() + timeout
    while True:
        try:
            await nc.jetstream().publish(
                subject, body, stream=s.REQUESTS_STREAM, headers=headers, timeout=2
            )
            return True
        except (nats.errors.Error, TimeoutError):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)


SPEC_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("valid", {}),
    ("changed", {"sla": {"ttft": 400, "itl": 25}}),
    ("manual", {"autoApply": False}),
    ("refused", {"sla": {"ttft": -5, "itl": 20}}),  # refused at admission: nothing recorded
]


@dataclass
class Sent:
    name: str
    request_id: str
    kind: str  # a SPEC_VARIANTS key or "delete"
    outcome: dict[str, Any] | None = None


@dataclass
class Load:
    """Per name, a chain of requests, each sent once the previous one has its outcome."""

    outcomes: Outcomes
    rng: random.Random
    names: list[str]
    ops_per_name: int = 3
    concurrency: int = 30
    outcome_timeout: float = 90.0
    sent: list[Sent] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    async def _one(self, nc: Client, name: str, kind: str) -> None:
        request_id = str(uuid.uuid4())
        if kind == "delete":
            body: dict[str, Any] = {"action": "delete"}
        else:
            body = manifest(name, **dict(SPEC_VARIANTS)[kind])
        item = Sent(name, request_id, kind)
        self.sent.append(item)
        self.counts["applies" if kind != "delete" else "deletes"] += 1
        stored = await publish_request(
            nc, s.request_subject("default", name), json.dumps(body).encode(), request_id
        )
        if not stored:
            self.counts["unstored"] += 1
            return
        item.outcome = await self.outcomes.wait(request_id, self.outcome_timeout)
        self.counts[item.outcome["status"] if item.outcome else "unanswered"] += 1

    def _random_kind(self) -> str:
        if self.rng.random() < 0.2:
            return "delete"
        return self.rng.choice([k for k, _ in SPEC_VARIANTS])

    async def _chain(
        self,
        nc: Client,
        name: str,
        gate: asyncio.Semaphore,
        first: str | None,
        until: asyncio.Event | None,
    ) -> None:
        i = 0
        while i < self.ops_per_name or (until is not None and not until.is_set()):
            async with gate:
                await self._one(nc, name, first if i == 0 and first else self._random_kind())
            i += 1
            if until is not None:  # about 25 requests/s in all, whatever the number of names
                await asyncio.sleep(self.rng.uniform(0.4, 2.0) * len(self.names) / 30)

    async def run(
        self, nc: Client, first: str | None = "valid", until: asyncio.Event | None = None
    ) -> None:
        """Every name's chain, `concurrency` requests in flight at most; each chain starts with
        `first` (random when None) and has `ops_per_name` requests, or goes on (paced) until
        `until` is set, so faults injected meanwhile hit a service under load."""
        gate = asyncio.Semaphore(self.concurrency)
        await asyncio.gather(*(self._chain(nc, n, gate, first, until) for n in self.names))

    def dump(self, path: Path) -> None:
        """Every request sent and its outcome, one JSON line each (kept with `--keep`)."""
        with path.open("w") as f:
            for x in self.sent:
                f.write(json.dumps({"name": x.name, "id": x.request_id, "kind": x.kind,
                                    "outcome": x.outcome}) + "\n")  # fmt: skip

    def expected(self) -> tuple[dict[str, str | None], int]:
        """(`<ns>.<name>` -> implied phase, number of names left without an expectation)."""
        out: dict[str, str | None] = {}
        unknown = 0
        for name in self.names:
            mine = [x for x in self.sent if x.name == name]
            if any(x.outcome is None for x in mine):
                unknown += 1
                continue
            recorded = [
                x
                for x in mine
                if x.outcome and x.outcome.get("events") and x.outcome.get("resourceVersion")
            ]
            phase: str | None = None
            if recorded:
                last = max(recorded, key=lambda x: int(x.outcome["resourceVersion"]))  # type: ignore[index]
                assert last.outcome is not None
                if last.kind == "delete":
                    phase = None
                elif last.outcome["status"] == "invalid":
                    phase = "Failed"
                else:
                    phase = "Ready" if last.kind == "manual" else "Deployed"
            out[s.status_key("default", name)] = phase
        return out, unknown


def settled(expected: str | None, obj: dict[str, Any] | None) -> bool:
    """Whether a DGDR shows the phase `expected`, or the one end the product documents instead of
    Deployed (Failed with DeploymentConflict on a kept DGD: `tests.invariants.phase_accepted`
    judges whether that case holds exactly)."""
    have = obj["status"]["phase"] if obj else None
    if have == expected:
        return True
    conditions = obj["status"].get("conditions", []) if obj else []
    conflict = any(c.get("reason") == "DeploymentConflict" for c in conditions)
    return expected == "Deployed" and have == "Failed" and conflict


async def converged(nc: Client, expected: dict[str, str | None], timeout: float) -> bool:
    """Wait until every name in `expected` has settled (`settled`) in DGDR_STATUS."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            kv = await nc.jetstream().key_value(s.STATUS_BUCKET)
        except (nats.errors.Error, TimeoutError):  # no bucket leader yet (a killed server)
            await asyncio.sleep(0.3)
            continue
        missing = 0
        for key, phase in expected.items():
            try:
                entry = await kv.get(key)
                obj = json.loads(entry.value) if entry.value else None
            except Exception:  # absent (deleted or never there), or not yet readable
                obj = None
            missing += not settled(phase, obj)
        if not missing:
            return True
        await asyncio.sleep(0.3)
    return False
