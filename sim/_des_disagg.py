"""`simulate_disagg()`: the request-level simulation of a disaggregated deployment.

Owns: one FIFO queue in front of `prefill_workers` prefill engines (an idle engine takes up to
`MAX_PREFILL_PROMPTS` waiting prompts as one batch), the hand-off of each prefilled request to the
decode worker with the fewest requests (its first token was produced by prefill), and
`decode_workers` decode engines that admit waiting requests while they have KV room (`max_batch`)
and otherwise step all their sequences together. TTFT is measured at the end of prefill (queueing
included); ITL is the gap between a sequence's consecutive tokens, so waiting for a decode slot
shows up in it. Step times are `sim.estimate`'s, at the prefill and the decode TP. Not modelled:
the KV transfer time between the pools, chunked prefill, prefix caching, varying isl/osl.

Deterministic for a given `seed`. Bad arguments raise `EstimateError` naming the argument.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ._des import (
    MAX_PREFILL_PROMPTS,
    SimulationResult,
    arrivals,
    check_load,
    decode_table,
    percentiles,
    prefill_table,
)


@dataclass
class _Req:
    arrival: float
    remaining: int
    last_token: float = 0.0


@dataclass
class _Decoder:
    waiting: deque[int] = field(default_factory=deque)
    running: list[int] = field(default_factory=list)
    busy: bool = False

    @property
    def load(self) -> int:
        return len(self.waiting) + len(self.running)


def simulate_disagg(
    model: str,
    gpu_sku: str,
    *,
    backend: str = "vllm",
    prefill_tp: int = 1,
    prefill_workers: int = 1,
    decode_tp: int = 1,
    decode_workers: int = 1,
    prefill_ep: int = 1,
    decode_ep: int = 1,
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
        prefill_workers=prefill_workers,
        decode_workers=decode_workers,
        max_batch=max_batch,
        requests=requests,
        osl=osl,
    )
    prefill_ms = prefill_table(model, gpu_sku, backend, prefill_tp, isl, prefill_ep)
    grid, steps = decode_table(model, gpu_sku, backend, decode_tp, max_batch, isl, osl, decode_ep)
    rng = np.random.default_rng(seed)
    reqs: list[_Req] = []
    queue: deque[int] = deque()
    idle_prefill = prefill_workers
    decoders = [_Decoder() for _ in range(decode_workers)]
    heap: list[tuple[float, int, str, int, tuple[int, ...]]] = []
    counter = 0
    ttft: list[float] = []
    itl: list[float] = []
    batches: list[int] = []
    done, end, peak = 0, 0.0, 0

    def push(t: float, kind: str, index: int, batch: tuple[int, ...] = ()) -> None:
        nonlocal counter
        counter += 1
        heapq.heappush(heap, (t, counter, kind, index, batch))

    def new_request(t: float) -> None:
        reqs.append(_Req(arrival=t, remaining=osl))
        push(t, "arrive", len(reqs) - 1)

    for t in arrivals(rng, request_rate, concurrency, requests):
        new_request(t)

    def finish(t: float) -> None:
        nonlocal done, end
        done += 1
        end = t
        if concurrency is not None and len(reqs) < requests:
            new_request(t)

    def start_prefill(t: float) -> None:
        nonlocal idle_prefill
        while idle_prefill and queue:
            k = min(len(queue), MAX_PREFILL_PROMPTS)
            batch = tuple(queue.popleft() for _ in range(k))
            idle_prefill -= 1
            push(t + prefill_ms[k] / 1000.0, "prefilled", -1, batch)

    def start_decode(d: int, t: float) -> None:
        dec = decoders[d]
        while dec.waiting and len(dec.running) < max_batch:
            dec.running.append(dec.waiting.popleft())
        if dec.running:
            dec.busy = True
            batches.append(len(dec.running))
            push(t + float(np.interp(len(dec.running), grid, steps)) / 1000.0, "step", d)
        else:
            dec.busy = False

    while heap:
        t, _, kind, index, batch = heapq.heappop(heap)
        if kind == "arrive":
            queue.append(index)
            start_prefill(t)
        elif kind == "prefilled":
            idle_prefill += 1
            for q in batch:
                req = reqs[q]
                ttft.append((t - req.arrival) * 1000.0)
                req.remaining -= 1
                req.last_token = t
                if req.remaining == 0:
                    finish(t)
                    continue
                d = min(range(decode_workers), key=lambda i: decoders[i].load)
                decoders[d].waiting.append(q)
                if not decoders[d].busy:
                    start_decode(d, t)
            start_prefill(t)
        else:
            dec = decoders[index]
            still = []
            for q in dec.running:
                req = reqs[q]
                itl.append((t - req.last_token) * 1000.0)
                req.last_token = t
                req.remaining -= 1
                if req.remaining == 0:
                    finish(t)
                else:
                    still.append(q)
            dec.running = still
            peak = max(peak, len(still))
            start_decode(index, t)
            start_prefill(t)  # a finished request may have let a closed-loop user send another

    duration = max(end, 1e-9)
    return SimulationResult(
        requests=done,
        duration_s=duration,
        ttft_ms=percentiles(ttft),
        itl_ms=percentiles(itl),
        output_tokens_per_s=done * osl / duration,
        requests_per_s=done / duration,
        mean_running=float(np.mean(batches)) if batches else 0.0,
        peak_running=peak,
    )
