"""Measured MoE kernel regressions: token counts at which a routed-expert kernel ran slower than at
a larger count, as AIConfigurator 0.12's SILICON tables record them.

The roofline (`sim._estimate`, `sim._dep`) prices routed experts as grouped GEMMs whose time grows
smoothly with the tokens a step routes. Some measured kernels do not: TRT-LLM 1.3's bf16 CUTLASS
MoE on H100 at Qwen3-30B-A3B's shape and EP 4 took 0.14 ms per layer at 192 tokens, 0.51 at 256,
0.89 at 320 and 0.16 at 512. `bench/moe_kernel_table.py` writes, per (backend, GPU) and kernel shape,
the excess of each such measurement over the least latency measured at that or any larger count
(`sim/data/moe_kernels.json`, with its provenance); this module looks a worker's shape up and
interpolates the excess linearly in tokens, as AIC interpolates its tables.

A kernel shape is (the checkpoint's `weight_dtype`, which `KERNEL_DTYPES` maps to AIC's name for
the MoE kernel's; hidden size, expert intermediate size, top-k, routed experts, expert TP
`tp / ep`, EP, and the power-law alpha of the routing workload, `sim._routing.routing_alpha`). The tokens are those the MoE layer routes in one
pass of the worker: a TP worker's step tokens; a DEP worker's, all its ranks' (AIC's table key;
checked on its DEP 4 estimates of Qwen3-30B-A3B on H100, whose ITL jumps 12.6 -> 31.9 ms from 32
to 64 sequences per rank, 128 -> 256 tokens routed).

Failure semantics: pure lookups; a backend, GPU, dtype or shape the table lacks has no excess
(`None`), and a missing or unreadable data file is a packaging error raised on first use.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import numpy as np
from numpy.typing import NDArray

from ._catalog import ModelArch
from ._routing import routing_alpha

FloatArray = NDArray[np.float64]
OUT_NAME = "moe_kernels.json"
# catalog `weight_dtype` -> the MoE kernel dtype AIC's tables key on (the data file keys on ours)
KERNEL_DTYPES = {
    "bf16": "bfloat16",
    "fp8": "fp8_block",
    "nvfp4": "nvfp4",
    "mxfp4": "w4a16_mxfp4",
}

_Key = tuple[str, int, int, int, int, int, int, float]
Excess = tuple[FloatArray, FloatArray]  # (tokens, excess ms per MoE layer)


@cache
def _tables() -> dict[tuple[str, str], dict[_Key, Excess]]:
    text = resources.files("sim").joinpath("data", OUT_NAME).read_text(encoding="utf-8")
    out: dict[tuple[str, str], dict[_Key, Excess]] = {}
    for name, entries in json.loads(text)["tables"].items():
        backend, gpu = name.split("/")
        shapes: dict[_Key, Excess] = {}
        for e in entries:
            key: _Key = (e["dtype"], *e["shape"], e["moe_tp"], e["moe_ep"], float(e["alpha"]))
            points = np.asarray(e["points"], dtype=np.float64)
            shapes[key] = (points[:, 0].copy(), points[:, 1].copy())
        out[(backend, gpu)] = shapes
    return out


def kernel_excess(
    model: ModelArch, gpu_id: str, backend: str, expert_tp: int, ep: int
) -> Excess | None:
    """The measured excess curve of this worker's MoE kernel, or None (none measured, or a dense
    model)."""
    if not model.num_experts:
        return None
    shapes = _tables().get((backend, gpu_id))
    if shapes is None:
        return None
    key: _Key = (
        model.weight_dtype,
        model.hidden_size,
        model.moe_intermediate_size,
        model.num_experts_per_tok,
        model.num_experts,
        expert_tp,
        ep,
        routing_alpha(model.is_mla),
    )
    return shapes.get(key)


def excess_ms(curve: Excess | None, tokens: FloatArray) -> FloatArray | float:
    """Per MoE layer, the ms the measured kernel ran over its envelope at `tokens` routed."""
    if curve is None:
        return 0.0
    at, excess = curve
    return np.interp(tokens, at, excess, left=0.0, right=0.0)
