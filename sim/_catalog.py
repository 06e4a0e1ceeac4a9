"""GPU and model catalogs, shipped as JSON under `sim/data/` and read with importlib.resources.

Owns: the `Gpu` and `ModelArch` records, loading and checking the two data files, deriving the
quantities the roofline needs (stored and per-token active parameter counts for dense and MoE
models, gated or plain MLPs, dtype-aware weight bytes (bf16, fp8, NVFP4, int8/int4 weight-only,
mxfp4 experts), KV-cache bytes per token for GQA and MLA), and looking a GPU SKU up: `find_gpu` takes the typed `GpuSku` that `ResolvedHardware`
carries (looked up once, never read again as a string); `gpu_named` reads the string a caller of
the public `sim.estimate` / `sim.simulate` passes, by the one rule for a GPU a person names
(`dgdr.domain.spec.gpu_sku_named`: SKU ids in any case, product names, `H200`).
Model entries may omit the MoE / MLA / weight_dtype fields (dense bf16 defaults); model ids are
resolved by `sim._hfconfig.find_model`.

Failure semantics: the data files are part of the package, so a malformed file is a bug and raises
`ValueError` at load time (tests load both); `gpus` also checks that every `GpuSku` has an entry, so
`find_gpu` cannot miss. `gpu_named` raises `ValueError` for a string that names no single SKU,
saying what to write (its callers name their argument in the error). Nothing here touches the network.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from dgdr.domain.spec import GPU_SKUS, GpuSku, gpu_sku_named

BYTES_PER_PARAM = 2  # bf16 / fp16 weights and KV cache
# Bytes per stored weight by checkpoint dtype. mxfp4: 4-bit values + one 8-bit scale per 32 values
# (routed experts only, gpt-oss); nvfp4: 4-bit values + one fp8 scale per 16; int4: 4-bit values + a
# 16-bit scale and zero point per group of 128 (AWQ, GPTQ); int8: 8-bit values, per-channel scales.
WEIGHT_BYTES = {
    "bf16": 2.0,
    "fp8": 1.0,
    "mxfp4": 4.25 / 8.0,
    "nvfp4": 4.5 / 8.0,
    "int8": 1.0,
    "int4": 4.25 / 8.0,
}
# Checkpoint dtypes whose GEMMs run on the fp8 tensor cores (NVFP4's own fp4 rate is not in the
# GPU catalog: fp8's is the floor). The int weight-only formats dequantize to bf16 GEMMs.
FP8_COMPUTE = frozenset({"fp8", "nvfp4"})


@dataclass(frozen=True)
class Gpu:
    id: str
    name: str
    dense_bf16_tflops: float
    dense_fp8_tflops: float | None  # None: no fp8 tensor cores
    memory_gb: float
    memory_bandwidth_gbps: float
    interconnect: str  # "nvlink" | "pcie" | "infinity_fabric"
    interconnect_gbps: float  # total bidirectional GPU-to-GPU bandwidth per GPU
    gpus_per_node: int
    source: str


@dataclass(frozen=True)
class ModelArch:
    """One decoder-only architecture. MoE fields are 0 for dense models, MLA ranks 0 without MLA."""

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
    num_experts: int = 0  # routed experts per MoE layer
    num_experts_per_tok: int = 0  # top-k
    num_shared_experts: int = 0  # always-active experts (DeepSeek)
    moe_intermediate_size: int = 0
    # Layers with a dense MLP in a MoE model (DeepSeek's leading ones, Llama 4's interleaved ones):
    # only their count matters to the estimate.
    first_k_dense_replace: int = 0
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    weight_dtype: str = "bf16"  # a `WEIGHT_BYTES` key (mxfp4: routed expert weights only)
    gated_mlp: bool = True  # gate, up and down projections (SwiGLU/GeGLU); False: up and down only

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def moe_layers(self) -> int:
        return self.num_hidden_layers - self.first_k_dense_replace if self.is_moe else 0

    @property
    def dense_layers(self) -> int:
        return self.num_hidden_layers - self.moe_layers

    @property
    def attn_params(self) -> int:
        """Attention weights of one layer: Q, K, V, O (MLA: the low-rank down/up projections)."""
        h, heads = self.hidden_size, self.num_attention_heads
        if self.is_mla:
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            q = (
                h * self.q_lora_rank + self.q_lora_rank * heads * qk
                if self.q_lora_rank
                else h * heads * qk
            )
            kv_a = h * (self.kv_lora_rank + self.qk_rope_head_dim)
            kv_b = self.kv_lora_rank * heads * (self.qk_nope_head_dim + self.v_head_dim)
            return q + kv_a + kv_b + heads * self.v_head_dim * h
        return h * self.head_dim * (2 * heads + 2 * self.num_key_value_heads)

    @property
    def mlp_matrices(self) -> int:
        return 3 if self.gated_mlp else 2

    @property
    def expert_params(self) -> int:
        """One expert's MLP."""
        return self.mlp_matrices * self.hidden_size * self.moe_intermediate_size

    @property
    def dense_mlp_params(self) -> int:
        return self.mlp_matrices * self.hidden_size * self.intermediate_size

    @property
    def routed_expert_params(self) -> int:
        """Every routed expert of every MoE layer (the weights EP spreads)."""
        return self.moe_layers * self.num_experts * self.expert_params

    @property
    def non_expert_body_params(self) -> int:
        """Decoder-layer weights other than routed experts: attention, dense MLPs, shared experts,
        routers."""
        moe_extra = (
            self.num_shared_experts * self.expert_params + self.hidden_size * self.num_experts
        )
        return (
            self.num_hidden_layers * self.attn_params
            + self.dense_layers * self.dense_mlp_params
            + self.moe_layers * moe_extra
        )

    @property
    def active_body_params(self) -> int:
        """Decoder-layer weights one token multiplies: top-k routed + shared experts for MoE."""
        routed = self.moe_layers * self.num_experts_per_tok * self.expert_params
        return self.non_expert_body_params + routed

    @property
    def layer_params(self) -> int:
        """Mean stored weights of one decoder layer (norms ignored)."""
        return (self.non_expert_body_params + self.routed_expert_params) // self.num_hidden_layers

    @property
    def active_layer_params(self) -> float:
        """Mean weights one token multiplies per decoder layer (equals `layer_params` if dense)."""
        return self.active_body_params / self.num_hidden_layers

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
        return (
            self.non_expert_body_params + self.routed_expert_params + self.embedding_params + head
        )

    @property
    def active_params(self) -> int:
        head = 0 if self.tie_word_embeddings else self.lm_head_params
        return self.active_body_params + self.embedding_params + head

    @property
    def expert_weight_bytes_per_param(self) -> float:
        return WEIGHT_BYTES[self.weight_dtype]

    @property
    def body_weight_bytes_per_param(self) -> float:
        """Attention / dense weights: quantized checkpoints quantize them too, mxfp4 (gpt-oss) only
        the experts."""
        return WEIGHT_BYTES["bf16" if self.weight_dtype == "mxfp4" else self.weight_dtype]

    @property
    def fp8_compute(self) -> bool:
        """Whether the checkpoint's GEMMs run on fp8 tensor cores (`FP8_COMPUTE`)."""
        return self.weight_dtype in FP8_COMPUTE

    @property
    def vocab_weight_bytes(self) -> float:
        """Embedding + lm_head (kept in bf16 by every checkpoint here)."""
        head = 0 if self.tie_word_embeddings else self.lm_head_params
        return (self.embedding_params + head) * float(BYTES_PER_PARAM)

    @property
    def weight_bytes(self) -> int:
        body = self.non_expert_body_params * self.body_weight_bytes_per_param
        experts = self.routed_expert_params * self.expert_weight_bytes_per_param
        return round(body + experts + self.vocab_weight_bytes)

    @property
    def kv_elements_per_token_per_layer(self) -> int:
        """Cached elements per token per layer, unsharded: K and V of every KV head, or MLA's
        compressed latent plus the decoupled RoPE key."""
        if self.is_mla:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.num_key_value_heads * self.head_dim

    @property
    def kv_bytes_per_token(self) -> int:
        """KV cache of every layer for one token (unsharded)."""
        return self.num_hidden_layers * self.kv_elements_per_token_per_layer * BYTES_PER_PARAM


