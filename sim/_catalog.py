"""GPU and model catalogs, shipped as JSON under `sim/data/` and read with importlib.resources.

Owns: the `Gpu` and `ModelArch` records, loading and checking the two data files, deriving the
quantities the roofline needs (parameter count, weight bytes, KV-cache bytes per token), and
resolving a model id or GPU SKU to its record.

Failure semantics: the data files are part of the package, so a malformed file is a bug and raises
`ValueError` at load time (tests load both). Looking up a model or SKU that is not in the catalog
raises `ProfilingError("Initializing", ...)` naming the known ids. Nothing here touches the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from dgdr.spec import GPU_SKUS, normalise_gpu_sku

from ._errors import ProfilingError

BYTES_PER_PARAM = 2  # bf16 / fp16 weights and KV cache


@dataclass(frozen=True)
class Gpu:
    id: str
    name: str
    dense_bf16_tflops: float
    memory_gb: float
    memory_bandwidth_gbps: float
    interconnect: str  # "nvlink" | "pcie" | "infinity_fabric"
    interconnect_gbps: float  # total bidirectional GPU-to-GPU bandwidth per GPU
    gpus_per_node: int
    source: str


@dataclass(frozen=True)
class ModelArch:
    id: str
    num_hidden_layers: int
    hidden_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool
    torch_dtype: str
    source: str

    @property
    def layer_params(self) -> int:
        """Weights of one decoder layer: Q, K, V, O projections and gated MLP (norms ignored)."""
        h, d = self.hidden_size, self.head_dim
        attn = h * d * (2 * self.num_attention_heads + 2 * self.num_key_value_heads)
        mlp = 3 * h * self.intermediate_size
        return attn + mlp

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        """Output projection (the same matrix as the embedding when tied, but still a matmul)."""
        return self.vocab_size * self.hidden_size

    @property
    def params(self) -> int:
        """Stored parameters (a tied lm_head is not counted twice)."""
        head = 0 if self.tie_word_embeddings else self.lm_head_params
        return self.num_hidden_layers * self.layer_params + self.embedding_params + head

    @property
    def weight_bytes(self) -> int:
        return self.params * BYTES_PER_PARAM

    @property
    def kv_bytes_per_token(self) -> int:
        """K and V for every layer, all KV heads, for one token (unsharded)."""
        return (
            2 * self.num_hidden_layers * self.num_key_value_heads * self.head_dim * BYTES_PER_PARAM
        )


def _read(name: str) -> Any:
    return json.loads(resources.files("sim").joinpath("data", name).read_text(encoding="utf-8"))


_GPU_FIELDS = set(Gpu.__dataclass_fields__)
_MODEL_FIELDS = set(ModelArch.__dataclass_fields__)


@cache
def gpus() -> dict[str, Gpu]:
    """Every GPU SKU in the catalog, keyed by SKU id; checked against `dgdr.spec.GPU_SKUS`."""
    out: dict[str, Gpu] = {}
    for raw in _read("gpus.json")["gpus"]:
        if set(raw) != _GPU_FIELDS:
            raise ValueError(f"gpus.json entry {raw.get('id')!r}: fields {sorted(raw)}")
        gpu = Gpu(**raw)
        numbers = (gpu.dense_bf16_tflops, gpu.memory_gb, gpu.memory_bandwidth_gbps)
        if min(*numbers, gpu.interconnect_gbps, gpu.gpus_per_node) <= 0:
            raise ValueError(f"gpus.json entry {gpu.id!r}: every figure must be positive")
        out[gpu.id] = gpu
    if set(out) != set(GPU_SKUS):
        raise ValueError(f"gpus.json SKUs {sorted(out)} differ from dgdr.spec.GPU_SKUS")
    return out


@cache
def models() -> dict[str, ModelArch]:
    """Every model in the catalog, keyed by its Hugging Face id."""
    out: dict[str, ModelArch] = {}
    for raw in _read("models.json")["models"]:
        if set(raw) != _MODEL_FIELDS:
            raise ValueError(f"models.json entry {raw.get('id')!r}: fields {sorted(raw)}")
        out[raw["id"]] = ModelArch(**raw)
    return out


def find_model(model_id: str) -> ModelArch:
    """The catalog entry for a Hugging Face id (case-insensitive), else ProfilingError."""
    by_lower = {k.lower(): v for k, v in models().items()}
    found = by_lower.get(model_id.strip().lower())
    if found is None:
        raise ProfilingError(
            "Initializing",
            f"unknown model {model_id!r}: the rapid profiler has architectures for "
            f"{', '.join(sorted(models()))}; use one of them or profile with searchStrategy "
            "thorough on a cluster",
        )
    return found


def find_gpu(sku: str) -> Gpu:
    """The catalog entry for a SKU id or raw product name, else ProfilingError."""
    normalised = normalise_gpu_sku(sku)
    if normalised is None:
        raise ProfilingError(
            "Initializing",
            f"unknown GPU SKU {sku!r}: use one of {', '.join(GPU_SKUS)}",
        )
    return gpus()[normalised.value]
