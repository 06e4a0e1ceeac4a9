"""The profile's search and pick: the search per backend over its sweeps, then the config to deploy
by the spec's mode, and the SelectingConfig report.

Owns the modes, and the estimator's error band per backend (`sim._margin`: the agg band for
aggregated configs, the static one for disaggregated workers, the DEP bands for DEP workers), which
`search` uses to prefer configs that keep the SLA with margin; the margin note says how much the
pick has, against the band its TTFT and ITL were checked at. Default and load-match: the search's own pick (`sim._search.rank_key`, steered by
`sla.optimizationType`, which every ranking here passes on), and under `backend: auto` the backend
whose pick ranks first (ties: `AUTO_BACKENDS` order). Autoscale
(`features.planner`): Dynamo's autoscale start, one prefill + one decode worker per backend
(`autoscale_pick`), ranked the same way; without any disaggregated config the search's pick stands
and a note says the Planner is left out. Mocker (`features.mocker`): Dynamo's mocker is
disaggregated, so the best disaggregated config of any searched backend. Thorough without a
cluster: as Dynamo's thorough, disaggregated configurations only: the shortlist of the backend's
disaggregated configs is simulated request by request and the best as measured is picked and
judged as measured (not with autoscale or the mocker, whose disaggregated shapes are fixed; DEP
configs are not shortlisted: the request-level simulation models TP workers). For a MoE model a
note says whether DEP (attention DP x EP, `sim._dep`) was picked and how it compares with the best
config without it (`sim._message.dep_note`). The Pareto front reported:
the winning backend's, under `auto` the front over every backend's SLA-meeting configs (all
configs when none meets it), under thorough the front of the disaggregated configs.

Failure semantics: raises `ProfilingError("SelectingConfig", ...)` when no backend can fit the
model (the first backend's error, with its numbers), and when the mocker or searchStrategy
thorough is asked for but no disaggregated config fits the budget (Dynamo's thorough produces no
DGD then). An unmet SLA is not an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from dgdr.domain.errors import ProfilingError
from dgdr.domain.spec import SearchStrategy

from ._margin import error_band
from ._message import auto_note, dep_note, margin_note, num, objective_note, shape
from ._planner import autoscale_pick
from ._resolve import Setup
from ._search import Candidate, Pick, best_ranked, pareto_front, rank_key, search
from ._sweep import Sweep
from ._thorough import measured_verdict, simulate_shortlist


@dataclass(frozen=True)
class Searched:
    picks: Mapping[str, Pick]  # per backend that can fit the model
    splits: Mapping[str, list[Candidate]]  # disaggregated candidates per backend
    ranked: tuple[str, ...]  # the backends of `picks`, best pick first
    some_unfit: bool  # a searched backend cannot fit the model


@dataclass(frozen=True)
class Selection:
    backend: str
    pick: Pick  # the search of `backend`
    chosen: Candidate  # the config to deploy
    ranked: tuple[str, ...]  # backends as the mode ranks them (autoscale: those that can)
    autoscaled: bool  # the planner's autoscale start, one prefill + one decode worker
    front: tuple[Candidate, ...]  # the Pareto front found (`chosen` may sit off it)
    simulated: str  # the thorough shortlist's summary for the report, "" when not simulated
    notes: tuple[str, ...] = ()
    # Thorough: (meets the SLA as measured, the measured verdict in words); None otherwise.
    measured: tuple[bool, str] | None = None
    auto_note: str | None = None  # which backend `auto` picked and why


def search_backends(setup: Setup, sweep: Sweep, splits: Mapping[str, list[Candidate]]) -> Searched:
    """`search` per backend, with the estimator's error band (`sim._margin`: the agg band for
    aggregated configs, the DEP one for DEP rows; the disaggregated ones got the static bands'
    `edge_ratio` when `sim._sweep.sweep_decode` made them); the first backend's error when none
    can fit the model."""
    picks: dict[str, Pick] = {}
    first_error: ProfilingError | None = None
    for b, grid in sweep.grids.items():
        try:
            picks[b] = search(
                setup.model,
                setup.gpu,
                grid,
                setup.sla,
                setup.workload,
                setup.total_gpus,
                setup.vram_mb,
                backend=b,
                disagg=splits[b],
                band=error_band(setup.model, b, "agg"),
                dep_band=error_band(setup.model, b, "agg", dep=True),
            )
        except ProfilingError as err:
            first_error = first_error or err
    if not picks:
        assert first_error is not None
        raise first_error
    objective = setup.sla.optimization_type
    ranked = tuple(
        sorted(picks, key=lambda b: rank_key(picks[b].chosen, objective))
    )  # ties: stable
    return Searched(picks, splits, ranked, some_unfit=first_error is not None)


def _autoscaled(
    setup: Setup, searched: Searched
) -> tuple[dict[str, Candidate], tuple[str, ...], list[str]]:
    """(autoscale start per backend, backends ranked by it, notes); nothing without the planner."""
    features = setup.spec.features
    if features is None or features.planner is None:
        return {}, searched.ranked, []
    starts = {
        b: a
        for b in searched.ranked
        if (a := autoscale_pick(searched.splits[b], setup.workload, setup.sla))
    }
    if starts:
        objective = setup.sla.optimization_type
        return starts, tuple(sorted(starts, key=lambda b: rank_key(starts[b], objective))), []
    note = (
        f"features.planner needs a disaggregated deployment and none fits {setup.total_gpus} "
        f"{setup.gpu.id} GPUs: deployed without the Planner"
    )
    return {}, searched.ranked, [note]


def _mocker_pick(setup: Setup, searched: Searched, ranked: tuple[str, ...]) -> Candidate:
    split_all = [x for b in ranked for x in searched.splits[b]]
    if not split_all:
        raise ProfilingError(
            "SelectingConfig",
            f"features.mocker deploys Dynamo's disaggregated mocker, and no disaggregated "
            f"config fits {setup.total_gpus} {setup.gpu.id} GPU(s): set spec.hardware.totalGpus "
            "to 2 or more",
        )
    return best_ranked(split_all, setup.sla.optimization_type)


def _thorough(
    setup: Setup, splits: list[Candidate]
) -> tuple[Candidate, str, str, tuple[bool, str]]:
    """(config picked, shortlist summary, note, measured verdict): the best disaggregated config
    as simulated (as Dynamo's thorough, only disaggregated configs are profiled); none fitting is
    an error."""
    if not splits:
        raise ProfilingError(
            "SelectingConfig",
            f"searchStrategy thorough profiles disaggregated configurations only (as Dynamo's), "
            f"and no prefill + decode pair of {setup.model.id} fits {setup.total_gpus} "
            f"{setup.gpu.id} GPU(s): give spec.hardware.totalGpus room for a prefill and a "
            "decode worker, or use searchStrategy rapid",
        )
    measured = simulate_shortlist(splits, setup.model, setup.gpu, setup.workload, setup.sla)
    best = measured[0]
    simulated = (
        f"; thorough: {len(measured)} shortlisted disaggregated configs simulated request by "
        f"request ({best.result.requests}+ requests each): "
        + "; ".join(m.summary() for m in measured)
    )
    c = best.candidate
    note = (
        f"thorough: picked and judged as measured in the request-level simulation, "
        f"{best.tokens_per_s_per_gpu:.0f} tok/s/GPU (the roofline estimated TTFT "
        f"{num(c.ttft_ms)} ms, ITL {num(c.itl_ms)} ms: SLA {'met' if c.meets_sla else 'missed'})"
    )
    verdict = measured_verdict(measured, setup.sla, setup.workload.osl)
    return c, simulated, note, (best.meets_sla, verdict)


def select(setup: Setup, searched: Searched) -> Selection:
    """The config to deploy by the spec's mode (see the module)."""
    starts, ranked, notes = _autoscaled(setup, searched)
    backend = ranked[0]
    pick = searched.picks[backend]
    chosen = starts.get(backend) or pick.chosen
    mocker = setup.spec.mocker_enabled
    if mocker and chosen.mode != "disagg":
        chosen = _mocker_pick(setup, searched, ranked)
        backend, pick = chosen.backend, searched.picks[chosen.backend]
        notes.append(
            "features.mocker: the best disaggregated config was picked (the mocker is disagg)"
        )
    simulated = ""
    measured: tuple[bool, str] | None = None
    pool = [p for b in ranked for p in searched.picks[b].pareto if p.meets_sla or not pick.met]
    if pick.chosen.has_margin:  # as `search`: the front of the configs with margin
        pool = [p for p in pool if p.has_margin]
    front = pareto_front(pool) if setup.auto else pick.pareto
    if setup.spec.search_strategy is SearchStrategy.THOROUGH:
        # The request-level simulation models TP workers only: DEP configs are not shortlisted.
        splits = [c for c in searched.splits[backend] if c.dp == 1 and c.prefill_dp == 1]
        front = pareto_front([c for c in splits if c.meets_sla] or splits)
        if not starts and not mocker:
            chosen, simulated, note, measured = _thorough(setup, splits)
            notes.append(note)
    if (objective := setup.sla.optimization_type) is not None:
        met = chosen.meets_sla if measured is None else measured[0]
        notes.append(objective_note(objective, met))
    if setup.model.is_moe and measured is None:
        notes.append(dep_note(chosen, _dep_pool(searched, backend), objective))
    if measured is None and (margin := _margin_note(setup, chosen)):
        notes.insert(0, margin)  # with the SLA verdict it qualifies, before the mode's notes
    return Selection(
        backend=backend,
        pick=pick,
        chosen=chosen,
        ranked=ranked,
        autoscaled=bool(starts),
        front=tuple(front),
        simulated=simulated,
        notes=tuple(notes),
        measured=measured,
        auto_note=(
            auto_note(searched.picks, ranked, setup.backends, skipped_backends=searched.some_unfit)
            if setup.auto
            else None
        ),
    )


def _dep_pool(searched: Searched, backend: str) -> list[Candidate]:
    """The configs `dep_note` compares: the SLA-meeting ones (the best agg config per layout and
    the disaggregated ones) when they include DEP and non-DEP configs, else every config."""
    pick, splits = searched.picks[backend], searched.splits[backend]
    met = [*pick.per_tp.values(), *(c for c in splits if c.meets_sla)]
    kinds = {c.dp > 1 or c.prefill_dp > 1 for c in met}
    return met if kinds == {True, False} else [*pick.candidates, *splits]


def _margin_note(setup: Setup, chosen: Candidate) -> str | None:
    """The pick's margin against the band it was checked at: TTFT at its prefill worker's
    (DEP or not), ITL at its decode worker's, as `edge_ratio` was worked out."""
    disagg = chosen.mode == "disagg"
    mode = "static" if disagg else "agg"
    prefill_dep = (chosen.prefill_dp if disagg else chosen.dp) > 1
    ttft_band = error_band(setup.model, chosen.backend, mode, dep=prefill_dep)
    band = error_band(setup.model, chosen.backend, mode, dep=chosen.dp > 1)
    if ttft_band != band:
        band = replace(band, ttft=ttft_band.ttft, dep=True)
    return margin_note(chosen, setup.sla, band, chosen.backend)


def selecting_message(setup: Setup, searched: Searched, selection: Selection) -> str:
    """What was selected, out of how many configs, and the thorough shortlist when simulated."""
    c = selection.chosen
    picks = searched.picks.values()
    evaluated = sum(p.evaluated for p in picks)
    per_tp = sum(len(p.per_tp) for p in picks)
    sizes = "(TP, backend) pairs" if setup.auto else "TP sizes"
    backend = f"{selection.backend} " if setup.auto else ""
    per_worker = "decode " if c.mode == "disagg" else ""
    return (
        f"selected {backend}{shape(c)} ({c.gpus} of {setup.total_gpus} GPUs), batch {c.batch} "
        f"per {per_worker}worker, {num(c.tokens_per_s_per_gpu)} tok/s/GPU out of {evaluated} "
        f"configs ({per_tp} {sizes} meet the SLA); {len(selection.front)} Pareto points"
        f"{selection.simulated}"
    )
