"""Helpers every test package shares: DGDR manifests, and waiting on a condition with a deadline.

`manifest(name, namespace=None, **spec)` builds a DGDR manifest for Qwen3-0.6B on 8 x H200 with a
meetable SLA (the quickest full lifecycle); keyword arguments replace whole spec fields, and a field
given as None is left out.

`until(check)` polls `check` (a plain or an async callable) until it returns something truthy and
returns that value; past the deadline it fails the test with `what` (or the check's name). Use it
instead of a sleep: a test waits for a condition, never for a length of time. For an absence ("X
never happens"), first wait for a positive signal that comes after X would have (a later event, a
later resourceVersion), then assert X is not there.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

BASE_SPEC: dict[str, Any] = {
    "model": "Qwen/Qwen3-0.6B",
    "backend": "vllm",
    "sla": {"ttft": 300, "itl": 20},
    "workload": {"isl": 3000, "osl": 500},
    "hardware": {"gpuSku": "h200_sxm", "totalGpus": 8, "numGpusPerNode": 8},
}


def manifest(name: str, namespace: str | None = None, **spec: Any) -> dict[str, Any]:
    body = {k: v for k, v in {**BASE_SPEC, **spec}.items() if v is not None}
    metadata = {"name": name} if namespace is None else {"name": name, "namespace": namespace}
    return {
        "apiVersion": "nvidia.com/v1beta1",
        "kind": "DynamoGraphDeploymentRequest",
        "metadata": metadata,
        "spec": body,
    }


async def until(
    check: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,
    what: str = "",
    interval: float = 0.02,
) -> T:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value: Any = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[no-any-return]
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")
        await asyncio.sleep(interval)
