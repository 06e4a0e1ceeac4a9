"""The embedded nats-server launcher: ready only when its own server listens, and no server left
behind by a start that fails or is cancelled."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from dgdr.domain.errors import ConfigurationError
from events.server import EmbeddedNatsServer
from tests.support import until


async def test_a_port_another_process_listens_on_is_an_error_not_a_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = EmbeddedNatsServer(tmp_path, taken.getsockname()[1])
        with pytest.raises(ConfigurationError, match="address already in use"):
            await server.start()


async def test_a_cancelled_start_stops_the_server_it_launched(tmp_path: Path) -> None:
    server = EmbeddedNatsServer(tmp_path)
    starting = asyncio.create_task(server.start())
    await until(lambda: server._proc, 10, "nats-server to be launched", 0.001)
    launched = server._proc
    assert launched is not None
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    async with asyncio.timeout(15):
        await launched.wait()  # returns once the process has exited
    assert launched.returncode is not None


async def test_monitoring_is_served_on_loopback_when_asked_for(tmp_path: Path) -> None:
    import json
    import urllib.request

    from events.server import free_port

    async with EmbeddedNatsServer(tmp_path, monitor_port=free_port()) as server:
        assert server.monitor_url is not None and server.monitor_url.startswith("http://127.0.0.1:")

        async def varz() -> dict[str, object] | None:
            """/varz once the listener is open (it may open just after the client port)."""

            def read() -> dict[str, object]:
                with urllib.request.urlopen(f"{server.monitor_url}/varz", timeout=5) as answer:
                    return dict(json.loads(answer.read()))

            try:
                return await asyncio.to_thread(read)
            except OSError:
                return None

        served = await until(varz, 15, "the monitoring port to answer", 0.05)
        assert "in_msgs" in served and "out_msgs" in served
    assert EmbeddedNatsServer(tmp_path).monitor_url is None
