"""`dgdr up`'s checks before anything starts (`dgdr.cli.preflight`), through the CLI in process: a
bad option value, an unusable data dir, a taken port or a data dir in use is one line, never a
traceback, and nothing is started. (`tests/integration/test_up_exits.py` runs `dgdr up` itself.)"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dgdr.cli.main import app
from dgdr.cli.preflight import DataDirLock
from events.server import free_port

runner = CliRunner()


def up(data: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["up", "--data-dir", str(data), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"a traceback: {result.exception!r}\n{result.output}")
    return result.exit_code, result.output.strip()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--port", "99999"], "--port"),
        (["--webhook-port", "70000", "--cluster", "emulated"], "--webhook-port"),
        (["--data-dir", "/etc/passwd"], "--data-dir: cannot use the directory /etc/passwd"),
        (["--data-dir", "/etc/passwd/data"], "--data-dir: cannot use the directory"),
        (["--cluster", "emulated", "--write-kubeconfig", "/etc/passwd/kc"], "--write-kubeconfig"),
        (["--rollout-delay", "-1"], "--rollout-delay"),
        (["--startup-timeout", "soon"], "'soon' is not a duration"),
    ],
)
def test_a_bad_option_value_is_a_usage_error_naming_it(
    tmp_path: Path, args: list[str], says: str
) -> None:
    code, said = up(tmp_path / "data", "--port", str(free_port()), *args)
    assert code == 2 and says in said, said


@pytest.mark.parametrize(
    ("flag", "extra"),
    [
        ("--port", []),
        ("--webhook-port", ["--cluster", "emulated"]),
        ("--metrics-addr", []),
    ],
)
def test_a_taken_port_is_one_line_naming_it_and_its_flag(
    tmp_path: Path, flag: str, extra: list[str]
) -> None:
    data = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = ["--port", str(busy)] if flag == "--port" else ["--port", str(free_port())]
        if flag == "--webhook-port":
            ports += ["--webhook-port", str(busy)]
        if flag == "--metrics-addr":
            ports += ["--metrics-addr", f"127.0.0.1:{busy}"]
        code, said = up(data, *ports, *extra)
    assert code == 1 and len(said.splitlines()) == 1, said
    assert f"port {busy} on 127.0.0.1 is taken" in said and f"another port with {flag}" in said
    assert not (data / "nats-server.log").exists(), "nats-server was started"


def test_a_data_dir_in_use_is_refused_naming_the_holder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    holder = DataDirLock(data)
    holder.acquire("nats://127.0.0.1:4999")
    try:
        code, said = up(data, "--port", str(free_port()))
    finally:
        holder.release()
    assert code == 1 and len(said.splitlines()) == 1, said
    assert f"--data-dir {data} is in use by another dgdr up" in said
    assert f"pid {os.getpid()}, NATS at nats://127.0.0.1:4999" in said
    assert not (data / "nats-server.log").exists(), "nats-server was started"
