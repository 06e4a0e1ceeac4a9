"""What config.json keys beyond the common ones mean (`sim._hfkeys`), checked against the parameter
counts the model makers publish: the configs below are the published config.json files of those
models, cut to the keys that matter (values as published; Gemma 3's text_config as sparse as
`save_pretrained` writes it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dgdr.domain.hardware import ResolvedHardware
from sim import ProfilingError, can_estimate, model_from_config, profile
from sim._catalog import WEIGHT_BYTES
from tests.sim.test_hfcache import cache_repo

HW = ResolvedHardware.from_dict({"gpuSku": "h100_sxm", "totalGpus": 8, "numGpusPerNode": 8})

QWEN15_MOE = {  # Qwen/Qwen1.5-MoE-A2.7B: 14.3B stored, 2.7B active
    "architectures": ["Qwen2MoeForCausalLM"],
    "model_type": "qwen2_moe",
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "moe_intermediate_size": 1408,
    "shared_expert_intermediate_size": 5632,
    "num_experts": 60,
    "num_experts_per_tok": 4,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [],
    "num_attention_heads": 16,
    "num_key_value_heads": 16,
    "num_hidden_layers": 24,
    "max_position_embeddings": 8192,
    "vocab_size": 151936,
    "tie_word_embeddings": False,
}
LLAMA4_TEXT = {
    "model_type": "llama4_text",
    "hidden_size": 5120,
    "intermediate_size": 8192,
    "intermediate_size_mlp": 16384,
    "num_attention_heads": 40,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "num_hidden_layers": 48,
    "num_experts_per_tok": 1,
    "vocab_size": 202048,
    "max_position_embeddings": 10485760,
}
LLAMA4_SCOUT = {  # meta-llama/Llama-4-Scout-17B-16E: 109B (text about 108B), 17B active
    "architectures": ["Llama4ForConditionalGeneration"],
    "model_type": "llama4",
    "text_config": {**LLAMA4_TEXT, "num_local_experts": 16, "interleave_moe_layer_step": 1},
}
LLAMA4_MAVERICK = {  # meta-llama/Llama-4-Maverick-17B-128E: 400B, 17B active
    **LLAMA4_SCOUT,
    "text_config": {**LLAMA4_TEXT, "num_local_experts": 128, "interleave_moe_layer_step": 2},
}
PHI_2 = {  # microsoft/phi-2: 2.7B, fc1/fc2 MLP (no gate)
    "architectures": ["PhiForCausalLM"],
    "model_type": "phi",
    "hidden_size": 2560,
    "intermediate_size": 10240,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 2048,
    "vocab_size": 51200,
    "tie_word_embeddings": False,
}
PHI_15 = {  # microsoft/phi-1_5: 1.4B; its num_key_value_heads is null (= the attention heads)
    **PHI_2,
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 24,
    "num_key_value_heads": None,
}
GEMMA3_4B = {  # google/gemma-3-4b-it: the decoder 3.88B (Keras' preset: 3,880,099,328)
    "architectures": ["Gemma3ForConditionalGeneration"],
    "model_type": "gemma3",
    "text_config": {
        "model_type": "gemma3_text",
        "hidden_size": 2560,
        "intermediate_size": 10240,
        "num_hidden_layers": 34,
        "sliding_window": 1024,
        "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
    },
}
LLAVA_15_7B = {  # llava-hf/llava-1.5-7b-hf: Vicuna-7B's keys left at LlamaConfig's defaults
    "architectures": ["LlavaForConditionalGeneration"],
    "model_type": "llava",
    "text_config": {
        "architectures": ["LlamaForCausalLM"],
        "max_position_embeddings": 4096,
        "model_type": "llama",
        "rms_norm_eps": 1e-05,
        "torch_dtype": "float16",
        "vocab_size": 32064,
    },
}
DEEPSEEK_V2_LITE = {  # deepseek-ai/DeepSeek-V2-Lite: 15.7B, 2.4B active (without embeddings)
    "architectures": ["DeepseekV2ForCausalLM"],
    "model_type": "deepseek_v2",
    "hidden_size": 2048,
    "intermediate_size": 10944,
    "moe_intermediate_size": 1408,
    "n_routed_experts": 64,
    "n_shared_experts": 2,
    "num_experts_per_tok": 6,
    "first_k_dense_replace": 1,
    "moe_layer_freq": 1,
    "num_attention_heads": 16,
    "num_key_value_heads": 16,
    "num_hidden_layers": 27,
    "kv_lora_rank": 512,
    "q_lora_rank": None,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "v_head_dim": 128,
    "vocab_size": 102400,
    "max_position_embeddings": 163840,
    "tie_word_embeddings": False,
}
LLAMA_8B = {  # meta-llama/Llama-3.1-8B
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "num_hidden_layers": 32,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
}
QWEN3_NEXT = {  # Qwen/Qwen3-Next-80B-A3B: Gated DeltaNet layers, one full attention layer in four
    "architectures": ["Qwen3NextForCausalLM"],
    "model_type": "qwen3_next",
    "hidden_size": 2048,
    "intermediate_size": 5120,
    "num_attention_heads": 16,
    "num_key_value_heads": 2,
    "head_dim": 256,
    "num_hidden_layers": 48,
    "num_experts": 512,
    "num_experts_per_tok": 10,
    "moe_intermediate_size": 512,
    "shared_expert_intermediate_size": 512,
    "full_attention_interval": 4,
    "vocab_size": 151936,
    "max_position_embeddings": 262144,
}


def read(tmp_path: Path, config: dict[str, Any]) -> Any:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return model_from_config(path, "m")


@pytest.mark.parametrize(
    ("config", "stored", "active"),
    [
        (QWEN15_MOE, 14.3e9, 2.7e9),
        (LLAMA4_SCOUT, 108e9, 17e9),
        (LLAMA4_MAVERICK, 400e9, 17e9),
        (PHI_2, 2.78e9, 2.78e9),
        (PHI_15, 1.42e9, 1.42e9),
        (GEMMA3_4B, 3.88e9, 3.88e9),
        (LLAVA_15_7B, 6.74e9, 6.74e9),
        (DEEPSEEK_V2_LITE, 15.7e9, 2.66e9),
    ],
    ids=[
        "qwen1.5-moe",
        "llama4-scout",
        "llama4-maverick",
        "phi-2",
        "phi-1.5",
        "gemma-3-4b",
        "llava-1.5-7b",
        "dsv2-lite",
    ],
)
def test_published_configs_give_the_published_parameter_counts(
    tmp_path: Path, config: dict[str, Any], stored: float, active: float
) -> None:
    model = read(tmp_path, config)
    assert model.params == pytest.approx(stored, rel=0.02)
    assert model.active_params == pytest.approx(active, rel=0.03)


def test_the_layer_pattern_and_shared_experts_are_read_by_family(tmp_path: Path) -> None:
    maverick = read(tmp_path, LLAMA4_MAVERICK)
    assert (maverick.moe_layers, maverick.dense_layers) == (24, 24)  # every second layer
    assert maverick.intermediate_size == 16384 and maverick.moe_intermediate_size == 8192
    assert maverick.num_shared_experts == 1  # Llama 4's, which no key states
    qwen = read(tmp_path, {**QWEN15_MOE, "mlp_only_layers": [0, 1], "decoder_sparse_step": 2})
    assert qwen.moe_layers == len([i for i in range(2, 24) if (i + 1) % 2 == 0])
    assert qwen.num_shared_experts == 4  # 5632 = 4 x 1408
    lite = read(tmp_path, DEEPSEEK_V2_LITE)
    assert (lite.moe_layers, lite.num_shared_experts, lite.q_lora_rank) == (26, 2, 0)


def test_a_null_value_is_the_default_not_an_error(tmp_path: Path) -> None:
    assert read(tmp_path, PHI_15).num_key_value_heads == 32
    assert read(tmp_path, {**LLAMA_8B, "head_dim": None}).head_dim == 128


def test_only_the_gated_families_get_a_gate_projection(tmp_path: Path) -> None:
    assert not read(tmp_path, PHI_2).gated_mlp
    assert read(tmp_path, LLAMA_8B).gated_mlp
    assert read(tmp_path, PHI_2).dense_mlp_params == 2 * 2560 * 10240


@pytest.mark.parametrize(
    ("quant", "dtype"),
    [
        ({"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True}, "int4"),
        ({"quant_method": "gptq", "bits": 8, "group_size": 128}, "int8"),
        ({"quant_method": "bitsandbytes", "load_in_4bit": True}, "int4"),
        ({"quant_method": "fbgemm_fp8"}, "fp8"),
        ({"quant_method": "modelopt", "quant_algo": "NVFP4"}, "nvfp4"),
        ({"quant_method": "modelopt", "quant_algo": "FP8"}, "fp8"),
        (
            {
                "quant_method": "compressed-tensors",
                "format": "float-quantized",
                "config_groups": {"group_0": {"weights": {"num_bits": 8, "type": "float"}}},
            },
            "fp8",
        ),
        (
            {
                "quant_method": "compressed-tensors",
                "format": "pack-quantized",
                "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "int"}}},
            },
            "int4",
        ),
    ],
)
def test_quantized_checkpoints_are_sized_by_their_format(
    tmp_path: Path, quant: dict[str, Any], dtype: str
) -> None:
    model = read(tmp_path, {**LLAMA_8B, "quantization_config": quant})
    assert model.weight_dtype == dtype
    bf16 = read(tmp_path, LLAMA_8B)
    body = bf16.weight_bytes - bf16.vocab_weight_bytes  # embeddings and lm_head stay bf16
    assert model.weight_bytes - model.vocab_weight_bytes == pytest.approx(
        body * WEIGHT_BYTES[dtype] / 2.0, rel=1e-6
    )


@pytest.mark.parametrize(
    "quant",
    [
        {"quant_method": "hqq", "nbits": 4},
        {"quant_method": "gptq", "bits": 3},
        {"quant_method": "modelopt", "quant_algo": "INT8_SQ_SOMETHING"},
        "fp8",
    ],
)
def test_a_quantization_the_estimator_does_not_know_is_refused_not_sized_as_bf16(
    tmp_path: Path, quant: Any
) -> None:
    with pytest.raises(ProfilingError, match="quantization_config") as caught:
        read(tmp_path, {**LLAMA_8B, "quantization_config": quant})
    assert str(tmp_path / "config.json") in caught.value.message


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"full_attention_interval": 4}, "full_attention_interval 4"),
        ({"layer_types": ["linear_attention"] * 3 + ["full_attention"]}, "linear_attention"),
        ({"layers_block_type": ["mamba", "attention"]}, "mamba"),
        ({"hybrid_override_pattern": "M-M-M*-"}, "hybrid_override_pattern"),
        ({"attn_type_list": [0, 0, 0, 1]}, "lightning"),
        ({"state_size": 16}, "state-space"),
    ],
)
def test_layers_without_a_kv_cache_are_refused_by_name(
    tmp_path: Path, extra: dict[str, Any], named: str
) -> None:
    with pytest.raises(ProfilingError, match="thorough") as caught:
        read(tmp_path, {**LLAMA_8B, **extra})
    assert named in caught.value.message and "KV cache" in caught.value.message


def test_sliding_window_layers_are_attention_layers(tmp_path: Path) -> None:
    kinds = ["sliding_attention", "full_attention"] * 16
    assert read(tmp_path, {**LLAMA_8B, "layer_types": kinds}).num_hidden_layers == 32


def test_a_cached_hybrid_model_gets_the_naive_result_saying_why(cache: Path) -> None:
    cache_repo(cache, "Qwen/Qwen3-Next-80B-A3B-Instruct", QWEN3_NEXT)
    assert not can_estimate("Qwen/Qwen3-Next-80B-A3B-Instruct")
    spec = {"model": "Qwen/Qwen3-Next-80B-A3B-Instruct", "backend": "vllm"}
    result = profile(spec, HW, name="next")
    assert result.sla_verdict == "unverified"
    assert "config.json cannot be estimated" in result.message
    assert "full_attention_interval 4" in result.message


def test_a_quantized_model_from_the_cache_is_estimated_in_its_format(cache: Path) -> None:
    awq = {**LLAMA_8B, "quantization_config": {"quant_method": "awq", "bits": 4}}
    cache_repo(cache, "acme/Llama-8B-AWQ", awq)
    cache_repo(cache, "acme/Llama-8B", LLAMA_8B)
    quantized = profile({"model": "acme/Llama-8B-AWQ", "backend": "vllm"}, HW, name="q")
    full = profile({"model": "acme/Llama-8B", "backend": "vllm"}, HW, name="f")
    assert quantized.sla_verdict != "unverified"

    # A quarter of the weight bytes to read per decode step: a faster pick than bf16's.
    def picked(result: Any) -> dict[str, Any]:
        return next(r["config"] for r in result.pareto if r["config"]["selected"])

    assert picked(quantized)["tokensPerSecondPerGpu"] > picked(full)["tokensPerSecondPerGpu"]
    assert "acme/Llama-8B-AWQ (int4 weights) from the Hugging Face cache" in quantized.message


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({**LLAMA_8B, "num_key_value_heads": 5}, "num_key_value_heads 5 does not divide"),
        ({**LLAMA_8B, "num_key_value_heads": 64}, "num_key_value_heads 64 does not divide"),
        ({**LLAMA_8B, "hidden_size": 4100}, "no head_dim, and hidden_size 4100"),
        ({**QWEN15_MOE, "mlp_only_layers": list(range(24))}, "puts them on none of its 24"),
        ({**QWEN15_MOE, "moe_layers": [3, 24]}, "moe_layers holds 24"),
        ({**QWEN15_MOE, "decoder_sparse_step": 0}, "decoder_sparse_step must be a positive"),
        ({**QWEN15_MOE, "interleave_moe_layer_step": 0}, "interleave_moe_layer_step must be"),
        ({**QWEN15_MOE, "moe_layer_freq": "1"}, "moe_layer_freq must be a positive"),
        ({**QWEN15_MOE, "n_shared_experts": True}, "n_shared_experts must be a non-negative"),
        ({**QWEN15_MOE, "shared_expert_intermediate_size": -1}, "shared_expert_intermediate"),
    ],
)
def test_a_key_that_contradicts_the_model_is_refused_naming_it(
    tmp_path: Path, config: dict[str, Any], named: str
) -> None:
    with pytest.raises(ProfilingError, match=named):
        read(tmp_path, config)


def test_an_architectures_string_is_read_as_a_list(tmp_path: Path) -> None:
    with pytest.raises(ProfilingError, match="BertForMaskedLM"):
        read(tmp_path, {**LLAMA_8B, "architectures": "BertForMaskedLM"})
