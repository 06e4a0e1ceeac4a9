"""`profile()`: the rapid (no-cluster) profiler, from validated spec and resolved hardware to a DGD.

Owns the pipeline and the `ProfileResult` it returns. The stages, each a function of the `Setup`
(the one context every stage reads) and of the earlier stages' frozen results, and each reported
as its sub-phase when it is done:

1. resolve (`sim._resolve`): spec, model architecture, GPU, budget, backends -> `Setup`
   (Initializing);
2. sweep (`sim._sweep`): the aggregated grids per backend (SweepingPrefill), then the
   disaggregated combinations (SweepingDecode);
3. search and pick (`sim._select`): the search per backend, then the config by the spec's mode:
   default, load-match, autoscale (planner), mocker, thorough without a cluster (SelectingConfig);
4. curves (`sim._deploy`): the planner's or the mocker's curves and ConfigMaps (BuildingCurves,
   only then);
5. DGD (`sim._deploy`, `sim._dgd`): the DGD of the selected config (GeneratingDGD);
6. message (`sim._message`): the one-line result: what was picked, which backend won under
   auto and by how much, SLA met or missed by how much per target (under thorough without a
   cluster, as measured by the request-level simulation), load served, notes;
7. modes (`sim._modes`): the best aggregated and the best disaggregated config and each mode's
   Pareto front, for the side-by-side comparison and the plot.

A model nothing estimates (not in the catalog, no config.json) takes Dynamo's naive fallback
instead (`sim._naive`): the smallest TP that holds its weights as its name states them,
aggregated, reported as Initializing, SelectingConfig and GeneratingDGD, with `sla_verdict`
"unverified" and a message saying why.

Failure semantics: raises only `ProfilingError` (sub-phase + actionable message): a model neither
estimated nor sized by its name (or naive with thorough or the mocker, `sim.model_refusal`), a
GPU that is not known, bad hardware numbers or a context longer than the model's (Initializing), a model that does not
fit the GPU budget (SelectingConfig), an invalid DGD name (GeneratingDGD). An unmet SLA is not an
error: the closest config is returned and the message says by how much each target is missed.
An exception raised by `progress` propagates unchanged. Deterministic: the same inputs give
byte-identical outputs. No I/O apart from reading package data (and a named local config.json).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from dgdr.domain.hardware import ResolvedHardware
from dgdr.domain.spec import DGDRSpec

from ._deploy import (
    PlannerObjects,
    curves_message,
    dgd_plan,
    generating_message,
    planner_objects,
)
from ._dgd import build_dgd
from ._message import result_message, sla_summary
from ._modelpath import ModelDirs
from ._modes import compare_modes
from ._naive import (
    can_estimate,
    naive_dgd_plan,
    naive_generating_message,
    naive_initializing_message,
    naive_message,
    naive_plan,
    naive_selecting_message,
)
from ._resolve import Setup, initializing_message, read_inputs, resolve
from ._select import Selection, search_backends, select, selecting_message
from ._sweep import Sweep, decode_message, prefill_message, sweep_decode, sweep_prefill

Progress = Callable[[str, str], None]
SlaVerdict = Literal["met", "missed", "unverified"]


@dataclass(frozen=True)
class ProfileResult:
    dgd_name: str
    selected_config: dict[str, Any]  # the complete DGD object
    pareto: list[dict[str, Any]]  # [{"config": {...parallelism and metrics...}}], Dynamo's shape
    message: str
    backend: str
    # "met"/"missed": the picked config's estimate against the SLA; "unverified": the naive
    # configuration of a model nothing estimates (the message says why; `pareto` is empty).
    sla_verdict: SlaVerdict
    # The verdict in words, as the message says it ("SLA missed: TTFT ... (closest achievable
    # config)"); for the naive configuration, why it is unverified.
    sla_summary: str = ""
    # Objects deployed with the DGD (the planner's ConfigMaps), in the order to create them.
    configmaps: list[dict[str, Any]] = field(default_factory=list)
    # The best config and the Pareto front of each serving mode, agg and disagg (`sim._modes`);
    # empty for the naive configuration.
    modes: dict[str, dict[str, Any]] = field(default_factory=dict)


def _silent(sub_phase: str, message: str) -> None:
    return None


def profile(
    spec: DGDRSpec | dict[str, Any],
    hardware: ResolvedHardware | None = None,
    *,
    name: str | None = None,
    namespace: str | None = None,
    progress: Progress | None = None,
    model_config: str | Path | None = None,
    model_dirs: ModelDirs = (),
) -> ProfileResult:
    """Rapid profiling: pick a config that meets the SLA within the GPU budget, and its DGD.

    `spec`: a `DGDRSpec`, a spec dict, or a whole DGDR manifest dict (its metadata names the
    result). `hardware`: resolved GPU facts (gpuSku, numGpusPerNode, totalGpus, vramMb); by default
    the spec's own `hardware`, which must then name a gpuSku. `model_config`: a Hugging Face
    config.json for `spec.model`'s architecture (else the catalog, or `spec.model` as a path, read
    only under `model_dirs`, or anywhere when None: `sim._modelpath`; by default no path at all).
    `progress(sub_phase, message)` is called as each stage is done."""
    report = progress or _silent
    spec, hardware, name, namespace = read_inputs(spec, hardware, name, namespace)
    if model_config is None and not can_estimate(spec.model, model_dirs):
        return _naive(spec, hardware, name, namespace, report, model_dirs)
    setup = resolve(
        spec,
        hardware,
        name=name,
        namespace=namespace,
        model_config=model_config,
        model_dirs=model_dirs,
    )
    report("Initializing", initializing_message(setup))
    sweep = sweep_prefill(setup)
    report("SweepingPrefill", prefill_message(setup, sweep))
    splits = sweep_decode(setup, sweep)
    report("SweepingDecode", decode_message(setup, sweep, splits))
    searched = search_backends(setup, sweep, splits)
    selection = select(setup, searched)
    report("SelectingConfig", selecting_message(setup, searched, selection))
    objects = planner_objects(setup, selection)
    if objects.curves is not None:
        report("BuildingCurves", curves_message(selection, objects))
    dgd, override_notes = build_dgd(dgd_plan(setup, selection, objects))
    report("GeneratingDGD", generating_message(setup, selection, objects, dgd))
    result = _result(setup, sweep, selection, objects, dgd, override_notes)
    agg = [c for pick in searched.picks.values() for c in pick.candidates]
    disagg = [c for b in searched.picks for c in searched.splits[b]]
    return replace(result, modes=compare_modes(setup, agg, disagg, selection.chosen))


def _result(
    setup: Setup,
    sweep: Sweep,
    selection: Selection,
    objects: PlannerObjects,
    dgd: dict[str, Any],
    override_notes: list[str],
) -> ProfileResult:
    """The result: the DGD, the Pareto front with the deployed config flagged `selected` (listed
    also when it sits off the front: an autoscale start, or an SLA miss picked for its latency),
    and the message."""
    c = selection.chosen
    front = list(selection.front) if c in selection.front else [*selection.front, c]
    notes = [
        *([selection.auto_note] if selection.auto_note else []),
        *setup.notes,
        *sweep.notes,
        *selection.notes,
        *override_notes,
    ]
    met, verdict = selection.measured or (c.meets_sla, sla_summary(c, setup.sla, c.meets_sla))
    return ProfileResult(
        dgd_name=dgd["metadata"]["name"],
        selected_config=dgd,
        pareto=[{"config": p.to_json(p == c)} for p in front],
        message=result_message(
            c,
            backend=selection.backend,
            gpu_id=setup.gpu.id,
            total_gpus=setup.total_gpus,
            sla=setup.sla,
            workload=setup.workload,
            notes=notes,
            verdict=verdict,
        ),
        backend=selection.backend,
        sla_verdict="met" if met else "missed",
        sla_summary=verdict,
        configmaps=objects.configmaps,
    )


def _naive(
    spec: DGDRSpec,
    hardware: ResolvedHardware,
    name: str,
    namespace: str,
    report: Progress,
    model_dirs: ModelDirs,
) -> ProfileResult:
    """The naive configuration of a model nothing estimates (`sim._naive`), SLA unverified."""
    plan = naive_plan(spec, hardware, model_dirs)
    report("Initializing", naive_initializing_message(spec.model, plan))
    report("SelectingConfig", naive_selecting_message(plan))
    dgd, override_notes = build_dgd(
        naive_dgd_plan(spec, plan, name, namespace, hardware.num_gpus_per_node)
    )
    report("GeneratingDGD", naive_generating_message(plan, dgd["metadata"]["name"], spec.image))
    return ProfileResult(
        dgd_name=dgd["metadata"]["name"],
        selected_config=dgd,
        pareto=[],
        message=naive_message(spec, plan, override_notes),
        backend=plan.backend,
        sla_verdict="unverified",
        sla_summary=f"SLA unverified: {spec.model} has no estimate (Dynamo's naive configuration)",
    )
