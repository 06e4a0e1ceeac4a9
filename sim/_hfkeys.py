"""What a Hugging Face `config.json` says beyond the fields every decoder has: the keys the model
families spell differently, read into the figures `sim._hfconfig` builds a `ModelArch` from.

Owns, each as a pure function of the parsed JSON:
- `count_key`, `positive_key`: a key read as a count or a positive integer, JSON null as absent,
  anything else (a float, a string, a boolean) refused naming it; every key below is read so.
- `decoder_config`: the decoder's own keys. Multimodal wrappers (Gemma 3, LLaVA, Llama 4,
  Mistral 3) keep them in `text_config`, where `save_pretrained` leaves out every value equal to the text config
  class's default: those defaults are filled in from `TEXT_CONFIG_DEFAULTS` (transformers' config
  classes) for the model types listed there.
- `weight_dtype`: the stored weight format from `quantization_config` (fp8, NVFP4, mxfp4, int8 or
  int4 weight-only: AWQ, GPTQ, compressed-tensors, ModelOpt, bitsandbytes, FBGEMM).
- `moe_layer_indices`: which layers have routed experts (DeepSeek's `first_k_dense_replace` and
  `moe_layer_freq`, Qwen's `mlp_only_layers` and `decoder_sparse_step`, Llama 4's
  `interleave_moe_layer_step` or `moe_layers`); every layer otherwise (Mixtral, gpt-oss).
- `shared_experts`: always-active experts in expert widths (DeepSeek's `n_shared_experts`,
  Qwen's `shared_expert_intermediate_size`, Llama 4's one per MoE layer).
- `layer_refusal`: why a model whose layers are not all attention layers (linear attention,
  state-space, recurrent or convolution layers: Qwen3-Next, MiniMax-Text-01, Jamba, Zamba,
  Nemotron-H, Falcon-H1, RecurrentGemma, LFM2, Mamba) cannot be estimated;
  the estimator models a per-token KV cache on every layer.
- `PLAIN_MLP_MODEL_TYPES`: the model types whose MLP is up and down projections only (GPT-2, Phi
  1/1.5/2, StarCoder2, Falcon...), not gate, up and down.

Failure semantics: `ProfilingError("Initializing", ...)` naming the file, the key and what it holds
when a key is there but says something the estimate cannot use (an unknown quantization method, a
layer outside the model, experts on no layer, a count that is not a non-negative integer);
`layer_refusal`
returns its reason rather than raising. Never a guess: a quantization this module does not know
is refused, not sized as bf16.
"""

from __future__ import annotations

import math
from typing import Any

from dgdr.domain.errors import ProfilingError

# transformers' text config defaults for the decoders multimodal wrappers carry in `text_config`
# (`Gemma3TextConfig`, `LlamaConfig` for LLaVA's Vicuna, `MistralConfig` `__init__` defaults): what
# `save_pretrained` leaves out of that sub-config.
TEXT_CONFIG_DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": {
        "vocab_size": 32000,
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": False,
    },
    "mistral": {
        "vocab_size": 32000,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "max_position_embeddings": 131_072,
        "tie_word_embeddings": False,
    },
    "gemma3_text": {
        "vocab_size": 262_208,
        "hidden_size": 2304,
        "intermediate_size": 9216,
        "num_hidden_layers": 26,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
        "max_position_embeddings": 131_072,
        "tie_word_embeddings": True,
    },
}

PLAIN_MLP_MODEL_TYPES = frozenset(
    {
        "gpt2",
        "gpt_bigcode",
        "gpt_neox",
        "gptj",
        "codegen",
        "phi",
        "starcoder2",
        "falcon",
        "bloom",
        "opt",
        "mpt",
    }
)
# Model types whose MoE layers each hold one shared expert of the routed experts' width, with no
# key saying so (Llama 4's `Llama4TextMoe.shared_expert`).
ONE_SHARED_EXPERT_MODEL_TYPES = frozenset({"llama4_text", "llama4"})

# Layer kinds that hold a per-token KV cache (`layer_types`); sliding windows are estimated as full
# attention (more KV than they keep: conservative).
ATTENTION_LAYER_KINDS = frozenset(
    {"full_attention", "sliding_attention", "chunked_attention", "attention", "global", "local"}
)


