"""What each backend's worker looks like in the DGD, as Dynamo's profiler templates have it today
(`components/src/dynamo/profiler/templates/dgd/<backend>/{agg,disagg}.yaml` and the mocker's).

Owns: component names per backend and mode, the worker's command, working directory, whether it
requests ephemeral storage, and its arguments: model path and served name, parallelism (TP, PP,
EP), the disaggregation role and KV transfer, and the picked engine limits (batch size, tokens
per step) in each backend's own flags:

- vLLM: `--model`, `--tensor-parallel-size`, `--max-num-seqs` (per DP rank; a pipelined
  engine's running requests over all its micro-batches), `--max-num-batched-tokens`;
  disaggregated `--disaggregation-mode prefill|decode`, the prefill worker also
  `--kv-transfer-config` with the NIXL connector (no `--is-prefill-worker`: Dynamo removed it);
- SGLang: `--model-path`, `--served-model-name`, `--page-size 16`, `--tp`,
  `--trust-remote-code`, `--skip-tokenizer-init`, `--max-running-requests` (worker-wide; SGLang
  splits it over its pipeline's micro-batches), `--chunked-prefill-size`; disaggregated
  `--disaggregation-mode`, `--disaggregation-transfer-backend nixl`,
  `--disaggregation-bootstrap-port 12345`, `--host 0.0.0.0`;
- TRT-LLM: `--model-path`, `--served-model-name`, `--extra-engine-args` with the template's
  engine file for the role (`agg.yaml`, or `prefill.yaml`/`decode.yaml`, which carry
  `cache_transceiver_config`), disaggregated `--disaggregation-mode`, then the profiled
  settings as the profiler sets them, `--trtllm.<key> <value>` (`tensor_parallel_size`,
  `pipeline_parallel_size`, `moe_expert_parallel_size`, `max_batch_size` (per pipeline
  micro-batch: TRT-LLM keeps `pipeline_parallel_size` of them in flight), `max_num_tokens`,
  `enable_chunked_prefill true`).

DEP workers (attention DP x expert parallelism, `sim._dep`), as Dynamo's profiler sets them
(`profiler/utils/config_modifiers/{vllm,sglang}.py` `set_config_dep_size`) and TRT-LLM's engine
option: vLLM `--tensor-parallel-size 1 --data-parallel-size N --enable-expert-parallel`, the batch
limit per DP engine; SGLang `--tp N --dp-size N --enable-dp-attention --ep-size N`, the limit
worker-wide (SGLang divides it over the DP ranks); TRT-LLM `tensor_parallel_size N`,
`moe_expert_parallel_size N`, `enable_attention_dp true`, `max_batch_size` per rank.

Failure semantics: pure; an unknown backend is a programming error (KeyError).
"""

from __future__ import annotations

from dataclasses import dataclass

# Aggregated worker component per backend (vLLM's is `VllmDecodeWorker` of type worker).
AGG_WORKER = {"vllm": "VllmDecodeWorker", "sglang": "decode", "trtllm": "TRTLLMWorker"}
# (prefill, decode) components of a disaggregated DGD.
DISAGG_WORKERS = {
    "vllm": ("VllmPrefillWorker", "VllmDecodeWorker"),
    "sglang": ("prefill", "decode"),
    "trtllm": ("prefill", "decode"),
}
MOCKER_WORKERS = ("prefill", "decode")
WORKING_DIR = {
    "vllm": "/workspace/examples/backends/vllm",
    "sglang": "/workspace/examples/backends/sglang",
    "trtllm": "/workspace/",
    "mocker": "/workspace",
}
EPHEMERAL_STORAGE = "2Gi"
VLLM_KV_TRANSFER_CONFIG = '{"kv_connector":"NixlConnector","kv_role":"kv_both"}'
SGLANG_PAGE_SIZE = "16"
SGLANG_BOOTSTRAP_PORT = "12345"
MOCKER_SPEEDUP_RATIO = "1.0"
# The engine files Dynamo's TRT-LLM templates start from (in the runtime image; the disaggregated
# ones carry `cache_transceiver_config`).
TRTLLM_ENGINE_CONFIGS = "./examples/backends/trtllm/engine_configs/qwen3"


def ephemeral_storage(backend: str, disaggregated: bool) -> bool:
    """Whether the templates request ephemeral storage for this worker (vLLM always; SGLang and
    TRT-LLM in their aggregated template only)."""
    return backend == "vllm" or not disaggregated


