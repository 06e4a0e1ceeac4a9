"""Asynchronous NATS errors are logged at warning, never with the URL's password: against a real
nats-server that requires a password and denies a subject."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from dgdr.domain.errors import ServerUnavailable
from events.connection import ConnectOptions, connect, redact_url
from events.server import find_nats_server, free_port
from tests.support import until

pytestmark = pytest.mark.timeout(30)

PASSWORD = "s3cret-pw"
CONFIG = """
authorization {
  users = [
    {user: alice, password: "%s", permissions: {publish: {deny: ["forbidden.>"]}}}
  ]
}
"""


@pytest.fixture
async def guarded_server(tmp_path: Path) -> AsyncIterator[str]:
    """A nats-server that wants alice's password and denies her `forbidden.>`; yields its URL."""
    config = tmp_path / "nats.conf"
    config.write_text(CONFIG % PASSWORD)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        find_nats_server(), "-a", "127.0.0.1", "-p", str(port), "-c", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip

    async def accepting() -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.close()
        await writer.wait_closed()
        return True

    try:
        await until(accepting, what="nats-server to accept connections")
        yield f"nats://alice:{PASSWORD}@127.0.0.1:{port}"
    finally:
        proc.terminate()
        with contextlib.suppress(ProcessLookupError):
            await proc.wait()


async def test_an_asynchronous_error_is_logged_at_warning_without_the_password(
    guarded_server: str,
) -> None:
    options = ConnectOptions(url=guarded_server)
    with structlog.testing.capture_logs() as logs:
        nc = await connect(options, reconnect=False)
        try:
            await nc.publish("forbidden.x", b"no")  # the server answers -ERR, asynchronously
            await nc.flush()

            def warned() -> list[dict[str, Any]]:
                return [e for e in logs if e["event"] == "nats error"]

            (entry,) = await until(warned, what="the permissions violation to be logged")
        finally:
            await nc.close()
    assert entry["log_level"] == "warning"
    assert "permissions violation" in entry["error"].lower()
    assert entry["url"] == guarded_server.replace(PASSWORD, "***")
    assert PASSWORD not in repr(logs)


async def test_an_unreachable_server_is_reported_without_the_password() -> None:
    url = f"nats://alice:{PASSWORD}@127.0.0.1:{free_port()}"
    with pytest.raises(ServerUnavailable) as err:
        await connect(ConnectOptions(url=url), reconnect=False, timeout=5)
    assert PASSWORD not in str(err.value)
    assert "alice:***@127.0.0.1" in str(err.value)


def test_redact_url_hides_a_password_or_a_token_and_keeps_the_rest() -> None:
    assert redact_url("nats://u:p@h:4222") == "nats://u:***@h:4222"
    assert redact_url("tls://tok3n@h:4222") == "tls://***@h:4222"
    assert redact_url("nats://h:4222") == "nats://h:4222"
