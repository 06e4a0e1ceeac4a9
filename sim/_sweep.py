"""The profile's sweeps: the aggregated (TP, batch) grid per backend (SweepingPrefill) and the
disaggregated (prefill TP, decode TP, batch) combinations per backend (SweepingDecode).

Owns: which worker layouts are searched, and their reports. Within one node: every power-of-two TP
the heads allow, a MoE model's experts spread over the TP GPUs (EP = TP where they divide,
`parallel_rows`). Multinode workers only where
the model needs them: when the budget spans more than one node and nothing fits within one, the
TP sizes wider than a node, and every TP within a node x pipeline stages across nodes (PP 2, 4, ...
up to the budget and the layer count, the worker wider than a node: fewer GPUs per stage and more
stages cost latency but each stage's all-reduce is smaller, and the micro-batches in flight keep
the throughput, `sim._estimate`); if the budget allows no such worker, the one-node layouts stand
(and the search reports that the model does not fit). Disaggregated workers are never pipelined.
A MoE model is also searched with DEP workers (attention DP x wide EP, `sim._dep.dep_widths`),
which may span nodes, in the aggregated grid and as prefill and decode workers.

Failure semantics: none of its own; a layout that does not fit is masked out of the grid, and a
budget of one GPU gives no disaggregated combination.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

import numpy as np

from dgdr.domain.spec import SearchStrategy

from ._dep import dep_widths, layout_words
from ._disagg import disagg_candidates
from ._margin import error_band
from ._message import ms
from ._resolve import Setup
from ._roofline import Grid, evaluate, expert_parallel, parallel_rows, tp_candidates
from ._search import Candidate, evaluated_count


@dataclass(frozen=True)
class Layouts:
    """The worker layouts searched, one row each: TP, EP and PP sizes (a worker has TP x PP
    GPUs)."""

    tp: tuple[int, ...]
    ep: tuple[int, ...]
    pp: tuple[int, ...]
    dp: tuple[int, ...] = ()  # attention DP ranks per row (empty: all 1); >1 a DEP row

    def ranks(self) -> tuple[int, ...]:
        return self.dp or (1,) * len(self.tp)


@dataclass(frozen=True)
class Sweep:
    tps: tuple[int, ...]  # the TP sizes searched
    skipped: tuple[int, ...]  # TP sizes the attention / KV heads rule out
    layouts: Layouts
    grids: Mapping[str, Grid]  # per backend, rows as `layouts`
    notes: tuple[str, ...] = ()


def _grids(setup: Setup, layouts: Layouts) -> dict[str, Grid]:
    w = setup.workload
    return {
        b: evaluate(
            setup.model,
            setup.gpu,
            b,
            list(layouts.tp),
            w.isl,
            w.osl,
            setup.vram_mb,
            list(layouts.ep),
            list(layouts.pp),
            list(layouts.ranks()),
        )
        for b in setup.backends
    }


def _multinode(setup: Setup) -> Sweep | None:
    """Workers spanning nodes (see the module), or None when the budget allows none."""
    model, per_node, total = setup.model, setup.gpus_per_node, setup.total_gpus
    wide, skipped = tp_candidates(model, total)
    wide = [t for t in wide if t > per_node]
    tp, ep = parallel_rows(model, wide)
    pp = [1] * len(tp)
    pipelined: dict[int, list[int]] = {}
    for node_tp in sorted(tp_candidates(model, per_node)[0], reverse=True):
        stages = 2
        while node_tp * stages <= total and stages <= model.num_hidden_layers:
            if node_tp * stages > per_node:
                tp, ep, pp = [*tp, node_tp], [*ep, expert_parallel(model, node_tp)], [*pp, stages]
                pipelined.setdefault(node_tp, []).append(stages)
            stages *= 2
    if not tp:
        return None
    layouts = Layouts(tuple(tp), tuple(ep), tuple(pp))
    searched = [f"TP {','.join(map(str, wide))} across nodes"] if wide else []
    if pipelined:
        pairs = "; ".join(f"TP {t} x PP {','.join(map(str, s))}" for t, s in pipelined.items())
        searched.append(f"{pairs} across nodes")
    note = (
        f"{model.id} does not fit one node of {per_node} {setup.gpu.id}: "
        f"{' and '.join(searched)} searched (multinode workers)"
    )
    return Sweep(tuple(wide), tuple(skipped), layouts, _grids(setup, layouts), (note,))


def sweep_prefill(setup: Setup) -> Sweep:
    """The aggregated grids: one-node layouts, or multinode ones when nothing fits one node."""
    tps, skipped = tp_candidates(setup.model, min(setup.gpus_per_node, setup.total_gpus))
    tp, ep = parallel_rows(setup.model, tps)
    layouts = Layouts(tuple(tp), tuple(ep), (1,) * len(tp))
    one_node = Sweep(tuple(tps), tuple(skipped), layouts, _grids(setup, layouts))
    if setup.total_gpus <= setup.gpus_per_node or any(
        g.fits.any() for g in one_node.grids.values()
    ):
        return _with_dep(setup, one_node)
    return _with_dep(setup, _multinode(setup) or one_node)


def _with_dep(setup: Setup, sweep: Sweep) -> Sweep:
    """The sweep with the DEP layouts of a MoE model added (`sim._dep.dep_widths`)."""
    widths = dep_widths(setup.model, setup.total_gpus)
    if not widths:
        return sweep
    rows = sweep.layouts
    n = len(widths)
    dep = Layouts(tuple(widths), tuple(widths), (1,) * n, tuple(widths))
    layouts = Layouts(
        (*rows.tp, *dep.tp), (*rows.ep, *dep.ep), (*rows.pp, *dep.pp), (*rows.ranks(), *dep.dp)
    )
    dep_grids = _grids(setup, dep)
    grids = {b: _stack(g, dep_grids[b]) for b, g in sweep.grids.items()}
    return replace(sweep, layouts=layouts, grids=grids)


def _stack(top: Grid, bottom: Grid) -> Grid:
    """The rows of `top`, then those of `bottom` (same batch columns and reserve)."""
    arrays = {
        f.name: np.concatenate([getattr(top, f.name), getattr(bottom, f.name)])
        for f in fields(Grid)
        if f.name != "reserve_gb_per_gpu"
    }
    return Grid(reserve_gb_per_gpu=top.reserve_gb_per_gpu, **arrays)


def prefill_message(setup: Setup, sweep: Sweep) -> str:
    """The TP sizes searched and each layout's batch-1 TTFT, per backend under `auto`."""
    rows = sweep.layouts
    ttft1 = "; ".join(
        (f"{b} " if setup.auto else "")
        + ", ".join(
            f"{layout_words(t, e, p, d)} {ms(v)} ms"
            for t, e, p, d, v in zip(
                rows.tp, rows.ep, rows.pp, rows.ranks(), g.ttft_ms[:, 0], strict=True
            )
        )
        for b, g in sweep.grids.items()
    )
    skip = ""
    if sweep.skipped:
        model = setup.model
        skip = (
            f"; TP {','.join(map(str, sweep.skipped))} skipped (incompatible with "
            f"{model.num_attention_heads} attention / {model.num_key_value_heads} KV heads)"
        )
    backends = setup.backends
    on = f" x {len(backends)} backends ({', '.join(backends)})" if setup.auto else ""
    return (
        f"prefill: {len(sweep.tps)} TP candidates on {setup.gpu.id} "
        f"(TP {','.join(map(str, sweep.tps))}) for {setup.model.id}{on}, batch-1 TTFT at isl "
        f"{setup.workload.isl}: {ttft1}{skip}"
    )


