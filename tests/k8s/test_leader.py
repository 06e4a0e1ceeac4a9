"""Two adapters, one leader: the Lease is held by one elector, nobody else leads while it renews,
and a standby takes over once the leader stops renewing. (How fast: `bench/leader_takeover.py`.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client

from k8s.emulator import Emulator
from k8s.leader import LeaderElector
from tests.support import until

pytestmark = pytest.mark.timeout(60)

LEASE = "test-lease"
DURATION = 1


@pytest.fixture
async def api() -> AsyncIterator[client.ApiClient]:
    emulator = Emulator()
    await emulator.start()
    try:
        async with client.ApiClient(client.Configuration(host=emulator.url)) as api_client:
            yield api_client
    finally:
        await emulator.stop()


async def test_one_leader_and_a_standby_takes_over(api: client.ApiClient) -> None:
    leading: list[str] = []
    leases = client.CoordinationV1Api(api)

    def candidate(identity: str) -> tuple[LeaderElector, asyncio.Task[None]]:
        elector = LeaderElector(
            api, identity=identity, name=LEASE, lease_duration=DURATION, renew_every=0.2
        )

        async def lead() -> None:
            leading.append(identity)
            await asyncio.Event().wait()

        return elector, asyncio.create_task(elector.run(lead))

    first, first_task = candidate("a")
    second, second_task = candidate("b")
    try:
        await until(lambda: leading, 10, "a leader")
        leader, standby = (first, second) if leading[0] == "a" else (second, first)
        leader_task = first_task if leader is first else second_task

        async def renewed_past_its_duration() -> bool:
            """The leader kept the Lease for longer than it lasts, while the standby watched it:
            had a renewal been missed, the standby would have taken the Lease by now."""
            spec = (await leases.read_namespaced_lease(LEASE, "default")).spec
            held_for = (spec.renew_time - spec.acquire_time).total_seconds()
            return held_for > 1.5 * DURATION and standby.holder == leader.identity

        await until(renewed_past_its_duration, 10, "renewals past the lease duration")
        spec = (await leases.read_namespaced_lease(LEASE, "default")).spec
        assert len(leading) == 1 and spec.lease_transitions == 0
        assert leader.is_leader and not standby.is_leader

        leader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leader_task
        # is_leader turns true just before the elector starts `lead`: wait for both
        await until(lambda: standby.is_leader and len(leading) == 2, 10, "the standby to lead")
        assert leading == [leader.identity, standby.identity]
        spec = (await leases.read_namespaced_lease(LEASE, "default")).spec
        assert spec.holder_identity == standby.identity and spec.lease_transitions == 1
    finally:
        for task in (first_task, second_task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
