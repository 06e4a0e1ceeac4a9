"""The client commands against a NATS the dgdr service never set up: one line that says what is
missing and what to do, exit 1, never a traceback (and never a wait for a timeout). Two servers:
JetStream without dgdr's streams (no service ever ran there), and a plain `nats-server` without
JetStream."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from dgdr.client import DgdrClient
from dgdr.domain.errors import NoJetStream, ServiceNotSetUp
from dgdr.domain.waiting import WaitFor
from events.connection import ConnectOptions
from events.server import EmbeddedNatsServer, find_nats_server, free_port
from tests.integration.test_cli import dgdr
from tests.support import manifest, until

NO_STREAMS = "has no dgdr streams: is the dgdr service running? start it with `dgdr up`"
NO_JETSTREAM = "has no JetStream: dgdr needs a server started with -js"


@pytest.fixture
async def without_jetstream(tmp_path: Path) -> AsyncIterator[str]:
    """A plain `nats-server` (no -js) on a free loopback port: its URL."""
    port = free_port()
    log = (tmp_path / "nats.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        find_nats_server(), "-a", "127.0.0.1", "-p", str(port), stdout=log, stderr=log
    )
    log.close()

    def accepts() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    try:
        await until(accepts, what="nats-server without JetStream to listen")
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        await proc.wait()


async def one_line_error(url: str, *args: str) -> str:
    code, _, err = await dgdr(url, *args)
    assert code == 1 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


async def test_apply_and_get_where_no_service_ever_ran(nats_server: EmbeddedNatsServer) -> None:
    apply, get = await asyncio.gather(
        one_line_error(nats_server.url, "apply", "-f", "examples/qwen3-0.6b.yaml"),
        one_line_error(nats_server.url, "get"),
    )
    for err in (apply, get):
        assert (
            err
            == f"error: NATS at {nats_server.url} {NO_STREAMS} (or `dgdr up --no-embedded --server {nats_server.url}`)"
        )


async def test_get_apply_and_cluster_list_against_a_nats_without_jetstream(
    without_jetstream: str,
) -> None:
    get, apply, cluster = await asyncio.gather(
        one_line_error(without_jetstream, "get"),
        one_line_error(without_jetstream, "apply", "-f", "examples/qwen3-0.6b.yaml"),
        one_line_error(without_jetstream, "cluster", "list"),
    )
    for err in (get, apply, cluster):
        assert err.startswith(f"error: NATS at {without_jetstream} {NO_JETSTREAM}")


Call = Callable[[DgdrClient], Awaitable[Any]]
CALLS: dict[str, Call] = {
    "apply": lambda c: c.apply(manifest("x")),
    "delete": lambda c: c.delete("x"),
    "get": lambda c: c.get("x"),
    "list": lambda c: c.list(),
    "history": lambda c: c.history("x"),
    "wait": lambda c: c.wait_for("x", WaitFor("phase", "Deployed"), timeout=60),
    "watch": lambda c: anext(aiter(c.watch("x"))),
}


@pytest.mark.parametrize("call", CALLS)
async def test_every_client_call_says_what_is_missing(
    call: str, nats_server: EmbeddedNatsServer, without_jetstream: str
) -> None:
    for url, error, says in (
        (nats_server.url, ServiceNotSetUp, NO_STREAMS),
        (without_jetstream, NoJetStream, NO_JETSTREAM),
    ):
        async with DgdrClient(ConnectOptions(url=url)) as client, asyncio.timeout(15):
            with pytest.raises(error, match=says.replace("`", ".").replace("?", ".")):
                await CALLS[call](client)
