"""Models from a local Hugging Face config.json (a path in spec.model, or a file next to the spec)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dgdr.app.request_handler import _local_model
from dgdr.domain.hardware import ResolvedHardware
from sim import ProfilingError, model_from_config, models, profile

HW = ResolvedHardware.from_dict({"gpuSku": "h100_sxm", "totalGpus": 8, "numGpusPerNode": 8})
MISTRAL_7B = {  # mistralai/Mistral-7B-v0.1 config.json (the fields that matter)
    "architectures": ["MistralForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 32768,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "vocab_size": 32000,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}


def write(path: Path, config: dict[str, Any]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config))
    return path / "config.json"


def test_a_config_path_in_spec_model_is_profiled(tmp_path: Path) -> None:
    config = write(tmp_path / "mistral", MISTRAL_7B)
    for model in (str(config), str(config.parent)):
        result = profile({"model": model, "backend": "vllm"}, HW, name="m", model_dirs=(tmp_path,))
        assert f"from {config}" in result.message
        assert result.selected_config["spec"]["components"]


def test_a_catalog_entry_written_as_config_json_reads_back_the_same(tmp_path: Path) -> None:
    entry = models()["Qwen/Qwen3-8B"]
    fields = {k: v for k, v in dataclasses.asdict(entry).items() if k not in ("id", "source")}
    parsed = model_from_config(write(tmp_path, fields), "Qwen/Qwen3-8B")
    assert dataclasses.replace(parsed, source=entry.source) == entry


def test_moe_and_fp8_fields_are_read(tmp_path: Path) -> None:
    mixtral = {
        **MISTRAL_7B,
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
        "quantization_config": {"quant_method": "fp8"},
    }
    model = model_from_config(write(tmp_path, mixtral), "mixtral")
    assert model.is_moe and (model.num_experts, model.num_experts_per_tok) == (8, 2)
    assert model.moe_intermediate_size == 14336 and model.weight_dtype == "fp8"


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({k: v for k, v in MISTRAL_7B.items() if k != "hidden_size"}, "missing hidden_size"),
        ({**MISTRAL_7B, "num_key_value_heads": 0}, "num_key_value_heads must be a positive"),
    ],
)
def test_a_broken_config_names_the_file_and_the_key(
    tmp_path: Path, config: dict[str, Any], words: str
) -> None:
    path = write(tmp_path, config)
    with pytest.raises(ProfilingError) as err:
        profile({"model": str(path)}, HW, model_dirs=(tmp_path,))
    assert err.value.sub_phase == "Initializing"
    assert str(path) in err.value.message and words in err.value.message


def test_not_json_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ProfilingError) as err:
        model_from_config(path)
    assert "not a readable config.json" in err.value.message


def test_the_service_accepts_a_local_config_as_a_known_model(tmp_path: Path) -> None:
    path = write(tmp_path, MISTRAL_7B)
    assert _local_model({"model": str(path)}, (tmp_path,)) == str(path)
    assert _local_model({"model": str(path)}, ()) is None
    assert _local_model({"model": "acme/unknown"}, (tmp_path,)) is None


def test_dgdr_profile_reads_a_config_json_next_to_the_spec(tmp_path: Path) -> None:
    write(tmp_path, MISTRAL_7B)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "model: mistralai/Mistral-7B-v0.1\nbackend: vllm\n"
        "hardware: {gpuSku: h100_sxm, totalGpus: 8, numGpusPerNode: 8}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "dgdr", "profile", "-f", str(spec), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert "config.json" in report["message"]
    (worker,) = [c for c in report["dgd"]["spec"]["components"] if c["type"] == "worker"]
    (container,) = worker["podTemplate"]["spec"]["containers"]
    assert container["args"][1] == "mistralai/Mistral-7B-v0.1"


def _dgdr_profile(spec: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dgdr", "profile", "-f", str(spec), "-o", "json", *options],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_dgdr_profile_reads_any_path_the_user_names_unless_given_model_dirs(
    tmp_path: Path,
) -> None:
    config = write(tmp_path / "elsewhere" / "mistral", MISTRAL_7B)
    models = tmp_path / "models"
    models.mkdir()
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"model: {config.parent}\nbackend: vllm\n"
        "hardware: {gpuSku: h100_sxm, totalGpus: 8, numGpusPerNode: 8}\n"
    )
    anywhere = _dgdr_profile(spec)
    assert anywhere.returncode == 0, anywhere.stderr
    assert str(config) in json.loads(anywhere.stdout)["message"]
    judged = _dgdr_profile(spec, "--model-dir", str(models))
    assert judged.returncode == 1 and "Traceback" not in judged.stderr
    assert "is a local path" in judged.stderr and "--model-dir" in judged.stderr
    assert "spec.model" in judged.stderr
