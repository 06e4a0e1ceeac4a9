"""Picks keep the SLA with margin: among SLA-meeting configs those that still meet it at the
estimator's pessimistic edge (`sim._margin`'s error band) win, the nominal ranking stands when none
does, and the message says the pick's margin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dgdr.domain.hardware import ResolvedHardware
from dgdr.domain.spec import OptimizationType
from sim import _margin as margin
from sim import profile
from sim._margin import ErrorBand, error_band, family
from sim._resolve import resolve
from sim._search import Candidate, Pick, rank_key, search
from sim._sweep import sweep_prefill
from tests.sim.test_search_objective import candidate

ROOT = Path(__file__).resolve().parents[2]

H100x8 = ResolvedHardware.from_dict({"gpuSku": "h100_sxm", "totalGpus": 8, "numGpusPerNode": 8})
SPEC: dict[str, Any] = {
    "model": "Qwen/Qwen3-8B",
    "backend": "trtllm",
    "workload": {"isl": 1000, "osl": 1000},
}


def _search(
    spec: dict[str, Any],
    band: ErrorBand | None,
    hardware: ResolvedHardware = H100x8,
    dep_band: ErrorBand | None = None,
) -> Pick:
    setup = resolve(spec, hardware)
    grid = sweep_prefill(setup).grids["trtllm"]
    return search(
        setup.model,
        setup.gpu,
        grid,
        setup.sla,
        setup.workload,
        setup.total_gpus,
        backend="trtllm",
        band=band,
        dep_band=dep_band,
    )


def _selected(result: Any) -> dict[str, Any]:
    chosen: dict[str, Any] = next(p["config"] for p in result.pareto if p["config"]["selected"])
    return chosen


def _at_edge(c: dict[str, Any], band: ErrorBand) -> tuple[float, float]:
    ttft, itl = band.edge(c["ttftMs"], c["itlMs"])
    return float(ttft), float(itl)


def _tight_itl_spec() -> tuple[dict[str, Any], Candidate, ErrorBand]:
    """A spec whose nominal best (aggregated, no band) meets its ITL target by less than the
    band: the target sits half a band above that config's ITL."""
    band = error_band(resolve(SPEC, H100x8).model, "trtllm", "agg")
    assert band.itl > 0.02, "the calibration's band for dense trtllm agg ITL is needed here"
    loose = _search({**SPEC, "sla": {"ttft": 5000.0, "itl": 20.0}}, None).chosen
    itl = round(loose.itl_ms * (1.0 + band.itl / 2.0), 2)
    spec = {**SPEC, "sla": {"ttft": 5000.0, "itl": itl}}
    nominal = _search(spec, None).chosen
    assert nominal.meets_sla and nominal.itl_ms * (1.0 + band.itl) > itl  # within the band
    return spec, nominal, band


def test_a_nominal_best_within_the_band_loses_to_a_config_with_margin() -> None:
    spec, nominal, band = _tight_itl_spec()
    result = profile(spec, H100x8)
    chosen = _selected(result)
    ttft, itl = _at_edge(chosen, band)
    assert chosen["meetsSla"] and result.sla_verdict == "met"
    assert ttft <= spec["sla"]["ttft"] and itl <= spec["sla"]["itl"]
    assert chosen["tokensPerSecondPerGpu"] < nominal.tokens_per_s_per_gpu
    assert "the SLA holds at that edge" in result.message
    pct = f"ITL +{band.itl * 100:.0f}%"
    quantile = json.loads((ROOT / "sim" / "data" / "error_band.json").read_text())["provenance"]
    words = f"p{quantile['quantile']} error for {family(resolve(spec, H100x8).model)} models"
    assert f"{words} on trtllm" in result.message
    assert pct in result.message
    # The published front holds the pick: it is the front of the configs with margin.
    assert all(
        _at_edge(p["config"], band)[1] <= spec["sla"]["itl"]
        for p in result.pareto
        if p["config"]["mode"] == "agg"
    )


def test_without_any_config_with_margin_the_nominal_best_is_picked_and_the_message_says_so() -> (
    None
):
    band = error_band(resolve(SPEC, H100x8).model, "trtllm", "agg")
    fastest = min(
        (c for c in _search({**SPEC, "sla": {"ttft": 5000.0, "itl": 50.0}}, None).candidates),
        key=lambda c: c.itl_ms,
    )
    # Only the very fastest config meets this ITL target, and only as estimated.
    itl = round(fastest.itl_ms * (1.0 + band.itl / 4.0), 3)
    spec = {**SPEC, "sla": {"ttft": 5000.0, "itl": itl}}
    nominal = _search(spec, None).chosen
    result = profile(spec, H100x8)
    chosen = _selected(result)
    assert result.sla_verdict == "met"
    assert chosen["itlMs"] == round(nominal.itl_ms, 3)
    assert "no config meets the SLA at that edge: picked on the estimate itself" in result.message


def test_a_missed_sla_has_no_margin_note() -> None:
    result = profile({**SPEC, "sla": {"ttft": 1.0, "itl": 0.5}}, H100x8)
    assert result.sla_verdict == "missed"
    assert "margin:" not in result.message


