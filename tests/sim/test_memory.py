"""`sim._memory`: each backend's own rule for its KV cache, and the search keeping to it.

vLLM's `gpu_memory_utilization` and SGLang's `mem_fraction_static` cap an engine against the
GPU's TOTAL memory; TRT-LLM's `free_gpu_memory_fraction` takes a share of what the weights leave.
Held-out finding (2026-11-30, `bench/picks.py --backend auto`): for Llama-3.1-70B on 8 x H200 at
8000/200 the search picked SGLang prefill workers of TP 1, which AIC 0.12 (and SGLang) cannot
start: out of memory.
"""

from __future__ import annotations

from typing import Any

import pytest

from dgdr.domain.hardware import ResolvedHardware
from sim import _catalog, profile
from sim._estimate import _plan
from sim._memory import kv_room_bytes, sglang_mem_fraction_static

GIB = 2**30


@pytest.mark.parametrize(
    ("memory_gib", "tp", "dp", "fraction"),
    [
        # reserve = 512 MB + 1.5 MB x 8192 + tp/8 GiB + 2 MB x 256 (80-141 GB tier) = 13440 MB
        (80, 1, 1, (81920 - 13440) / 81920),
        (141, 1, 1, (144384 - 13440) / 144384),
        # TP 8: a CUDA-graph batch of 512, 1 GiB of parallel slack: 14848 MB
        (141, 8, 1, (144384 - 14848) / 144384),
        # DP attention 8: + 3 MB x 8 per graph batch of 256
        (141, 1, 8, (144384 - 13440 - 6144) / 144384),
        # above 160 GB: 16384-token chunks, graph batch 512: 512 + 24576 + 128 + 1024 = 26240 MB
        (180, 1, 1, (184320 - 26240) / 184320),
        # at most 60 GB the 10 GiB floor does not apply: 512 + 6144 + 128 + 64 = 6848 MB
        (48, 1, 1, (49152 - 6848) / 49152),
    ],
)
def test_sglang_derives_its_static_fraction_from_capacity_and_layout(
    memory_gib: int, tp: int, dp: int, fraction: float
) -> None:
    assert sglang_mem_fraction_static(memory_gib * GIB, tp=tp, dp=dp) == pytest.approx(fraction)


def _llama70b_tp1_room(backend: str) -> float:
    model, gpu = _catalog.models()["meta-llama/Llama-3.1-70B"], _catalog.gpus()["h200_sxm"]
    weights = _plan(model, gpu, backend, 1, 1, 1).weights_bytes
    return kv_room_bytes(model, gpu, weights, backend=backend)


def test_weights_that_nearly_fill_a_gpu_leave_trtllm_room_and_no_other_backend() -> None:
    assert 2 * GIB < _llama70b_tp1_room("trtllm") < 6 * GIB
    assert _llama70b_tp1_room("vllm") < 0
    assert _llama70b_tp1_room("sglang") < 0


def test_with_room_to_spare_the_rules_nearly_agree() -> None:
    """Llama-3.1-8B at TP 1 on H100: vLLM's KV budget is within 1% of TRT-LLM's, SGLang's
    (10 GiB held back) 15% below it."""
    model, gpu = _catalog.models()["meta-llama/Llama-3.1-8B"], _catalog.gpus()["h100_sxm"]
    weights = _plan(model, gpu, "trtllm", 1, 1, 1).weights_bytes
    trtllm, vllm, sglang = (
        kv_room_bytes(model, gpu, weights, backend=b) for b in ("trtllm", "vllm", "sglang")
    )
    assert vllm == pytest.approx(trtllm, rel=0.01)
    assert 0.8 * trtllm < sglang < 0.9 * trtllm


def _workers(config: dict[str, Any]) -> list[int]:
    if config.get("mode") == "disagg":
        return [config["prefillTensorParallelSize"], config["decodeTensorParallelSize"]]
    return [config["tensorParallelSize"]]


@pytest.mark.parametrize("backend", ["sglang", "vllm"])
def test_the_search_offers_no_worker_its_engine_cannot_start(backend: str) -> None:
    spec = {
        "model": "meta-llama/Llama-3.1-70B",
        "backend": backend,
        "sla": {"ttft": 3867, "itl": 32.6},
        "workload": {"isl": 8000, "osl": 200},
    }
    hw = ResolvedHardware.from_dict({"gpuSku": "h200_sxm", "totalGpus": 8, "numGpusPerNode": 8})
    result = profile(spec, hw, name="m", namespace="ns")
    tps = [tp for row in result.pareto for tp in _workers(row["config"])]
    assert tps and min(tps) >= 2, tps


def test_trtllm_still_runs_that_worker() -> None:
    spec = {
        "model": "meta-llama/Llama-3.1-70B",
        "backend": "trtllm",
        "sla": {"ttft": 3867, "itl": 32.6},
        "workload": {"isl": 8000, "osl": 200},
    }
    hw = ResolvedHardware.from_dict({"gpuSku": "h200_sxm", "totalGpus": 8, "numGpusPerNode": 8})
    result = profile(spec, hw, name="m", namespace="ns")
    assert 1 in [tp for row in result.pareto for tp in _workers(row["config"])]
