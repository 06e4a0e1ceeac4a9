"""The offline commands through the CLI: `dgdr estimate` and `dgdr profile`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dgdr.cli.main import app

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


ROOT = Path(__file__).resolve().parents[3]


def test_profile_a_manifest_offline_with_a_plot(tmp_path: Path) -> None:
    plot = tmp_path / "pareto.png"
    result = runner.invoke(
        app,
        [
            "profile",
            "-f",
            str(ROOT / "examples/qwen3-0.6b.yaml"),
            "-o",
            "json",
            "--plot",
            str(plot),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["selected"]["meetsSla"] is True
    assert report["selected"]["totalGpus"] <= 8
    assert report["dgd"]["metadata"]["name"] == "qwen3-0-6b-dgd"
    assert [s["subPhase"] for s in report["steps"]][-1] == "GeneratingDGD"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_profile_a_bare_spec_as_a_table(tmp_path: Path) -> None:
    spec = tmp_path / "my_spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "model": "Qwen/Qwen3-8B",
                "sla": {"ttft": 500, "itl": 25},
                "hardware": {"gpuSku": "h100_sxm", "totalGpus": 4},
            }
        )
    )
    result = runner.invoke(app, ["profile", "-f", str(spec)])
    assert result.exit_code == 0, result.output
    assert "TOK/S/GPU" in result.output and "DGD my-spec-dgd" in result.output


@pytest.mark.parametrize(
    ("option", "version", "body"),
    [
        ([], "nvidia.com/v1beta1", "components"),
        (["--dgd-api-version", "nvidia.com/v1beta1"], "nvidia.com/v1beta1", "components"),
        (["--dgd-api-version", "nvidia.com/v1alpha1"], "nvidia.com/v1alpha1", "services"),
    ],
)
def test_profile_emits_the_dgd_in_the_version_asked(
    option: list[str], version: str, body: str
) -> None:
    manifest = str(ROOT / "examples/qwen3-0.6b.yaml")
    result = runner.invoke(app, ["profile", "-f", manifest, "-o", "json", *option])
    assert result.exit_code == 0, result.output
    dgd = json.loads(result.output)["dgd"]
    assert dgd["apiVersion"] == version and body in dgd["spec"]
    workers = dgd["spec"]["components"] if body == "components" else dgd["spec"]["services"]
    assert len(workers) >= 2  # the Frontend and a worker
    table = runner.invoke(app, ["profile", "-f", manifest, *option])
    assert table.exit_code == 0 and f"({version}): Frontend x1" in table.output


def test_profile_refuses_an_unknown_dgd_api_version() -> None:
    manifest = str(ROOT / "examples/qwen3-0.6b.yaml")
    result = runner.invoke(app, ["profile", "-f", manifest, "--dgd-api-version", "nvidia.com/v2"])
    assert result.exit_code == 2 and "nvidia.com/v1beta1 or nvidia.com/v1alpha1" in result.output


def test_profile_refuses_invalid_specs_and_models_that_cannot_fit(tmp_path: Path) -> None:
    result = runner.invoke(app, ["profile", "-f", str(ROOT / "examples/invalid-sla.yaml")])
    assert result.exit_code == 1 and "spec.sla.e2eLatency" in result.output
    big = tmp_path / "big.yaml"
    big.write_text(
        yaml.safe_dump(
            {"model": "meta-llama/Llama-3.1-70B", "hardware": {"gpuSku": "t4", "totalGpus": 1}}
        )
    )
    result = runner.invoke(app, ["profile", "-f", str(big)])
    assert result.exit_code == 1 and "GB" in result.output and "Traceback" not in result.output
    nosku = tmp_path / "nosku.yaml"
    nosku.write_text(yaml.safe_dump({"model": "Qwen/Qwen3-8B"}))
    result = runner.invoke(app, ["profile", "-f", str(nosku)])
    assert result.exit_code == 1 and "spec.hardware.gpuSku" in result.output


def test_simulate_checks_the_rapid_pick_under_the_workload(tmp_path: Path) -> None:
    spec = tmp_path / "rate.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "model": "Qwen/Qwen3-0.6B",
                "sla": {"ttft": 300, "itl": 20},
                "workload": {"isl": 1000, "osl": 100, "requestRate": 20},
                "hardware": {"gpuSku": "h200_sxm", "totalGpus": 2},
            }
        )
    )
    result = runner.invoke(app, ["simulate", "-f", str(spec), "--requests", "200", "-o", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["simulation"]["requests"] == 200 and report["requestRate"] == 20
    assert report["simulation"]["ttft_ms"]["p50"] > 0
    assert report["slaAtP90"]["itl"] == "met"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["up", "--replicas", "3"], "needs a JetStream cluster"),
        (["up", "--replicas", "0"], "--replicas 0"),
        (["up", "--sync", "often"], "--sync 'often'"),
        (["up", "--no-embedded", "--sync", "always"], "sync_interval: always"),
    ],
)
def test_up_refuses_durability_options_that_cannot_apply(args: list[str], says: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert says in result.output
