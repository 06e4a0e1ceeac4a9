"""Reactors (event → command or side effect) and the profiling worker.

The reactor reads `DGDR_EVENTS` through a durable consumer (at-least-once) and reacts:
- `Validated`          → command StartProfiling (id `start-profiling:<uid>:<generation>`)
- `ProfilingStarted`   → a profiling job on `DGDR_JOBS` (Nats-Msg-Id `job:<uid>:<seq>`); for
                         `searchStrategy: thorough` on a target that runs its own profiling Jobs
                         (a cluster), that Job instead, whose reports come back through
                         `profiling_progress/result/failure` as the same deterministic commands
- `DeploymentStarted`  → the generated DGD applied to the deployment target (idempotent: the target
                         keeps a DGD it already has for this uid and reports a foreign one as conflict)
Every reaction is keyed by (uid, event sequence) or made idempotent by the decider (command ids are
deterministic), and each first checks that the DGDR is still where the event left it, so a redelivery
or a restart never runs an effect twice.

The profiling worker pulls jobs, runs the rapid profiler (`sim.profile`), and reports each sub-phase
and then the result or the failure as commands with deterministic ids (`profiling:<uid>:<gen>:<step>`).
A worker killed half-way leaves the job unacknowledged; it is redelivered, the steps already recorded
decide nothing, and the history ends the same as if nothing had happened.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from nats.js import JetStreamContext

from dgdr.app.handler import CommandHandler
from dgdr.domain.clock import now_rfc3339
from dgdr.domain.hardware import ResolvedHardware
from dgdr.domain.model import (
    ObserveDeployment,
    ReportProfilingFailure,
    ReportProfilingProgress,
    ReportProfilingResult,
    StartProfiling,
)
from dgdr.domain.spec import DGDRSpec
from dgdr.domain.target import DeploymentTarget, ProfilingJobs
from events import subjects as s
from events.envelope import AggregateId, Commit
from events.jetstream import decode_message

log = structlog.get_logger("dgdr.app.reactors")


def decode_commit(msg: Any) -> Commit:
    """The commit in an event delivered by a durable consumer."""
    return decode_message(msg, int(msg.metadata.sequence.stream))


def job_subject(agg: AggregateId) -> str:
    return f"{s.JOBS_PREFIX}.{s.escape(agg.namespace)}.{s.escape(agg.name)}"


class Reactor:
    def __init__(
        self, handler: CommandHandler, js: JetStreamContext, cluster: DeploymentTarget
    ) -> None:
        self.handler, self.js, self.cluster = handler, js, cluster

    async def on_message(self, msg: Any) -> None:
        commit = decode_commit(msg)
        for env in commit.envelopes:
            agg = env.aggregate
            bound = log.bind(namespace=agg.namespace, name=agg.name, uid=agg.uid, seq=commit.seq)
            if env.type == "Validated":
                gen = int(env.payload["generation"])
                out = await self.handler.handle(
                    agg.namespace,
                    agg.name,
                    StartProfiling(
                        id=f"start-profiling:{agg.uid}:{gen}",
                        at=now_rfc3339(),
                        correlation_id=env.correlation_id,
                        generation=gen,
                        job_name=f"profile-{agg.name}",
                    ),
                    expected_uid=agg.uid,
                )
                bound.debug("start profiling", outcome=out.status, reason=out.reason)
            elif env.type == "ProfilingStarted":
                await self._enqueue_job(commit, env.payload, env.correlation_id)
                bound.info("profiling job queued", job=env.payload["jobName"])
            elif env.type == "DeploymentStarted":
                await self._deploy(commit, env.payload["dgdName"], env.correlation_id)

    async def _enqueue_job(
        self, commit: Commit, payload: dict[str, Any], correlation_id: str | None
    ) -> None:
        agg = commit.aggregate
        loaded = await self.handler.load(agg.namespace, agg.name)
        gen = int(payload["generation"])
        if (
            loaded.aggregate != agg
            or loaded.state.phase != "Profiling"
            or loaded.state.generation != gen
        ):
            return
        if loaded.state.spec.get("searchStrategy") == "thorough" and isinstance(
            self.cluster, ProfilingJobs
        ):
            spec = {**loaded.state.spec, "hardware": loaded.state.hardware}
            await self.cluster.start_profiling_job(agg.namespace, agg.name, agg.uid, gen, spec)
            return
        job = {
            "namespace": agg.namespace,
            "name": agg.name,
            "uid": agg.uid,
            "generation": gen,
            "spec": loaded.state.spec,
            "hardware": loaded.state.hardware,
            "correlationId": correlation_id,
        }
        await self.js.publish(
            job_subject(agg),
            json.dumps(job).encode(),
            stream=s.JOBS_STREAM,
            headers={"Nats-Msg-Id": f"job:{agg.uid}:{commit.seq}"},
        )

    async def _deploy(self, commit: Commit, dgd_name: str, correlation_id: str | None) -> None:
        agg = commit.aggregate
        loaded = await self.handler.load(agg.namespace, agg.name)
        state = loaded.state
        if loaded.aggregate != agg or state.phase != "Deploying" or state.dgd_name != dgd_name:
            return
        if state.deployment_created:
            return  # created before; the cluster's own watch reports what happens to it
        completed = None
        for c in reversed(await self.handler.store.load(agg)):
            for env in c.envelopes:
                if env.type == "ProfilingCompleted":
                    completed = env.payload
                    break
            if completed is not None:
                break
        if completed is None:
            raise RuntimeError(f"{agg}: Deploying without a generated DGD in the history")
        result = await self.cluster.apply_dgd(
            completed["selectedConfig"], agg.uid, completed.get("additionalResources") or []
        )
        log.info(
            "dgd applied",
            namespace=agg.namespace,
            name=agg.name,
            uid=agg.uid,
            seq=commit.seq,
            dgd=dgd_name,
            result=result,
        )
        if result == "conflict":
            await self.handler.handle(
                agg.namespace,
                agg.name,
                ObserveDeployment(
                    id=f"deploy-conflict:{agg.uid}:{commit.seq}",
                    at=now_rfc3339(),
                    correlation_id=correlation_id,
                    dgd_name=dgd_name,
                    observed="conflict",
                ),
                expected_uid=agg.uid,
            )

    async def _report_profiling(
        self,
        namespace: str,
        name: str,
        uid: str,
        command: Callable[[int], ProfilingReport],
    ) -> None:
        """`command(generation)` for the incarnation `uid`, if it is still profiling."""
        loaded = await self.handler.load(namespace, name)
        if loaded.aggregate is None or loaded.aggregate.uid != uid:
            return
        if loaded.state.phase == "Profiling":
            gen = loaded.state.generation
            await self.handler.handle(namespace, name, command(gen), expected_uid=uid)

    async def profiling_progress(
        self, namespace: str, name: str, uid: str, sub_phase: str, message: str
    ) -> None:
        await self._report_profiling(
            namespace, name, uid, lambda gen: progress_command(uid, gen, None, sub_phase, message)
        )

    async def profiling_result(
        self,
        namespace: str,
        name: str,
        uid: str,
        dgd: dict[str, Any],
        pareto: list[dict[str, Any]],
        message: str,
        resources: list[dict[str, Any]] | None = None,
    ) -> None:
        await self._report_profiling(
            namespace,
            name,
            uid,
            lambda gen: result_command(uid, gen, None, dgd, pareto, message, resources or []),
        )

    async def profiling_failure(
        self, namespace: str, name: str, uid: str, sub_phase: str | None, message: str
    ) -> None:
        await self._report_profiling(
            namespace, name, uid, lambda gen: failure_command(uid, gen, None, sub_phase, message)
        )

    async def observe(
        self,
        namespace: str,
        name: str,
        uid: str,
        dgd_name: str,
        observed: str,
        replicas: int,
        available: int,
    ) -> None:
        """The deployment target saw a DGD change: tell the DGDR (a no-op when nothing changed)."""
        out = await self.handler.handle(
            namespace,
            name,
            ObserveDeployment(
                id=f"observe:{uid}:{dgd_name}:{observed}:{replicas}:{available}:"
                f"{datetime.now(UTC).timestamp()}",
                at=now_rfc3339(),
                dgd_name=dgd_name,
                observed=observed,
                replicas=replicas,
                available_replicas=available,
            ),
            expected_uid=uid,
        )
        log.debug(
            "deployment observed",
            namespace=namespace,
            name=name,
            uid=uid,
            dgd=dgd_name,
            observed=observed,
            outcome=out.status,
            seq=out.resource_version,
        )


class ProfilingWorker:
    def __init__(self, handler: CommandHandler, *, step_delay: float = 0.3) -> None:
        self.handler = handler
        self.step_delay = step_delay

    async def on_message(self, msg: Any) -> None:
        job = json.loads(msg.data)
        ns, name, uid, gen = job["namespace"], job["name"], job["uid"], int(job["generation"])
        corr = job.get("correlationId")
        bound = log.bind(namespace=ns, name=name, uid=uid, generation=gen)
        loaded = await self.handler.load(ns, name)
        if (
            loaded.aggregate is None
            or loaded.aggregate.uid != uid
            or loaded.state.phase != "Profiling"
            or loaded.state.generation != gen
        ):
            bound.info("profiling job is stale; dropped", phase=loaded.state.phase)
            return

        async def report(command: Any) -> None:
            out = await self.handler.handle(ns, name, command, expected_uid=uid)
            if out.status == "rejected" and out.reason != "Stale":
                bound.warning("profiling report rejected", reason=out.reason, msg=out.message)
            await msg.in_progress()

        steps: list[tuple[str, str]] = [("Initializing", f"profiling job {msg.subject} started")]
        try:
            import sim

            spec = DGDRSpec.model_validate(job["spec"])
            result = await asyncio.to_thread(
                sim.profile,
                spec,
                ResolvedHardware.from_dict(job["hardware"]),
                name=name,
                namespace=ns,
                progress=lambda sub, text: steps.append((sub, text)),
            )
        except Exception as exc:  # sim.ProfilingError carries the sub-phase; anything else is a bug
            sub = getattr(exc, "sub_phase", None) or (steps[-1][0] if steps else None)
            text = getattr(exc, "message", None) or f"{exc.__class__.__name__}: {exc}"
            for step_sub, step_text in steps:
                await report(progress_command(uid, gen, corr, step_sub, step_text))
            await report(failure_command(uid, gen, corr, sub, text))
            bound.warning("profiling failed", sub_phase=sub, error=text)
            return
        for step_sub, step_text in steps:
            await report(progress_command(uid, gen, corr, step_sub, step_text))
            await asyncio.sleep(self.step_delay)
        await report(
            result_command(
                uid,
                gen,
                corr,
                result.selected_config,
                result.pareto,
                result.message,
                result.configmaps,
            )
        )
        bound.info("profiling done", dgd=result.dgd_name, summary=result.message)


# The profiling reports, with the deterministic ids that make a repeated report a no-op; the same
# for the profiling worker and for a cluster's profiling Job.
ProfilingReport = ReportProfilingProgress | ReportProfilingResult | ReportProfilingFailure


def progress_command(
    uid: str, gen: int, corr: str | None, sub: str, text: str
) -> ReportProfilingProgress:
    return ReportProfilingProgress(
        id=f"profiling:{uid}:{gen}:{sub}",
        at=now_rfc3339(),
        correlation_id=corr,
        generation=gen,
        sub_phase=sub,
        message=text,
    )


def result_command(
    uid: str,
    gen: int,
    corr: str | None,
    dgd: dict[str, Any],
    pareto: list[dict[str, Any]],
    message: str,
    resources: list[dict[str, Any]],
) -> ReportProfilingResult:
    return ReportProfilingResult(
        id=f"profiling:{uid}:{gen}:result",
        at=now_rfc3339(),
        correlation_id=corr,
        generation=gen,
        dgd_name=dgd["metadata"]["name"],
        selected_config=dgd,
        pareto=pareto,
        message=message,
        additional_resources=resources,
    )


def failure_command(
    uid: str, gen: int, corr: str | None, sub: str | None, text: str
) -> ReportProfilingFailure:
    return ReportProfilingFailure(
        id=f"profiling:{uid}:{gen}:failed",
        at=now_rfc3339(),
        correlation_id=corr,
        generation=gen,
        sub_phase=sub,
        message=text,
    )
