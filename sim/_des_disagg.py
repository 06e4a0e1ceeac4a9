"""`simulate_disagg()`: the request-level simulation of a disaggregated deployment.

Owns: one FIFO queue in front of `prefill_workers` prefill engines (an idle engine takes up to
`MAX_PREFILL_PROMPTS` waiting prompts as one batch), the hand-off of each prefilled request to the
decode worker with the fewest requests (its first token was produced by prefill), and
`decode_workers` decode engines that admit waiting requests while they have KV room (`max_batch`)
and otherwise step all their sequences together. TTFT is measured at the end of prefill (queueing
included); ITL is the gap between a sequence's consecutive tokens, so waiting for a decode slot
shows up in it. Step times are `sim.estimate`'s, at the prefill and the decode TP. Not modelled:
the KV transfer time between the pools, chunked prefill, prefix caching, varying isl/osl.

A closed loop's users join over a warm-up that is not measured, as in `sim._des`.
Deterministic for a given `seed`. Bad arguments raise `EstimateError` naming the argument.
"""

from __future__ import annotations

import heapq
from collections import deque

import numpy as np

from ._catalog import Gpu, ModelArch
from ._des import (
    MAX_PREFILL_PROMPTS,
    Replica,
    Run,
    SimulationResult,
    check_load,
    decode_table,
    prefill_table,
    warmup_s,
)
from ._estimate import resolve_gpu, resolve_model


def simulate_disagg(
    model: str | ModelArch,
    gpu_sku: str | Gpu,
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
    arch, gpu = resolve_model(model), resolve_gpu(gpu_sku)
    prefill_ms = prefill_table(arch, gpu, backend, prefill_tp, isl, prefill_ep)
    grid, steps = decode_table(arch, gpu, backend, decode_tp, max_batch, isl, osl, decode_ep)
    per_worker = min(max_batch, -(-(concurrency or 1) // decode_workers))
    warmup = warmup_s(prefill_ms[1], float(np.interp(per_worker, grid, steps)), osl)
    run = Run(np.random.default_rng(seed), request_rate, concurrency, requests, osl, warmup)
    queue: deque[int] = deque()
    idle_prefill = prefill_workers
    decoders = [Replica() for _ in range(decode_workers)]

    def start_prefill(t: float) -> None:
        nonlocal idle_prefill
        while idle_prefill and queue:
            k = min(len(queue), MAX_PREFILL_PROMPTS)
            batch = tuple(queue.popleft() for _ in range(k))
            idle_prefill -= 1
            run.push(t + prefill_ms[k] / 1000.0, "prefilled", -1, batch)

    def start_decode(d: int, t: float) -> None:
        dec = decoders[d]
        while dec.waiting and len(dec.running) < max_batch:
            dec.running.append(dec.waiting.popleft())
        if dec.running:
            dec.busy = True
            run.batches.append(len(dec.running))
            run.push(t + float(np.interp(len(dec.running), grid, steps)) / 1000.0, "step", d)
        else:
            dec.busy = False

    while run.heap:
        t, _, kind, index, batch = heapq.heappop(run.heap)
        if kind == "arrive":
            queue.append(index)
            start_prefill(t)
        elif kind == "prefilled":
            idle_prefill += 1
            for q in batch:
                if not run.first_token(q, t):
                    continue
                d = min(range(decode_workers), key=lambda i: decoders[i].load)
                decoders[d].waiting.append(q)
                if not decoders[d].busy:
                    start_decode(d, t)
            start_prefill(t)
        else:
            dec = decoders[index]
            dec.running = run.next_tokens(dec.running, t)
            run.peak = max(run.peak, len(dec.running))
            start_decode(index, t)
            start_prefill(t)  # a finished request may have let a closed-loop user send another
    return run.result()
