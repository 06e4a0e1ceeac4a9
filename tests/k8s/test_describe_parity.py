"""`dgdr describe` and `kubectl describe` of the same DGDR tell the same story: the same Events, each
with the same type and reason, and every Kubernetes Event named after the stored event it tells
(`<name>.<uid8>.<seq>.<index>`, so a restart records nothing twice).

A DGDR runs to Deployed through the emulated cluster, then someone deletes its DGD (a Warning, and
Failed); both stories are compared after each. `dgdr describe` runs as a user runs it (a subprocess
against the service's NATS), `kubectl describe` is the real kubectl against the emulator.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dgdr.cli.render import story
from k8s.events import event_name
from k8s.kube import DGD_PLURAL, DGD_VERSION, GROUP
from tests.support import until

from .conftest import Kube, dgdr
from .test_kubectl import kubectl

pytestmark = pytest.mark.timeout(150)

ROOT = Path(__file__).resolve().parents[2]
NAME = "parity"
EVENT_TYPES = ("Normal", "Warning")


def events_section(text: str) -> list[tuple[str, str]]:
    """(type, reason) of each row of a describe output's Events table, as listed (a wrapped
    message's continuation lines are not rows)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Events:"))
    rows = (line.split() for line in lines[start + 1 :])
    return [(cells[0], cells[1]) for cells in rows if len(cells) > 1 and cells[0] in EVENT_TYPES]


async def dgdr_describe(url: str, name: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dgdr",
        "--server",
        url,
        "describe",
        name,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def kubectl_story(kube: Kube, last: str) -> list[tuple[str, str]]:
    """The Events kubectl describe lists, once the one with reason `last` is among them."""

    async def told() -> list[tuple[str, str]]:
        events = events_section(await kubectl(kube.kubeconfig, "describe", "dgdr", NAME))
        return events if last in (reason for _, reason in events) else []

    return await until(told, timeout=30, what=f"kubectl describe to list {last}")


async def recorded_events(kube: Kube, count: int) -> dict[str, tuple[str, str]]:
    """Kubernetes Events of the DGDR by name: (type, reason), once there are `count` of them."""

    async def listed() -> dict[str, tuple[str, str]]:
        items = await kube.events(NAME)
        return {e.metadata.name: (e.type, e.reason) for e in items} if len(items) >= count else {}

    return await until(listed, timeout=30, what=f"{count} Kubernetes Events")


def expected_events(history: list[dict[str, Any]], uid: str) -> dict[str, tuple[str, str]]:
    """The Kubernetes Event each noteworthy stored event should be: name -> (type, reason)."""
    position: dict[str, int] = {}  # an event's index in its commit, counting untold events
    seen: Counter[int] = Counter()
    for e in history:
        position[e["id"]] = seen[e["sequence"]]
        seen[e["sequence"]] += 1
    return {
        event_name(NAME, uid, e["sequence"], position[e["id"]]): (d.type, d.reason)
        for e, d in story(history, uid)
    }


async def assert_same_story(kube: Kube, last: str) -> list[tuple[str, str]]:
    assert kube.nats_client is not None
    from_kubectl = await kubectl_story(kube, last)
    from_dgdr = events_section(await dgdr_describe(kube.nats.url, NAME))
    assert Counter(from_dgdr) == Counter(from_kubectl), (from_dgdr, from_kubectl)
    assert from_dgdr[-1][1] == last

    obj = await kube.nats_client.get(NAME)
    assert obj is not None
    expected = expected_events(await kube.nats_client.history(NAME), obj["metadata"]["uid"])
    assert await recorded_events(kube, len(expected)) == expected
    return from_dgdr


async def test_dgdr_describe_and_kubectl_describe_give_the_same_reasons(kube: Kube) -> None:
    await kube.create(dgdr(NAME))
    await kube.phase(NAME, "Deployed", timeout=60)
    deployed = await assert_same_story(kube, last="DeploymentReady")
    assert [reason for _, reason in deployed][:2] == ["Initialized", "ProfilingJobCreated"]
    assert {"SpecGenerated", "Deploying", "DeploymentCreated"} <= {r for _, r in deployed}
    assert all(kind == "Normal" for kind, _ in deployed)

    await kube.objects.delete_namespaced_custom_object(
        GROUP, DGD_VERSION, "default", DGD_PLURAL, f"{NAME}-dgd"
    )
    await kube.phase(NAME, "Failed")
    failed = await assert_same_story(kube, last="DeploymentDeleted")
    assert failed[-1] == ("Warning", "DeploymentDeleted")
