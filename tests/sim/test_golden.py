"""Golden DGDs: the complete generated DGD (and ConfigMaps, and the result message) for one spec per
backend and feature, compared byte for byte with tests/sim/golden/<case>.json. A deliberate change
is reviewed by regenerating them locally: DGDR_UPDATE_GOLDEN=1 uv run pytest tests/sim/test_golden.py,
then `git diff`. In CI (`CI` set) DGDR_UPDATE_GOLDEN fails the test instead: CI compares, it never
rewrites what it compares against."""

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
CASES: dict[str, tuple[dict[str, Any], ResolvedHardware]] = {
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
                    "template": {
                        "spec": {
                            # Dynamo's CRD requires template.spec.containers (docs use [])
                            "containers": [],
                            "tolerations": [{"key": "gpu", "operator": "Exists"}],
                        }
                    }
                },
            },
        },
        H200,
    ),
}


def check_golden(path: Path, got: str) -> None:
    """`got` must be the golden file's text; DGDR_UPDATE_GOLDEN rewrites the file first, except in
    CI, where it fails."""
    if os.environ.get("DGDR_UPDATE_GOLDEN"):
        if os.environ.get("CI"):
            pytest.fail(
                "DGDR_UPDATE_GOLDEN is set in CI: golden files are regenerated and reviewed "
                "locally, never rewritten by CI"
            )
        path.write_text(got)
    assert path.is_file(), f"no golden file {path}: run with DGDR_UPDATE_GOLDEN=1"
    assert got == path.read_text(), (
        f"{path.stem}: the DGD changed; review with DGDR_UPDATE_GOLDEN=1"
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_dgd_matches_the_golden_file(case: str) -> None:
    spec, hardware = CASES[case]
    result = profile(spec, hardware, name="golden", namespace="team")
    got = json.dumps(
        {"dgd": result.selected_config, "configmaps": result.configmaps, "message": result.message},
        indent=1,
        sort_keys=True,
    )
    check_golden(GOLDEN / f"{case}.json", got + "\n")


def test_ci_refuses_to_update_golden_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    golden = tmp_path / "case.json"
    golden.write_text("reviewed\n")
    monkeypatch.setenv("DGDR_UPDATE_GOLDEN", "1")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="never rewritten by CI"):
        check_golden(golden, "changed\n")
    assert golden.read_text() == "reviewed\n"
    monkeypatch.delenv("CI")
    check_golden(golden, "changed\n")  # locally, the update is what it is for
    assert golden.read_text() == "changed\n"
