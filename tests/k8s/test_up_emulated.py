"""`dgdr up --cluster emulated` as a user runs it, with kubectl and the dgdr CLI as subprocesses: a
DGDR applied with `dgdr apply` is shown to kubectl (the adapter mirrors it as an object), and
restarted on the same data dir the emulator serves the same objects (same uids, resourceVersions
continuing), so the store and the cluster still agree: no NameInUse, nothing re-submitted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from events.server import free_port
from tests.support import manifest, until

from .webhook.test_kubectl_flow import run_kubectl

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[2]


def forget(path: Path) -> None:
    path.unlink(missing_ok=True)


async def up(data: Path, port: int, kc: Path, log: Path) -> asyncio.subprocess.Process:
    forget(kc)  # written again once this one is up
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dgdr", "up", "--data-dir", str(data), "--port", str(port),
            "--cluster", "emulated", "--write-kubeconfig", str(kc), cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL, stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
        )  # fmt: skip

    def written() -> bool:
        assert proc.returncode is None, f"dgdr up exited: {log.read_text()[-2000:]}"
        return kc.is_file() and kc.stat().st_size > 0

    await until(written, 60, "dgdr up to write the kubeconfig")
    return proc


async def down(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 30)
    except TimeoutError:
        os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == 0


async def dgdr(data: Path, *args: str) -> tuple[int, str, str]:
    context = str(data / "contexts" / "client.json")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dgdr", "--context", context, *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_a_nats_dgdr_shows_in_kubectl_and_survives_a_restart(tmp_path: Path) -> None:
    data, kc, log, port = (
        tmp_path / "data",
        tmp_path / "kc" / "config",
        tmp_path / "up.log",
        free_port(),
    )
    (tmp_path / "seen.yaml").write_text(json.dumps(manifest("seen", "default")))

    async def kubectl_get(name: str) -> dict[str, Any] | None:
        code, out, _ = await run_kubectl(kc, "get", "dgdr", name, "-o", "json")
        return json.loads(out) if code == 0 else None

    async def deployed() -> dict[str, Any] | None:
        obj = await kubectl_get("seen")
        return obj if obj and (obj.get("status") or {}).get("phase") == "Deployed" else None

    proc = await up(data, port, kc, log)
    try:
        code, out, err = await dgdr(data, "apply", "-f", str(tmp_path / "seen.yaml"))
        assert code == 0 and "created" in out, err
        before: dict[str, Any] = await until(
            deployed, 60, "kubectl to show the DGDR applied with dgdr apply"
        )
    finally:
        await down(proc)

    proc = await up(data, port, kc, log)
    try:
        after: dict[str, Any] = await until(deployed, 60, "the DGDR after the restart")
        assert after["metadata"]["uid"] == before["metadata"]["uid"]
        rv = int(after["metadata"]["resourceVersion"])
        assert rv >= int(before["metadata"]["resourceVersion"])
        (tmp_path / "new.yaml").write_text(json.dumps(manifest("later", "default")))
        code, _, err = await run_kubectl(kc, "apply", "-f", str(tmp_path / "new.yaml"))
        assert code == 0, err
        later = await kubectl_get("later")
        assert later is not None and int(later["metadata"]["resourceVersion"]) > rv
        code, out, _ = await run_kubectl(kc, "get", "events", "-o", "json")
        assert "NameInUse" not in out
        code, out, err = await dgdr(data, "history", "seen", "-o", "json")
        assert code == 0 and [e["type"] for e in json.loads(out)].count("Created") == 1, err
    finally:
        await down(proc)
