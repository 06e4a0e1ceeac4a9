"""Two adapters, one leader: the Lease is held by one elector; a standby takes over within the lease
duration once the leader stops renewing."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from k8s.leader import LeaderElector

from .conftest import Kube

pytestmark = pytest.mark.timeout(60)


async def test_one_leader_and_a_standby_takes_over(kube: Kube) -> None:
    leading: list[str] = []

    def candidate(identity: str) -> tuple[LeaderElector, asyncio.Task[None]]:
        elector = LeaderElector(
            kube.api, identity=identity, name="test-lease", lease_duration=1, renew_every=0.2
        )

        async def lead() -> None:
            leading.append(identity)
            await asyncio.Event().wait()

        return elector, asyncio.create_task(elector.run(lead))

    first, first_task = candidate("a")
    second, second_task = candidate("b")
    try:
        await kube.until(lambda: asyncio.sleep(0, bool(leading)), 10, "a leader")
        await asyncio.sleep(1.5)  # several renewals: nobody else may lead meanwhile
        assert len(leading) == 1
        leader, standby = (first, second) if leading[0] == "a" else (second, first)
        leader_task = first_task if leader is first else second_task
        assert leader.is_leader and not standby.is_leader

        stopped = time.monotonic()
        leader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leader_task
        await kube.until(lambda: asyncio.sleep(0, standby.is_leader), 10, "a takeover")
        took = time.monotonic() - stopped
        assert len(leading) == 2 and leading[1] != leading[0]
        assert took < 1 + 1.0, f"takeover took {took:.2f} s with a 1 s lease"
    finally:
        for task in (first_task, second_task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
