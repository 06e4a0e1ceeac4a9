"""With authorization on, as `dgdr up` turns it on: the service runs as `service`, and a process that
holds only the client context applies, gets, lists, watches and reads history; the `dgdr` command
takes `--context` (or the default data dir's client context) and reports refusals in one line that
never shows a password."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from dgdr.app.service import Service
from dgdr.client import DgdrClient
from events.auth import EmbeddedServer
from events.connection import ConnectOptions
from events.server import free_port
from tests.integration.conftest import fast_config, manifest
from tests.support import until

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def secured_service(secured_nats: EmbeddedServer) -> AsyncIterator[EmbeddedServer]:
    config = replace(fast_config(secured_nats.server.url), connect=secured_nats.roles["service"])
    service = Service(config)
    await service.start()
    try:
        yield secured_nats
    finally:
        await service.stop()


async def test_a_client_context_alone_applies_gets_watches_and_reads_history(
    secured_service: EmbeddedServer,
) -> None:
    options = ConnectOptions.from_context(secured_service.contexts_dir / "client.json")
    async with DgdrClient(options) as client:
        outcome = await client.apply(manifest("held"))
        assert outcome["status"] == "accepted", outcome
        obj = await client.wait("held", phase="Deployed", timeout=60)  # a watch
        assert (await client.get("held")) == obj
        assert [o["metadata"]["name"] for o in await client.list()] == ["held"]
        history = await client.history("held")
        assert history[0]["type"] == "Created" and history[-1]["type"] == "DeploymentReady"
        assert (await client.delete("held"))["status"] == "accepted"


async def dgdr(*args: str, cwd: Path = ROOT) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dgdr", *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith(("DGDR_NATS", "DGDR_CONTEXT"))},
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_cli_takes_a_context_and_refusals_are_one_line_without_secrets(
    secured_service: EmbeddedServer, tmp_path: Path
) -> None:
    contexts = secured_service.contexts_dir
    client = str(contexts / "client.json")
    password = secured_service.roles["client"].password
    assert password is not None
    (tmp_path / "m.yaml").write_text(json.dumps(manifest("via-cli")))
    code, out, err = await dgdr("--context", client, "apply", "-f", str(tmp_path / "m.yaml"))
    assert code == 0 and "created" in out, err
    code, out, err = await dgdr("--context", client, "history", "via-cli")
    assert code == 0 and "Created" in out, err

    # the client role may not disturb the simulated cluster: at once, naming user and subject
    code, _, err = await dgdr("--context", client, "cluster", "degrade", "via-cli-dgd")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "refused user 'client': it may not publish to \"$KV.DGDR_SIMCLUSTER." in err
    code, out, err = await dgdr("--context", client, "cluster", "list")  # reading it may
    assert code == 0 and "via-cli-dgd" in out, err
    admin = str(contexts / "admin.json")
    code, out, err = await dgdr("--context", admin, "cluster", "degrade", "via-cli-dgd")
    assert code == 0 and "degraded" in out, err

    # explicit options override the context's; a wrong password is refused credentials
    code, _, err = await dgdr("--context", client, "--password", "wrong-pw-123", "get")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "refused the credentials of user 'client'" in err and "wrong-pw-123" not in err

    # a password in the URL never shows, whether it is refused or its role is
    url = secured_service.server.url
    for secret in ("wrong-pw-456", password):
        with_secret = url.replace("nats://", f"nats://client:{secret}@")
        code, _, err = await dgdr("--server", with_secret, "cluster", "degrade", "via-cli-dgd")
        assert code == 1 and secret not in err and "client:***@" in err, err

    # a context with a wrong password: refused, and its password is not shown either
    wrong = copy_context(Path(client), tmp_path / "wrong.json", password="ctx-secret-789")
    code, _, err = await dgdr("--context", str(wrong), "get")
    assert code == 1 and "refused the credentials" in err and "ctx-secret-789" not in err

    code, _, err = await dgdr("--context", str(tmp_path / "missing.json"), "get")
    assert code == 2 and "missing.json: no such file" in err and "Traceback" not in err

    # no --context and no --server: the default data dir's client context, when it exists
    copy_context(Path(client), tmp_path / "project" / ".dgdr" / "contexts" / "client.json")
    code, out, err = await dgdr("get", cwd=tmp_path / "project")
    assert code == 0 and "via-cli" in out, err


def copy_context(source: Path, target: Path, **changes: str) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({**json.loads(source.read_text()), **changes}))
    return target


async def up_once(data: Path, port: str, *flags: str) -> tuple[str, int, str]:
    """`dgdr up` until it answers through its client context, then an anonymous `get`; the
    service's stderr, the anonymous get's exit code and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dgdr", "up", "--data-dir", str(data), "--port", port, *flags,
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )  # fmt: skip
    try:

        async def answers() -> bool:
            code, _, _ = await dgdr("--context", str(data / "contexts" / "client.json"), "get")
            if proc.returncode is not None and proc.stderr is not None:
                raise AssertionError(f"dgdr up exited: {(await proc.stderr.read()).decode()}")
            return code == 0

        await until(answers, 60, "dgdr up to answer through its client context", 0.5)
        anonymous, _, err = await dgdr("--server", f"nats://127.0.0.1:{port}", "get")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        assert proc.stderr is not None
        up_err = (await asyncio.wait_for(proc.stderr.read(), 30)).decode()
        await asyncio.wait_for(proc.wait(), 30)
    return up_err, anonymous, err


def read_json(path: Path) -> dict[str, str]:
    return dict(json.loads(path.read_text()))


async def test_dgdr_up_is_secure_by_default_and_insecure_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for insecure in (False, True):
        port = str(free_port())
        up_err, anonymous, err = await up_once(data, port, *(["--insecure"] if insecure else []))
        context = read_json(data / "contexts" / "client.json")
        warnings = [line for line in up_err.splitlines() if line.startswith("warning:")]
        if insecure:
            assert anonymous == 0 and context["password"] == ""
            assert len(warnings) == 1 and "NO authorization" in warnings[0]
        else:
            assert anonymous == 1 and "wants credentials" in err
            assert context["user"] == "client" and context["url"] == f"nats://127.0.0.1:{port}"
            assert not warnings and context["password"] not in up_err
