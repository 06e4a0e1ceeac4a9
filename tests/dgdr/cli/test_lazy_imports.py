"""The `dgdr` command imports only what the command that runs needs (issue 11, CLI start-up).

Each test runs the command as a user does (a subprocess) through a probe that lists, when the
process ends, every module it imported; the command's output is checked too, so a command that
did less than it should cannot pass. Timing is bench/cli_startup.py's job, not a test's.

What is kept out, and where it came from before: rich, markdown-it, pygments and attrs (typer's rich
help layout; now click's plain one), asyncio (`events.connection`, `dgdr.cli.serve`), aiohttp
(nats-py's websocket transport: `dgdr.cli.base.load_nats`), structlog and with it rich (imported
by `events.jetstream` and `events.transient` at the top), the event models
(`events.jetstream` importing `events.envelope`), rich's cell widths (`dgdr.cli.printer`). pydantic
stays for any command that parses an option: typer 0.29 checks every non-flag option's value with
a pydantic TypeAdapter, with no switch to turn that off; only `dgdr --help` does without it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import typer

from dgdr.cli.main import app
from dgdr.client import DgdrClient
from events.connection import ConnectOptions
from events.server import EmbeddedNatsServer
from tests.integration.conftest import fast_config, manifest

ROOT = Path(__file__).resolve().parents[3]

# `dgdr ARGS...`, printing at exit (on stderr, after what the command printed) the modules loaded.
PROBE = """
import atexit, json, sys
atexit.register(lambda: print("\\nMODULES " + json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv = ["dgdr", *sys.argv[1:]]
from dgdr.cli.main import main
main()
"""

# Nothing of rich, asyncio, NATS, the spec and event models, the machine, logging, YAML or the
# profiler.
RICH = {"rich", "markdown_it", "pygments", "attr", "typer.rich_utils"}
NOT_FOR_HELP = {
    *RICH,
    "asyncio",
    "ssl",
    "nats",
    "aiohttp",
    "structlog",
    "dgdr.client",
    "dgdr.domain.spec",
    "dgdr.domain.model",
    "transitions",
    "projections",
    "yaml",
    "sim",
    "numpy",
    "matplotlib",
}
NOT_FOR_ROOT_HELP = {*NOT_FOR_HELP, "pydantic", "typer._adapters"}
NOT_FOR_GET = {
    *RICH,
    "aiohttp",
    "structlog",
    "events.envelope",
    "events.integrity",
    "dgdr.domain.model",
    "dgdr.domain.spec",
    "transitions",
    "sim",
    "numpy",
    "matplotlib",
    "projections",
    "dgdr.cli.profile_report",
}


def probe(args: Sequence[str]) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    shown = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    listed = [line for line in shown.stderr.splitlines() if line.startswith("MODULES ")]
    assert listed, shown.stderr
    return shown, set(json.loads(listed[-1].removeprefix("MODULES ")))


def loaded(modules: set[str], names: set[str]) -> list[str]:
    """The modules of `modules` that are one of `names` or inside one of those packages."""
    return sorted(m for m in modules if m in names or m.split(".")[0] in names)


def test_help_imports_nothing_of_rich_pydantic_nats_the_models_or_the_profiler() -> None:
    shown, modules = probe(["--help"])
    assert shown.returncode == 0, shown.stderr
    assert "Usage: dgdr" in shown.stdout and "--server" in shown.stdout
    for verb in ("get", "apply", "up", "profile", "cluster"):
        assert f" {verb} " in shown.stdout, shown.stdout
    assert loaded(modules, NOT_FOR_ROOT_HELP) == []


def test_help_lists_each_command_with_its_whole_summary() -> None:
    shown, _ = probe(["--help"])
    text = " ".join(shown.stdout.split())
    # click's plain layout would cut these at the first sentence or ~45 characters
    assert "describe Show a DGDR: spec summary, status, conditions and its history as events." in (
        text
    )
    assert "(as `kubectl version`). The dgdr service does not publish its own version." in text
    assert "[env var: DGDR_NATS_URL; default: nats://127.0.0.1:4222]" in text


def test_command_signatures_are_not_strings_typer_would_compile_at_each_start() -> None:
    root = typer.main.get_command(app)
    commands = [root, *root.commands.values(), *root.commands["cluster"].commands.values()]
    for command in commands:
        hints = getattr(command.callback, "__annotations__", {})
        assert not any(isinstance(h, str) for h in hints.values()), command.name


def test_client_version_imports_nothing_of_nats_or_rich() -> None:
    shown, modules = probe(["version", "--client"])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("Client Version: "), shown.stdout
    assert loaded(modules, NOT_FOR_HELP) == []


def test_a_verb_help_imports_nothing_of_nats_or_the_models() -> None:
    shown, modules = probe(["get", "--help"])
    assert shown.returncode == 0, shown.stderr
    assert "Usage: dgdr get" in shown.stdout and "--selector" in shown.stdout
    assert loaded(modules, NOT_FOR_HELP) == []


async def test_get_imports_nothing_of_the_profiler_or_the_projection(
    nats_server: EmbeddedNatsServer,
) -> None:
    from dgdr.app.service import Service

    service = Service(fast_config(nats_server.url))
    await service.start()
    try:
        async with DgdrClient(ConnectOptions(url=nats_server.url)) as client:
            outcome = await client.apply(manifest("lazy-get"))
            assert outcome["status"] == "accepted", outcome
            await client.wait("lazy-get", resource_version=outcome["resourceVersion"], timeout=30)
        shown, modules = await asyncio.to_thread(probe, ["--server", nats_server.url, "get"])
    finally:
        await service.stop()
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[1].split()[0] == "lazy-get", shown.stdout
    assert loaded(modules, NOT_FOR_GET) == []


NATS_THEN_AIOHTTP = """
import sys
from dgdr.cli.base import load_nats
from events.connection import ConnectOptions
load_nats(ConnectOptions(url=sys.argv[1]))
import nats.aio.transport
print("nats-py's aiohttp:", "none" if nats.aio.transport.aiohttp is None else "imported")
import aiohttp  # kubernetes-asyncio's, later in the same process
print("aiohttp then:", aiohttp.__name__)
"""


def test_nats_is_loaded_without_aiohttp_which_stays_importable_and_kept_for_websockets() -> None:
    def loads(url: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", NATS_THEN_AIOHTTP, url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    assert loads("nats://127.0.0.1:4222") == ["nats-py's aiohttp: none", "aiohttp then: aiohttp"]
    for websocket in ("ws://127.0.0.1:8080", "WSS://127.0.0.1:8443"):
        assert loads(websocket) == ["nats-py's aiohttp: imported", "aiohttp then: aiohttp"]