def _read(name: str) -> Any:
    return json.loads(resources.files("sim").joinpath("data", name).read_text(encoding="utf-8"))


_GPU_FIELDS = set(Gpu.__dataclass_fields__)
_MODEL_FIELDS = set(ModelArch.__dataclass_fields__)
_MODEL_REQUIRED = {
    name for name, f in ModelArch.__dataclass_fields__.items() if f.default is dataclasses.MISSING
}


@cache
def gpus() -> dict[str, Gpu]:
    """Every GPU SKU in the catalog, keyed by SKU id; checked against `dgdr.domain.spec.GPU_SKUS`."""
    out: dict[str, Gpu] = {}
    for raw in _read("gpus.json")["gpus"]:
        if set(raw) != _GPU_FIELDS:
            raise ValueError(f"gpus.json entry {raw.get('id')!r}: fields {sorted(raw)}")
        gpu = Gpu(**raw)
        numbers = (gpu.dense_bf16_tflops, gpu.memory_gb, gpu.memory_bandwidth_gbps)
        if gpu.dense_fp8_tflops is not None and gpu.dense_fp8_tflops < gpu.dense_bf16_tflops:
            raise ValueError(f"gpus.json entry {gpu.id!r}: fp8 peak below bf16 peak")
        if min(*numbers, gpu.interconnect_gbps, gpu.gpus_per_node) <= 0:
            raise ValueError(f"gpus.json entry {gpu.id!r}: every figure must be positive")
        out[gpu.id] = gpu
    if set(out) != set(GPU_SKUS):
        raise ValueError(f"gpus.json SKUs {sorted(out)} differ from dgdr.domain.spec.GPU_SKUS")
    return out


