"""`estimate(..., estimator="aic")`: AIConfigurator as an optional alternative estimator."""

from __future__ import annotations

import importlib.util

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
