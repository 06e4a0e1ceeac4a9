"""`profile()`: the rapid (no-cluster) profiler, from validated spec and resolved hardware to a DGD.

Owns: the pipeline and its reported sub-phases (Initializing → SweepingPrefill → SweepingDecode →
SelectingConfig → GeneratingDGD), aggregated and disaggregated candidates (`sim._disagg`) ranked by
one rule, resolving hardware and backend (`backend: auto`
searches vllm, sglang and trtllm, each with its calibrated constants, and keeps the best by the
search's picking rule, `rank_key`; the Pareto front then spans the backends), and the one-line
result message (what was picked, which backend won under auto and by how much, SLA met or missed
by how much per target, load served, overrides skipped).

Failure semantics: raises only `ProfilingError` (sub-phase + actionable message): unknown model or
GPU, bad hardware numbers or a context longer than the model's (Initializing), a model that does not
fit the GPU budget (SelectingConfig), an invalid DGD name (GeneratingDGD). An unmet SLA is not an
error: the closest config is returned and the message says by how much each target is missed.
Deterministic: the same inputs give byte-identical outputs. No I/O apart from reading package data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dgdr.domain.errors import ProfilingError
from dgdr.domain.hardware import ResolvedHardware, resolve_hardware
from dgdr.domain.spec import SLA, Backend, DGDRSpec, SearchStrategy, parse_manifest, parse_spec
from dgdr.domain.target import owned_labels

from ._catalog import Gpu, find_gpu
from ._dgd import DISAGG_SERVICES, WORKER_SERVICE, DgdPlan, WorkerShape, build_dgd, runtime_image
from ._disagg import disagg_candidates
from ._hfconfig import find_model, model_from_config
from ._planner import autoscale_pick, configmaps, curves, planner_config, planner_service
from ._roofline import evaluate, parallel_rows, tp_candidates
from ._search import Candidate, Pick, pareto_front, rank_key, search
from ._thorough import simulate_shortlist

Progress = Callable[[str, str], None]

AUTO_BACKENDS = ("vllm", "sglang", "trtllm")  # searched for `backend: auto`; ties go to the first


@dataclass(frozen=True)
class ProfileResult:
    dgd_name: str
    selected_config: dict[str, Any]  # the complete DGD object
    pareto: list[dict[str, Any]]  # [{"config": {...parallelism and metrics...}}], Dynamo's shape
    message: str
    backend: str
    # Objects deployed with the DGD (the planner's ConfigMaps), in the order to create them.
    configmaps: list[dict[str, Any]] = field(default_factory=list)


def _gpu_facts(hardware: ResolvedHardware) -> tuple[Gpu, int, int, float | None, list[str]]:
    gpu = find_gpu(hardware.gpu_sku)
    return gpu, hardware.num_gpus_per_node, hardware.total_gpus, hardware.vram_mb, []


def _ms(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


_num = _ms


def _target(label: str, actual: float, target: float) -> str:
    if actual <= target:
        return f"{label} {_ms(actual)} ms <= {_ms(target)} ms"
    pct = (actual / target - 1.0) * 100.0
    shown = f"{pct:.0f}" if pct >= 10 else f"{pct:.1f}" if pct >= 0.1 else "<0.1"
    return f"{label} {_ms(actual)} ms > {_ms(target)} ms (+{shown}%)"


def sla_summary(c: Candidate, sla: SLA, met: bool) -> str:
    if sla.e2e_latency is not None:
        parts = [_target("e2eLatency", c.e2e_ms, sla.e2e_latency)]
    else:
        parts = [
            _target("TTFT", c.ttft_ms, sla.ttft or math.inf),
            _target("ITL", c.itl_ms, sla.itl or math.inf),
        ]
    if met:
        return "SLA met: " + ", ".join(parts)
    return "SLA missed: " + ", ".join(parts) + " (closest achievable config)"


def _auto_note(picks: dict[str, Pick], ranked: list[str], *, skipped_backends: bool) -> str:
    """Which backend `auto` picked and by how much it beat the runner-up."""
    won = picks[ranked[0]].chosen
    unfit = [b for b in AUTO_BACKENDS if b not in picks]
    tail = f"; {', '.join(unfit)} cannot fit the model" if skipped_backends and unfit else ""
    if len(ranked) < 2:
        return f"backend auto: {ranked[0]} won (the only backend that fits{tail})"
    second = picks[ranked[1]].chosen
    if won.meets_sla and second.meets_sla:
        lead = (won.tokens_per_s_per_gpu / second.tokens_per_s_per_gpu - 1.0) * 100.0
        why = (
            f"{_num(won.tokens_per_s_per_gpu)} vs {_num(second.tokens_per_s_per_gpu)} tok/s/GPU "
            f"for {second.backend}, +{lead:.1f}%"
        )
    elif won.meets_sla:
        why = (
            f"{_num(won.tokens_per_s_per_gpu)} tok/s/GPU within the SLA; {second.backend}'s "
            f"closest config misses it by {(second.worst_ratio - 1.0) * 100.0:.0f}%"
        )
    else:
        why = (
            f"closest to the SLA: worst target at {won.worst_ratio:.2f}x vs "
            f"{second.worst_ratio:.2f}x for {second.backend}"
        )
    return f"backend auto: {won.backend} won ({why}{tail})"


def shape(c: Candidate) -> str:
    """The deployment shape in words: `agg TP 2 x 4 replica(s)`, `agg TP 4 EP 4 x 2 replica(s)` or
    `disagg prefill TP 1 x 2 + decode TP 2 x 3`."""

    def par(tp: int, ep: int, pp: int = 1) -> str:
        return f"TP {tp}" + (f" EP {ep}" if ep > 1 else "") + (f" PP {pp}" if pp > 1 else "")

    if c.mode == "disagg":
        return (
            f"disagg prefill {par(c.prefill_tp, c.prefill_ep)} x {c.prefill_workers} + decode "
            f"{par(c.tp, c.ep)} x {c.replicas}"
        )
    return f"agg {par(c.tp, c.ep, c.pp)} x {c.replicas} replica(s)"


def _load_note(spec: DGDRSpec, c: Candidate, total: int) -> str | None:
    """What the requested load needs; `c.served` is the share the search found it serves."""
    w = spec.effective_workload
    if w.request_rate is not None:
        what = f"requestRate {w.request_rate:g} req/s"
    elif w.concurrency is not None:
        what = f"concurrency {w.concurrency:g}"
    else:
        return None
    if c.mode == "disagg":
        note = f"{what}: {c.prefill_workers} prefill + {c.replicas} decode worker(s)"
        return (
            note
            if c.served >= 1.0
            else f"{note} within {total} GPUs: {c.served:.0%} of the load served"
        )
    budget = total // (c.tp * c.pp)
    if w.request_rate is not None:
        needed = math.ceil(w.request_rate / (c.requests_per_s / c.replicas))
    else:
        needed = math.ceil((w.concurrency or 0) / c.batch)
    if needed <= budget:
        return f"{what} needs {needed} replica(s)"
    return (
        f"{what} needs {needed} replicas but {total} GPUs allow {budget}: "
        f"{c.served:.0%} of the load served"
    )


def _inputs(
    spec: DGDRSpec | dict[str, Any],
    hardware: ResolvedHardware | None,
    name: str | None,
    namespace: str | None,
) -> tuple[DGDRSpec, ResolvedHardware, str, str]:
    """Whatever `profile` was given, as (spec, hardware, name, namespace); bad input raises
    `ProfilingError("Initializing", ...)` naming every field."""
    meta: dict[str, Any] = {}
    if isinstance(spec, dict):
        if "spec" in spec and "kind" in spec:  # a whole manifest
            manifest = parse_manifest(spec)
            if isinstance(manifest, list):
                raise ProfilingError("Initializing", "; ".join(map(str, manifest)))
            meta = {"name": manifest.metadata.name, "namespace": manifest.metadata.namespace}
            parsed: DGDRSpec | list[Any] = manifest.spec
        else:
            parsed = parse_spec(spec)
        if isinstance(parsed, list):
            raise ProfilingError("Initializing", "; ".join(map(str, parsed)))
        spec = parsed
    if hardware is None:
        hardware, errors = resolve_hardware(spec, {})
        if hardware is None:
            raise ProfilingError("Initializing", "; ".join(map(str, errors)))
    return (
        spec,
        hardware,
        name or meta.get("name") or "dgdr",
        namespace or meta.get("namespace") or "default",
    )


def profile(
    spec: DGDRSpec | dict[str, Any],
    hardware: ResolvedHardware | None = None,
    *,
    name: str | None = None,
    namespace: str | None = None,
    progress: Progress | None = None,
    model_config: str | Path | None = None,
) -> ProfileResult:
    """Rapid profiling: pick a config that meets the SLA within the GPU budget, and its DGD.

    `spec`: a `DGDRSpec`, a spec dict, or a whole DGDR manifest dict (its metadata names the
    result). `hardware`: resolved GPU facts (gpuSku, numGpusPerNode, totalGpus, vramMb); by default
    the spec's own `hardware`, which must then name a gpuSku. `model_config`: a Hugging Face
    config.json for `spec.model`'s architecture (else the catalog, or `spec.model` as a path)."""
    spec, hardware, name, namespace = _inputs(spec, hardware, name, namespace)

    def report(phase: str, message: str) -> None:
        if progress is not None:
            progress(phase, message)

    model = (
        model_from_config(Path(model_config), spec.model)
        if model_config
        else find_model(spec.model)
    )
    gpu, per_node, total, vram_mb, notes = _gpu_facts(hardware)
    if model.source.startswith("local file"):
        notes.append(f"architecture of {spec.model} from {model.source[len('local file ') :]}")
    workload, sla = spec.effective_workload, spec.effective_sla
    isl, osl = workload.isl, workload.osl
    if isl + osl > model.max_position_embeddings:
        raise ProfilingError(
            "Initializing",
            f"isl + osl = {isl + osl} tokens exceeds {model.id}'s max context of "
            f"{model.max_position_embeddings}: lower spec.workload.isl or osl",
        )
    auto = spec.backend is Backend.AUTO
    backends = list(AUTO_BACKENDS) if auto else [spec.backend.value]
    report(
        "Initializing",
        f"rapid roofline for {model.id} ({model.params / 1e9:.2f} B params, "
        f"{model.weight_bytes / 1e9:.1f} GB bf16) on {total} x {gpu.id} ({per_node} per node), "
        f"isl {isl}, osl {osl}, backend "
        + (f"auto ({', '.join(backends)})" if auto else backends[0]),
    )

    tps, skipped = tp_candidates(model, min(per_node, total))
    row_tp, row_ep = parallel_rows(model, tps)
    row_pp = [1] * len(row_tp)
    grids = {b: evaluate(model, gpu, b, row_tp, isl, osl, vram_mb, row_ep) for b in backends}
    if total > per_node and not any(g.fits.any() for g in grids.values()):
        # Multinode workers only where the model needs them: nothing fits within one node.
        wide, wide_skipped = tp_candidates(model, total)
        wide = [t for t in wide if t > per_node]
        m_tp, m_ep = parallel_rows(model, wide)
        m_pp = [1] * len(m_tp)
        # ... or TP within a node and pipeline stages across nodes (aggregated workers)
        node_tp = max((t for t in tp_candidates(model, per_node)[0]), default=1)
        pp = 2
        while node_tp * pp <= total and pp <= model.num_hidden_layers:
            m_tp, m_ep, m_pp = [*m_tp, node_tp], [*m_ep, 1], [*m_pp, pp]
            pp *= 2
        if m_tp:  # else the budget allows no multinode worker: the one-node rows stand
            tps, skipped, row_tp, row_ep, row_pp = wide, wide_skipped, m_tp, m_ep, m_pp
            grids = {
                b: evaluate(model, gpu, b, row_tp, isl, osl, vram_mb, row_ep, row_pp)
                for b in backends
            }
            stages = sorted({p for p in m_pp if p > 1})
            searched = [f"TP {','.join(map(str, wide))} across nodes"] if wide else []
            if stages:
                searched.append(f"TP {node_tp} x PP {','.join(map(str, stages))} across nodes")
            notes.append(
                f"{model.id} does not fit one node of {per_node} {gpu.id}: "
                f"{' and '.join(searched)} searched (multinode workers)"
            )
    ttft1 = "; ".join(
        (f"{b} " if auto else "")
        + ", ".join(
            f"TP{t}{f' EP{e}' if e > 1 else ''}{f' PP{p}' if p > 1 else ''} {_ms(v)} ms"
            for t, e, p, v in zip(row_tp, row_ep, row_pp, g.ttft_ms[:, 0], strict=True)
        )
        for b, g in grids.items()
    )
    skip = ""
    if skipped:
        heads, kvh = model.num_attention_heads, model.num_key_value_heads
        skip = (
            f"; TP {','.join(map(str, skipped))} skipped (incompatible with {heads} attention / "
            f"{kvh} KV heads)"
        )
    points = sum(int(g.fits.sum()) for g in grids.values())
    on = f" x {len(backends)} backends ({', '.join(backends)})" if auto else ""
    report(
        "SweepingPrefill",
        f"prefill: {len(tps)} TP candidates on {gpu.id} (TP {','.join(map(str, tps))}) for "
        f"{model.id}{on}, batch-1 TTFT at isl {isl}: {ttft1}{skip}",
    )
    splits = {
        b: disagg_candidates(
            model,
            gpu,
            b,
            [t for t, p in zip(row_tp, row_pp, strict=True) if p == 1],
            sla,
            workload,
            total,
            vram_mb,
            [e for e, p in zip(row_ep, row_pp, strict=True) if p == 1],
        )
        for b in backends
    }
    combos = sum(len(v) for v in splits.values())
    report(
        "SweepingDecode",
        f"decode: {points} aggregated (TP, batch) points up to KV capacity; {combos} "
        "disaggregated (prefill TP, decode TP, batch) combinations, prefill and decode workers "
        f"rate-matched within {total} GPUs",
    )

    picks: dict[str, Pick] = {}
    first_error: ProfilingError | None = None
    for b, g in grids.items():
        try:
            picks[b] = search(
                model, gpu, g, sla, workload, total, vram_mb, backend=b, disagg=splits[b]
            )
        except ProfilingError as err:
            first_error = first_error or err
    if not picks:
        assert first_error is not None
        raise first_error
    ranked = sorted(picks, key=lambda b: rank_key(picks[b].chosen))  # stable: vllm wins ties
    planner = spec.features is not None and spec.features.planner is not None
    autoscaled = {
        b: a for b in ranked if planner and (a := autoscale_pick(splits[b], workload, sla))
    }
    if autoscaled:  # Dynamo's autoscale picking: one prefill + one decode worker, planner scales
        ranked = sorted(autoscaled, key=lambda b: rank_key(autoscaled[b]))
    elif planner:
        notes.append(
            f"features.planner needs a disaggregated deployment and none fits {total} "
            f"{gpu.id} GPUs: deployed without the Planner"
        )
    backend = ranked[0]
    pick = picks[backend]
    c = autoscaled.get(backend) or pick.chosen
    if spec.mocker_enabled and c.mode != "disagg":
        split_all = [x for b in ranked for x in splits[b]]
        if not split_all:
            raise ProfilingError(
                "SelectingConfig",
                f"features.mocker deploys Dynamo's disaggregated mocker, and no disaggregated "
                f"config fits {total} {gpu.id} GPU(s): set spec.hardware.totalGpus to 2 or more",
            )
        c = min(split_all, key=rank_key)
        backend, pick = c.backend, picks[c.backend]
        notes.append(
            "features.mocker: the best disaggregated config was picked (the mocker is disagg)"
        )
    simulated = ""
    if (
        spec.search_strategy is SearchStrategy.THOROUGH
        and not autoscaled
        and not spec.mocker_enabled
    ):
        measured = simulate_shortlist(
            [*pick.candidates, *splits[backend]], model, gpu, workload, sla
        )
        if measured:
            best = measured[0]
            simulated = (
                f"; thorough: {len(measured)} shortlisted configs simulated request by request "
                f"({best.result.requests}+ requests each): "
                + "; ".join(m.summary() for m in measured)
            )
            c = best.candidate
            notes.append(
                f"thorough: measured p90 TTFT {best.result.ttft_ms['p90']:.0f} ms, p90 ITL "
                f"{best.result.itl_ms['p90']:.1f} ms, {best.tokens_per_s_per_gpu:.0f} tok/s/GPU "
                f"in the request-level simulation (SLA {'met' if best.meets_sla else 'missed'} "
                "as measured)"
            )
        else:
            notes.append("thorough: no config fits, so nothing was simulated")
    met_any = pick.met
    pool = [p for b in ranked for p in picks[b].pareto if p.meets_sla or not met_any]
    front = pareto_front(pool) if auto else pick.pareto
    evaluated = sum(p.evaluated for p in picks.values())
    per_tp = sum(len(p.per_tp) for p in picks.values())
    sizes = "(TP, backend) pairs" if auto else "TP sizes"
    report(
        "SelectingConfig",
        f"selected {backend + ' ' if auto else ''}{shape(c)} ({c.gpus} of {total} GPUs), batch "
        f"{c.batch} per {'decode ' if c.mode == 'disagg' else ''}worker, {_num(c.tokens_per_s_per_gpu)} tok/s/GPU out of {evaluated} "
        f"configs ({per_tp} {sizes} meet the SLA); {len(front)} Pareto points{simulated}",
    )
    if auto:
        notes.insert(0, _auto_note(picks, ranked, skipped_backends=first_error is not None))

    prefill = (c.prefill_tp, c.prefill_workers) if c.mode == "disagg" else None
    maps: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    mocker_data = None
    if autoscaled or spec.mocker_enabled:
        config = (
            planner_config(spec, backend, sla, c.prefill_tp, c.tp, total) if autoscaled else None
        )
        prefill_data, decode_data = curves(
            model, gpu, backend, c.prefill_tp, c.tp, vram_mb, c.prefill_ep, c.ep
        )
        maps = configmaps(
            config,
            prefill_data,
            decode_data,
            namespace=namespace,
            labels=owned_labels({}, namespace, name),
        )
        report(
            "BuildingCurves",
            f"{'planner' if autoscaled else 'mocker'} curves: prefill TTFT over {len(prefill_data['prefill_isl'])} ISLs at TP "
            f"{c.prefill_tp}; decode ITL at {len(decode_data['z_itl'])} (KV usage, context) points "
            f"at TP {c.tp}, up to {decode_data['max_kv_tokens']} KV tokens; ConfigMaps "
            + ", ".join(m["metadata"]["name"] for m in maps),
        )
        if autoscaled:
            extra["Planner"] = planner_service(runtime_image(spec.image, "planner"), maps)
        if spec.mocker_enabled:
            mocker_data = maps[-1]["metadata"]["name"]
    dgd, override_notes = build_dgd(
        DgdPlan(
            spec=spec,
            backend=backend,
            name=name,
            namespace=namespace,
            workers=WorkerShape(tp=c.tp, replicas=c.replicas, ep=c.ep, pp=c.pp),
            prefill=(
                WorkerShape(tp=c.prefill_tp, replicas=c.prefill_workers, ep=c.prefill_ep)
                if c.mode == "disagg"
                else None
            ),
            gpus_per_node=per_node,
            extra_services=extra,
            mocker_data=mocker_data,
        )
    )
    if mocker_data is not None:
        workers = f"mocker prefill ({c.prefill_workers}) + decode ({c.replicas}), no GPUs"
    elif prefill is None:
        workers = f"{WORKER_SERVICE[backend]} ({c.replicas} x {c.tp * c.pp} GPU)"
    else:
        p_name, d_name = DISAGG_SERVICES[backend]
        workers = (
            f"{p_name} ({c.prefill_workers} x {c.prefill_tp} GPU) + "
            f"{d_name} ({c.replicas} x {c.tp} GPU)"
        )
    if extra:
        workers += " + Planner (autoscale: the planner scales the workers)"
    report(
        "GeneratingDGD",
        f"generated DGD {dgd['metadata']['name']}: Frontend + {workers}, image "
        f"{runtime_image(spec.image, backend)}",
    )

    head = (
        f"Picked {backend} {shape(c)} ({c.gpus}/{total} {gpu.id} "
        f"GPUs), batch {c.batch}/{'decode ' if c.mode == 'disagg' else ''}worker, {_num(c.tokens_per_s_per_gpu)} tok/s/GPU, "
        f"{_num(c.tokens_per_s_per_user)} tok/s/user (roofline estimate)"
    )
    load = _load_note(spec, c, total)
    parts = [
        head,
        sla_summary(c, sla, c.meets_sla),
        *([load] if load else []),
        *notes,
        *override_notes,
    ]
    if c not in front:  # the deployed config is always listed (flagged `selected`): an autoscale
        front = [*front, c]  # start, or an SLA miss picked for its latency, can be off the front
    pareto = [{"config": p.to_json(p == c)} for p in front]
    return ProfileResult(
        dgd_name=dgd["metadata"]["name"],
        selected_config=dgd,
        pareto=pareto,
        message="; ".join(parts),
        backend=backend,
        configmaps=maps,
    )
