"""The reading side of `dgdr` with kubectl's habits, run as a user runs it (a subprocess): global
options after the verb, tables that are never truncated or wrapped (piped, or in an 80-column
terminal), `-o name|jsonpath|custom-columns`, `-l`, `get -w`, `version`, and the no-server hint."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import signal
import struct
import sys
import termios
from pathlib import Path
from typing import Any

from dgdr.client import DgdrClient, load_documents
from events.server import free_port
from tests import support
from tests.integration.conftest import Running

ROOT = Path(__file__).resolve().parents[2]
LONG_MESSAGE_NAME = "a-rather-long-dgdr-name-for-the-table"


async def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`dgdr ARGS...` with stdout and stderr piped: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dgdr",
        *args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def in_terminal(*args: str, columns: int = 80) -> str:
    """`dgdr ARGS...` with stdout on a terminal `columns` wide: what the terminal shows."""
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dgdr", *args, cwd=ROOT, env=env, stdout=secondary
    )
    os.close(secondary)
    chunks = []
    loop = asyncio.get_running_loop()
    while True:
        try:
            chunk = await loop.run_in_executor(None, os.read, primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    await proc.wait()
    os.close(primary)
    return b"".join(chunks).decode().replace("\r\n", "\n")


async def apply(
    client: DgdrClient, name: str, labels: dict[str, str] | None = None, **spec: Any
) -> None:
    manifest: dict[str, Any] = support.manifest(name, **spec)
    if labels:
        manifest["metadata"]["labels"] = labels
    outcome = await client.apply(manifest)
    assert outcome["status"] == "accepted", outcome
    await client.wait(name, phase="Deployed", timeout=60)


async def test_global_options_after_the_verb(running: Running) -> None:
    url = running.server.url
    code, _, err = await cli("get", "-n", "team-a", "-s", url)
    assert code == 0 and "No resources found in team-a namespace." in err, err
    code, _, err = await cli("get", "--server", url, "--namespace=team-b")
    assert code == 0 and "No resources found in team-b namespace." in err, err
    code, _, err = await cli("cluster", "list", "-s", url)
    assert code == 0 and "Traceback" not in err, err
    code, _, err = await cli("-s", url, "get", "-n", "team-c", "--", "x")  # `--` ends options
    assert code == 1 and 'dynamographdeploymentrequests "x" not found' in err, err


async def test_get_tables_are_full_width_piped_or_in_80_columns(running: Running) -> None:
    url = running.server.url
    await apply(running.client, LONG_MESSAGE_NAME)
    (invalid,) = load_documents(ROOT / "examples/invalid-sla.yaml")  # a 200-character message
    await running.client.apply(invalid)
    failed = await running.client.wait("invalid-sla", phase="Failed", timeout=30)
    message = next(c["message"] for c in failed["status"]["conditions"] if c["type"] == "Succeeded")
    assert len(message) > 150
    for shown in ((await cli("-s", url, "get"))[1], await in_terminal("-s", url, "get")):
        header, *rows = shown.rstrip("\n").split("\n")  # one line per row: nothing wrapped
        assert header.split()[:4] == ["NAME", "MODEL", "BACKEND", "PHASE"]
        assert [row.split()[0] for row in rows] == [LONG_MESSAGE_NAME, "invalid-sla"]
        assert " Deployed " in rows[0] and f"{LONG_MESSAGE_NAME}-dgd" in rows[0]
        assert " Failed " in rows[1] and message in rows[1]  # never truncated
        assert header.index("PHASE") == rows[0].index("Deployed") == rows[1].index("Failed")
        assert "\x1b" not in shown  # plain text, as kubectl prints it
    code, shown, _ = await cli("-s", url, "cluster", "list")
    assert code == 0 and [line.split() for line in shown.splitlines()] == [
        ["NAMESPACE", "NAME", "STATE"],
        ["default", f"{LONG_MESSAGE_NAME}-dgd", "successful"],
    ]


async def test_output_formats_and_label_selectors(running: Running) -> None:
    url = running.server.url
    await apply(running.client, "one", {"team": "a", "tier": "gold"}, autoApply=True)
    await apply(running.client, "two", {"team": "b"})
    code, out, _ = await cli("-s", url, "get", "-o", "name")
    assert code == 0 and out.split() == [
        "dynamographdeploymentrequest.nvidia.com/one",
        "dynamographdeploymentrequest.nvidia.com/two",
    ]
    code, out, _ = await cli("-s", url, "get", "-o", "jsonpath={.items[*].metadata.name}")
    assert code == 0 and out == "one two"
    template = '{range .items[*]}{.metadata.name}={.status.phase}{"\\n"}{end}'
    code, out, _ = await cli("-s", url, "get", "-o", f"jsonpath={template}")
    assert code == 0 and out == "one=Deployed\ntwo=Deployed\n"
    code, out, _ = await cli("-s", url, "get", "one", "-o", "jsonpath={.spec.model}")
    assert code == 0 and out == "Qwen/Qwen3-0.6B"
    spec = "custom-columns=NAME:.metadata.name,TEAM:.metadata.labels.team,TIER:metadata.labels.tier"
    code, out, _ = await cli("-s", url, "get", "-o", spec)
    assert code == 0 and [line.split() for line in out.splitlines()] == [
        ["NAME", "TEAM", "TIER"],
        ["one", "a", "gold"],
        ["two", "b", "<none>"],
    ]
    code, out, err = await cli("-s", url, "get", "-l", "team in (a,b),!tier", "-o", "name")
    assert code == 0 and out.split() == ["dynamographdeploymentrequest.nvidia.com/two"], err
    code, _, err = await cli("-s", url, "get", "-l", "team in (a")
    assert code == 2 and "unable to parse requirement" in err and "Traceback" not in err
    code, out, err = await cli("-s", url, "get", "-o", "xml")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "custom-columns,json,jsonpath,name,wide,yaml" in err

    code, out, _ = await cli("-s", url, "describe", "one")
    auto_apply = next(line for line in out.splitlines() if "autoApply:" in line)
    assert code == 0 and auto_apply.split() == ["autoApply:", "true"]  # YAML's, not Python's True


async def test_get_watch_prints_the_table_then_a_row_per_change(running: Running) -> None:
    url = running.server.url
    await apply(running.client, "kept")
    await apply(running.client, "gone")
    deleted = await running.client.delete("gone")
    assert deleted["status"] == "accepted"
    await support.until(
        _absent(running.client, "gone"), what="the deleted DGDR leaves the list", timeout=10.0
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dgdr",
        "-s",
        url,
        "get",
        "-w",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_interruptible,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        async with asyncio.timeout(60):
            header = (await proc.stdout.readline()).decode()
            first = (await proc.stdout.readline()).decode()
            assert header.split()[:4] == ["NAME", "MODEL", "BACKEND", "PHASE"], header
            assert first.split()[0] == "kept" and " Deployed " in first, first
            await running.client.apply(support.manifest("new"))
            seen = []
            while not any(" Deployed " in line for line in seen):
                line = (await proc.stdout.readline()).decode()
                assert line, "the watch ended"
                assert line.split()[0] == "new", line  # never the deleted "gone"
                seen.append(line)
            assert all(line.index(line.split()[1]) == header.index("MODEL") for line in seen)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = await proc.communicate()
    assert proc.returncode == 130 and "Traceback" not in err.decode(), err.decode()


def _interruptible() -> None:
    """Ctrl-C as at a terminal, however the tests were started: a shell starts a background job
    with SIGINT ignored, its children inherit that, and Python then leaves SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _absent(client: DgdrClient, name: str) -> Any:
    async def check() -> bool:
        return all(o["metadata"]["name"] != name for o in await client.list())

    return check


async def test_version_names_the_client_and_the_server(running: Running) -> None:
    code, out, _ = await cli("-s", running.server.url, "version")
    assert code == 0 and out.startswith("Client Version: 0.")
    assert "NATS Server Version: 2." in out
    code, out, _ = await cli("-s", f"nats://127.0.0.1:{free_port()}", "version", "--client")
    assert code == 0 and out.splitlines() == [out.splitlines()[0]]


async def test_no_server_says_how_to_start_one_or_name_it() -> None:
    user = "a-user-name-long-enough-to-take-the-line-past-250-characters"
    code, out, err = await cli("-s", f"nats://{user}:pw@127.0.0.1:{free_port()}", "get")
    assert len(err) > 250  # and still one line: never broken where a pipe is 250 wide
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "cannot reach NATS" in err and "dgdr up" in err
    assert "--server" in err and "DGDR_NATS_URL" in err and "--context" in err
