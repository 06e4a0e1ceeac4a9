"""`simulate()`: a request-level discrete-event simulation of an aggregated deployment.

Owns: arrivals (Poisson at `request_rate`, or a closed loop of `concurrency` users with no think
time who join one after another over a warm-up, see below), routing (each request joins the replica with the fewest requests in it), continuous batching
per replica (a step either prefills up to `MAX_PREFILL_PROMPTS` waiting prompts while there are free
slots, prefill first as vLLM's default scheduler does, or decodes one token for every running
sequence), the KV-cache limit (`max_batch` sequences per replica), and the measured TTFT and ITL
percentiles. ITL is the gap between a sequence's consecutive tokens, so prefill steps that stall
decoding show up in it, as they do on a real engine.

Step durations come from the roofline (`sim.estimate`): a prefill of `k` prompts is a static batch
of `k` prompts at `isl`; a decode step of `b` sequences is one static decode step at the mean
context `isl + osl/2`, tabulated over `b` and interpolated. Not modelled: disaggregated serving,
chunked prefill mixing prefill and decode in one step, prefix caching, varying isl/osl.

The closed loop's users join evenly spaced over a warm-up of one request's duration at full load
(`warmup_s`: the prefill of one prompt plus `osl` decode steps at the batch each engine will run),
as a running service's users have: users that all start at once with equal isl/osl finish together
and come back together, a lockstep wave that never dissipates, in which every request sees one of
a few queue positions (p90 equals p99) and no decode step is ever stalled by a prefill. Requests
sent during the warm-up are served but not measured, unless none is sent after it (then all are).
This steady state is the one `sim.profile`'s agg estimate assumes.

The bookkeeping any request-level simulation needs (event queue, requests, closed-loop refills,
TTFT/ITL measurements) is `Run`; `sim._des_disagg` adds its own scheduling on the same `Run`.

Deterministic: the same arguments and `seed` give the same result. Bad arguments raise
`EstimateError` naming the argument. The model and the GPU may be given as strings (the public
API: a catalog id, a SKU id or product name) or as catalog records; they are resolved once, and
the step tables pass the records on.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from dgdr.domain.errors import EstimateError

from ._catalog import Gpu, ModelArch
from ._estimate import estimate, resolve_gpu, resolve_model

MAX_PREFILL_PROMPTS = 16


@dataclass(frozen=True)
class SimulationResult:
    requests: int
    duration_s: float
    ttft_ms: dict[str, float]  # p50, p90, p99
    itl_ms: dict[str, float]
    output_tokens_per_s: float
    requests_per_s: float
    mean_running: float  # mean sequences decoding per decode step
    peak_running: int
    # Closed loop: the seconds over which the users joined; their requests are not measured.
    warmup_s: float = 0.0
    measured: int = 0  # requests whose TTFT and ITL the percentiles are of


@dataclass
class _Request:
    arrival: float
    remaining: int
    last_token: float = 0.0


@dataclass
class Replica:
    """One engine: requests waiting for it, sequences it is decoding; for an aggregated replica
    also the step in flight and the prompts that step prefills."""

    waiting: deque[int] = field(default_factory=deque)
    running: list[int] = field(default_factory=list)
    busy: bool = False
    step: str = ""
    admitted: list[int] = field(default_factory=list)

    @property
    def load(self) -> int:
        return len(self.waiting) + len(self.running)


def percentiles(values: list[float] | NDArray[np.float64]) -> dict[str, float]:
    if not len(values):
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0}
    arr = np.asarray(values)
    return {f"p{q}": float(np.percentile(arr, q)) for q in (50, 90, 99)}


def check_load(request_rate: float | None, concurrency: int | None, **counts: int) -> None:
    """The arguments every simulation shares: exactly one load, and positive counts."""
    if (request_rate is None) == (concurrency is None):
        raise EstimateError("request_rate", "give exactly one of request_rate or concurrency")
    if request_rate is not None and not request_rate > 0:
        raise EstimateError("request_rate", f"{request_rate!r} must be > 0")
    if concurrency is not None and concurrency < 1:
        raise EstimateError("concurrency", f"{concurrency!r} must be >= 1")
    for name, value in counts.items():
        if value < 1:
            raise EstimateError(name, f"{value!r} must be >= 1")


def prefill_table(
    model: ModelArch, gpu: Gpu, backend: str, tp: int, isl: int, ep: int = 1, pp: int = 1
) -> list[float]:
    """ms to prefill k prompts of `isl` tokens (index k, 0..MAX_PREFILL_PROMPTS)."""
    return [0.0] + [
        estimate(
            model, gpu, backend=backend, tp=tp, ep=ep, pp=pp, batch_size=k, isl=isl, osl=1
        ).ttft_ms
        for k in range(1, MAX_PREFILL_PROMPTS + 1)
    ]


def decode_table(
    model: ModelArch,
    gpu: Gpu,
    backend: str,
    tp: int,
    max_batch: int,
    isl: int,
    osl: int,
    ep: int = 1,
    pp: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """(batch sizes, ms per decode step at the mean context) to interpolate over."""
    grid = np.unique(np.geomspace(1, max_batch, num=min(max_batch, 12)).round().astype(int))
    ctx = isl + osl // 2
    steps = np.array(
        [
            estimate(
                model,
                gpu,
                backend=backend,
                tp=tp,
                ep=ep,
                pp=pp,
                batch_size=int(b),
                isl=ctx,
                osl=2,
            ).itl_ms
            for b in grid
        ]
    )
    return grid, steps


def arrivals(
    rng: np.random.Generator,
    request_rate: float | None,
    concurrency: int | None,
    requests: int,
    warmup_s: float = 0.0,
) -> list[float]:
    """Arrival times: Poisson at `request_rate`, or the closed loop's first `concurrency`
    requests evenly spaced over `warmup_s`."""
    if request_rate is not None:
        return [float(t) for t in np.cumsum(rng.exponential(1.0 / request_rate, size=requests))]
    users = min(int(concurrency or 1), requests)
    return [warmup_s * i / users for i in range(users)]


def warmup_s(prefill_one_ms: float, step_ms: float, osl: int) -> float:
    """One request's duration at full load: the closed loop's users join over it."""
    return (prefill_one_ms + osl * step_ms) / 1000.0


class Run:
    """The bookkeeping every simulation shares: the event queue, the requests, closed-loop users
    sending their next request as one finishes, and the measurements. A simulator adds only its
    scheduling policy on top."""

    def __init__(
        self,
        rng: np.random.Generator,
        request_rate: float | None,
        concurrency: int | None,
        requests: int,
        osl: int,
        warmup_s: float = 0.0,
    ) -> None:
        self.osl, self.requests, self.closed_loop = osl, requests, concurrency is not None
        self.warmup_s = warmup_s if self.closed_loop else 0.0
        self.heap: list[tuple[float, int, str, int, tuple[int, ...]]] = []
        self.counter = 0
        self.reqs: list[_Request] = []
        # (arrival of the request, ms): the warm-up's are dropped from the percentiles
        self.ttft: list[tuple[float, float]] = []
        # Token gaps as {ms: how many}, of requests sent after the warm-up and of the others:
        # a decode step gives most of its sequences the same gap, so this stays a few entries
        # per step where a sample per token grew to gigabytes on large configs.
        self.itl_after: dict[float, int] = {}
        self.itl_warmup: dict[float, int] = {}
        self.batches: list[int] = []  # sequences in each decode step
        self.done, self.end, self.peak = 0, 0.0, 0
        for t in arrivals(rng, request_rate, concurrency, requests, self.warmup_s):
            self.arrive(t)

    def push(self, t: float, kind: str, index: int, batch: tuple[int, ...] = ()) -> None:
        self.counter += 1
        heapq.heappush(self.heap, (t, self.counter, kind, index, batch))

    def arrive(self, t: float) -> None:
        self.reqs.append(_Request(arrival=t, remaining=self.osl))
        self.push(t, "arrive", len(self.reqs) - 1)

    def finish(self, t: float) -> None:
        self.done += 1
        self.end = t
        if self.closed_loop and len(self.reqs) < self.requests:
            self.arrive(t)

    def first_token(self, q: int, t: float) -> bool:
        """Request `q` got its first token (prefill done) at `t`; True while it wants more."""
        req = self.reqs[q]
        self.ttft.append((req.arrival, (t - req.arrival) * 1000.0))
        req.remaining -= 1
        req.last_token = t
        if req.remaining == 0:
            self.finish(t)
            return False
        return True

    def next_tokens(self, running: list[int], t: float) -> list[int]:
        """A decode step ended at `t`: one token each; the sequences still running."""
        still = []
        warmup, after, before = self.warmup_s, self.itl_after, self.itl_warmup
        for q in running:
            req = self.reqs[q]
            gaps = after if req.arrival >= warmup else before
            gap = (t - req.last_token) * 1000.0
            gaps[gap] = gaps.get(gap, 0) + 1
            req.last_token = t
            req.remaining -= 1
            if req.remaining == 0:
                self.finish(t)
            else:
                still.append(q)
        return still

    def _steady(self, samples: list[tuple[float, float]]) -> list[float]:
        """The samples of requests sent after the warm-up (all of them when there are none)."""
        after = [ms for arrival, ms in samples if arrival >= self.warmup_s]
        return after or [ms for _, ms in samples]

    def _steady_gaps(self) -> NDArray[np.float64]:
        """The token gaps of requests sent after the warm-up (all of them when there are none)."""
        counted = self.itl_after or self.itl_warmup
        values = np.fromiter(counted.keys(), dtype=np.float64, count=len(counted))
        return np.repeat(values, np.fromiter(counted.values(), dtype=np.int64, count=len(counted)))

    def result(self) -> SimulationResult:
        duration = max(self.end, 1e-9)
        measured = sum(1 for r in self.reqs if r.arrival >= self.warmup_s and r.remaining == 0)
        return SimulationResult(
            requests=self.done,
            duration_s=duration,
            ttft_ms=percentiles(self._steady(self.ttft)),
            itl_ms=percentiles(self._steady_gaps()),
            output_tokens_per_s=self.done * self.osl / duration,
            requests_per_s=self.done / duration,
            mean_running=float(np.mean(self.batches)) if self.batches else 0.0,
            peak_running=self.peak,
            warmup_s=self.warmup_s,
            measured=measured or self.done,
        )


def simulate(
    model: str | ModelArch,
    gpu_sku: str | Gpu,
    *,
    backend: str = "vllm",
    tp: int = 1,
    ep: int = 1,
    pp: int = 1,
    replicas: int = 1,
    max_batch: int = 64,
    isl: int = 4000,
    osl: int = 1000,
    request_rate: float | None = None,
    concurrency: int | None = None,
    requests: int = 400,
    seed: int = 0,
) -> SimulationResult:
    check_load(
        request_rate,
        concurrency,
        replicas=replicas,
        max_batch=max_batch,
        requests=requests,
        osl=osl,
    )
    arch, gpu = resolve_model(model), resolve_gpu(gpu_sku)
    prefill_ms = prefill_table(arch, gpu, backend, tp, isl, ep, pp)
    grid, decode_grid = decode_table(arch, gpu, backend, tp, max_batch, isl, osl, ep, pp)

    def decode_ms(batch: int) -> float:
        return float(np.interp(batch, grid, decode_grid))

    per_replica = min(max_batch, -(-(concurrency or 1) // replicas))
    warmup = warmup_s(prefill_ms[1], decode_ms(per_replica), osl)
    run = Run(np.random.default_rng(seed), request_rate, concurrency, requests, osl, warmup)
    pool = [Replica() for _ in range(replicas)]

    def start(r: int, t: float) -> None:
        rep = pool[r]
        free = max_batch - len(rep.running)
        if rep.waiting and free > 0:
            k = min(len(rep.waiting), free, MAX_PREFILL_PROMPTS)
            rep.admitted = [rep.waiting.popleft() for _ in range(k)]
            rep.step, rep.busy = "prefill", True
            run.push(t + prefill_ms[k] / 1000.0, "step", r)
        elif rep.running:
            rep.step, rep.busy = "decode", True
            run.batches.append(len(rep.running))
            run.push(t + decode_ms(len(rep.running)) / 1000.0, "step", r)
        else:
            rep.busy = False

    while run.heap:
        t, _, kind, index, _ = heapq.heappop(run.heap)
        if kind == "arrive":
            r = min(range(replicas), key=lambda i: pool[i].load)
            pool[r].waiting.append(index)
            if not pool[r].busy:
                start(r, t)
            continue
        rep = pool[index]
        if rep.step == "prefill":
            rep.running += [q for q in rep.admitted if run.first_token(q, t)]
            rep.admitted = []
        else:
            rep.running = run.next_tokens(rep.running, t)
        run.peak = max(run.peak, len(rep.running))
        start(index, t)
    return run.result()
