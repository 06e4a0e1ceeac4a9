"""Model architectures from a local Hugging Face `config.json`, for models the catalog lacks.

Owns: finding the file (`spec.model` is a path to a `config.json`, or to a directory holding one,
read only where `sim._modelpath` allows: under the operator's model directories, or anywhere for
offline commands; or a hub id found in the local Hugging Face cache, `sim._hfcache`), refusing by
name an architecture that does not generate text (an encoder, an encoder-decoder) or whose layers
are not all attention layers (`sim._hfkeys.layer_refusal`), and mapping Hugging Face's keys to
`ModelArch`: the dense fields every decoder has (read by `sim._hfkeys.positive_key`), the MoE fields under
their usual names (Qwen/Mixtral/Llama 4 `num_experts`/`num_local_experts`, DeepSeek
`n_routed_experts`, `moe_intermediate_size`), the MLA ranks (DeepSeek), and what `sim._hfkeys`
reads: a multimodal wrapper's `text_config`, the weight format, which layers are MoE, the shared
experts, whether the MLP is gated.

Failure semantics: `ProfilingError("Initializing", ...)` naming the file and the key that is missing
or not a positive integer, or the JSON error, or the architecture or the layers it refuses, or a
quantization it does not know, or naming
`spec.model` when it is a path this process may not read (never opened); never a guess for a
required figure. A cached config.json that lacks a figure is not an error: the model is then one
nothing estimates (the naive fallback, `sim._naive`). No network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dgdr.domain.errors import ProfilingError

from ._catalog import ModelArch, catalog_model, models
from ._hfcache import MAX_CONFIG_BYTES, cached_config
from ._hfkeys import (
    PLAIN_MLP_MODEL_TYPES,
    count_key,
    decoder_config,
    layer_refusal,
    moe_layer_indices,
    positive_key,
    shared_experts,
    weight_dtype,
)
from ._modelpath import ModelDirs, local_model

# Heads of the Hugging Face architectures that generate text token by token (`LlamaForCausalLM`,
# `GPT2LMHeadModel`, multimodal `Gemma3ForConditionalGeneration`); any other named architecture
# (an encoder such as `BertForMaskedLM`, a classifier) is not something dgdr can size or serve.
GENERATIVE_HEADS = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")

REQUIRED = (
    "num_hidden_layers",
    "hidden_size",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
)


def local_config_path(model: str, model_dirs: ModelDirs = ()) -> Path | None:
    """The config.json that `model` points at, when it is a local path (file or directory) that
    `model_dirs` allows reading (`sim._modelpath`; by default none), or, for a hub id, the one in
    the local Hugging Face cache (`sim._hfcache`)."""
    found = local_model(model, model_dirs)
    if found is None:
        return cached_config(model)
    return found.config


def architecture_refusal(config: dict[str, Any], where: str) -> str | None:
    """Why a config.json describes a model dgdr cannot profile, by its architecture's name: an
    encoder-decoder, or architectures none of which generates text (`GENERATIVE_HEADS`)."""
    names = config.get("architectures")
    names = [names] if isinstance(names, str) else names
    named = [str(n) for n in names] if isinstance(names, list) else []
    if config.get("is_encoder_decoder") is True:
        kind = f"an encoder-decoder model ({', '.join(named) or config.get('model_type')})"
    elif named and not any(n.endswith(GENERATIVE_HEADS) for n in named):
        kind = f"not a text-generating model ({', '.join(named)})"
    else:
        return None
    return (
        f"{where}: {kind}: dgdr profiles and deploys decoder-only LLMs (architectures ending in "
        f"{', '.join(GENERATIVE_HEADS)})"
    )


def cached_model(model_id: str) -> ModelArch | str | None:
    """The architecture of hub id `model_id` from the local Hugging Face cache; a refusal (str)
    when that config.json names an architecture dgdr cannot profile; None when the cache has no
    such config.json or it lacks a figure the estimate needs (the naive fallback then applies)."""
    path = cached_config(model_id)
    if path is None:
        return None
    try:
        config = json.loads(_read(path))
    except (OSError, ValueError):
        return None
    if isinstance(config, dict):
        refusal = architecture_refusal(config, str(path))
        if refusal is not None:
            return refusal
    try:
        return model_from_config(path, model_id, source=f"Hugging Face cache {path}")
    except ProfilingError:
        return None


def _read(path: Path) -> str:
    """The text of a config.json; `ValueError` when it is larger than any config.json
    (`MAX_CONFIG_BYTES`: it is not read)."""
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ValueError(f"{size:,} bytes, more than any config.json ({MAX_CONFIG_BYTES:,})")
    return path.read_text(encoding="utf-8")


def _head_dim(config: dict[str, Any], hidden: int, heads: int, mla: bool, where: str) -> int:
    """`head_dim` as given; else MLA's query/key head (the no-RoPE part plus the decoupled RoPE
    part), or `hidden_size / num_attention_heads` when that is a whole number."""
    if config.get("head_dim") is not None or mla:
        nope_rope = count_key(config, "qk_nope_head_dim", where) + count_key(
            config, "qk_rope_head_dim", where
        )
        return positive_key(config, "head_dim", where, nope_rope)
    if hidden % heads:
        raise ProfilingError(
            "Initializing",
            f"{where}: no head_dim, and hidden_size {hidden} is not a multiple of "
            f"num_attention_heads {heads}: add head_dim",
        )
    return hidden // heads


def model_from_config(
    path: Path, model_id: str | None = None, *, source: str | None = None
) -> ModelArch:
    where = str(path)
    try:
        config = json.loads(_read(path))
    except (OSError, ValueError) as exc:
        raise ProfilingError("Initializing", f"{where}: not a readable config.json: {exc}") from exc
    if not isinstance(config, dict):
        raise ProfilingError("Initializing", f"{where}: a config.json must be a JSON object")
    refusal = architecture_refusal(config, where)
    if refusal is not None:
        raise ProfilingError("Initializing", refusal)
    config = decoder_config(config)
    refusal = layer_refusal(config, where)
    if refusal is not None:
        raise ProfilingError("Initializing", refusal)
    missing = [k for k in REQUIRED if config.get(k) is None]
    if missing:
        raise ProfilingError(
            "Initializing", f"{where}: missing {', '.join(missing)} (a decoder LLM config.json)"
        )
    heads = positive_key(config, "num_attention_heads", where)
    hidden = positive_key(config, "hidden_size", where)
    kv_heads = positive_key(config, "num_key_value_heads", where, heads)
    if heads % kv_heads:
        raise ProfilingError(
            "Initializing",
            f"{where}: num_key_value_heads {kv_heads} does not divide num_attention_heads "
            f"{heads}: each KV head serves a whole group of attention heads",
        )
    layers = positive_key(config, "num_hidden_layers", where)
    experts = (
        count_key(config, "num_experts", where)
        or count_key(config, "num_local_experts", where)
        or count_key(config, "n_routed_experts", where)
    )
    mla = bool(config.get("kv_lora_rank"))
    dense_width_key = (
        "intermediate_size_mlp" if config.get("intermediate_size_mlp") else "intermediate_size"
    )
    fields: dict[str, Any] = {
        "id": model_id or str(config.get("_name_or_path") or path.parent.name or path.stem),
        "num_hidden_layers": layers,
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": _head_dim(config, hidden, heads, mla, where),
        # A MoE model's dense layers may be wider than its experts (Llama 4: intermediate_size_mlp).
        "intermediate_size": positive_key(config, dense_width_key, where),
        "vocab_size": positive_key(config, "vocab_size", where),
        "max_position_embeddings": positive_key(config, "max_position_embeddings", where),
        "tie_word_embeddings": bool(config.get("tie_word_embeddings", False)),
        "torch_dtype": str(config.get("torch_dtype") or config.get("dtype") or "bfloat16"),
        "source": source or f"local file {where}",
        "weight_dtype": weight_dtype(config, where),
        "gated_mlp": str(config.get("model_type", "")) not in PLAIN_MLP_MODEL_TYPES,
    }
    if experts:
        width_key = (
            "moe_intermediate_size" if config.get("moe_intermediate_size") else "intermediate_size"
        )
        expert_width = positive_key(config, width_key, where)
        fields.update(
            num_experts=experts,
            num_experts_per_tok=positive_key(config, "num_experts_per_tok", where),
            num_shared_experts=shared_experts(config, expert_width, where),
            moe_intermediate_size=expert_width,
            first_k_dense_replace=layers - len(moe_layer_indices(config, layers, where)),
        )
    if mla:
        fields.update(
            q_lora_rank=count_key(config, "q_lora_rank", where),
            kv_lora_rank=positive_key(config, "kv_lora_rank", where),
            qk_rope_head_dim=positive_key(config, "qk_rope_head_dim", where),
            qk_nope_head_dim=positive_key(config, "qk_nope_head_dim", where),
            v_head_dim=positive_key(config, "v_head_dim", where),
        )
    model = ModelArch(**fields)
    if model.is_moe and model.num_experts_per_tok > model.num_experts:
        raise ProfilingError(
            "Initializing", f"{where}: num_experts_per_tok exceeds the number of experts"
        )
    return model


def find_model(model_id: str, model_dirs: ModelDirs = ()) -> ModelArch:
    """The catalog entry for a Hugging Face id (case-insensitive), or the architecture in the
    local config.json `model_id` points at, where `model_dirs` allows; else ProfilingError."""
    found = catalog_model(model_id)
    if found is not None:
        return found
    local = local_model(model_id, model_dirs)
    if local is not None and local.refusal is not None:
        raise ProfilingError("Initializing", local.refusal)
    if local is not None and local.config is not None:
        return model_from_config(local.config, model_id)
    if local is None:
        cached = cached_model(model_id)
        if isinstance(cached, ModelArch):
            return cached
        if isinstance(cached, str):
            raise ProfilingError("Initializing", cached)
    raise ProfilingError(
        "Initializing",
        f"unknown model {model_id!r}: the rapid profiler has architectures for "
        f"{', '.join(sorted(models()))}; use one of them, give the path to a Hugging Face "
        "config.json (or a directory holding one), or profile with searchStrategy thorough on "
        "a cluster",
    )
