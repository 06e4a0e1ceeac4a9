"""A restart does not report again what was reported before, and reports what changed meanwhile.

The simulated cluster against a real nats-server, stopped and started as the service does: the
DGDs whose state was reported (and recorded) before the stop are not reported at the next start;
a DGD changed while it was down is; an observation still unrecorded at the stop is reported at the
next start. And the whole service, restarted with a Deployed DGDR, decides no observation for it
(counted in its metrics) until its DGD changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import nats
import pytest
from nats.js import JetStreamContext

from dgdr.app.service import Service, ServiceConfig
from dgdr.app.simcluster import SimulatedCluster
from dgdr.client import DgdrClient
from events.connection import ConnectOptions
from events.server import EmbeddedNatsServer
from tests.dgdr.app.test_metrics import scrape, value
from tests.dgdr.app.test_simcluster import dgd_of
from tests.support import manifest, until

Seen = list[tuple[str, str]]  # (DGD, observed state), in the order reported


def recorder(seen: Seen, failing: frozenset[str] = frozenset()) -> object:
    """An observer that records each observation, and fails (as with NATS unavailable) for the
    DGDs named in `failing`."""

    async def observe(ns: str, name: str, uid: str, dgd: str, state: str, n: int, a: int) -> None:
        if dgd in failing:
            raise TimeoutError("nats: timeout")
        seen.append((dgd, state))

    return observe


@contextlib.asynccontextmanager
async def running(
    js: JetStreamContext,
    seen: Seen,
    rollout_delay: float = 0.0,
    failing: frozenset[str] = frozenset(),
) -> AsyncIterator[SimulatedCluster]:
    """A cluster started as the service starts it, reporting into `seen`; stopped on the way out."""
    cluster = SimulatedCluster(js, rollout_delay=rollout_delay)
    await cluster.start(recorder(seen, failing))  # type: ignore[arg-type]
    try:
        yield cluster
    finally:
        await cluster.stop()


async def run_until(js: JetStreamContext, seen: Seen, wanted: tuple[str, str]) -> None:
    """Start a cluster reporting into `seen`, wait for `wanted`, and stop it."""
    async with running(js, seen):
        await until(lambda: wanted in seen, 10, f"{wanted} reported")


async def rolled_out(js: JetStreamContext, name: str) -> None:
    """A run of the cluster that creates DGD `<name>-dgd` and stops once it was reported rolled
    out (as a service that deployed it and was then stopped)."""
    seen: Seen = []
    async with running(js, seen) as cluster:
        assert await cluster.apply_dgd(dgd_of(name), f"uid-{name}") == "created"
        await until(lambda: (f"{name}-dgd", "successful") in seen, 10, "the rollout")


@pytest.fixture
async def js(nats_server: EmbeddedNatsServer) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_server.url)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


@pytest.mark.timeout(30)
async def test_a_dgd_reported_before_a_restart_is_not_reported_again(
    js: JetStreamContext,
) -> None:
    await rolled_out(js, "steady")
    after: Seen = []
    async with running(js, after, rollout_delay=3600.0) as cluster:
        # A DGD created after the start is reported after whatever the start reported.
        assert await cluster.apply_dgd(dgd_of("marker"), "uid-marker") == "created"
        await until(lambda: ("marker-dgd", "pending") in after, 10, "the marker DGD")
        assert after == [("marker-dgd", "pending")]


@pytest.mark.timeout(30)
async def test_a_dgd_changed_while_down_is_reported_at_the_next_start(
    js: JetStreamContext,
) -> None:
    await rolled_out(js, "shaky")
    assert await SimulatedCluster(js).degrade("default", "shaky-dgd")  # while down
    after: Seen = []
    await run_until(js, after, ("shaky-dgd", "failed"))
    assert after == [("shaky-dgd", "failed")]


@pytest.mark.timeout(30)
async def test_an_observation_unrecorded_at_the_stop_is_reported_at_the_next_start(
    js: JetStreamContext,
) -> None:
    """The DGDs reported after it were recorded, but the one still being retried when the service
    stopped holds back what counts as reported: the next start reports it (and, harmlessly, those
    written after it)."""
    first: Seen = []
    lost = frozenset({"lost-dgd"})
    async with running(js, first, rollout_delay=3600.0, failing=lost) as cluster:
        assert await cluster.apply_dgd(dgd_of("lost"), "uid-lost") == "created"
        assert await cluster.apply_dgd(dgd_of("later"), "uid-later") == "created"
        await until(lambda: ("later-dgd", "pending") in first, 10, "the later DGD")
    assert ("lost-dgd", "pending") not in first

    after: Seen = []
    await run_until(js, after, ("lost-dgd", "pending"))
    assert after[0] == ("lost-dgd", "pending")


@pytest.mark.timeout(90)
async def test_a_restarted_service_decides_nothing_for_a_deployed_dgdr_until_its_dgd_changes(
    nats_server: EmbeddedNatsServer,
) -> None:
    """Counted in the service's own metrics: after the restart, the only observation decided is
    the DGD's degradation (before, the unchanged DGD was reported again and its DGDR reloaded
    from the store to decide that nothing changed)."""

    def config() -> ServiceConfig:
        return ServiceConfig(
            connect=ConnectOptions(url=nats_server.url),
            rollout_delay=0.2,
            ack_wait=2.0,
            metrics_addr=("127.0.0.1", 0),
        )

    async with DgdrClient(ConnectOptions(url=nats_server.url)) as client:
        service = Service(config())
        await service.start()
        try:
            outcome = await client.apply(manifest("steady"))
            assert outcome["status"] == "accepted", outcome
            await client.wait("steady", phase="Deployed", timeout=40)
        finally:
            await service.stop()

        service = Service(config())
        await service.start()
        try:
            assert service.js is not None and service.metrics_url is not None
            (dgd,) = await SimulatedCluster(service.js).list()
            assert await SimulatedCluster(service.js).degrade("default", dgd["metadata"]["name"])
            await client.wait("steady", phase="Deploying", timeout=20)
            samples = await scrape(service.metrics_url)
            decided = {
                outcome: value(samples, "dgdr_commands_total", verb=verb, outcome=outcome)
                for verb in ("ObserveDeployment",)
                for outcome in ("accepted", "rejected", "invalid")
            }
            assert decided == {"accepted": 1.0, "rejected": 0.0, "invalid": 0.0}
        finally:
            await service.stop()


@pytest.mark.timeout(30)
async def test_applying_a_dgd_that_exists_reports_its_state_again(js: JetStreamContext) -> None:
    """A DGDR that deploys its DGD anew (a new generation after a failure) finds it unchanged: it
    is reported again, since no change would report it and a restart no longer does."""
    seen: Seen = []
    async with running(js, seen) as cluster:
        assert await cluster.apply_dgd(dgd_of("again"), "uid-again") == "created"
        await until(lambda: ("again-dgd", "successful") in seen, 10, "the rollout")
        assert await cluster.apply_dgd(dgd_of("again"), "uid-again") == "exists"
        await until(lambda: seen.count(("again-dgd", "successful")) == 2, 10, "a new report")
