"""Global options anywhere on the line (`dgdr.cli.group`), and plain metavars in `--help`."""

from __future__ import annotations

from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from dgdr.cli.group import DgdrGroup, hoist_global_options
from dgdr.cli.main import app

runner = CliRunner()


def hoisted(*args: str) -> list[str]:
    root = typer.main.get_command(app)
    return hoist_global_options(root, typer.Context(root), list(args))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (["get", "-n", "team-a"], ["-n", "team-a", "get"]),
        (
            ["get", "x", "-s", "nats://h:1", "-o", "name"],
            ["-s", "nats://h:1", "get", "x", "-o", "name"],
        ),
        (["cluster", "list", "--server=nats://h:1"], ["--server=nats://h:1", "cluster", "list"]),
        (["get", "-nteam-a"], ["-nteam-a", "get"]),
        (["-n", "get", "get"], ["-n", "get", "get"]),  # a global option's value is not the verb
        (["apply", "-f", "-n"], ["apply", "-f", "-n"]),  # a command option's value stays its own
        (["get", "--", "-n", "x"], ["get", "--", "-n", "x"]),  # `--` ends the options
        (["up", "--no-embedded", "--server", "u"], ["--server", "u", "up", "--no-embedded"]),
    ],
)
def test_global_options_move_before_the_verb(line: list[str], expected: list[str]) -> None:
    assert hoisted(*line) == expected


def test_a_global_option_without_its_value_is_a_usage_error_naming_it() -> None:
    result = runner.invoke(app, ["get", "-n"])
    assert result.exit_code == 2 and "Option '-n' requires an argument" in result.output


def test_a_command_option_of_the_same_name_keeps_its_meaning_after_the_verb() -> None:
    demo = typer.Typer(cls=DgdrGroup)
    seen: dict[str, object] = {}

    @demo.callback()
    def main(namespace: Annotated[str, typer.Option("--namespace", "-n")] = "default") -> None:
        seen["namespace"] = namespace

    @demo.command()
    def count(n: Annotated[int, typer.Option("-n")] = 1) -> None:
        seen["n"] = n

    @demo.command()
    def other() -> None:
        seen["other"] = True

    assert runner.invoke(demo, ["count", "-n", "3"]).exit_code == 0
    assert seen == {"namespace": "default", "n": 3}
    assert runner.invoke(demo, ["-n", "team", "count"]).exit_code == 0
    assert seen == {"namespace": "team", "n": 1}
    assert runner.invoke(demo, ["other", "-n", "team-b"]).exit_code == 0
    assert seen["namespace"] == "team-b"


def test_help_shows_plain_metavars() -> None:
    for command in (["--help"], ["get", "--help"], ["wait", "--help"], ["up", "--help"]):
        result = runner.invoke(app, command, env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert "<str>" not in result.output and "<int>" not in result.output, command
        assert "<path>" not in result.output and "<float>" not in result.output, command
    wait_help = runner.invoke(app, ["wait", "--help"], env={"COLUMNS": "200"}).output
    assert "NAME" in wait_help and "TEXT" in wait_help
