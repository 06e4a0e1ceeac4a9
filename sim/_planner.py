"""What `features.planner` adds to a profile: the planner's interpolation curves, its ConfigMaps,
the `Planner` service, and the autoscale pick.

Owns:
- `planner_config(spec, ...)`: `features.planner` with Dynamo's defaults filled in and the picked
  engines' GPU counts (`prefill_engine_num_gpu`, `decode_engine_num_gpu`); a config that enables no
  scaling mode is refused, as Dynamo's PlannerConfig refuses it.
- `curves(...)`: the curves Dynamo's profiler hands the planner, from the same latency model as the
  search: prefill TTFT and throughput per GPU over ISL (batch 1), and decode ITL and throughput per
  GPU over (KV usage, context length) up to the KV capacity (`max_kv_tokens`).
- `configmaps(...)`: `planner-config-<hash>` (`planner_config.json`) and
  `planner-profile-data-<hash>` (`prefill_raw_data.json`, `decode_raw_data.json`); `<hash>` is the
  first 8 hex digits of the content's SHA-256, so the same profile gives the same names.
- `planner_service(...)`: the `Planner` service mounting both ConfigMaps read-only.
- `autoscale_pick(...)`: Dynamo's autoscale picking: the prefill engine and the decode engine are
  chosen independently (the best throughput per GPU within TTFT, resp. ITL), one worker each; the
  planner scales them afterwards.

Failure semantics: raises `ProfilingError` (SelectingConfig) only for a planner config that enables
no scaling; every number written is finite.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import numpy as np

from dgdr.domain.errors import ProfilingError
from dgdr.domain.spec import SLA, DGDRSpec, Workload

from ._catalog import Gpu, ModelArch
from ._dep import DepPlan, dep_plan, dep_prefill_all_ranks_ms, dep_step_ms
from ._disagg import DECODE_EFFICIENCY, PREFILL_EFFICIENCY
from ._estimate import _Plan, _plan, decode_step_ms, prefill_ms
from ._roofline import kv_free_bytes
from ._search import Candidate

WORKSPACE = "/workspace"
CONFIG_MOUNT = f"{WORKSPACE}/planner_config"
DATA_MOUNT = f"{WORKSPACE}/profiling_results"
SWEEP_MAX_CONTEXT = 32768  # the longest context the curves cover (capped by the model's)
DECODE_OSL = 500  # Dynamo's decode sweep uses a fixed osl
GRANULARITY = 6  # decode concurrency points per context length
DEFAULTS: dict[str, Any] = {
    "optimization_target": "throughput",
    "pre_deployment_sweeping_mode": "rapid",
    "mode": "disagg",
    "min_endpoint": 1,
    "max_gpu_budget": 8,
    "load_predictor": "arima",
    "enable_load_scaling": True,
    "enable_throughput_scaling": False,
}


def planner_config(
    spec: DGDRSpec, backend: str, sla: SLA, prefill_gpus: int, decode_gpus: int, budget: int
) -> dict[str, Any]:
    given = copy.deepcopy((spec.features.planner if spec.features else None) or {})
    config = {**DEFAULTS, "max_gpu_budget": budget, **given}
    if given.get("optimization_target") != "sla":
        # Dynamo's validator: outside the `sla` target, load scaling is what runs.
        config.setdefault("enable_load_scaling", True)
    if not config.get("enable_load_scaling") and not config.get("enable_throughput_scaling"):
        raise ProfilingError(
            "SelectingConfig",
            "spec.features.planner enables no scaling mode: set enable_load_scaling or "
            "enable_throughput_scaling to true (or remove features.planner)",
        )
    config.update(
        {
            "backend": backend,
            "ttft": sla.ttft,
            "itl": sla.itl,
            "prefill_engine_num_gpu": prefill_gpus,
            "decode_engine_num_gpu": decode_gpus,
            "profile_results_dir": DATA_MOUNT,
        }
    )
    return config


def curves(
    model: ModelArch,
    gpu: Gpu,
    backend: str,
    prefill_tp: int,
    decode_tp: int,
    vram_mb: float | None = None,
    prefill_ep: int = 1,
    decode_ep: int = 1,
    prefill_dp: int = 1,
    decode_dp: int = 1,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(prefill_raw_data, decode_raw_data) for the picked prefill and decode engine sizes. A DEP
    engine (`*_dp` > 1, `sim._dep`) prefills one prompt per rank at once (its throughput per GPU
    is Dynamo's `isl / ttft / gpus x attention_dp`) and holds `dp` ranks' KV tokens."""
    max_ctx = min(model.max_position_embeddings, SWEEP_MAX_CONTEXT)
    top = max(max_ctx - 512, 200)
    isls = list(range(100, top, max((top - 100) // 16, 1)))
    if prefill_dp == 1:
        p_plan = _plan(model, gpu, backend, prefill_tp, 1, prefill_ep)
        ttft = [prefill_ms(p_plan, 1.0, float(i)) for i in isls]
    else:
        p_dep = dep_plan(model, gpu, backend, prefill_tp, prefill_worker=True)
        ttft = [dep_prefill_all_ranks_ms(p_dep, float(i)) for i in isls]
    prefill = {
        "prefill_isl": isls,
        "prefill_ttft": [round(t, 4) for t in ttft],
        "prefill_thpt_per_gpu": [
            round(i / t / prefill_tp * 1000.0 * prefill_dp, 4)
            for i, t in zip(isls, ttft, strict=True)
        ],
    }
    d_plan: _Plan | DepPlan = (
        _plan(model, gpu, backend, decode_tp, 1, decode_ep)
        if decode_dp == 1
        else dep_plan(model, gpu, backend, decode_tp, decode_worker=True)
    )
    free = kv_free_bytes(d_plan, gpu, vram_mb)
    max_kv_tokens = max(int(free // d_plan.kv_bytes_per_token), 0) * decode_dp
    x_kv, y_ctx, z_itl, z_thpt = [], [], [], []
    span = max(max_ctx - DECODE_OSL, 200)
    for isl in range(100, span, max((span - 100) // GRANULARITY, 1)):
        seq = isl + DECODE_OSL
        max_concurrency = max_kv_tokens // seq
        if max_concurrency == 0:
            break
        counts = np.unique(np.linspace(1, max_concurrency, GRANULARITY).round().astype(int))
        ctx = isl + DECODE_OSL / 2.0
        steps = (
            decode_step_ms(d_plan, counts.astype(np.float64), ctx)
            if isinstance(d_plan, _Plan)
            else dep_step_ms(d_plan, counts.astype(np.float64), ctx)
        )
        for n, step in zip(counts.tolist(), steps.tolist(), strict=True):
            x_kv.append(round(ctx * n / max_kv_tokens, 6))
            y_ctx.append(ctx)
            z_itl.append(round(step, 4))
            z_thpt.append(round(n / (step / 1000.0) / decode_tp, 4))
    decode = {
        "x_kv_usage": x_kv,
        "y_context_length": y_ctx,
        "z_itl": z_itl,
        "z_thpt_per_gpu": z_thpt,
        "max_kv_tokens": max_kv_tokens,
    }
    return prefill, decode


def _named(prefix: str, data: dict[str, str]) -> str:
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return f"{prefix}-{digest[:8]}"


def configmaps(
    config: dict[str, Any] | None,
    prefill: dict[str, Any],
    decode: dict[str, Any],
    *,
    namespace: str,
    labels: dict[str, str],
) -> list[dict[str, Any]]:
    """[planner-config (when `config` is given), planner-profile-data]."""
    config_data = {"planner_config.json": json.dumps(config, sort_keys=True)}
    profile_data = {
        "prefill_raw_data.json": json.dumps(prefill, sort_keys=True),
        "decode_raw_data.json": json.dumps(decode, sort_keys=True),
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": _named(prefix, data),
                "namespace": namespace,
                "labels": dict(labels),
            },
            "data": data,
        }
        for prefix, data in (
            *((("planner-config", config_data),) if config is not None else ()),
            ("planner-profile-data", profile_data),
        )
    ]


def planner_service(image: str, maps: list[dict[str, Any]]) -> dict[str, Any]:
    config_cm, data_cm = (m["metadata"]["name"] for m in maps)
    return {
        "componentType": "planner",
        "replicas": 1,
        "extraPodSpec": {
            "mainContainer": {
                "image": image,
                "workingDir": f"{WORKSPACE}/components/src/dynamo/planner",
                "command": ["python3", "-m", "dynamo.planner"],
                "args": ["--config", f"{CONFIG_MOUNT}/planner_config.json"],
                "volumeMounts": [
                    {"name": "planner-config", "mountPath": CONFIG_MOUNT, "readOnly": True},
                    {"name": "planner-profile-data", "mountPath": DATA_MOUNT, "readOnly": True},
                ],
            },
            "volumes": [
                {"name": "planner-config", "configMap": {"name": config_cm}},
                {"name": "planner-profile-data", "configMap": {"name": data_cm}},
            ],
        },
    }


def autoscale_pick(candidates: list[Candidate], workload: Workload, sla: SLA) -> Candidate | None:
    """One prefill and one decode worker, each engine chosen on its own (see the module)."""
    split = [c for c in candidates if c.mode == "disagg"]
    if not split:
        return None
    ttft_ok = [c for c in split if c.ttft_ms <= (sla.ttft or np.inf)] or split

    def engine(c: Candidate) -> tuple[int, int, int]:  # the prefill engine's layout
        return (c.prefill_tp, c.prefill_ep, c.prefill_dp)

    # GPU time per prompt (a DEP prefill engine serves one prompt per rank at once).
    first = min(ttft_ok, key=lambda c: (c.ttft_ms * c.prefill_tp / c.prefill_dp, c.prefill_tp))
    prefill = engine(first)
    itl_ok = [c for c in split if engine(c) == prefill and c.itl_ms <= (sla.itl or np.inf)]
    pool = itl_ok or [c for c in split if engine(c) == prefill]
    best = max(pool, key=lambda c: (c.batch / (c.itl_ms * c.tp), -c.tp))
    osl = workload.osl
    decode_rps = best.batch / (osl * best.itl_ms / 1000.0)
    prefill_rps = best.prefill_dp * 1000.0 / best.ttft_ms
    rps = min(prefill_rps * PREFILL_EFFICIENCY, decode_rps * DECODE_EFFICIENCY)
    gpus = best.prefill_tp + best.tp
    return Candidate(
        backend=best.backend,
        tp=best.tp,
        batch=best.batch,
        replicas=1,
        ttft_ms=best.ttft_ms,
        itl_ms=best.itl_ms,
        e2e_ms=best.e2e_ms,
        tokens_per_s_per_gpu=rps * osl / gpus,
        tokens_per_s_per_user=best.tokens_per_s_per_user,
        requests_per_s=rps,
        meets_sla=best.meets_sla,
        worst_ratio=best.worst_ratio,
        mode="disagg",
        prefill_tp=best.prefill_tp,
        prefill_workers=1,
        ep=best.ep,
        prefill_ep=best.prefill_ep,
        dp=best.dp,
        prefill_dp=best.prefill_dp,
    )
