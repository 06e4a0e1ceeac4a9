"""A simulated cluster: the deployment target until the Kubernetes adapter is used.

It stores DynamoGraphDeployments in KV bucket `DGDR_SIMCLUSTER` (key `<ns>.<dgd>`), so its state
survives a restart of the service exactly like a real cluster's would. A created DGD is `pending` and
becomes `successful` after `rollout_delay` seconds (measured from its creation time, so a restart
resumes the countdown). Tests and operators can degrade it or delete it (`dgdr cluster ...`); a deleted
DGD is kept as a tombstone (deletionTimestamp set) so that an observer that was down still sees it go.

Every change is reported to `observe(...)`. At start-up the current state of every DGD is reported
before the rollouts that fell due while the service was down resume, except the states already
reported: the cluster keeps, in key `dgdr.reported.through` of its bucket (three tokens: never a
DGD's key), a revision W such that the latest state of every DGD written at or below W was
reported and recorded (W stops below the oldest observation still being retried). A start reads
W and reports only the DGDs written after it, so an unchanged DGD costs no command at a restart,
while a DGD changed while the service was down (degraded, deleted, rolled out) is reported. W is
written at most every `REPORTED_FLUSH_PAUSE` seconds and at `stop()`: a crash forgets the last
moments, whose states are reported again (harmless: the decider ignores observations that change
nothing). Every replica that observes reports every change and writes its own W, which holds
whichever replica wrote it last. The key goes with the bucket: a recreated bucket starts from none.
An observation that fails (NATS unavailable, a leader being elected) is retried until it is
recorded, or until a newer state of the same DGD is reported, which makes it obsolete; it is never
dropped. `apply_dgd` is idempotent: a DGD that already exists and carries the same owner uid keeps
its spec, and is written again unchanged so that its current state is reported again (a DGDR
deploying it anew after a failure waits for an observation that no change would bring); one a
predecessor of the same DGDR name left is taken over (`dgdr.domain.target.claim`: rewritten with
the new spec and owner, and rolled out again, as a changed DGD is); one owned by someone else is
reported as a `conflict` and left alone. All writes are compare-and-swap on the KV revision; reads
of every DGD are one bulk pass (`events.jetstream.bucket_entries`).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import time
from collections.abc import Awaitable
from typing import Any

import structlog
from nats.js import JetStreamContext
from nats.js.errors import (
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from dgdr.domain.clock import now_rfc3339
from dgdr.domain.spec import normalise_gpu_sku
from dgdr.domain.target import (
    LABEL_NAME,
    LABEL_NAMESPACE,
    OWNER_UID,
    ApplyResult,
    Observer,
    claim,
    observe_dgd,
)
from events import subjects as s
from events.jetstream import bucket_entries, ensure_bucket
from events.transient import pause_after

BUCKET = "DGDR_SIMCLUSTER"
FIRST_REPORT_PAUSE = 0.2
MAX_REPORT_PAUSE = 5.0
REPORTED_KEY = "dgdr.reported.through"  # W (module docstring); DGD keys have two tokens
REPORTED_FLUSH_PAUSE = 0.5

log = structlog.get_logger("dgdr.app.simcluster")


class SimulatedCluster:
    def __init__(
        self,
        js: JetStreamContext,
        *,
        rollout_delay: float = 1.0,
        nodes: int = 4,
        gpus_per_node: int = 8,
        gpu_product: str = "NVIDIA-H200-141GB-HBM3",
        vram_mb: int = 143771,
        replicas: int = 1,
    ) -> None:
        self.js = js
        self.rollout_delay = rollout_delay
        self.nodes, self.gpus_per_node = nodes, gpus_per_node
        self.gpu_product, self.vram_mb = gpu_product, vram_mb
        self.replicas = replicas
        self.kv: KeyValue | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._watch_task: asyncio.Task[None] | None = None
        self._retries: dict[str, asyncio.Future[None]] = {}  # key -> its failed observation
        # The reported watermark W (module docstring): what was read or written, the last
        # revision the watch handled, and the revisions of observations still being retried.
        self._through = 0
        self._handled = 0
        self._unrecorded: dict[str, int] = {}
        self._through_moved = asyncio.Event()
        self._flush_task: asyncio.Task[None] | None = None

    async def discover_hardware(self) -> dict[str, Any]:
        """What node labels would say (`nvidia.com/gpu.product`, `.count`, `.memory`)."""
        sku = normalise_gpu_sku(self.gpu_product)
        return {
            "gpuSku": sku.value if sku else None,
            "numGpusPerNode": self.gpus_per_node,
            "totalGpus": min(32, self.nodes * self.gpus_per_node),
            "vramMb": self.vram_mb,
        }

    async def open(self) -> KeyValue:
        if self.kv is None:
            self.kv = await ensure_bucket(
                self.js, BUCKET, "simulated cluster: DynamoGraphDeployments", self.replicas
            )
        return self.kv

    async def start(self, observe: Observer | None = None) -> None:
        kv = await self.open()
        if observe is not None:
            # The port's contract: the current state of every DGD not yet reported is reported
            # first; rollouts that fell due while the service was down resume only then, so a
            # DGD created just before a crash is still observed pending before it is observed
            # successful.
            self._through = self._handled = await self._read_through(kv)
            self._unrecorded.clear()
            reported = asyncio.Event()
            self._watch_task = asyncio.create_task(self._watch(kv, observe, reported))
            self._flush_task = asyncio.create_task(self._flush_through(kv))
            try:
                async with asyncio.timeout(10):
                    await reported.wait()
            except TimeoutError:
                log.warning("simulated cluster: the current DGDs were not all reported in 10 s")
        for key, (dgd, _) in (await self._all(only_containing=b"pending")).items():
            if dgd.get("status", {}).get("state") == "pending" and not self._deleted(dgd):
                self._spawn(self._rollout(key))

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._watch_task] if self._watch_task else [])]
        tasks += [self._flush_task] if self._flush_task else []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if self._flush_task is not None and self.kv is not None:
            # Keep what was reported for the next start; NATS may be gone already (it is only
            # reported again then).
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._write_through(self.kv)
        self._tasks.clear()
        self._retries.clear()
        self._unrecorded.clear()
        self._watch_task = self._flush_task = None

    @staticmethod
    async def _read_through(kv: KeyValue) -> int:
        try:
            entry = await kv.get(REPORTED_KEY)
        except KeyNotFoundError:
            return 0
        try:
            return int(entry.value or b"0")
        except ValueError:
            log.warning("simulated cluster: unreadable reported watermark; reporting every DGD")
            return 0

    def _advance_through(self) -> None:
        """W: every revision handled, short of the oldest observation still being retried."""
        through = self._handled
        if self._unrecorded:
            through = min(through, min(self._unrecorded.values()) - 1)
        if through > self._through:
            self._through = through
            self._through_moved.set()

    async def _write_through(self, kv: KeyValue) -> None:
        await kv.put(REPORTED_KEY, str(self._through).encode())

    async def _flush_through(self, kv: KeyValue) -> None:
        """Write W when it moved, at most every `REPORTED_FLUSH_PAUSE` seconds; a failed write
        is tried again at the next move (an older W only costs reports at the next start)."""
        while True:
            await self._through_moved.wait()
            self._through_moved.clear()
            try:
                await self._write_through(kv)
            except Exception as exc:
                log.debug("reported watermark not written", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(REPORTED_FLUSH_PAUSE)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _deleted(dgd: dict[str, Any]) -> bool:
        return bool(dgd.get("metadata", {}).get("deletionTimestamp"))

    async def _read(self, key: str) -> tuple[dict[str, Any] | None, int]:
        kv = await self.open()
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            return None, 0
        if not entry.value:
            return None, int(entry.revision or 0)
        return json.loads(entry.value), int(entry.revision or 0)

    async def _all(self, only_containing: bytes = b"") -> dict[str, tuple[dict[str, Any], int]]:
        """Every DGD (tombstones included) with its revision, in one bulk read; only those whose
        stored JSON contains `only_containing` are decoded and returned."""
        await self.open()
        entries = await bucket_entries(self.js, BUCKET)
        return {
            key: (json.loads(value), revision)
            for key, (value, revision) in sorted(entries.items())
            if value and key != REPORTED_KEY and only_containing in value
        }

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        dgd, _ = await self._read(s.status_key(namespace, name))
        return None if dgd is None or self._deleted(dgd) else dgd

    async def list(self) -> list[dict[str, Any]]:
        return [d for d, _ in (await self._all()).values() if not self._deleted(d)]

    async def _cas(self, key: str, dgd: dict[str, Any], revision: int) -> bool:
        kv = await self.open()
        data = json.dumps(dgd, sort_keys=True).encode()
        try:
            if revision:
                await kv.update(key, data, last=revision)
            else:
                await kv.create(key, data)
        except KeyWrongLastSequenceError:
            return False
        return True

    async def apply_dgd(
        self,
        dgd: dict[str, Any],
        owner_uid: str,
        resources: builtins.list[dict[str, Any]] | None = None,
    ) -> ApplyResult:
        """Create the DGD unless it exists; returns `created`, `exists` (ours), `adopted` (a
        predecessor's, taken over) or `conflict`.
        The simulated cluster has no ConfigMaps: `resources` are accepted and not stored."""
        meta = dgd["metadata"]
        key = s.status_key(meta["namespace"], meta["name"])
        for _ in range(10):
            current, revision = await self._read(key)
            verdict: ApplyResult = "created"
            if current is not None and not self._deleted(current):
                labels = dgd["metadata"].get("labels") or {}
                verdict = claim(
                    current,
                    owner_uid,
                    labels.get(LABEL_NAMESPACE, meta["namespace"]),
                    labels.get(LABEL_NAME, meta["name"]),
                )
                if verdict == "exists":
                    # Written again unchanged: a new revision, so the watch reports its state
                    # (in order, as any change) to a DGDR that may be waiting for it.
                    await self._cas(key, current, revision)
                if verdict != "adopted":
                    return verdict
            obj = json.loads(json.dumps(dgd))
            obj["metadata"].setdefault("annotations", {})[OWNER_UID] = owner_uid
            obj["metadata"]["creationTimestamp"] = now_rfc3339("seconds")
            obj["metadata"]["readyAt"] = time.time() + self.rollout_delay
            obj["status"] = {"state": "pending", "conditions": []}
            if await self._cas(key, obj, revision):
                log.info(f"dgd {verdict}", namespace=meta["namespace"], dgd=meta["name"])
                self._spawn(self._rollout(key))
                return verdict
        raise RuntimeError(f"could not create DGD {key}: it kept changing")

    async def _rollout(self, key: str) -> None:
        """Mark the DGD successful once its rollout delay is over; a failure (NATS unavailable,
        a leader being elected) is retried until it is done, never left as a dead task that
        would leave the DGD pending for good."""
        attempt = 0
        while True:
            try:
                dgd, _ = await self._read(key)
                if dgd is None:
                    return
                ready_at = float(dgd["metadata"].get("readyAt", 0))
                await asyncio.sleep(max(0.0, ready_at - time.time()))
                await self._set_state(key, "successful", only_from="pending")
                return
            except Exception as exc:
                attempt += 1
                log.warning(
                    "rollout step failed; retrying",
                    dgd=key,
                    attempt=attempt,
                    error=f"{type(exc).__name__}: {exc}",
                )
                await asyncio.sleep(pause_after(attempt))

    async def _set_state(self, key: str, state: str, only_from: str | None = None) -> bool:
        for _ in range(10):
            dgd, revision = await self._read(key)
            if dgd is None or self._deleted(dgd):
                return False
            if only_from is not None and dgd["status"].get("state") != only_from:
                return False
            dgd["status"] = {
                "state": state,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True" if state == "successful" else "False",
                        "lastTransitionTime": now_rfc3339("seconds"),
                    }
                ],
            }
            if await self._cas(key, dgd, revision):
                return True
        return False

    async def degrade(self, namespace: str, name: str, state: str = "failed") -> bool:
        return await self._set_state(s.status_key(namespace, name), state)

    async def recover(self, namespace: str, name: str) -> bool:
        return await self._set_state(s.status_key(namespace, name), "successful")

    async def delete(self, namespace: str, name: str) -> bool:
        key = s.status_key(namespace, name)
        for _ in range(10):
            dgd, revision = await self._read(key)
            if dgd is None or self._deleted(dgd):
                return False
            dgd["metadata"]["deletionTimestamp"] = now_rfc3339("seconds")
            if await self._cas(key, dgd, revision):
                return True
        return False

    async def _watch(self, kv: KeyValue, observe: Observer, reported: asyncio.Event) -> None:
        """Report every DGD written after W, then each change; `reported` is set once the DGDs
        that existed when the watch began have all been handled (nats-py marks that point with a
        None entry). Only DGD keys (two tokens) are watched, not W's own key."""
        while True:
            try:
                watcher = await kv.watch("*.*")
                # `async for`, not `updates(timeout)`: that wraps wait_for, which can swallow a
                # cancellation on Python 3.11 and leave stop() waiting forever.
                async for entry in watcher:
                    if entry is None:
                        reported.set()
                        continue
                    revision = int(entry.revision or 0)
                    if revision <= self._through:
                        continue  # reported and recorded before (a restart, a new watch)
                    if entry.value:
                        await self._report(json.loads(entry.value), observe, revision)
                    self._handled = max(self._handled, revision)
                    self._advance_through()
                await asyncio.sleep(0.5)  # the watcher was stopped under us: watch again
            except asyncio.CancelledError:
                raise
            except (TimeoutError, NotFoundError, ConnectionError) as exc:
                log.warning("simulated cluster watch restarted", error=str(exc))
                await asyncio.sleep(0.5)

    async def _report(self, dgd: dict[str, Any], observe: Observer, revision: int) -> None:
        """Report `dgd`'s state (written at `revision`); one that fails is handed to a retry task
        for its key, which a later report of the same DGD replaces (that observation made the
        failed one obsolete). Until it is recorded, W stays below `revision`."""
        meta = dgd.get("metadata", {})
        key = f"{meta.get('namespace')}.{meta.get('name')}"
        retrying = self._retries.pop(key, None)
        if retrying is not None:
            retrying.cancel()
        self._unrecorded.pop(key, None)
        observation = observe_dgd(dgd, gone=self._deleted(dgd))
        if observation is None:
            return
        try:
            await observe(*observation)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            task = asyncio.ensure_future(self._retry_report(key, observation, observe, exc))
            self._retries[key] = task
            self._unrecorded[key] = revision
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _retry_report(
        self, key: str, observation: Any, observe: Observer, error: Exception
    ) -> None:
        """Report `observation` again until it is recorded (or this task is cancelled by a newer
        report of the DGD, or by stop()), with a pause doubling up to `MAX_REPORT_PAUSE`."""
        pause = FIRST_REPORT_PAUSE
        attempt = 1
        while True:
            log.warning(
                "observation failed; retrying",
                dgd=observation.dgd_name,
                attempt=attempt,
                retry_in=pause,
                error=f"{type(error).__name__}: {error}",
            )
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_REPORT_PAUSE)
            attempt += 1
            try:
                await observe(*observation)
            except Exception as exc:
                error = exc
                continue
            log.info("observation recorded after retrying", dgd=observation.dgd_name)
            if self._retries.get(key) is asyncio.current_task():
                del self._retries[key]
                self._unrecorded.pop(key, None)
                self._advance_through()
            return
