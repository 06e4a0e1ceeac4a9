"""The model catalog against the Hugging Face configs AIConfigurator 0.12.0 bundles (skipped when
AIC is not installed: uv run --group calibration pytest tests/sim/test_catalog_vs_aic.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sim import model_from_config, models

SPEC = importlib.util.find_spec("aiconfigurator_core")
BUNDLED = {
    "Qwen/Qwen3-0.6B": "Qwen--Qwen3-0.6B_config.json",
    "Qwen/Qwen3-8B": "Qwen--Qwen3-8B_config.json",
    "Qwen/Qwen3-32B": "Qwen--Qwen3-32B_config.json",
    "Qwen/Qwen3-30B-A3B": "Qwen--Qwen3-30B-A3B_config.json",
    "Qwen/Qwen3-235B-A22B": "Qwen--Qwen3-235B-A22B_config.json",
    "meta-llama/Llama-3.1-8B": "meta-llama--Meta-Llama-3.1-8B_config.json",
    "meta-llama/Llama-3.1-70B": "meta-llama--Meta-Llama-3.1-70B_config.json",
    "deepseek-ai/DeepSeek-V3": "deepseek-ai--DeepSeek-V3_config.json",
    "deepseek-ai/DeepSeek-R1": "deepseek-ai--DeepSeek-R1_config.json",
    "openai/gpt-oss-20b": "openai--gpt-oss-20b_config.json",
    "openai/gpt-oss-120b": "openai--gpt-oss-120b_config.json",
}


@pytest.mark.skipif(SPEC is None, reason="AIConfigurator is not installed (calibration group)")
@pytest.mark.parametrize("model_id", sorted(BUNDLED))
def test_catalog_entry_equals_the_bundled_hugging_face_config(model_id: str) -> None:
    assert SPEC is not None and SPEC.origin is not None
    path = Path(SPEC.origin).parent / "model_configs" / BUNDLED[model_id]
    ours, theirs = models()[model_id], model_from_config(path, model_id)
    differing = {
        field: (getattr(ours, field), getattr(theirs, field))
        for field in ours.__dataclass_fields__
        if field != "source" and getattr(ours, field) != getattr(theirs, field)
    }
    assert not differing, differing
