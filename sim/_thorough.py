"""Thorough search without a cluster: the shortlisted configurations are run through the
request-level simulator (`sim.simulate`) under the spec's workload, and ranked by what it measures.

Owns: the shortlist (the `SHORTLIST` best of the candidates given, by the rapid rule, SLA-meeting
ones first; the profile gives the disaggregated ones only, as Dynamo's thorough profiles only
disaggregated deployments), the workload each is simulated under (Poisson arrivals at `requestRate`, or a closed loop of
`concurrency` users, or, with neither, a closed loop that fills the candidate: replicas x batch),
the measured verdict (p90 TTFT and p90 ITL against the targets; `e2eLatency` against p90 TTFT +
(osl - 1) x p90 ITL) and its words, and the ranking: configurations meeting the SLA as measured
first, by the highest measured output tokens/s per GPU (with `sla.optimizationType: latency`, the
lowest measured end-to-end latency), then the ones that miss it, closest to it first. The pick's
verdict is the measured one: a config the estimate says meets the SLA but that misses it as
measured is reported as missing it.

Aggregated candidates run through `sim.simulate`, disaggregated ones through `sim.simulate_disagg`.
A config whose users would have the simulator step through more than `TOKEN_BUDGET` decoded tokens
is simulated as an equal slice of itself (`slice_of`: a divisor of its identical workers, with that
share of the users), which measures the same latencies and tokens/s per GPU (routing spreads the
load evenly): a thorough profile of a few hundred GPUs takes seconds, not the hour and gigabytes a
whole simulation took. Deterministic: a fixed seed per candidate.

Failure semantics: a workload whose smallest slice would still take more than
`MAX_SIMULATED_TOKENS` decoded tokens (a concurrency of a million users, a 30,000-token osl under
a request rate) is a `ProfilingError` at SelectingConfig naming the field and the largest value
that can be simulated; otherwise none beyond `sim.simulate`'s argument checks, which the
candidates always pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dgdr.domain.errors import ProfilingError
from dgdr.domain.spec import SLA, OptimizationType, Workload

from ._catalog import Gpu, ModelArch
from ._des import SimulationResult, simulate
from ._des_disagg import simulate_disagg
from ._message import target_words
from ._search import Candidate, rank_key, sla_ratio

SHORTLIST = 5
REQUESTS = 400
# Decoded tokens one simulation may step through (the simulator does about a million a second on
# this project's 2-CPU machines): a config with more users than that is simulated as a slice.
TOKEN_BUDGET = 1_000_000
# The most decoded tokens one config's simulation may take even as its smallest slice (about ten
# seconds): a workload beyond that is refused, naming it, rather than simulated for hours.
MAX_SIMULATED_TOKENS = 10 * TOKEN_BUDGET


@dataclass(frozen=True)
class Measured:
    candidate: Candidate
    result: SimulationResult
    meets_sla: bool
    tokens_per_s_per_gpu: float
    share: int = 1  # simulated as 1/share of the config (`slice_of`)

    def summary(self) -> str:
        c, r = self.candidate, self.result
        shape = (
            f"P TP {c.prefill_tp} x {c.prefill_workers} + D TP {c.tp} x {c.replicas}"
            if c.mode == "disagg"
            else f"TP {c.tp} x {c.replicas}"
        )
        part = f" (simulated as 1/{self.share} of it)" if self.share > 1 else ""
        return (
            f"{shape} b{c.batch}{part}: p90 TTFT {r.ttft_ms['p90']:.0f} ms, p90 ITL "
            f"{r.itl_ms['p90']:.1f} ms, {self.tokens_per_s_per_gpu:.0f} tok/s/GPU "
            f"({'met' if self.meets_sla else 'missed'})"
        )


def _p90_e2e(result: SimulationResult, osl: int) -> float:
    """p90 TTFT + (osl - 1) x p90 ITL: the end-to-end latency the verdict checks."""
    return result.ttft_ms["p90"] + (osl - 1) * result.itl_ms["p90"]


def _ratio(result: SimulationResult, sla: SLA, osl: int) -> float:
    """The worst measured p90 over its target (at most 1 when the SLA is met as measured)."""
    ttft, itl = result.ttft_ms["p90"], result.itl_ms["p90"]
    return float(sla_ratio(sla, ttft, itl, _p90_e2e(result, osl)))


def _meets(result: SimulationResult, sla: SLA, osl: int) -> bool:
    return _ratio(result, sla, osl) <= 1.0


def measured_verdict(ranked: list[Measured], sla: SLA, osl: int) -> str:
    """The verdict on the best of `ranked` (best first) in words, from the measured p90s."""
    best, r = ranked[0], ranked[0].result
    if sla.e2e_latency is not None:
        parts = [target_words("p90 e2eLatency", _p90_e2e(r, osl), sla.e2e_latency)]
    else:
        parts = [
            target_words("p90 TTFT", r.ttft_ms["p90"], sla.ttft or math.inf),
            target_words("p90 ITL", r.itl_ms["p90"], sla.itl or math.inf),
        ]
    if best.meets_sla:
        return "SLA met as measured: " + ", ".join(parts)
    return (
        "SLA missed as measured: " + ", ".join(parts) + f" (closest of the {len(ranked)} "
        "simulated configs; none meets the SLA as measured)"
    )


def slots(config: dict[str, Any]) -> int:
    """Sequences a picked config decodes at once: (decode) workers x batch."""
    workers = config["decodeWorkers"] if config["mode"] == "disagg" else config["replicas"]
    return int(workers * config["batchSize"])


def simulate_config(
    model: str | ModelArch,
    gpu: str | Gpu,
    config: dict[str, Any],
    *,
    isl: int,
    osl: int,
    request_rate: float | None,
    concurrency: int | None,
    requests: int,
    seed: int = 0,
) -> SimulationResult:
    """The request-level simulation of one config as `profile` reports it (a Pareto entry):
    aggregated through `simulate`, disaggregated through `simulate_disagg`."""
    common: dict[str, Any] = {
        "backend": config["backend"],
        "max_batch": config["batchSize"],
        "isl": isl,
        "osl": osl,
        "request_rate": request_rate,
        "concurrency": concurrency,
        "requests": requests,
        "seed": seed,
    }
    if config["mode"] == "disagg":
        return simulate_disagg(
            model,
            gpu,
            prefill_tp=config["prefillTensorParallelSize"],
            prefill_workers=config["prefillWorkers"],
            decode_tp=config["decodeTensorParallelSize"],
            decode_workers=config["decodeWorkers"],
            prefill_ep=config["prefillExpertParallelSize"],
            decode_ep=config["decodeExpertParallelSize"],
            **common,
        )
    return simulate(
        model,
        gpu,
        tp=config["tensorParallelSize"],
        ep=config["expertParallelSize"],
        pp=config["pipelineParallelSize"],
        replicas=config["replicas"],
        **common,
    )


def requests_for(users: int | None) -> int:
    """Requests one simulation sends: `REQUESTS` under a request rate; under a closed loop three per
    user (the first wave is the warm-up), at least `REQUESTS`."""
    return max(REQUESTS, 3 * (users or 0))


def slice_of(config: dict[str, Any], users: int | None, osl: int) -> int:
    """Into how many equal slices a config is cut so that one slice's simulation stays within
    `TOKEN_BUDGET` decoded tokens: the fewest that does, among the divisors of its identical
    units (decode workers, or the common divisor of prefill and decode workers), each slice
    getting its share of the users (or of the request rate). Routing spreads the load evenly
    over identical workers, so a slice sees the latencies the whole config sees, and the same
    tokens/s per GPU. 1 when the whole config fits the budget (or under a request rate, which
    simulates `REQUESTS` requests however large the config)."""
    if users is None:
        return 1
    workers = int(config["decodeWorkers"] if config["mode"] == "disagg" else config["replicas"])
    units = (
        math.gcd(int(config["prefillWorkers"]), workers) if config["mode"] == "disagg" else workers
    )
    for share in (d for d in range(1, units + 1) if units % d == 0):
        if requests_for(math.ceil(users / share)) * osl <= TOKEN_BUDGET:
            return share
    return units


def _part(config: dict[str, Any], share: int) -> dict[str, Any]:
    """`config` with `1/share` of its workers (`share` divides them)."""
    if share == 1:
        return config
    if config["mode"] == "disagg":
        return {
            **config,
            "prefillWorkers": config["prefillWorkers"] // share,
            "decodeWorkers": config["decodeWorkers"] // share,
        }
    return {**config, "replicas": config["replicas"] // share}


def _check_size(requests: int, workload: Workload, share: int) -> None:
    """`ProfilingError` naming the workload field to change when simulating `requests` requests
    of `workload.osl` tokens (a slice of 1/`share` of the config) would exceed
    `MAX_SIMULATED_TOKENS`."""
    tokens = requests * workload.osl
    if tokens <= MAX_SIMULATED_TOKENS:
        return
    if workload.concurrency is not None and requests > REQUESTS:
        limit = MAX_SIMULATED_TOKENS // (3 * workload.osl) * share
        fix = f"spec.workload.concurrency <= {limit}"
    else:
        fix = f"spec.workload.osl <= {MAX_SIMULATED_TOKENS // requests}"
    raise ProfilingError(
        "SelectingConfig",
        f"searchStrategy thorough simulates every request, and this workload needs {requests} "
        f"requests x {workload.osl} tokens = {tokens:,} decoded tokens per config, over the "
        f"{MAX_SIMULATED_TOKENS:,} it simulates: use {fix}, or searchStrategy rapid",
    )


def simulate_shortlist(
    candidates: list[Candidate], model: ModelArch, gpu: Gpu, workload: Workload, sla: SLA
) -> list[Measured]:
    """The shortlist, simulated (each config whole, or a slice of it: `slice_of`) and ranked
    best first (empty when there are no candidates)."""
    shortlist = sorted(candidates, key=lambda c: rank_key(c, sla.optimization_type))[:SHORTLIST]
    measured: list[Measured] = []
    for seed, c in enumerate(shortlist):
        config = c.to_json(False)
        rate = workload.request_rate
        users = None if rate is not None else max(1, int(workload.concurrency or slots(config)))
        share = slice_of(config, users, workload.osl)
        part_users = None if users is None else math.ceil(users / share)
        requests = requests_for(part_users)
        _check_size(requests, workload, share)
        result = simulate_config(
            model,
            gpu,
            _part(config, share),
            isl=workload.isl,
            osl=workload.osl,
            request_rate=rate,
            concurrency=part_users,
            requests=requests,
            seed=seed,
        )
        measured.append(
            Measured(
                candidate=c,
                result=result,
                meets_sla=_meets(result, sla, workload.osl),
                tokens_per_s_per_gpu=result.output_tokens_per_s * share / c.gpus,
                share=share,
            )
        )
    latency = sla.optimization_type is OptimizationType.LATENCY

    def rank(m: Measured) -> tuple[bool, float]:
        if not m.meets_sla:
            return True, _ratio(m.result, sla, workload.osl)
        return False, _p90_e2e(m.result, workload.osl) if latency else -m.tokens_per_s_per_gpu

    return sorted(measured, key=rank)
