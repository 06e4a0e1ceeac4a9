"""AIConfigurator as `bench/picks.py` judges with it: its SLA search and its `cli_estimate`.

`AicPicks` runs AIC's default search (agg + disagg, trtllm, SILICON) in-process and keeps each
mode's best row: its throughput per GPU of the budget, TTFT, TPOT, a short shape ("agg
TP1EP32PP1DP32 bs5", "disagg P 1xTP1EP16DP16 bs1 + D ...") and the topology substitutions AIC made
to time it. `estimate` and `estimate_shape` judge one config, ours or a shape, with `cli_estimate`
and count its throughput over the whole budget. Failure semantics: a config AIC cannot run (OOM,
unsupported) is {"error": ...}, never an exception; the one retried is a missing fp8
context-attention table, with bfloat16 FMHA, as AIC's search and agg estimate do themselves
(`with_fmha_fallback`, which `bench/dep_fidelity.py` uses too).

AIC is imported lazily (the `calibration` group); see `bench/picks.py` for how to run it.
"""

from __future__ import annotations

import contextlib
import io
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rapid import AIC_BACKEND, Aic, Spec


class AicPicks(Aic):
    """`bench/rapid.py`'s in-process AIC, plus `cli_estimate` for one given config."""

    def __init__(self) -> None:
        super().__init__()
        from aiconfigurator.cli.api import cli_estimate

        self._estimate = cli_estimate

    def search(self, spec: Spec) -> dict[str, Any]:
        start = time.perf_counter()
        self.load_database(spec.gpu)
        result = self.runner(spec)()
        out: dict[str, Any] = {"chosen": result.chosen_exp, "search_s": 0.0, "best": {}}
        for exp in ("agg", "disagg"):
            df = result.best_configs.get(exp)
            if df is None or df.empty:
                continue
            row = df.iloc[0]
            out["best"][exp] = {
                "cluster": float(row["tokens/s/gpu_cluster"]),
                "ttft": float(row["ttft"]),
                "tpot": float(row["tpot"]),
                "shape": _aic_shape(row, exp),
                "substituted": self._substitutions(row),
            }
        out["search_s"] = time.perf_counter() - start
        return out

    def _substitutions(self, row: Any) -> list[str]:
        """The topology substitutions AIC's search made for this row's figure (its
        `_moe_comm_fallbacks`: cross-node all-to-all timed with single-node data)."""
        from aiconfigurator.cli.estimate_detail_report import format_moe_comm_fallback

        return [format_moe_comm_fallback(f) for f in row.get("_moe_comm_fallbacks") or ()]

    def estimate(
        self, spec: Spec, backend: str, mode: str, workers: list[AicWorker], gpus: int, moe: bool
    ) -> dict[str, Any]:
        """AIC's TTFT, TPOT and throughput per GPU of the budget for a config of ours: its
        `workers` (agg: one; disagg: prefill, then decode) on `gpus` of the budget."""
        kwargs = estimate_kwargs(mode, workers, moe)
        common = {"backend_name": backend, "isl": spec.isl, "osl": spec.osl}
        return self._judge(spec, {**common, **kwargs}, gpus)

    def estimate_shape(self, spec: Spec, shape: str, moe: bool) -> dict[str, Any]:
        """AIC's TTFT, TPOT and throughput per GPU of the budget for AIC's own pick (`shape` as
        `_aic_shape` writes it), by the same `cli_estimate` that judges ours."""
        kwargs, gpus = aic_shape_kwargs(shape, moe, spec.total_gpus)
        return self._judge(
            spec, {"backend_name": AIC_BACKEND, "isl": spec.isl, "osl": spec.osl, **kwargs}, gpus
        )

    def _judge(self, spec: Spec, kwargs: dict[str, Any], gpus_used: int) -> dict[str, Any]:
        try:
            r = with_fmha_fallback(lambda **kw: self._estimate_quietly(spec, kw), **kwargs)
        except Exception as exc:  # OOM, unsupported shape: AIC cannot run the config
            return {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
        per_gpu = float(r.raw["tokens/s/gpu"])
        return {
            "ttft": float(r.ttft),
            "tpot": float(r.tpot),
            "cluster": per_gpu * gpus_used / spec.total_gpus,
        }

    def _estimate_quietly(self, spec: Spec, kwargs: dict[str, Any]) -> Any:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            return self._estimate(spec.aic_model, spec.gpu, **kwargs)


def with_fmha_fallback(estimate: Callable[..., Any], **kwargs: Any) -> Any:
    """`estimate(**kwargs)`, again at bfloat16 FMHA when AIC has no context-attention rows at
    the checkpoint's fp8 (DeepSeek-V3's MLA on trtllm). AIC's search and its agg estimate make
    that fallback themselves (with a warning); its disagg estimate raises instead. Any other
    error propagates."""
    try:
        return estimate(**kwargs)
    except Exception as exc:
        if "fmha_quant_mode" in kwargs or not _fp8_context_missing(exc):
            raise
        return estimate(**kwargs, fmha_quant_mode="bfloat16")


def _fp8_context_missing(exc: Exception) -> bool:
    """AIC's error for a context-attention table with no rows at fp8 FMHA."""
    text = str(exc)
    return type(exc).__name__ == "PerfDataNotAvailableError" and 'fmha_quant: "fp8"' in text


@dataclass(frozen=True)
class AicWorker:
    """A worker as `cli_estimate` takes it: attention TP, MoE EP, PP, attention DP, the batch per
    attention-DP rank (as AIC counts it) and how many such workers; MoE TP is what the worker's
    GPUs leave over its EP."""

    tp: int
    ep: int
    pp: int
    dp: int
    batch: int
    count: int = 1


def _worker_kwargs(prefix: str, w: AicWorker, moe: bool) -> dict[str, Any]:
    return {
        f"{prefix}tp_size": w.tp,
        f"{prefix}pp_size": w.pp,
        f"{prefix}attention_dp_size": w.dp,
        f"{prefix}moe_tp_size": w.tp * w.dp // w.ep if moe else None,
        f"{prefix}moe_ep_size": w.ep if moe else None,
    }


def estimate_kwargs(mode: str, workers: list[AicWorker], moe: bool) -> dict[str, Any]:
    """`cli_estimate`'s arguments for an agg config (one worker) or a disagg one (prefill, then
    decode)."""
    if mode == "agg" and len(workers) == 1:
        (w,) = workers
        return {"mode": "agg", "batch_size": w.batch, **_worker_kwargs("", w, moe)}
    if mode == "disagg" and len(workers) == 2:
        p, d = workers
        return {
            "mode": "disagg",
            **_worker_kwargs("prefill_", p, moe),
            "prefill_batch_size": p.batch,
            "prefill_num_workers": p.count,
            **_worker_kwargs("decode_", d, moe),
            "decode_batch_size": d.batch,
            "decode_num_workers": d.count,
        }
    raise ValueError(f"not an {mode} config: {workers}")


_WORKER = re.compile(r"(?:(\d+)x)?TP(\d+)EP(\d+)(?:PP(\d+))?DP(\d+) bs(\d+)")


def aic_shape_kwargs(shape: str, moe: bool, budget: int) -> tuple[dict[str, Any], int]:
    """`cli_estimate`'s arguments for a shape `_aic_shape` wrote, and the GPUs it uses: an agg
    config as many replicas as fit the budget."""
    workers = [
        AicWorker(int(tp), int(ep), int(pp or 1), int(dp), int(bs), int(n or 1))
        for n, tp, ep, pp, dp, bs in _WORKER.findall(shape)
    ]
    mode = shape.split(" ", 1)[0]
    kwargs = estimate_kwargs(mode, workers, moe)
    if mode == "agg":
        per_replica = workers[0].tp * workers[0].pp * workers[0].dp
        return kwargs, budget // per_replica * per_replica
    return kwargs, sum(w.count * w.tp * w.pp * w.dp for w in workers)


def _aic_shape(row: Any, exp: str) -> str:
    if exp == "agg":
        return (
            f"agg TP{int(row['tp'])}EP{int(row['moe_ep'])}PP{int(row['pp'])}"
            f"DP{int(row.get('dp', 1))} bs{int(row['bs'])}"
        )
    return (
        f"disagg P {int(row['(p)workers'])}xTP{int(row['(p)tp'])}EP{int(row['(p)moe_ep'])}"
        f"DP{int(row.get('(p)dp', 1))} bs{int(row['(p)bs'])} + D {int(row['(d)workers'])}x"
        f"TP{int(row['(d)tp'])}EP{int(row['(d)moe_ep'])}DP{int(row.get('(d)dp', 1))} "
        f"bs{int(row['(d)bs'])}"
    )