@dataclass(frozen=True)
class EngineArgs:
    """What one worker's engine is started with."""

    model_path: str
    served_name: str
    tp: int
    role: str | None = None  # prefill / decode for a disaggregated worker
    ep: int = 1
    pp: int = 1
    max_batch: int | None = None  # sequences in flight (the picked batch size), worker-wide
    max_num_tokens: int | None = None  # tokens per engine step
    dp: int = 1  # attention DP ranks: > 1 is a DEP worker (attention DP x EP over `tp` GPUs)

    def per_rank_batch(self) -> int | None:
        """`max_batch` per attention DP rank (vLLM and TRT-LLM limit each rank's engine)."""
        return None if self.max_batch is None else -(-self.max_batch // self.dp)

    def per_micro_batch(self) -> int | None:
        """`max_batch` per rank and pipeline micro-batch: TRT-LLM's `max_batch_size` (its executor
        keeps `pipeline_parallel_size` micro-batches of up to that many in flight)."""
        return None if self.max_batch is None else -(-self.max_batch // (self.dp * self.pp))


def worker_command(backend: str) -> list[str]:
    return ["python3", "-m", f"dynamo.{backend}"]


def worker_args(backend: str, engine: EngineArgs) -> list[str]:
    """The worker's arguments, in the order the templates have them, then the limits."""
    if backend == "vllm":
        return _vllm(engine)
    if backend == "sglang":
        return _sglang(engine)
    if backend == "trtllm":
        return _trtllm(engine)
    raise KeyError(backend)


def _vllm(e: EngineArgs) -> list[str]:
    args = ["--model", e.model_path, "--served-model-name", e.served_name]
    args += ["--tensor-parallel-size", str(e.tp // e.dp)]
    if e.dp > 1:
        args += ["--data-parallel-size", str(e.dp)]
    if e.pp > 1:
        args += ["--pipeline-parallel-size", str(e.pp)]
    if e.ep > 1:
        args.append("--enable-expert-parallel")
    if e.max_batch is not None:
        args += ["--max-num-seqs", str(e.per_rank_batch())]
    if e.max_num_tokens is not None:
        args += ["--max-num-batched-tokens", str(e.max_num_tokens)]
    if e.role:
        args += ["--disaggregation-mode", e.role]
    if e.role == "prefill":
        args += ["--kv-transfer-config", VLLM_KV_TRANSFER_CONFIG]
    return args


def _sglang(e: EngineArgs) -> list[str]:
    args = ["--model-path", e.model_path, "--served-model-name", e.served_name]
    args += ["--page-size", SGLANG_PAGE_SIZE, "--tp", str(e.tp)]
    args += ["--trust-remote-code", "--skip-tokenizer-init"]
    if e.pp > 1:
        args += ["--pp-size", str(e.pp)]
    if e.dp > 1:
        args += ["--dp-size", str(e.dp), "--enable-dp-attention"]
    if e.ep > 1:
        args += ["--ep-size", str(e.ep)]
    if e.max_batch is not None:
        args += ["--max-running-requests", str(e.max_batch)]
    if e.max_num_tokens is not None:
        args += ["--chunked-prefill-size", str(e.max_num_tokens)]
    if e.role:
        args += ["--disaggregation-mode", e.role, "--disaggregation-transfer-backend", "nixl"]
        args += ["--disaggregation-bootstrap-port", SGLANG_BOOTSTRAP_PORT, "--host", "0.0.0.0"]
    return args


def _trtllm(e: EngineArgs) -> list[str]:
    """The template's engine file for the role, then the profiled settings over it as
    `--trtllm.<key>` flags, as Dynamo's profiler sets them."""
    args = ["--model-path", e.model_path, "--served-model-name", e.served_name]
    args += ["--extra-engine-args", f"{TRTLLM_ENGINE_CONFIGS}/{e.role or 'agg'}.yaml"]
    if e.role:
        args += ["--disaggregation-mode", e.role]
    settings: list[tuple[str, object]] = [("tensor_parallel_size", e.tp)]
    if e.pp > 1:
        settings.append(("pipeline_parallel_size", e.pp))
    if e.ep > 1:
        settings.append(("moe_expert_parallel_size", e.ep))
    if e.dp > 1:
        settings.append(("enable_attention_dp", "true"))
    if e.max_batch is not None:
        settings.append(("max_batch_size", e.per_micro_batch()))
    if e.max_num_tokens is not None:
        settings.append(("max_num_tokens", e.max_num_tokens))
    settings.append(("enable_chunked_prefill", "true"))
    for key, value in settings:
        args += [f"--trtllm.{key}", str(value)]
    return args


def mocker_args(model_path: str, served_name: str, role: str) -> list[str]:
    """Dynamo's mocker worker (no GPU; its timings come from the profile data)."""
    return [
        "--model-path",
        model_path,
        "--model-name",
        served_name,
        "--speedup-ratio",
        MOCKER_SPEEDUP_RATIO,
        "--disaggregation-mode",
        role,
    ]
