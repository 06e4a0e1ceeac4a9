"""`bench/moe_kernel_table`: what counts as a measured MoE kernel regression and what is kept of it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import moe_kernel_table as table  # noqa: E402

# AIC 0.12, H100, trtllm 1.3.0rc20, bf16, Qwen3-30B-A3B's shape, EP 4, power law 1.2
TOKENS = np.array([128, 160, 192, 256, 320, 384, 512, 768], dtype=np.float64)
LATENCY = np.array([0.132, 0.137, 0.139, 0.508, 0.889, 0.746, 0.159, 0.172])


def test_excess_is_over_the_least_latency_at_any_larger_count() -> None:
    excess = table.excess_curve(LATENCY)
    assert excess.tolist() == pytest.approx([0, 0, 0, 0.349, 0.730, 0.587, 0, 0], abs=1e-3)


def test_a_smooth_curve_has_no_excess() -> None:
    smooth = np.array([0.10, 0.11, 0.12, 0.13, 0.15, 0.16, 0.18, 0.21])
    assert not any(table.significant_excess(TOKENS, smooth).values())


def test_small_dips_are_noise() -> None:
    """A measurement 5% over a later one is below MIN_RELATIVE; 0.005 ms is below MIN_EXCESS_MS."""
    noisy = np.array([0.100, 0.105, 0.100, 0.13, 0.15, 0.16, 0.18, 0.21])
    tiny = np.array([0.010, 0.016, 0.011, 0.013, 0.015, 0.016, 0.018, 0.021])
    assert not any(table.significant_excess(TOKENS, noisy).values())
    assert not any(table.significant_excess(TOKENS, tiny).values())


def test_kept_points_are_the_regression_and_its_zero_neighbours() -> None:
    points = table.least_over_sources([table.significant_excess(TOKENS, LATENCY)])
    assert [t for t, _ in points] == [192, 256, 320, 384, 512]
    assert points[0][1] == 0 and points[-1][1] == 0
    assert all(e > 0.3 for _, e in points[1:-1])


def test_a_regression_counts_only_when_every_kernel_source_shows_it() -> None:
    other = np.array([0.130, 0.135, 0.138, 0.145, 0.150, 0.152, 0.160, 0.170])
    one = table.significant_excess(TOKENS, LATENCY)
    assert table.least_over_sources([one, table.significant_excess(TOKENS, other)]) == []
    half = table.significant_excess(TOKENS, np.where(TOKENS == 320, 0.6, other))
    assert [t for t, e in table.least_over_sources([one, half]) if e > 0] == [320]
