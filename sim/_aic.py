"""NVIDIA AIConfigurator as an alternative estimator: `estimate(..., estimator="aic")` and
`dgdr estimate --estimator aic`, for anyone who wants AIC's measured-silicon figures instead of the
built-in calibrated model.

AIC is an optional extra (`pip install 'dgdr[aic]'`, pinned `aiconfigurator-core==0.12.0`) and is
imported only when asked for, never on the run-time path. `AicEstimator.point` runs the core path of
AIC's `cli estimate` (its SILICON database for the GPU and backend, the model bundled with AIC) and
returns (TTFT ms, ITL ms); `aic_estimate` wraps that as an `Estimate`, keeping the built-in memory
model for the memory fields (AIC reports only out-of-memory).

Failure semantics: `EstimateError` naming the argument, for AIC not installed (with the install
command), a model AIC does not bundle (with the ones it does), a GPU/backend without a SILICON
database, or a configuration AIC finds out of memory. Databases are loaded once per process.
"""

from __future__ import annotations

import dataclasses
import time
from functools import cache
from typing import Any

from dgdr.domain.errors import EstimateError

AIC_VERSION = "0.12.0"
INSTALL = f"pip install 'dgdr[aic]' (aiconfigurator-core=={AIC_VERSION})"
# catalog id -> the Hugging Face id AIC bundles (offline)
AIC_MODELS = {
    "Qwen/Qwen3-0.6B": "Qwen/Qwen3-0.6B",
    "Qwen/Qwen3-8B": "Qwen/Qwen3-8B",
    "Qwen/Qwen3-32B": "Qwen/Qwen3-32B",
    "meta-llama/Llama-3.1-8B": "meta-llama/Meta-Llama-3.1-8B",
    "meta-llama/Llama-3.1-70B": "meta-llama/Meta-Llama-3.1-70B",
    "Qwen/Qwen3-30B-A3B": "Qwen/Qwen3-30B-A3B",
    "deepseek-ai/DeepSeek-V3": "deepseek-ai/DeepSeek-V3",
}
# AIC 0.12's system names (aiconfigurator_core/systems/*.yaml); those it has SILICON data for are
# marked in AIC_SILICON_SYSTEMS.
AIC_SYSTEM_NAMES = (
    "a100_pcie", "a100_sxm", "a30", "b200_sxm", "b300_sxm", "b60", "gb200", "gb300", "h100_pcie",
    "h100_sxm", "h200_sxm", "l4", "l40s", "rtx_pro_6000_server",
)  # fmt: skip
AIC_SILICON_SYSTEMS = (
    "a100_sxm", "b200_sxm", "b300_sxm", "gb200", "gb300", "h100_sxm", "h200_sxm", "l40s",
)  # fmt: skip
# catalog GPU id -> AIC system name, where the two differ (AIC names Grace-Blackwell parts without
# the form factor); every other catalog id is AIC's name or has no AIC system.
_AIC_RENAMED = {"gb200_sxm": "gb200", "gb300_sxm": "gb300"}


