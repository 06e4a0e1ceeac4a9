"""Golden DGDs: the complete generated DGD (and ConfigMaps, and the result message) for one spec per
backend and feature,
compared byte for byte with tests/sim/golden/<case>.json. A deliberate change is reviewed by
regenerating them: DGDR_UPDATE_GOLDEN=1 uv run pytest tests/sim/test_golden.py, then `git diff`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from dgdr.domain.hardware import ResolvedHardware
from sim import profile

GOLDEN = Path(__file__).parent / "golden"
H200 = ResolvedHardware.from_dict({"gpuSku": "h200_sxm", "totalGpus": 8, "numGpusPerNode": 8})
IMAGE = "nvcr.io/nvidia/ai-dynamo/dynamo-planner:0.9.0"
DGD = {"apiVersion": "nvidia.com/v1alpha1", "kind": "DynamoGraphDeployment"}
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "vllm-agg": ({"model": "Qwen/Qwen3-8B", "backend": "vllm", "image": IMAGE}, H200),
    "sglang-agg": ({"model": "Qwen/Qwen3-8B", "backend": "sglang"}, H200),
    "trtllm-agg": ({"model": "Qwen/Qwen3-8B", "backend": "trtllm"}, H200),
    "trtllm-disagg": (
        {
            "model": "meta-llama/Llama-3.3-70B-Instruct",
            "backend": "trtllm",
            "sla": {"ttft": 3000, "itl": 25},
            "workload": {"isl": 8000, "osl": 500},
        },
        ResolvedHardware.from_dict({"gpuSku": "h200_sxm", "totalGpus": 16, "numGpusPerNode": 8}),
    ),
    "multinode": (
        {
            "model": "deepseek-ai/DeepSeek-R1",
            "backend": "sglang",
            "workload": {"isl": 2000, "osl": 200},
        },
        ResolvedHardware.from_dict({"gpuSku": "h100_sxm", "totalGpus": 16, "numGpusPerNode": 8}),
    ),
    "planner": (
        {
            "model": "Qwen/Qwen3-8B",
            "backend": "vllm",
            "image": IMAGE,
            "sla": {"ttft": 500, "itl": 20},
            "features": {"planner": {}},
        },
        H200,
    ),
    "mocker": (
        {"model": "Qwen/Qwen3-8B", "backend": "vllm", "features": {"mocker": {"enabled": True}}},
        H200,
    ),
    "overrides-and-cache": (
        {
            "model": "Qwen/Qwen3-32B",
            "backend": "vllm",
            "modelCache": {"pvcName": "models", "pvcModelPath": "qwen3-32b"},
            "overrides": {
                "dgd": {
                    **DGD,
                    "metadata": {"name": "chat", "labels": {"team": "a"}},
                    "spec": {
                        "services": {
                            "VllmDecodeWorker": {
                                "extraPodSpec": {
                                    "mainContainer": {"args": ["--enable-prefix-caching"]}
                                }
                            }
                        }
                    },
                },
                "profilingJob": {
                    "template": {"spec": {"tolerations": [{"key": "gpu", "operator": "Exists"}]}}
                },
            },
        },
        H200,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_dgd_matches_the_golden_file(case: str) -> None:
    spec, hardware = CASES[case]
    result = profile(spec, hardware, name="golden", namespace="team")
    got = json.dumps(
        {"dgd": result.selected_config, "configmaps": result.configmaps, "message": result.message},
        indent=1,
        sort_keys=True,
    )
    path = GOLDEN / f"{case}.json"
    if os.environ.get("DGDR_UPDATE_GOLDEN"):
        path.write_text(got + "\n")
    assert path.is_file(), f"no golden file {path}: run with DGDR_UPDATE_GOLDEN=1"
    assert got + "\n" == path.read_text(), (
        f"{case}: the DGD changed; review with DGDR_UPDATE_GOLDEN=1"
    )