def decoder_config(config: dict[str, Any]) -> dict[str, Any]:
    """The decoder's keys: `config` itself, or a multimodal wrapper's `text_config` over it with
    its class defaults filled in (`TEXT_CONFIG_DEFAULTS`)."""
    text = config.get("text_config")
    if not isinstance(text, dict) or config.get("num_hidden_layers") is not None:
        return config
    defaults = TEXT_CONFIG_DEFAULTS.get(str(text.get("model_type", "")), {})
    given = {k: v for k, v in text.items() if v is not None}
    merged = {**config, **defaults, **given}
    if "quantization_config" in config:  # the checkpoint's, wherever the decoder's keys are
        merged["quantization_config"] = config["quantization_config"]
    return merged


def weight_dtype(config: dict[str, Any], where: str) -> str:
    """The stored weight format (`sim._catalog.WEIGHT_BYTES`) `quantization_config` states;
    "bf16" without one. A method or bit width not known here is a `ProfilingError`."""
    quant = config.get("quantization_config")
    if quant is None:
        return "bf16"
    if not isinstance(quant, dict):
        raise ProfilingError("Initializing", f"{where}: quantization_config must be an object")
    method = str(quant.get("quant_method", "")).lower()
    found: str | None
    if method in ("fp8", "fbgemm_fp8"):
        found = "fp8"
    elif method == "mxfp4":
        found = "mxfp4"
    elif method in ("awq", "gptq", "awq_marlin", "gptq_marlin"):
        found = _int_bits(quant.get("bits") or quant.get("w_bit"))
    elif method == "bitsandbytes":
        found = (
            "int4" if quant.get("load_in_4bit") else "int8" if quant.get("load_in_8bit") else None
        )
    elif method == "compressed-tensors":
        found = _compressed_tensors(quant)
    elif method == "modelopt":
        found = _modelopt(str(quant.get("quant_algo", "")))
    else:
        found = None
    if found is None:
        raise ProfilingError(
            "Initializing",
            f"{where}: quantization_config {_brief(quant)} is not a format the estimator sizes "
            "(fp8, fbgemm_fp8, mxfp4, awq/gptq 4 or 8 bits, bitsandbytes, compressed-tensors "
            "fp8/int8/int4 weights, modelopt FP8/NVFP4/W4A16_AWQ/W4A8_AWQ): profile it with "
            "searchStrategy thorough on a cluster, or give the unquantized model's config.json",
        )
    return found


def _int_bits(bits: Any) -> str | None:
    return {4: "int4", 8: "int8"}.get(bits) if isinstance(bits, int) else None


def _compressed_tensors(quant: dict[str, Any]) -> str | None:
    """The widest weight format among the config groups (one format for the whole model)."""
    groups = quant.get("config_groups")
    if not isinstance(groups, dict) or not groups:
        return None
    formats = set()
    for group in groups.values():
        weights = group.get("weights") if isinstance(group, dict) else None
        if not isinstance(weights, dict):
            return None
        bits, kind = weights.get("num_bits"), str(weights.get("type", "int"))
        if kind == "float" and bits == 8:
            formats.add("fp8")
        elif kind == "float" and bits == 4:
            formats.add("nvfp4")
        elif kind == "int" and (as_int := _int_bits(bits)) is not None:
            formats.add(as_int)
        else:
            return None
    order = ("fp8", "int8", "nvfp4", "int4")  # widest first: the bytes are not underestimated
    return next(f for f in order if f in formats)


def _modelopt(algo: str) -> str | None:
    algo = algo.upper()
    if algo.startswith("FP8"):
        return "fp8"
    if algo == "NVFP4":
        return "nvfp4"
    if algo in ("W4A16_AWQ", "W4A8_AWQ"):
        return "int4"
    return None


def _brief(value: dict[str, Any]) -> str:
    keys = ("quant_method", "quant_algo", "bits", "format")
    shown = {k: value[k] for k in keys if k in value}
    return repr(shown or value)[:200]


def moe_layer_indices(config: dict[str, Any], layers: int, where: str) -> list[int]:
    """The layers (0-based) that hold routed experts, by whichever family's keys `config` has;
    at least one (a config that names experts and puts them on no layer is refused)."""
    listed = config.get("moe_layers")
    if isinstance(listed, list):
        outside = [i for i in listed if not _count_like(i) or i >= layers]
        if outside:
            raise ProfilingError(
                "Initializing",
                f"{where}: moe_layers holds {outside[0]!r}, not a layer of 0..{layers - 1}",
            )
        found = sorted(set(listed))
    else:
        step = _positive(config, "interleave_moe_layer_step", where)  # Llama 4
        dense_first = count_key(config, "first_k_dense_replace", where)
        freq = _positive(config, "moe_layer_freq", where) or 1  # DeepSeek-V2/V3
        sparse_step = _positive(config, "decoder_sparse_step", where) or 1  # Qwen2-MoE
        mlp_only = config.get("mlp_only_layers") or []
        if not isinstance(mlp_only, list):
            raise ProfilingError(
                "Initializing", f"{where}: mlp_only_layers must be a list of layer numbers"
            )
        found = [
            i
            for i in range(layers)
            if (i + 1) % (step or 1) == 0
            and i >= dense_first
            and i % freq == 0
            and (i + 1) % sparse_step == 0
            and i not in mlp_only
        ]
    if not found:
        raise ProfilingError(
            "Initializing",
            f"{where}: the config names routed experts but puts them on none of its {layers} "
            "layers (first_k_dense_replace, mlp_only_layers, moe_layers ...): fix those keys, or "
            "drop the expert keys for a dense model",
        )
    return found


