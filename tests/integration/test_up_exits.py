"""How `dgdr up` and `dgdr demo` start and stop, as a user sees it (subprocesses): a signal stops them
at once and cleanly, a data dir serves one `dgdr up` at a time, a taken port or an unusable data dir
is one line before anything starts, and a NATS that is not there yet is waited for, saying so."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from events.server import EmbeddedNatsServer, find_nats_server, free_port

ROOT = Path(__file__).resolve().parents[2]


class Command:
    """`python -m dgdr ARGS` in its own process group (as a shell runs a foreground job)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stdout: list[str] = []
        self.stderr: list[str] = []

    @classmethod
    async def start(cls, *args: str, env: dict[str, str] | None = None) -> Command:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dgdr", *args, cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )  # fmt: skip
        return cls(proc)

    async def line_with(self, text: str, stream: str = "stdout", timeout: float = 30) -> str:
        """Read `stream` until a line contains `text` (the command exiting first fails)."""
        reader = self.proc.stdout if stream == "stdout" else self.proc.stderr
        lines = self.stdout if stream == "stdout" else self.stderr
        assert reader is not None
        async with asyncio.timeout(timeout):
            while True:
                raw = await reader.readline()
                if not raw:
                    raise AssertionError(f"exited before printing {text!r}: {self.text()}")
                lines.append(raw.decode())
                if text in lines[-1]:
                    return lines[-1]

    async def exit_code(self, timeout: float = 60) -> int:
        """Wait for the exit (reading the rest of its output) within `timeout` seconds."""
        assert self.proc.stdout is not None and self.proc.stderr is not None
        async with asyncio.timeout(timeout):
            out, err = await asyncio.gather(self.proc.stdout.read(), self.proc.stderr.read())
            await self.proc.wait()
        self.stdout.append(out.decode())
        self.stderr.append(err.decode())
        assert self.proc.returncode is not None
        return self.proc.returncode

    def text(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)

    def group_alive(self) -> bool:
        """Whether any process of its group (its nats-server, say) still runs."""
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def running(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[Command]:
    command = await Command.start(*args, env=env)
    try:
        yield command
    finally:
        command.kill_group()
        with contextlib.suppress(ProcessLookupError):
            await asyncio.wait_for(command.proc.wait(), 10)


@pytest.mark.parametrize(
    ("sig", "to_group", "code"),
    [(signal.SIGINT, True, 130), (signal.SIGTERM, False, 143)],
    ids=["ctrl-c-to-the-foreground-group", "sigterm-to-the-demo"],
)
async def test_a_signal_stops_the_demo_at_once_and_cleans_up(
    tmp_path: Path, sig: signal.Signals, to_group: bool, code: int
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    async with running("demo", env={"TMPDIR": str(temp)}) as demo:
        await demo.line_with("dgdr demo: NATS at")  # its nats-server and service are running
        (os.killpg if to_group else os.kill)(demo.proc.pid, sig)
        assert await demo.exit_code(timeout=30) == code, demo.text()
        assert "Traceback" not in demo.text()
        assert "Deployed:" not in demo.text(), "the demo ran on after the signal"
        assert list(temp.iterdir()) == [], "the demo's temporary directory was left behind"
        assert not demo.group_alive(), "a process of the demo (its nats-server?) outlived it"


def up_args(data: Path, port: int, *more: str) -> list[str]:
    return ["up", "--data-dir", str(data), "--port", str(port), *more]


async def test_a_data_dir_serves_one_dgdr_up_and_a_killed_one_does_not_hold_it(
    tmp_path: Path,
) -> None:
    data, port = tmp_path / "data", free_port()
    async with running(*up_args(data, port)) as first:
        await first.line_with("dgdr is up", "stderr")
        async with running(*up_args(data, free_port())) as second:  # another port, same store
            assert await second.exit_code() == 1, second.text()
        said = second.text().strip()
        assert "dgdr is up" not in said and "Traceback" not in said
        assert len(said.splitlines()) == 1, said
        assert f"pid {first.proc.pid}" in said and f"nats://127.0.0.1:{port}" in said
        assert f"--data-dir {data} is in use" in said
        first.kill_group()  # kill -9: the lock goes with the process
        await first.proc.wait()
    async with running(*up_args(data, port)) as again:
        await again.line_with("dgdr is up", "stderr")
        again.proc.send_signal(signal.SIGINT)  # Ctrl-C stops a service cleanly: exit 0
        assert await again.exit_code() == 0, again.text()
        assert "Traceback" not in again.text()
        assert not again.group_alive()


async def test_no_embedded_says_it_waits_for_nats_and_starts_when_it_comes(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"nats://dgdr:s3cret@127.0.0.1:{port}"
    async with running("--server", url, "up", "--no-embedded", "--startup-timeout", "1s") as up:
        said = await up.line_with("waiting for NATS", "stderr")
        assert f"nats://dgdr:***@127.0.0.1:{port}" in said and "--startup-timeout" in said
        assert await up.exit_code() == 1
        assert "Traceback" not in up.text() and "s3cret" not in up.text()
        assert "did not answer within 1 s" in up.stderr[-1], up.text()

    url = f"nats://127.0.0.1:{port}"
    async with running("--server", url, "up", "--no-embedded", "--startup-timeout", "60s") as up:
        await up.line_with("waiting for NATS", "stderr")
        async with EmbeddedNatsServer(tmp_path / "nats", port):
            await up.line_with("dgdr is up", "stderr")
            up.proc.send_signal(signal.SIGTERM)
            assert await up.exit_code() == 0, up.text()
        assert "Traceback" not in up.text()


async def test_no_embedded_against_a_nats_without_jetstream_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    nats = await asyncio.create_subprocess_exec(
        find_nats_server(), "-a", "127.0.0.1", "-p", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"nats://127.0.0.1:{port}"
        async with running("--server", url, "up", "--no-embedded") as up:
            assert await up.exit_code(timeout=30) == 1, up.text()
        said = up.text().strip().splitlines()[-1]
        assert "Traceback" not in up.text() and "JetStream" in said and "-js" in said, said
    finally:
        nats.terminate()
        await nats.wait()
