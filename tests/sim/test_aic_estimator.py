"""`estimate(..., estimator="aic")`: AIConfigurator as an optional alternative estimator."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sim import EstimateError, estimate

HAVE_AIC = importlib.util.find_spec("aiconfigurator_core") is not None


@pytest.mark.skipif(HAVE_AIC, reason="AIConfigurator is installed here")
def test_without_the_extra_the_error_says_how_to_install_it() -> None:
    with pytest.raises(EstimateError) as err:
        estimate("Qwen/Qwen3-8B", "h200_sxm", estimator="aic")
    assert err.value.argument == "estimator"
    assert "pip install 'dgdr[aic]'" in str(err.value)


def test_an_unknown_estimator_lists_the_valid_ones() -> None:
    with pytest.raises(EstimateError) as err:
        estimate("Qwen/Qwen3-8B", "h200_sxm", estimator="magic")
    assert "builtin, aic" in str(err.value)


@pytest.mark.skipif(
    not HAVE_AIC, reason="AIConfigurator is not installed (uv run --group calibration pytest ...)"
)
@pytest.mark.parametrize("mode", ["static", "agg"])
def test_aic_figures_replace_the_latencies_and_keep_the_memory_model(mode: str) -> None:
    ours = estimate("Qwen/Qwen3-8B", "h200_sxm", "vllm", tp=2, batch_size=8, mode=mode)
    aic = estimate(
        "Qwen/Qwen3-8B", "h200_sxm", "vllm", tp=2, batch_size=8, mode=mode, estimator="aic"
    )
    assert aic.ttft_ms > 0 and aic.itl_ms > 0 and aic.ttft_ms != ours.ttft_ms
    assert aic.memory_gb == ours.memory_gb and aic.fits == ours.fits
    assert aic.request_latency_ms == pytest.approx(aic.ttft_ms + 999 * aic.itl_ms)
    # the calibrated model is within the fidelity bench's p90 of AIC here
    assert ours.itl_ms == pytest.approx(aic.itl_ms, rel=0.35)


def test_every_catalog_gpu_maps_to_an_aic_system_or_is_refused_by_name() -> None:
    from sim._aic import AIC_SYSTEM_NAMES, aic_system
    from sim._catalog import gpus

    assert aic_system("gb200_sxm") == "gb200"  # AIC names Grace-Blackwell without form factor
    assert aic_system("h200_sxm") == "h200_sxm"
    mapped = {}
    for gpu in gpus():
        try:
            mapped[gpu] = aic_system(gpu)
        except EstimateError as err:
            assert err.argument == "gpu_sku" and "gb200_sxm" in str(err), err
    assert set(mapped.values()) <= set(AIC_SYSTEM_NAMES)
    assert {"gb200_sxm", "b200_sxm", "h200_sxm", "h100_sxm", "a100_sxm", "l40s"} <= set(mapped)


@pytest.mark.skipif(not HAVE_AIC, reason="AIConfigurator is not installed")
def test_the_system_tables_are_aics_own() -> None:
    from aiconfigurator_core.sdk.perf_database import get_supported_databases

    from sim._aic import AIC_SILICON_SYSTEMS, AIC_SYSTEM_NAMES

    spec = importlib.util.find_spec("aiconfigurator_core")
    assert spec is not None and spec.origin is not None
    systems = Path(spec.origin).parent / "systems"
    assert set(AIC_SYSTEM_NAMES) == {p.stem for p in systems.glob("*.yaml")} - {
        "attention_lane_defaults",
        "perf_data_reuse_manifest",
        "query_versions",
    }
    assert set(AIC_SILICON_SYSTEMS) == set(get_supported_databases()) - {
        "rtx_pro_6000_server",
        "b60",
    }


@pytest.mark.skipif(not HAVE_AIC, reason="AIConfigurator is not installed")
def test_aic_estimates_a_gb200_point() -> None:
    # the catalog id gb200_sxm is AIC's system gb200; asking AIC for "gb200_sxm" found no database
    e = estimate("Qwen/Qwen3-8B", "gb200_sxm", "trtllm", batch_size=8, estimator="aic")
    assert e.ttft_ms > 0 and e.itl_ms > 0 and e.gpu_sku == "gb200_sxm"