class AicEstimator:
    """The core path of AIC's `cli estimate`, with database views memoized."""

    def __init__(self) -> None:
        try:
            from aiconfigurator_core.sdk.backends.factory import get_backend
            from aiconfigurator_core.sdk.config import RuntimeConfig
            from aiconfigurator_core.sdk.config_builders import build_model_config
            from aiconfigurator_core.sdk.models import get_model
            from aiconfigurator_core.sdk.models.helpers import (
                resolve_context_fmha_by_data,
                resolve_nvfp4_for_system,
            )
            from aiconfigurator_core.sdk.perf_database import (
                get_database_view,
                get_latest_database_version,
            )
        except ImportError as exc:
            raise EstimateError("estimator", f"AIConfigurator is not installed: {INSTALL}") from exc
        self._get_backend = get_backend
        self._runtime = RuntimeConfig
        self._build = build_model_config
        self._get_model = get_model
        self._fmha = resolve_context_fmha_by_data
        self._nvfp4 = resolve_nvfp4_for_system
        self._view = get_database_view
        self._latest = get_latest_database_version
        self._dbs: dict[tuple[str, str], Any] = {}
        self.load_s: dict[tuple[str, str], float] = {}

    def database(self, gpu: str, backend: str) -> Any:
        """AIC's SILICON database for a catalog GPU id and backend (None: AIC has none)."""
        key = (gpu, backend)
        if key not in self._dbs:
            start = time.perf_counter()
            system = aic_system(gpu)
            version = self._latest(system=system, backend=backend)
            self._dbs[key] = (
                None
                if version is None
                else self._view(system, backend, version, database_mode="SILICON")
            )
            self.load_s[key] = time.perf_counter() - start
        return self._dbs[key]

    def point(
        self,
        model: str,
        gpu: str,
        backend: str,
        *,
        tp: int,
        ep: int,
        moe: bool,
        batch_size: int,
        isl: int,
        osl: int,
        mode: str,
    ) -> tuple[float, float]:
        """(TTFT ms, ITL ms) from AIC for one configuration (pp = 1); `gpu` is a catalog id."""
        hf = AIC_MODELS.get(model)
        if hf is None:
            raise EstimateError(
                "model",
                f"AIConfigurator {AIC_VERSION} bundles none of {model!r}; valid: "
                + ", ".join(sorted(AIC_MODELS)),
            )
        db = self.database(gpu, backend)
        if db is None:
            raise EstimateError(
                "gpu_sku",
                f"AIConfigurator has no SILICON database for {gpu}/{backend}; GPUs with one: "
                + ", ".join(silicon_gpus()),
            )
        mc = self._build(tp, 1, 1, (tp // ep) if moe else 1, ep if moe else 1)
        self._fmha(mc, hf, db, backend, is_context_role=True)
        self._nvfp4(mc, aic_system(gpu), hf, backend_name=backend)
        aic_model = self._get_model(hf, mc, backend)
        rc = self._runtime(isl=isl, osl=osl, batch_size=batch_size)
        engine = self._get_backend(backend)
        if mode == "static":
            summary = engine.run_static(aic_model, db, rc, mode="static")
        else:
            summary = engine.run_agg(aic_model, db, rc, ctx_tokens=isl)
        if summary.check_oom() or summary.check_kv_cache_oom():
            raise EstimateError("batch_size", f"AIConfigurator: out of memory at {batch_size}")
        result = summary.get_result_dict()
        if result is None:
            raise EstimateError("model", "AIConfigurator returned no result for this point")
        return float(result["ttft"]), float(result["tpot"])


def aic_system(gpu_id: str) -> str:
    """AIC's system name for a catalog GPU id, else `EstimateError` naming `gpu_sku` with the
    catalog GPUs AIC has a system for."""
    name = _AIC_RENAMED.get(gpu_id, gpu_id)
    if name not in AIC_SYSTEM_NAMES:
        from ._catalog import gpus

        valid = sorted(g for g in gpus() if _AIC_RENAMED.get(g, g) in AIC_SYSTEM_NAMES)
        raise EstimateError(
            "gpu_sku",
            f"AIConfigurator {AIC_VERSION} has no system for {gpu_id!r}; valid: {', '.join(valid)}",
        )
    return name


def silicon_gpus() -> list[str]:
    """Catalog GPU ids whose AIC system has measured-silicon data (for some backend)."""
    from ._catalog import gpus

    return sorted(g for g in gpus() if _AIC_RENAMED.get(g, g) in AIC_SILICON_SYSTEMS)


@cache
def _shared() -> AicEstimator:
    return AicEstimator()


def aic_estimate(base: Any) -> Any:
    """`base` (the built-in `Estimate` of the same point) with AIC's TTFT and ITL and what
    follows from them; the memory fields stay the built-in model's."""
    if base.pp != 1:
        raise EstimateError("pp", "the AIConfigurator estimator supports pp = 1 only")
    from ._catalog import models

    moe = models()[base.model].is_moe
    ttft, itl = _shared().point(
        base.model,
        base.gpu_sku,
        base.backend,
        tp=base.tp,
        ep=base.ep,
        moe=moe,
        batch_size=base.batch_size,
        isl=base.isl,
        osl=base.osl,
        mode=base.mode,
    )
    itl = itl if base.osl > 1 else 0.0
    latency = ttft + (base.osl - 1) * itl
    if base.mode == "static":
        per_gpu = base.batch_size * base.osl / (latency / 1e3) / base.num_gpus
    else:
        per_gpu = base.batch_size / (itl / 1e3) / base.num_gpus if itl else 0.0
    return dataclasses.replace(
        base,
        ttft_ms=ttft,
        itl_ms=itl,
        request_latency_ms=latency,
        tokens_per_s_per_gpu=per_gpu,
        tokens_per_s_per_user=1e3 / itl if itl else 1e3 / ttft,
        moe_kernel_excess_ms=0.0,  # AIC's ITL holds its own kernels' figures
    )
