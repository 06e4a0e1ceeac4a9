"""`dgdr estimate`: one configuration, offline, through the CLI."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from dgdr.cli import app

runner = CliRunner()


def test_estimate_prints_the_figures_as_json() -> None:
    result = runner.invoke(
        app,
        [
            "estimate",
            "--model",
            "Qwen/Qwen3-32B",
            "--gpu",
            "h100_sxm",
            "--tp",
            "2",
            "--batch-size",
            "8",
            "-o",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["num_gpus"] == 2 and data["fits"] is True
    assert data["ttft_ms"] > 0 and data["itl_ms"] > 0 and data["tokens_per_s_per_gpu"] > 0


def test_estimate_names_a_bad_argument_and_exits_2() -> None:
    result = runner.invoke(
        app, ["estimate", "--model", "Qwen/Qwen3-32B", "--gpu", "h100_sxm", "--tp", "3"]
    )
    assert result.exit_code == 2
    assert "tp" in result.output and "Traceback" not in result.output