def test_margin_ranks_between_meeting_and_missing_the_sla_whatever_the_objective() -> None:
    margin = candidate(edge_ratio=0.95, tokens_per_s_per_gpu=10.0, e2e_ms=9000.0)
    nominal = candidate(edge_ratio=1.2, tokens_per_s_per_gpu=9000.0, e2e_ms=100.0)
    miss = candidate(meets_sla=False, worst_ratio=1.01, edge_ratio=1.3, tokens_per_s_per_gpu=9e4)
    for objective in (None, *OptimizationType):
        ranked = sorted([miss, nominal, margin], key=lambda c: rank_key(c, objective))
        assert ranked == [margin, nominal, miss]


def test_a_family_or_backend_the_band_file_lacks_takes_the_pooled_band() -> None:
    model = resolve(SPEC, H100x8).model
    pooled = error_band(model, "no-such-backend", "agg")
    assert pooled == error_band(model, "*", "agg")
    assert pooled.family == "dense"


# --- DEP workers: a band of their own --------------------------------------------------------

B200x8 = ResolvedHardware.from_dict({"gpuSku": "b200_sxm", "totalGpus": 8, "numGpusPerNode": 8})
DEEPSEEK: dict[str, Any] = {
    "model": "deepseek-ai/DeepSeek-V3",
    "backend": "trtllm",
    "workload": {"isl": 1000, "osl": 1000},
}


def test_dep_workers_have_a_band_of_their_own_measured_on_dep_points() -> None:
    model = resolve(DEEPSEEK, B200x8).model
    dep = error_band(model, "trtllm", "agg", dep=True)
    tp = error_band(model, "trtllm", "agg")
    assert dep.dep and not tp.dep and dep.family == tp.family == "mla-moe"
    assert dep != tp
    for backend in ("sglang", "vllm"):  # measured on their own DEP points
        assert error_band(model, backend, "agg", dep=True).dep
    # A backend without DEP points takes the pooled DEP band, not its TP band.
    pooled = error_band(model, "*", "agg", dep=True)
    assert error_band(model, "no-such-backend", "agg", dep=True) == pooled
    assert pooled.dep


def _deepseek_search(sla: dict[str, float], dep_band: ErrorBand | None) -> Pick:
    spec = {**DEEPSEEK, "sla": sla}
    band = error_band(resolve(spec, B200x8).model, "trtllm", "agg")
    return _search(spec, band, B200x8, dep_band)


def test_the_dep_band_prices_only_the_dep_rows() -> None:
    sla = {"ttft": 2000.0, "itl": 40.0}
    same = _deepseek_search(sla, None).candidates
    wide = _deepseek_search(sla, ErrorBand(ttft=0.0, itl=0.45, family="mla-moe", dep=True))
    assert any(c.dp > 1 for c in same) and any(c.dp == 1 for c in same)
    by_key = {(c.tp, c.dp, c.batch): c for c in same}
    changed = 0
    for c in wide.candidates:
        before = by_key[(c.tp, c.dp, c.batch)]
        if c.dp == 1:
            assert c.edge_ratio == before.edge_ratio
        else:
            assert c.edge_ratio is not None and before.edge_ratio is not None
            assert c.edge_ratio >= before.edge_ratio
            changed += c.edge_ratio > before.edge_ratio
    assert changed, "a wider DEP band moved no DEP row's edge"


def test_dep_rows_of_a_band_too_wide_to_pick_by_claim_no_margin() -> None:
    # Next to TP rows checked at a usable band, DEP rows whose band is beyond WIDEST_USABLE are
    # not waved through as if they had margin: their error is not known well enough.
    sla = {"ttft": 2000.0, "itl": 40.0}
    wide = ErrorBand(ttft=0.8, itl=0.1, family="mla-moe", dep=True)
    assert not wide.usable
    pick = _deepseek_search(sla, wide)
    dep = [c for c in pick.candidates if c.dp > 1]
    assert any(c.meets_sla for c in dep)
    assert not any(c.has_margin for c in dep)
    assert any(c.has_margin for c in pick.candidates if c.dp == 1)
    assert pick.chosen.dp == 1 and pick.chosen.has_margin


def test_a_dep_pick_keeps_the_sla_at_the_dep_band_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 16 x B200 at a loose ITL: DEP 8 workers at a large batch win, their batch bounded by the ITL
    # target at the DEP band's edge, not at the TP band's. The DEP band is set here, so the test
    # does not hang on what the calibration measured.
    b200x16 = ResolvedHardware.from_dict(
        {"gpuSku": "b200_sxm", "totalGpus": 16, "numGpusPerNode": 8}
    )
    sla = {"ttft": 713.0, "itl": 48.8}
    spec = {**DEEPSEEK, "sla": sla}
    tp_band = error_band(resolve(spec, b200x16).model, "trtllm", "agg")
    band = ErrorBand(ttft=tp_band.ttft + 0.02, itl=tp_band.itl + 0.08, family="mla-moe", dep=True)
    at_tp_band = _search(spec, tp_band, b200x16, None).chosen
    assert at_tp_band.dp > 1
    assert at_tp_band.itl_ms * (1.0 + band.itl) > sla["itl"], "the DEP band must bind here"
    monkeypatch.setitem(margin.BANDS, ("trtllm/dep-mla-moe", "agg"), band)
    result = profile(spec, b200x16)
    chosen = _selected(result)
    assert int(chosen.get("attentionDataParallelSize") or 1) > 1, result.message
    assert "the SLA holds at that edge" in result.message
    ttft, itl = _at_edge(chosen, band)
    assert ttft <= sla["ttft"] and itl <= sla["itl"]
    assert "mla-moe models' DEP workers on trtllm (aggregated serving) is TTFT " in result.message
    assert f"ITL +{band.itl * 100:.0f}%" in result.message
