"""The simulated cluster against a real nats-server: what it reports when it starts."""

from __future__ import annotations

import time
from typing import Any

import nats
import pytest

from dgdr.app.simcluster import SimulatedCluster
from dgdr.domain.target import LABEL_NAME, LABEL_NAMESPACE, OWNER_UID
from events import subjects
from events.server import EmbeddedNatsServer
from tests.support import until


@pytest.mark.timeout(30)
async def test_a_rollout_due_while_down_is_reported_pending_first(
    nats_server: EmbeddedNatsServer,
) -> None:
    """A DGD created just before a crash, whose rollout fell due while the service was down, is
    observed as it was (pending) before the resumed rollout makes it successful."""
    nc = await nats.connect(nats_server.url)
    cluster = SimulatedCluster(nc.jetstream(), rollout_delay=0.0)
    await cluster.open()
    due = {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeployment",
        "metadata": {
            "name": "late-dgd",
            "namespace": "default",
            "labels": {LABEL_NAME: "late", LABEL_NAMESPACE: "default"},
            "annotations": {OWNER_UID: "uid-late"},
            "readyAt": time.time() - 60,
        },
        "spec": {"services": {"Worker": {"replicas": 2}}},
        "status": {"state": "pending", "conditions": []},
    }
    assert await cluster._cas(subjects.status_key("default", "late-dgd"), due, 0)
    seen: list[tuple[str, str]] = []  # (reported, what the cluster holds as it is reported)

    async def observe(ns: str, name: str, uid: str, dgd: str, state: str, n: int, a: int) -> None:
        held = await cluster.get("default", dgd)
        assert held is not None
        seen.append((state, held["status"]["state"]))

    await cluster.start(observe)
    try:
        await until(lambda: ("successful", "successful") in seen, 10, "the resumed rollout")
        assert seen == [("pending", "pending"), ("successful", "successful")]
    finally:
        await cluster.stop()
        await nc.close()


def dgd_of(dgdr: str) -> dict[str, Any]:
    """A one-worker DGD `<dgdr>-dgd` in namespace default, labelled as made for DGDR `dgdr`."""
    return {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeployment",
        "metadata": {
            "name": f"{dgdr}-dgd",
            "namespace": "default",
            "labels": {LABEL_NAME: dgdr, LABEL_NAMESPACE: "default"},
        },
        "spec": {"services": {"Worker": {"replicas": 1}}},
    }


@pytest.mark.timeout(30)
async def test_an_observation_that_fails_is_recorded_later(
    nats_server: EmbeddedNatsServer,
) -> None:
    """An observation the service could not record (NATS unavailable) is reported again until it
    is, instead of being dropped (which left the DGDR in Deploying for good)."""
    nc = await nats.connect(nats_server.url)
    cluster = SimulatedCluster(nc.jetstream(), rollout_delay=3600.0)
    recorded: list[tuple[str, str]] = []
    failures = 0

    async def observe(ns: str, name: str, uid: str, dgd: str, state: str, n: int, a: int) -> None:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise TimeoutError("nats: timeout")
        recorded.append((dgd, state))

    await cluster.start(observe)
    try:
        assert await cluster.apply_dgd(dgd_of("slow"), "uid-slow") == "created"
        await until(lambda: ("slow-dgd", "pending") in recorded, 10, "the retried observation")
        assert failures == 2
    finally:
        await cluster.stop()
        await nc.close()


@pytest.mark.timeout(30)
async def test_a_rollout_step_that_fails_is_retried_until_the_dgd_is_successful(
    nats_server: EmbeddedNatsServer,
) -> None:
    """A rollout whose status write fails (NATS unavailable, a leader being elected) is retried,
    instead of dying as a task and leaving the DGD pending (its DGDR in Deploying) for good."""

    class FlakyWrites(SimulatedCluster):
        failures = 0

        async def _set_state(self, key: str, state: str, only_from: str | None = None) -> bool:
            if FlakyWrites.failures < 2:
                FlakyWrites.failures += 1
                raise TimeoutError("nats: timeout")
            return await super()._set_state(key, state, only_from)

    nc = await nats.connect(nats_server.url)
    cluster = FlakyWrites(nc.jetstream(), rollout_delay=0.0)
    recorded: list[tuple[str, str]] = []

    async def observe(ns: str, name: str, uid: str, dgd: str, state: str, n: int, a: int) -> None:
        recorded.append((dgd, state))

    await cluster.start(observe)
    try:
        assert await cluster.apply_dgd(dgd_of("flaky"), "uid-flaky") == "created"
        await until(lambda: ("flaky-dgd", "successful") in recorded, 10, "the retried rollout")
        assert FlakyWrites.failures == 2
    finally:
        await cluster.stop()
        await nc.close()
