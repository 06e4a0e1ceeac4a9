"""Leader election through a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does.

`LeaderElector.run(lead)` waits until it holds the Lease, runs `lead()` while it renews the Lease
every `renew_every` seconds, and cancels `lead()` as soon as a renewal fails (someone else took
the Lease, or the API server cannot be reached for longer than the lease duration), then goes back
to waiting. A standby takes the Lease over when the holder's record has not changed for
`lease_duration` seconds *as observed locally* (monotonic clock), so clock skew between replicas
does not matter. Every write carries the Lease's resourceVersion: of two standbys racing for an
expired Lease, one gets 409 Conflict and stays standby. `lead()` returning or raising ends `run`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from dgdr.domain.clock import now_rfc3339

log = structlog.get_logger("k8s.leader")

LEASE_NAME = "dgdr-k8s-adapter"


def _format(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        api: client.ApiClient,
        *,
        identity: str,
        namespace: str = "default",
        name: str = LEASE_NAME,
        lease_duration: int = 15,
        renew_every: float | None = None,
    ) -> None:
        self.coordination = client.CoordinationV1Api(api)
        self.identity, self.namespace, self.name = identity, namespace, name
        self.lease_duration = lease_duration
        self.renew_every = renew_every or lease_duration / 3
        self.is_leader = False
        self._observed: tuple[Any, float] | None = None  # (holder record, when it last changed)
        self.holder: str | None = None  # the holder seen at the last read

    def _spec(self, transitions: int, acquire: str | None) -> dict[str, Any]:
        now = now_rfc3339("microseconds")
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.lease_duration,
            "acquireTime": acquire or now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    async def _try_acquire_or_renew(self) -> bool:
        api = self.coordination
        try:
            lease = await api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(0, None),
            }
            try:
                await api.create_namespaced_lease(self.namespace, body)  # type: ignore[arg-type]
            except ApiException as create_exc:
                if create_exc.status == 409:
                    return False
                raise
            return True
        spec = lease.spec
        record = (spec.holder_identity, spec.renew_time, lease.metadata.resource_version)
        if self._observed is None or self._observed[0] != record:
            self._observed = (record, time.monotonic())
        holder = self.holder = spec.holder_identity
        ours = holder == self.identity
        expired = time.monotonic() - self._observed[1] > (
            spec.lease_duration_seconds or self.lease_duration
        )
        if not ours and holder and not expired:
            return False
        transitions = int(spec.lease_transitions or 0) + (0 if ours else 1)
        acquire = _format(spec.acquire_time) if ours and spec.acquire_time else None
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "resourceVersion": lease.metadata.resource_version,
            },
            "spec": self._spec(transitions, acquire),
        }
        try:
            await api.replace_namespaced_lease(self.name, self.namespace, body)  # type: ignore[arg-type]
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def _attempt(self) -> bool:
        try:
            return await self._try_acquire_or_renew()
        except (ApiException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("lease unreachable", lease=self.name, error=str(exc))
            return False

    async def _acquire(self) -> None:
        """Poll the API server until the Lease is ours (there is no event to wait for)."""
        while True:
            if await self._attempt():
                return
            await asyncio.sleep(self.renew_every)

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        while True:
            await self._acquire()
            self.is_leader = True
            log.info("leading", lease=self.name, identity=self.identity)
            task = asyncio.ensure_future(lead())
            last_renewal = time.monotonic()
            try:
                while True:
                    done, _ = await asyncio.wait([task], timeout=self.renew_every)
                    if done:
                        task.result()
                        return
                    if await self._attempt():
                        last_renewal = time.monotonic()
                    elif (
                        self.holder not in (None, self.identity)
                        or time.monotonic() - last_renewal > self.lease_duration * 2 / 3
                    ):
                        log.warning("leadership lost", lease=self.name, identity=self.identity)
                        break
            finally:
                self.is_leader = False
                if not task.done():
                    task.cancel()
                    await asyncio.wait([task], timeout=5)