@cache
def scaleout_links(gpu_id: str) -> tuple[float, int | None]:
    """(scale-out NIC GB/s one way per GPU, NVLink domain size where it exceeds a node) from
    gpus.json's `kv_transfer_links`: what KV transfers and collectives that leave the NVLink
    domain cross. A SKU without a figure is a packaging bug (ValueError naming it)."""
    links = _read("gpus.json")["kv_transfer_links"]
    if gpu_id not in links["scaleout_gbps"]:
        raise ValueError(f"gpus.json kv_transfer_links: no scale-out figure for {gpu_id!r}")
    return float(links["scaleout_gbps"][gpu_id]), links["nvlink_domain_gpus"].get(gpu_id)


def nvlink_domain(gpu: Gpu) -> int:
    """GPUs that reach each other over the fast interconnect: the rack where the NVLink domain
    spans one (GB200 NVL72), else the node."""
    return scaleout_links(gpu.id)[1] or gpu.gpus_per_node


@cache
def models() -> dict[str, ModelArch]:
    """Every model in the catalog, keyed by its Hugging Face id."""
    out: dict[str, ModelArch] = {}
    for raw in _read("models.json")["models"]:
        if not _MODEL_REQUIRED <= set(raw) <= _MODEL_FIELDS:
            raise ValueError(f"models.json entry {raw.get('id')!r}: fields {sorted(raw)}")
        model = ModelArch(**raw)
        if model.weight_dtype not in WEIGHT_BYTES:
            raise ValueError(f"models.json entry {model.id!r}: weight_dtype {model.weight_dtype!r}")
        if model.is_moe and not (
            0 < model.num_experts_per_tok <= model.num_experts and model.moe_intermediate_size > 0
        ):
            raise ValueError(f"models.json entry {model.id!r}: inconsistent MoE fields")
        if model.is_mla and not (model.qk_rope_head_dim > 0 and model.v_head_dim > 0):
            raise ValueError(f"models.json entry {model.id!r}: inconsistent MLA fields")
        out[model.id] = model
    return out


@cache
def _models_by_lower_id() -> dict[str, ModelArch]:
    return {k.lower(): v for k, v in models().items()}


def catalog_model(model_id: str) -> ModelArch | None:
    """The catalog entry for a Hugging Face id, ignoring case and surrounding spaces (hub ids
    are case-insensitive); None when the catalog lacks it."""
    return _models_by_lower_id().get(model_id.strip().lower())


def find_gpu(sku: GpuSku) -> Gpu:
    """The catalog entry of a SKU (`gpus` checks that the catalog has every SKU)."""
    return gpus()[sku.value]


def gpu_named(name: str) -> Gpu:
    """The catalog entry for a GPU as a person spells it (`h200_sxm`, `H200`,
    `NVIDIA-H100-80GB-HBM3`), by the one rule every place a GPU is named uses
    (`dgdr.domain.spec.gpu_sku_named`); its `ValueError` says what to write instead."""
    return find_gpu(gpu_sku_named(name))
