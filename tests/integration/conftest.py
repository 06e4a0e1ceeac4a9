"""A running service (embedded nats-server + Service in this event loop) and a connected client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from dgdr.client import DgdrClient
from dgdr.service import Service, ServiceConfig
from events.connection import ConnectOptions
from events.server import EmbeddedNatsServer


@dataclass
class Running:
    server: EmbeddedNatsServer
    service: Service
    client: DgdrClient


def manifest(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "Qwen/Qwen3-0.6B",
        "backend": "vllm",
        "sla": {"ttft": 300, "itl": 20},
        "workload": {"isl": 3000, "osl": 500},
        "hardware": {"gpuSku": "h200_sxm", "totalGpus": 8, "numGpusPerNode": 8},
    }
    body.update(spec)
    return {
        "apiVersion": "nvidia.com/v1beta1",
        "kind": "DynamoGraphDeploymentRequest",
        "metadata": {"name": name},
        "spec": body,
    }


def fast_config(url: str) -> ServiceConfig:
    return ServiceConfig(
        connect=ConnectOptions(url=url), rollout_delay=0.2, step_delay=0.01, ack_wait=2.0
    )


@pytest.fixture
async def running(nats_server: EmbeddedNatsServer) -> AsyncIterator[Running]:
    service = Service(fast_config(nats_server.url))
    await service.start()
    client = DgdrClient(ConnectOptions(url=nats_server.url))
    await client.connect()
    try:
        yield Running(nats_server, service, client)
    finally:
        await client.close()
        await service.stop()
