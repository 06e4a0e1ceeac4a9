"""Reactors (event → command or side effect) and the profiling worker.

The reactor reads `DGDR_EVENTS` through a durable consumer (at-least-once) and reacts:
- `Validated`          → command StartProfiling (id `start-profiling:<uid>:<generation>`)
- `ProfilingStarted`   → a profiling job on `DGDR_JOBS` (Nats-Msg-Id `job:<uid>:<seq>`); for
                         `searchStrategy: thorough` on a target that runs its own profiling Jobs
                         (a cluster), that Job instead, whose reports come back through
                         `profiling_progress/result/failure` as the same deterministic commands
- `DeploymentStarted`  → the generated DGD (held in the state) applied to the deployment target
                         (idempotent: the target keeps a DGD it already has for this uid and reports
                         a foreign one as conflict)
It acts on the state the consumed events leave, held in the `StateCache` it shares with the command
handler: each consumed commit advances the held state (no store read); a gap (commits of the name
it has not seen) or nothing held makes it bring the state up to date from the store first, and the
commands it issues carry that state to the handler, whose append verifies it (a `ConcurrencyConflict`
reloads and decides again). A commit appended by the command handler of its own process is taken
as it was appended (`CommandHandler.take_recorded`), not decoded from the delivery again. Every
reaction is keyed by (uid, event sequence) or made idempotent by the decider (deterministic command
ids), and each first checks that the DGDR is still where the event left it, so a redelivery or a
restart never runs an effect twice.

Observations of the deployment become commands whose id is what was observed (uid, DGD, state,
replica counts), so a repeated observation is recognised as the last one.

The profiling worker pulls jobs and runs the rapid profiler on the DGDR's typed spec and hardware
(`sim.profile_async`): each sub-phase is reported as it happens, then the result or the failure, as
commands with deterministic ids (`profiling:<uid>:<gen>:<step>`). A message on the jobs stream that is
not a job (not JSON, a field missing) is logged and dropped. Only a `ProfilingError` (the user's
case) is recorded as `ProfilingFailed`; any other exception is a bug (or an outage): it is logged
with its traceback and raised, so the consumer redelivers the job with backoff. A worker killed
half-way leaves the job unacknowledged; it is redelivered, the steps already recorded decide nothing,
and the history ends the same as if nothing had happened.
Observed (`ProfilingObserver`, no-op by default): each profiler run's search strategy, outcome
(`succeeded`, `failed`: a ProfilingError, `error`: anything else) and seconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog
from nats.js import JetStreamContext

from dgdr.app.handler import CommandHandler
from dgdr.app.states import Loaded
from dgdr.domain.clock import now_rfc3339
from dgdr.domain.errors import ProfilingError, StoreError
from dgdr.domain.model import (
    Command,
    ObserveDeployment,
    ReportProfilingFailure,
    ReportProfilingProgress,
    ReportProfilingResult,
    SlaVerdict,
    StartProfiling,
)
from dgdr.domain.spec import SearchStrategy
from dgdr.domain.target import DeploymentTarget, ProfilingJobs
from events import subjects as s
from events.envelope import AggregateId, Commit, Envelope
from events.integrity import aggregate_of
from events.jetstream import decode_message
from projections.projector import Projector

log = structlog.get_logger("dgdr.app.reactors")

REACTS_TO = frozenset({"Validated", "ProfilingStarted", "DeploymentStarted"})


def job_subject(agg: AggregateId) -> str:
    return f"{s.JOBS_PREFIX}.{s.escape(agg.namespace)}.{s.escape(agg.name)}"


def observation_id(uid: str, dgd_name: str, observed: str, replicas: int, available: int) -> str:
    """What was observed, as a command id: the same observation always gets the same id."""
    return f"observe:{uid}:{dgd_name}:{observed}:{replicas}:{available}"


class Reactor:
    def __init__(
        self,
        handler: CommandHandler,
        js: JetStreamContext,
        cluster: DeploymentTarget,
        projector: Projector | None = None,
    ) -> None:
        self.handler, self.js, self.cluster = handler, js, cluster
        self.states = handler.states
        # When given, the Profiling start it records is projected right away (`Projector.writing`):
        # the phase shows without waiting for the projector's consumer.
        self.projector = projector

    async def on_message(self, msg: Any) -> None:
        """A delivered commit. One the command handler of this process appended is taken as it
        was appended (`CommandHandler.take_recorded`, once its append has settled: the delivery
        can come before the acknowledgement), not decoded and verified again: the store holds
        what was appended (as the projector trusts its writers' commits)."""
        self.handler.keep_recorded()
        seq = int(msg.metadata.sequence.stream)
        agg = aggregate_of(str(msg.subject))
        if agg is not None:
            await self.handler.settled(agg.namespace, agg.name)
            own = self.handler.take_recorded(seq)
            if own is not None and own.aggregate == agg:
                await self.react(own)
                return
        await self.react(decode_message(msg, seq))

    async def react(self, commit: Commit) -> None:
        """Advance the held state by `commit` and react to its events, once they are folded: a
        damaged message (`events.integrity`), or a commit that is not a legal continuation of
        the state, causes nothing (the projector records and shows it) and is acknowledged."""
        if commit.damage is not None:
            log.debug("damaged message skipped", damage=str(commit.damage))
            return
        held = self.states.advance(commit)
        if not REACTS_TO.intersection(env.type for env in commit.envelopes):
            return
        agg = commit.aggregate
        if held is None:  # nothing held, or a gap: bring it up to date from the store
            held = await self.handler.refresh(
                agg.namespace, agg.name, self.states.get(agg.namespace, agg.name)
            )
        if held.aggregate != agg or any(d.seq == commit.seq for d in held.damage):
            log.debug("commit not folded; no reaction", namespace=agg.namespace, seq=commit.seq)
            return
        for env in commit.envelopes:
            if env.type == "Validated":
                await self._start_profiling(commit, env, held)
            elif env.type == "ProfilingStarted":
                await self._enqueue_job(commit, env, held)
            elif env.type == "DeploymentStarted":
                await self._deploy(commit, env, held)

    async def _start_profiling(self, commit: Commit, env: Envelope, held: Loaded) -> None:
        """Record StartProfiling, then write its commit through (`Projector.writing`). Appended
        before the write-through is entered: the append does not wait for the request intake's
        write-through of the commit it reacts to (only the status writes of a name are ordered);
        should the projector's consumer take the commit first, it projects it and the write
        finds it folded."""
        agg = commit.aggregate
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
            known=held,
        )
        if out.commit is not None and self.projector is not None:
            async with self.projector.writing(agg.namespace, agg.name) as write:
                await write(out.commit)
        log.debug(
            "start profiling",
            namespace=agg.namespace,
            name=agg.name,
            uid=agg.uid,
            seq=commit.seq,
            outcome=out.status,
            reason=out.reason,
        )

    async def _enqueue_job(self, commit: Commit, env: Envelope, held: Loaded) -> None:
        agg, state = commit.aggregate, held.state
        gen = int(env.payload["generation"])
        if held.aggregate != agg or state.phase != "Profiling" or state.generation != gen:
            return
        thorough = (
            state.parsed_spec is not None
            and state.parsed_spec.search_strategy is SearchStrategy.THOROUGH
        )
        if thorough and isinstance(self.cluster, ProfilingJobs):
            spec = {**state.spec, "hardware": state.hardware}
            await self.cluster.start_profiling_job(agg.namespace, agg.name, agg.uid, gen, spec)
            return
        job = {
            "namespace": agg.namespace,
            "name": agg.name,
            "uid": agg.uid,
            "generation": gen,
            "spec": state.spec,
            "hardware": state.hardware,
            "correlationId": env.correlation_id,
        }
        await self.js.publish(
            job_subject(agg),
            json.dumps(job).encode(),
            stream=s.JOBS_STREAM,
            headers={"Nats-Msg-Id": f"job:{agg.uid}:{commit.seq}"},
        )
        log.info(
            "profiling job queued",
            namespace=agg.namespace,
            name=agg.name,
            uid=agg.uid,
            seq=commit.seq,
            job=env.payload["jobName"],
        )

    async def _deploy(self, commit: Commit, env: Envelope, held: Loaded) -> None:
        agg, state = commit.aggregate, held.state
        dgd_name = env.payload["dgdName"]
        if held.aggregate != agg or state.phase != "Deploying" or state.dgd_name != dgd_name:
            return
        if state.deployment_created:
            return  # created before; the cluster's own watch reports what happens to it
        if state.selected_config is None:
            raise RuntimeError(f"{agg}: Deploying without a generated DGD in the state")
        result = await self.cluster.apply_dgd(
            state.selected_config, agg.uid, list(state.additional_resources)
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
                    correlation_id=env.correlation_id,
                    dgd_name=dgd_name,
                    observed="conflict",
                ),
                expected_uid=agg.uid,
                known=held,
            )

    async def _report_profiling(
        self,
        namespace: str,
        name: str,
        uid: str,
        command: Callable[[int], ProfilingReport],
    ) -> None:
        """`command(generation)` for the incarnation `uid`, if it is still profiling (the held
        state is trusted when it says so; otherwise the store is asked)."""

        def profiling(loaded: Loaded | None) -> bool:
            return (
                loaded is not None
                and loaded.aggregate is not None
                and loaded.aggregate.uid == uid
                and loaded.state.phase == "Profiling"
            )

        held = self.handler.current(namespace, name)
        if not profiling(held):
            held = await self.handler.refresh(namespace, name, held)
        if held is not None and profiling(held):
            gen = held.state.generation
            await self.handler.handle(namespace, name, command(gen), expected_uid=uid, known=held)

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
        sla_verdict: SlaVerdict | None = None,
        sla_summary: str | None = None,
    ) -> None:
        await self._report_profiling(
            namespace,
            name,
            uid,
            lambda gen: result_command(
                uid, gen, None, dgd, pareto, message, resources or [], sla_verdict, sla_summary
            ),
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
        """The deployment target saw a DGD change: tell the DGDR (a no-op when nothing changed).

        Raises `StoreError` when the observation could not be recorded because the DGDR kept
        changing (outcome `Conflict`): the target retries it, as any observation that failed,
        rather than count it as recorded (a target need not report a recorded one again)."""
        out = await self.handler.handle(
            namespace,
            name,
            ObserveDeployment(
                id=observation_id(uid, dgd_name, observed, replicas, available),
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
        if out.status == "rejected" and out.reason == "Conflict":
            raise StoreError(f"observation of DGD {dgd_name} not recorded: {out.message}")


class ProfilingObserver(Protocol):
    def profiled(self, strategy: str, outcome: str, seconds: float) -> None:
        """A profiler run ended: succeeded, failed or error."""


class _Unobserved:
    def profiled(self, strategy: str, outcome: str, seconds: float) -> None:
        pass


@dataclass(frozen=True)
class HubFetch:
    """The operator lets the profiling worker fetch config.json from the Hugging Face Hub
    (`dgdr up --hf-fetch`); `endpoint` None is HF_ENDPOINT, else huggingface.co."""

    endpoint: str | None = None
    timeout: float = 10.0

    async def fetch(self, model: str, keepalive: Callable[[], Awaitable[None]]) -> str:
        """Bring `model`'s config.json into the local cache when only the Hub knows the model;
        "" when it is there (or was not needed), else why not, in one line. `keepalive` is
        awaited every second while the Hub is asked (the job's ack deadline keeps moving)."""
        import sim

        if not sim.needs_fetch(model):
            return ""
        fetching = asyncio.ensure_future(
            asyncio.to_thread(sim.fetch_config, model, endpoint=self.endpoint, timeout=self.timeout)
        )
        while not (await asyncio.wait([fetching], timeout=1.0))[0]:
            await keepalive()
        return fetching.result().reason


class ProfilingWorker:
    def __init__(
        self,
        handler: CommandHandler,
        model_dirs: tuple[Path, ...] = (),
        observer: ProfilingObserver | None = None,
        hub: HubFetch | None = None,
    ) -> None:
        self.observer: ProfilingObserver = observer or _Unobserved()
        self.handler = handler
        self.model_dirs = model_dirs  # where spec.model may name a local config.json
        self.hub = hub  # None: never reach the Hugging Face Hub

    async def on_message(self, msg: Any) -> None:
        import sim

        try:
            job = json.loads(msg.data)
            ns, name, uid, gen = job["namespace"], job["name"], job["uid"], int(job["generation"])
            corr = job.get("correlationId")
            if not all(isinstance(v, str) for v in (ns, name, uid)):
                raise TypeError("namespace, name and uid must be strings")
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            # the service publishes every job; one it cannot read is dropped, not retried forever
            log.warning("message on the jobs stream is not a job; dropped", subject=msg.subject,
                        error=repr(exc)[:200])  # fmt: skip
            return
        bound = log.bind(namespace=ns, name=name, uid=uid, generation=gen)
        loaded = await self.handler.refresh(ns, name, self.handler.current(ns, name))
        state = loaded.state
        if (
            loaded.aggregate is None
            or loaded.aggregate.uid != uid
            or state.phase != "Profiling"
            or state.generation != gen
        ):
            bound.info("profiling job is stale; dropped", phase=state.phase)
            return
        if state.parsed_spec is None or state.resolved_hardware is None:
            raise RuntimeError(f"{loaded.aggregate}: profiling without a validated spec")

        async def report(command: Command) -> None:
            out = await self.handler.handle(ns, name, command, expected_uid=uid)
            if out.status == "rejected" and out.reason == "Stale":  # e.g. a replayed step
                bound.debug("profiling report is stale; ignored", step=command.id, msg=out.message)
            elif out.status == "rejected":
                bound.warning("profiling report rejected", reason=out.reason, msg=out.message)
            await msg.in_progress()

        async def step(sub_phase: str, message: str) -> None:
            await report(progress_command(uid, gen, corr, sub_phase, message))

        strategy, started = str(state.parsed_spec.search_strategy.value), time.monotonic()
        not_fetched = (
            await self.hub.fetch(state.parsed_spec.model, msg.in_progress) if self.hub else ""
        )
        if not_fetched:
            bound.warning("model config.json not fetched", error=not_fetched)
        try:
            result = await sim.profile_async(
                state.parsed_spec,
                state.resolved_hardware,
                report=step,
                name=name,
                namespace=ns,
                model_dirs=self.model_dirs,
            )
        except ProfilingError as exc:
            self.observer.profiled(strategy, "failed", time.monotonic() - started)
            why = f"{exc.message}; its config.json was not fetched: {not_fetched}"
            text = why if not_fetched else exc.message
            await report(failure_command(uid, gen, corr, exc.sub_phase, text))
            bound.warning("profiling failed", sub_phase=exc.sub_phase, error=exc.message)
            return
        except Exception:
            self.observer.profiled(strategy, "error", time.monotonic() - started)
            bound.exception("profiling job failed unexpectedly; it will be redelivered")
            raise
        self.observer.profiled(strategy, "succeeded", time.monotonic() - started)
        await report(
            result_command(
                uid,
                gen,
                corr,
                result.selected_config,
                result.pareto,
                f"{result.message} (config.json not fetched: {not_fetched})"
                if not_fetched
                else result.message,
                result.configmaps,
                result.sla_verdict,
                result.sla_summary or None,
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
    sla_verdict: SlaVerdict | None = None,
    sla_summary: str | None = None,
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
        sla_verdict=sla_verdict,
        sla_summary=sla_summary,
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