def sweep_decode(setup: Setup, sweep: Sweep) -> dict[str, list[Candidate]]:
    """Every fitting disaggregated combination per backend, over the unpipelined layouts; under
    the default ranking (`_default_ranking`) only those it could rank first or publish on a front
    are made (`sim._search.worth_ranking`), in lists that count them all."""
    rows = sweep.layouts
    tps = [t for t, p in zip(rows.tp, rows.pp, strict=True) if p == 1]
    eps = [e for e, p in zip(rows.ep, rows.pp, strict=True) if p == 1]
    dps = [d for d, p in zip(rows.ranks(), rows.pp, strict=True) if p == 1]
    return {
        b: disagg_candidates(
            setup.model,
            setup.gpu,
            b,
            tps,
            setup.sla,
            setup.workload,
            setup.total_gpus,
            setup.vram_mb,
            eps,
            dps,
            band=error_band(setup.model, b, "static"),  # disaggregated workers: static mode
            dep_band=error_band(setup.model, b, "static", dep=True),
            default_ranking=_default_ranking(setup),
        )
        for b in setup.backends
    }


def _default_ranking(setup: Setup) -> bool:
    """Whether the disaggregated candidates are only ranked by the default rule and Pareto
    fronts: no optimizationType, no load to match, no planner (its autoscale start picks engines
    by other figures), not thorough (its shortlist simulates them)."""
    spec, workload = setup.spec, setup.workload
    return (
        setup.sla.optimization_type is None
        and workload.request_rate is None
        and workload.concurrency is None
        and (spec.features is None or spec.features.planner is None)
        and spec.search_strategy is SearchStrategy.RAPID
    )


def decode_message(setup: Setup, sweep: Sweep, splits: Mapping[str, list[Candidate]]) -> str:
    """How many aggregated points and disaggregated combinations the search will rank."""
    points = sum(int(g.fits.sum()) for g in sweep.grids.values())
    combos = sum(evaluated_count(v) for v in splits.values())
    return (
        f"decode: {points} aggregated (TP, batch) points up to KV capacity; {combos} "
        "disaggregated (prefill TP, decode TP, batch) combinations, prefill and decode workers "
        f"rate-matched within {setup.total_gpus} GPUs"
    )
