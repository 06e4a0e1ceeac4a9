"""kill -9 of the whole service (and its embedded nats-server) at a bad moment, then a restart on the
same data: the DGDR ends where an undisturbed one ends, with the same events and no effect twice.

The DGDRs use `searchStrategy: thorough` (a discrete-event simulation of every candidate, about 2 s
between SweepingDecode and SelectingConfig), so a kill at SweepingDecode lands while the profile
runs; the simulated rollout (0.5 s) does the same for the deploying moment."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dgdr.app.simcluster import SimulatedCluster
from dgdr.client import DgdrClient
from dgdr.domain.errors import DgdrError
from events.connection import ConnectOptions
from events.server import free_port
from tests.integration.conftest import manifest
from tests.support import until

THOROUGH = {"searchStrategy": "thorough"}


class UpProcess:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        log = (self.data_dir / "up.log").open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "dgdr",
            "up",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--rollout-delay",
            "0.5",
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()

        async def answers() -> bool:
            try:  # the context is written once the server runs: until then, a ConfigurationError
                async with DgdrClient(self.options("client")) as c:
                    await c.list()
                    return True
            except DgdrError:
                return False

        await until(answers, 90, "dgdr up to answer: " + str(self.data_dir / "up.log"), 0.1)

    def options(self, role: str) -> ConnectOptions:
        """How `role` connects: the context `dgdr up` wrote for it (authorization is on)."""
        return ConnectOptions.from_context(self.data_dir / "contexts" / f"{role}.json")

    async def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            await asyncio.wait_for(self.proc.wait(), 20)


@pytest.fixture
async def up(tmp_path: Path) -> AsyncIterator[UpProcess]:
    process = UpProcess(tmp_path, free_port())
    await process.start()
    try:
        yield process
    finally:
        if process.proc is not None and process.proc.returncode is None:
            os.killpg(process.proc.pid, signal.SIGKILL)
            await process.proc.wait()


async def _until(client: DgdrClient, name: str, predicate: object) -> None:
    async for _, _, obj in client.watch(name):
        if obj is not None and predicate(obj["status"]):  # type: ignore[operator]
            return


@pytest.mark.timeout(120)
@pytest.mark.parametrize("moment", ["profiling", "deploying"])
async def test_sigkill_and_restart_gives_the_undisturbed_history(
    up: UpProcess, moment: str
) -> None:
    async with DgdrClient(up.options("client")) as c:
        await c.apply(manifest("reference", **THOROUGH))
        await c.wait("reference", phase="Deployed", timeout=60)
        reference = [e["type"] for e in await c.history("reference")]

        await c.apply(manifest("victim", **THOROUGH))
        if moment == "profiling":
            condition = lambda st: st.get("profilingPhase") == "SweepingDecode"  # noqa: E731
        else:
            condition = lambda st: st.get("phase") == "Deploying"  # noqa: E731
        await asyncio.wait_for(_until(c, "victim", condition), 30)
    await up.kill()
    await up.start()
    async with DgdrClient(up.options("admin")) as c:  # admin: it also reads the simulated cluster
        obj = await c.wait("victim", phase="Deployed", timeout=60)
        history = await c.history("victim")
        assert [e["type"] for e in history] == reference
        assert len({e["id"] for e in history}) == len(history), "an event was stored twice"
        assert int(obj["metadata"]["resourceVersion"]) == history[-1]["sequence"]
        dgds = await SimulatedCluster(c.nc.jetstream()).list()
        assert sorted(d["metadata"]["name"] for d in dgds) == ["reference-dgd", "victim-dgd"]
    await up.stop()