def _count_like(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def count_key(config: dict[str, Any], key: str, where: str) -> int:
    """An optional non-negative integer key (0 when absent or JSON null)."""
    value = config.get(key)
    if value is None:
        return 0
    if not _count_like(value):
        raise ProfilingError(
            "Initializing", f"{where}: {key} must be a non-negative integer, got {value!r}"
        )
    return int(value)


def positive_key(config: dict[str, Any], key: str, where: str, default: Any = None) -> int:
    """A positive integer key; `default` when it is absent or JSON null (Hugging Face writes null
    for "use the default", as phi-1.5's `num_key_value_heads`), an error when that is not one."""
    value = config.get(key)
    value = default if value is None else value
    if not _count_like(value) or value == 0:
        raise ProfilingError(
            "Initializing", f"{where}: {key} must be a positive integer, got {config.get(key)!r}"
        )
    return int(value)


def _positive(config: dict[str, Any], key: str, where: str) -> int | None:
    """An optional positive integer key (None when absent or JSON null)."""
    return None if config.get(key) is None else positive_key(config, key, where)


def shared_experts(config: dict[str, Any], expert_width: int, where: str) -> int:
    """Always-active experts per MoE layer, in routed-expert widths (rounded up: a shared MLP of
    an odd width is not estimated smaller than it is)."""
    for key in ("n_shared_experts", "num_shared_experts"):
        if config.get(key) is not None:
            return count_key(config, key, where)
    if config.get("shared_expert_intermediate_size") is not None:
        width = count_key(config, "shared_expert_intermediate_size", where)
        return math.ceil(width / expert_width)
    return 1 if str(config.get("model_type", "")) in ONE_SHARED_EXPERT_MODEL_TYPES else 0


def layer_refusal(config: dict[str, Any], where: str) -> str | None:
    """Why `config`'s layers cannot be estimated: some are not attention layers with a per-token
    KV cache (linear attention, state-space, convolution); None when every layer is one."""
    layers = config.get("num_hidden_layers")
    total = f" of its {layers}" if isinstance(layers, int) else ""
    kinds = (
        config.get("layer_types") or config.get("layers_block_type") or config.get("block_types")
    )
    if isinstance(kinds, list):
        other = [str(k) for k in kinds if str(k) not in ATTENTION_LAYER_KINDS]
        if other:
            named = ", ".join(sorted(set(other)))
            return _hybrid(where, f"{len(other)}{total} layers are {named} layers (layer_types)")
    attn_types = config.get("attn_type_list")  # MiniMax-Text-01: 0 lightning, 1 softmax
    if isinstance(attn_types, list) and 0 in attn_types:
        linear = attn_types.count(0)
        return _hybrid(
            where,
            f"{linear}{total} layers are linear (lightning) attention layers (attn_type_list)",
        )
    interval = config.get("full_attention_interval")
    if isinstance(interval, int) and interval > 1:  # Qwen3-Next: one attention layer in `interval`
        return _hybrid(
            where,
            f"{interval - 1} in every {interval} layers are linear-attention layers "
            f"(full_attention_interval {interval})",
        )
    pattern = config.get("hybrid_override_pattern")
    if isinstance(pattern, str) and pattern.strip("*-"):  # Nemotron-H: M mamba, * attention
        return _hybrid(
            where, f"its hybrid_override_pattern {pattern[:80]!r} holds Mamba (M) layers"
        )
    if config.get("attn_layer_period") is not None or any(
        k in config for k in ("ssm_cfg", "state_size", "mamba_d_state", "ssm_state_size")
    ):
        return _hybrid(where, "it has state-space (Mamba) layers")
    return None


def _hybrid(where: str, what: str) -> str:
    return (
        f"{where}: {what}; layers other than attention keep no per-token KV cache and the rapid "
        "estimator models attention layers only, so this model cannot be estimated: profile it "
        "with searchStrategy thorough on a cluster"
    )
