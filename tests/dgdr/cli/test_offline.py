"""The offline commands through the CLI: `dgdr estimate` and `dgdr profile`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
import yaml
from typer.testing import CliRunner

from dgdr.cli.main import app
from dgdr.domain.spec import GPU_SKUS

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


# ------------------------------------------------------------------ what a user of `profile` sees


def dgdr_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`dgdr ...` as a user runs it: a subprocess, its stdout and stderr apart (`env`: the
    whole environment, when given)."""
    return subprocess.run(
        [sys.executable, "-m", "dgdr", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


EXAMPLE = str(ROOT / "examples/qwen3-0.6b.yaml")


def test_profile_prints_best_aggregated_against_best_disaggregated() -> None:
    shown = dgdr_cli("profile", "-f", EXAMPLE)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    header = next(line for line in lines if "BEST AGG" in line)
    assert header.split() == ["BEST", "AGG", "BEST", "DISAGG"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[lines.index(header) + 1 :][:9]}
    for label in ("GPUs", "tokens/s/GPU", "tokens/s/user", "TTFT", "ITL", "SLA"):
        assert label in rows, shown.stdout
    agg_speed, disagg_speed = (float(x) for x in rows["tokens/s/GPU"])
    chosen = next(line for line in lines if line.startswith("Chosen:"))
    said = re.fullmatch(
        r"Chosen: agg at (\d+) tokens/s/GPU \(([\d.]+)x the best disagg's (\d+)\)", chosen
    )
    assert said is not None, chosen
    assert (float(said[1]), float(said[3])) == (agg_speed, disagg_speed)
    assert abs(float(said[2]) - agg_speed / disagg_speed) < 0.01
    assert "Traceback" not in shown.stderr


def _spec(tmp_path: Path, **changes: Any) -> str:
    doc = yaml.safe_load(Path(EXAMPLE).read_text())
    for path, value in changes.items():
        section, key = path.split("__")
        doc["spec"][section][key] = value
    target = tmp_path / "spec.yaml"
    target.write_text(yaml.safe_dump(doc))
    return str(target)


def test_profile_says_when_a_mode_cannot_meet_the_sla_or_does_not_fit(tmp_path: Path) -> None:
    # A TTFT only the disaggregated prefill workers reach (agg's lowest is above 25 ms here).
    shown = runner.invoke(app, ["profile", "-f", _spec(tmp_path, sla__ttft=25)])
    assert shown.exit_code == 0, shown.output
    assert "No aggregated config meets the SLA: the closest is shown." in shown.output
    assert "Chosen: disagg at" in shown.output
    assert "(no aggregated config meets the SLA)" in shown.output
    one_gpu = _spec(tmp_path, hardware__totalGpus=1)
    shown = runner.invoke(app, ["profile", "-f", one_gpu, "-o", "json"])
    modes = json.loads(shown.stdout)["modes"]
    assert modes["disagg"] == {"best": None, "pareto": []} and modes["agg"]["best"]["selected"]
    shown = runner.invoke(app, ["profile", "-f", one_gpu])
    assert "No disaggregated config fits the GPU budget." in shown.output
    assert "(no disaggregated config fits the GPU budget)" in shown.output


def test_profile_o_dgd_prints_only_the_dgd_for_kubectl_apply() -> None:
    shown = dgdr_cli("profile", "-f", EXAMPLE, "-o", "dgd")
    assert shown.returncode == 0, shown.stderr
    docs = list(yaml.safe_load_all(shown.stdout))
    assert [d["kind"] for d in docs] == ["DynamoGraphDeployment"]
    assert docs[0]["metadata"]["name"] == "qwen3-0-6b-dgd"
    assert shown.stdout.startswith("---\napiVersion: nvidia.com/v1beta1\n")
    full = runner.invoke(app, ["profile", "-f", EXAMPLE, "-o", "json"])
    assert docs[0] == json.loads(full.stdout)["dgd"]


def test_profile_o_dgd_includes_the_configmaps_the_dgd_mounts(tmp_path: Path) -> None:
    doc = yaml.safe_load(Path(EXAMPLE).read_text())
    doc["spec"]["features"] = {"planner": {"enabled": True}}
    spec = tmp_path / "planner.yaml"
    spec.write_text(yaml.safe_dump(doc))
    shown = runner.invoke(app, ["profile", "-f", str(spec), "-o", "dgd"])
    assert shown.exit_code == 0, shown.output
    kinds = [d["kind"] for d in yaml.safe_load_all(shown.stdout)]
    assert kinds[-1] == "DynamoGraphDeployment" and set(kinds[:-1]) == {"ConfigMap"}
    assert kinds[:-1], "the planner's ConfigMaps come before the DGD that mounts them"


def test_profile_o_yaml_has_no_anchors_and_says_what_json_says() -> None:
    as_yaml = runner.invoke(app, ["profile", "-f", EXAMPLE, "-o", "yaml"])
    as_json = runner.invoke(app, ["profile", "-f", EXAMPLE, "-o", "json"])
    assert as_yaml.exit_code == 0 and as_json.exit_code == 0, as_yaml.output
    assert "&id0" not in as_yaml.stdout and "*id0" not in as_yaml.stdout
    assert yaml.safe_load(as_yaml.stdout) == json.loads(as_json.stdout)


def test_profile_refuses_an_unknown_output_listing_the_formats() -> None:
    shown = runner.invoke(app, ["profile", "-f", EXAMPLE, "-o", "wide"])
    assert shown.exit_code == 2 and "use table, json, yaml, dgd" in shown.output


def test_the_pareto_plot_tells_the_modes_apart_and_draws_both_latency_targets(
    tmp_path: Path,
) -> None:
    from dgdr.cli.profile_plot import pareto_figure
    from dgdr.domain.spec import SLA

    plot = tmp_path / "pareto.png"
    shown = runner.invoke(app, ["profile", "-f", EXAMPLE, "-o", "json", "--plot", str(plot)])
    assert shown.exit_code == 0, shown.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads(shown.stdout)
    fig = pareto_figure(report, SLA.model_validate({"ttft": 300, "itl": 20}), "Qwen/Qwen3-0.6B")
    by_user, by_ttft = fig.axes

    def legend(ax: Any) -> set[str]:
        box = ax.get_legend()
        assert box is not None, "each panel has a legend"
        return {t.get_text() for t in box.get_texts()}

    both = {"aggregated", "disaggregated", "chosen (agg)"}
    assert both | {"ITL SLA 20 ms"} <= legend(by_user), legend(by_user)
    assert both | {"TTFT SLA 300 ms"} <= legend(by_ttft), legend(by_ttft)

    def xs(ax: Any, label: str) -> list[float]:
        line = next(ln for ln in ax.lines if ln.get_label() == label)
        return [float(x) for x in np.asarray(line.get_xdata(), dtype=float)]

    chosen = report["selected"]
    assert xs(by_user, "chosen (agg)") == [chosen["tokensPerSecondPerUser"]]
    assert xs(by_ttft, "chosen (agg)") == [chosen["ttftMs"]]
    assert xs(by_user, "ITL SLA 20 ms") == [50.0, 50.0]  # 1000 / 20 tokens/s per user
    assert xs(by_ttft, "TTFT SLA 300 ms") == [300.0, 300.0]
    assert "TTFT" in by_ttft.get_xlabel() and "per user" in by_user.get_xlabel()
    for mode, label in (("agg", "aggregated"), ("disagg", "disaggregated")):
        front = report["modes"][mode]["pareto"]
        assert front and xs(by_ttft, label) == [p["ttftMs"] for p in front]
        assert xs(by_user, label) == [p["tokensPerSecondPerUser"] for p in front]


def test_a_plot_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "pareto.png"
    shown = runner.invoke(app, ["profile", "-f", EXAMPLE, "--plot", str(target)])
    assert shown.exit_code == 1, shown.output
    assert not isinstance(shown.exception, Exception)  # an exit, not an error escaping
    assert f"error: --plot {target}: cannot write the plot" in shown.output


# ------------------------------------------------------------------------- options and help text


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under a (typer's vendored) click group."""
    found: list[tuple[str, ...]] = []
    for name, command in getattr(group, "commands", {}).items():
        found.append((*path, name))
        found += _commands(command, (*path, name))
    return found


def test_no_help_text_loses_brackets_to_markup() -> None:
    root = typer.main.get_command(app)
    checked = 0
    for path in _commands(root):
        command = root
        for part in path:
            command = command.commands[part]  # type: ignore[attr-defined]
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        bracketed = [b.replace("\\", "") for t in texts for b in re.findall(r"\[[^\]\s]+\]", t)]
        if not bracketed:
            continue
        shown = runner.invoke(app, [*path, "--help"], terminal_width=200)
        for b in bracketed:
            assert b in shown.output, f"dgdr {' '.join(path)} --help lost {b}"
            checked += 1
    assert checked  # `estimate --estimator` names the `dgdr[aic]` extra


def test_estimate_prints_yaml_and_refuses_an_unknown_output() -> None:
    args = ["estimate", "--model", "Qwen/Qwen3-8B", "--gpu", "h100_sxm"]
    as_yaml = runner.invoke(app, [*args, "-o", "yaml"])
    as_json = runner.invoke(app, [*args, "-o", "json"])
    assert as_yaml.exit_code == 0, as_yaml.output
    assert yaml.safe_load(as_yaml.stdout) == json.loads(as_json.stdout)
    wide = runner.invoke(app, [*args, "-o", "wide"])
    assert wide.exit_code == 2 and "--output 'wide' is not supported: use table, json, yaml" in (
        wide.output
    )


@pytest.mark.parametrize("spelling", ["h200_sxm", "H200", "h200", "H200-SXM", "NVIDIA-H200-141GB"])
def test_estimate_accepts_every_spelling_of_a_gpu(spelling: str) -> None:
    shown = runner.invoke(
        app, ["estimate", "--model", "Qwen/Qwen3-8B", "--gpu", spelling, "-o", "json"]
    )
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["gpu_sku"] == "h200_sxm"


@pytest.mark.parametrize(
    ("spelling", "says"),
    [
        ("h100", "--gpu: 'h100' names 2 GPUs, h100_sxm and h100_pcie: use one of them"),
        ("rtx4090", f"--gpu: 'rtx4090' is not a known GPU: use one of {', '.join(GPU_SKUS)}"),
    ],
)
def test_estimate_says_which_gpu_to_name(spelling: str, says: str) -> None:
    shown = runner.invoke(app, ["estimate", "--model", "Qwen/Qwen3-8B", "--gpu", spelling])
    assert shown.exit_code == 2 and shown.stderr.strip() == f"error: {says}"


def test_simulate_requests_0_is_one_line_naming_the_option_and_its_range() -> None:
    shown = dgdr_cli("simulate", "-f", EXAMPLE, "--requests", "0")
    assert shown.returncode == 2 and "Traceback" not in shown.stderr, shown.stderr
    assert shown.stderr == "error: --requests 0 is out of range: use 1 to 100000\n"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["simulate", "-f", EXAMPLE, "--requests", "-5"], "--requests"),
        (["simulate", "-f", EXAMPLE, "--requests", "100000000"], "--requests"),
        (["simulate", "-f", EXAMPLE, "--seed", "-1"], "--seed"),
        (["simulate", "-f", EXAMPLE, "--seed", str(2**40)], "--seed"),
        (["profile", "-f", EXAMPLE, "--top", "0"], "--top"),
        (["profile", "-f", EXAMPLE, "--top", "-1"], "--top"),
        *(
            (["estimate", "--model", "Qwen/Qwen3-8B", "--gpu", "h200", f"--{o}", v], f"--{o}")
            for o in ("tp", "pp", "ep", "batch-size", "isl", "osl")
            for v in ("0", "-1")
        ),
        (["estimate", "--model", "Qwen/Qwen3-8B", "--gpu", "h200", "--isl", "999999999"], "--isl"),
        (["estimate", "--model", "Qwen/Qwen3-8B", "--gpu", "h200", "--tp", "4096"], "--tp"),
    ],
)
def test_numeric_options_out_of_range_name_the_option(args: list[str], option: str) -> None:
    shown = runner.invoke(app, args)
    assert shown.exit_code == 2, shown.output
    assert option in shown.output and "Traceback" not in shown.output
    assert not isinstance(shown.exception, Exception)  # an exit, not an error escaping
