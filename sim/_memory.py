"""How much of a GPU's memory a worker's KV cache gets, per backend: the rule each engine applies
at start-up, as AIConfigurator 0.12 checks it.

HBM is counted in GiB (an "80 GB" H100 has 80 GiB; `vramMb` from discovery, MiB, wins). Every
engine keeps `RUNTIME_RESERVE_BYTES` (CUDA context, cuBLAS, NCCL: AIC's `other_mem`) and an
activation reserve (`2 * MAX_NUM_TOKENS * hidden * ACTIVATION_COPIES` B, AIC's TP 1 coefficient)
next to the weights; those three are the worker's non-KV memory. Then:
- TRT-LLM gives the KV cache `free_gpu_memory_fraction` (0.9) of what is left after them, less
  AIC's 1.5% reserved and 2% tolerance: `KV_FREE_FRACTION * (HBM - non-KV)`.
- vLLM caps its whole footprint at `gpu_memory_utilization` of the TOTAL memory (0.92 since 0.22,
  `VLLM_GPU_MEMORY_UTILIZATION`): `0.92 * 0.98 * HBM - non-KV`.
- SGLang caps weights and KV pool at `mem_fraction_static` of the total, which it derives from the
  capacity and the layout at start-up (`sglang_mem_fraction_static`: ServerArgs at 0.5.16, as AIC
  transcribes it; at least 10 GiB reserved on a GPU above 60 GB): `fraction * 0.98 * HBM - non-KV`.
  AIC's aggregated check takes SGLang's fallback 0.88 instead; the derived fraction is what the
  engine runs with, and is the stricter on 80-141 GB GPUs.
The total-memory rules matter where the weights nearly fill a GPU: Llama-3.1-70B at TP 1 on an
H200 leaves TRT-LLM 4 GiB of KV cache, and does not start on vLLM or SGLang (AIC: out of memory).

Failure semantics: pure arithmetic; `kv_room_bytes` is negative when the weights and reserves do
not fit.
"""

from __future__ import annotations

from ._catalog import Gpu, ModelArch

# KV cache share of the memory left after weights and reserves: TRT-LLM's free_gpu_memory_fraction
# 0.9, times (1 - 0.015) reserved and (1 - 0.02) tolerance (AIC 0.12 trtllm_backend.py).
KV_FREE_FRACTION = 0.9 * (1.0 - 0.015) * (1.0 - 0.02)
HBM_UTILISATION = KV_FREE_FRACTION  # `usable_bytes`' share of HBM, for callers of the old rule
VLLM_GPU_MEMORY_UTILIZATION = 0.92  # vLLM 0.22+ default (0.9 before); AIC 0.12 pins 0.24's
TOTAL_FRACTION_TOLERANCE = 0.02  # AIC 0.12's KV_CACHE_MEMORY_TOLERANCE for vLLM and SGLang
RUNTIME_RESERVE_BYTES = 3.5 * 2**30  # AIC 0.12 systems/*.yaml misc.other_mem (CUDA, cuBLAS, NCCL)
MAX_NUM_TOKENS = 8192
# AIC 0.12 base_backend ACTIVATION_COEFFICIENTS default at TP1 (6 at TP2, 5 at TP4+)
ACTIVATION_COPIES = 10
_MIB = 2**20


def activation_reserve_bytes(model: ModelArch) -> float:
    """Per-GPU non-KV reserve: `RUNTIME_RESERVE_BYTES` plus the chunked-prefill activations."""
    return RUNTIME_RESERVE_BYTES + MAX_NUM_TOKENS * model.hidden_size * 2.0 * ACTIVATION_COPIES


def hbm_bytes(gpu: Gpu, vram_mb: float | None = None) -> float:
    """HBM per GPU: vramMb (MiB) if discovery gave it, else the catalog's figure in GiB."""
    return vram_mb * _MIB if vram_mb else gpu.memory_gb * 2**30


def sglang_mem_fraction_static(hbm: float, tp: int = 1, pp: int = 1, dp: int = 1) -> float:
    """SGLang's default `mem_fraction_static` for a GPU of `hbm` bytes and this layout: the
    reserve is 512 MB + 1.5 MB per chunked-prefill token + tp * pp / 8 GiB + 2 MB per CUDA-graph
    batch (+ 3 MB x dp per graph batch with DP attention, 1.5 MB more above 300), tiers by capacity,
    at least 10 GiB above 60 GB."""
    capacity = hbm / _MIB
    if capacity < 20 * 1024:
        chunk, graph = 2048, 8
    elif capacity < 35 * 1024:
        chunk, graph = 2048, (24 if tp < 4 else 80)
    elif capacity < 60 * 1024:
        chunk, graph = 4096, (32 if tp < 4 else 160)
    elif capacity < 160 * 1024:
        chunk, graph = 8192, (256 if tp < 4 else 512)
    else:
        chunk, graph = 16384, 512
    reserved = 512 + 1.5 * chunk + tp * pp / 8 * 1024 + graph * 2
    if dp > 1:
        reserved += graph * dp * 3 + (graph * dp * 1.5 if graph > 300 else 0.0)
    if capacity > 60 * 1024:
        reserved = max(reserved, 10 * 1024)
    return (capacity - reserved) / capacity


def kv_room_bytes(
    model: ModelArch,
    gpu: Gpu,
    weights_bytes: float,
    vram_mb: float | None = None,
    *,
    backend: str = "trtllm",
    tp: int = 1,
    pp: int = 1,
    dp: int = 1,
) -> float:
    """Per-GPU KV cache bytes under the backend's rule (module docstring); negative when the
    weights and reserves do not fit. `tp`, `pp`, `dp`: the engine's layout (SGLang's reserve)."""
    hbm = hbm_bytes(gpu, vram_mb)
    non_kv = weights_bytes + activation_reserve_bytes(model)
    if backend == "vllm":
        return VLLM_GPU_MEMORY_UTILIZATION * (1.0 - TOTAL_FRACTION_TOLERANCE) * hbm - non_kv
    if backend == "sglang":
        fraction = sglang_mem_fraction_static(hbm, tp, pp, dp)
        return fraction * (1.0 - TOTAL_FRACTION_TOLERANCE) * hbm - non_kv
    free = hbm - non_kv
    return KV_FREE_FRACTION * free if free > 0 else free
