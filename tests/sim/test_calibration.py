import dataclasses
import json
from importlib import resources

import pytest

import sim
from dgdr.domain.spec import GpuSku
from sim import _estimate
from sim._catalog import find_gpu
from sim._hfconfig import find_model


def _doc() -> dict[str, object]:
    text = (resources.files("sim") / "data" / "calibration.json").read_text()
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


def test_calibration_ships_with_provenance_and_loads_at_import() -> None:
    doc = _doc()
    prov = doc["provenance"]
    assert isinstance(prov, dict)
    assert "aiconfigurator-core 0.12.0" in prov["aic_version"]
    assert prov["date"] and prov["grid"]["points_compared"] > 1000
    assert "error_after" in prov and "error_before" in prov
    band = doc["error_band"]
    assert isinstance(band, dict)
    for group in ("all", "dense", "moe", "mla-moe", "llama3", "qwen3-moe"):
        for mode in ("static", "agg"):
            entry = band[f"{group}/{mode}"]
            assert entry["n"] > 0
            for metric in ("ttft", "itl"):
                q = entry[metric]
                assert q["p10"] <= q["median"] <= q["p90"], (group, mode, metric)
    assert "0.12.0" in sim.calibration_source()
    profiles = doc["profiles"]
    assert isinstance(profiles, dict)
    for backend in sim.BACKENDS:
        assert f"{backend}/*" in profiles
        assert (backend, "*") in _estimate.CALIBRATED
    assert ("trtllm", "h200_sxm") in _estimate.CALIBRATED


def test_calibrated_efficiencies_are_physical() -> None:
    for profile in _estimate.CALIBRATED.values():
        for eff in (*profile.effs(decode=True), *profile.effs(decode=False)):
            assert 0.0 < eff <= 1.0, profile
        assert min(*profile.overheads(True), *profile.overheads(False)) >= 0.0
        assert profile.comm_scale > 0 and profile.agg_queue_base >= 1.0
        assert profile.moe_eff is None or 0.0 < profile.moe_eff <= 1.0
        assert profile.mla_eff is None or 0.0 < profile.mla_eff <= 1.0
        assert min(profile.mla_layer_overhead_ms, profile.moe_layer_overhead_ms) >= 0.0


def test_every_gpu_of_the_grid_has_its_fit_with_mla_fields() -> None:
    # GB200 came into the grid once AIC was asked for its system gb200; H100 holds no DeepSeek-V3
    # rows, so its MLA fields are its backend's median over the GPUs that do
    for backend in sim.BACKENDS:
        for gpu in ("h100_sxm", "h200_sxm", "b200_sxm", "gb200_sxm"):
            assert _estimate.CALIBRATED[(backend, gpu)].mla_eff is not None, (backend, gpu)


@pytest.mark.parametrize("field", ["fp8_eff", "mla_eff", "mla_layer_overhead_ms"])
def test_fields_no_h100_row_constrains_are_the_median_of_the_gpus_that_have_them(
    field: str,
) -> None:
    """No fp8 (or MLA) checkpoint fits one H100 node, so H100's train rows say nothing about
    these; left to the optimizer, fp8_eff drifted 0.82 -> 1.0 between two refits and moved
    DeepSeek-V3's H100 pipelined throughput 7% (bench/calibrate.py `ONLY_FOR`)."""
    for backend in sim.BACKENDS:
        donors = [
            getattr(_estimate.CALIBRATED[(backend, gpu)], field)
            for gpu in ("h200_sxm", "b200_sxm", "gb200_sxm")
        ]
        h100 = getattr(_estimate.CALIBRATED[(backend, "h100_sxm")], field)
        assert h100 == pytest.approx(sorted(donors)[1], abs=1e-5), (backend, donors, h100)


def test_profile_lookup_falls_back_from_gpu_to_backend_to_assumption() -> None:
    assert (
        _estimate.backend_profile("vllm", "h100_sxm") == _estimate.CALIBRATED[("vllm", "h100_sxm")]
    )
    assert _estimate.backend_profile("vllm", "a100_sxm") == _estimate.CALIBRATED[("vllm", "*")]
    saved = dict(_estimate.CALIBRATED)
    try:
        _estimate.CALIBRATED.clear()
        assert _estimate.backend_profile("vllm", "h100_sxm") == sim.BACKENDS["vllm"]
    finally:
        _estimate.CALIBRATED.update(saved)


@pytest.mark.parametrize("sku", ["h100_sxm", "h200_sxm", "b200_sxm", "a100_sxm", "l40s"])
@pytest.mark.parametrize("backend", sorted(sim.BACKENDS))
def test_roofline_limits_hold_with_calibrated_constants(sku: str, backend: str) -> None:
    model, gpu = find_model("Qwen/Qwen3-32B"), find_gpu(GpuSku(sku))
    tp = 4 if gpu.memory_gb < 70 else 1
    e = sim.estimate(model.id, sku, backend, tp=tp, batch_size=1, isl=2000, osl=100)
    weights_ms = e.weights_gb * 1e9 / (gpu.memory_bandwidth_gbps * 1e9) * 1e3
    assert e.itl_ms >= weights_ms
    flops = 2.0 * model.active_params * 2000 / tp
    assert e.ttft_ms >= flops / (gpu.dense_bf16_tflops * 1e12) * 1e3


def test_agg_ttft_queueing_grows_with_concurrency() -> None:
    ttft = [
        sim.estimate("Qwen/Qwen3-8B", "h200_sxm", tp=1, batch_size=b, mode="agg").ttft_ms
        for b in (1, 8, 32, 128)
    ]
    assert ttft == sorted(ttft), ttft


def test_unset_profile_fields_fall_back_to_the_coarse_ones() -> None:
    base = sim.BACKENDS["trtllm"]
    assert dataclasses.replace(base, attn_eff=0.3).effs(decode=False)[1] == 0.3
    assert base.effs(decode=False) == (
        base.compute_eff,
        base.compute_eff,
        base.memory_eff,
        base.memory_eff,
    )
