"""The `dgdr` command line against a running service, as a user runs it (a subprocess)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from events.server import free_port
from projections.status import PARETO_STATUS_ROWS
from tests.integration.conftest import Running, manifest

ROOT = Path(__file__).resolve().parents[2]


async def dgdr(url: str, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dgdr",
        "--server",
        url,
        *args,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_kubectl_like_flow(running: Running) -> None:
    url = running.server.url
    code, _, err = await dgdr(url, "get")
    assert code == 0 and "No resources found in default namespace" in err

    code, out, err = await dgdr(url, "apply", "-f", "examples/qwen3-0.6b.yaml")
    assert code == 0, err
    assert "dynamographdeploymentrequest/qwen3-0-6b created" in out
    code, out, err = await dgdr(
        url, "wait", "qwen3-0-6b", "--for", "phase=Deployed", "--timeout", "60s"
    )
    assert code == 0, err

    code, out, _ = await dgdr(url, "get")
    header, row = out.splitlines()[:2]
    assert header.split() == [
        "NAME",
        "MODEL",
        "BACKEND",
        "PHASE",
        "PROFILING",
        "REASON",
        "MESSAGE",
        "DGD",
        "AGE",
    ]
    assert row.split()[:4] == ["qwen3-0-6b", "Qwen/Qwen3-0.6B", "vllm", "Deployed"]
    assert "qwen3-0-6b-dgd" in row

    code, out, _ = await dgdr(url, "get", "qwen3-0-6b", "-o", "json")
    obj = json.loads(out)
    assert code == 0 and obj["status"]["phase"] == "Deployed"
    assert obj["metadata"]["resourceVersion"].isdigit()

    code, out, _ = await dgdr(url, "history", "qwen3-0-6b", "-o", "json")
    events = json.loads(out)
    assert code == 0 and events[0]["type"] == "Created" and events[-1]["type"] == "DeploymentReady"
    assert int(obj["metadata"]["resourceVersion"]) == events[-1]["sequence"]

    code, out, _ = await dgdr(url, "describe", "qwen3-0-6b")
    assert code == 0
    for part in (
        "Conditions:",
        "Events:",
        "DeploymentReady",
        "ProfilingJobCreated",
        "SpecGenerated",
        "Qwen/Qwen3-0.6B",
    ):
        assert part in out, part

    # the status holds the top of the Pareto front and says so; describe shows all of it
    front = next(e for e in events if e["type"] == "ProfilingCompleted")["payload"]["pareto"]
    kept = obj["status"]["profilingResults"]["pareto"]
    assert len(kept) == PARETO_STATUS_ROWS < len(front)
    assert any(row["config"]["selected"] for row in kept)
    profiling = next(c for c in obj["status"]["conditions"] if c["type"] == "Profiling")
    assert f"holds {PARETO_STATUS_ROWS} of the {len(front)} Pareto configs" in profiling["message"]
    lines = out.splitlines()
    rows = lines[lines.index("Pareto Front:") + 2 :]
    rows = rows[: next(i for i, line in enumerate(rows) if not line.startswith("  "))]
    assert len(rows) == len(front) and sum(row.split()[0] == "*" for row in rows) == 1

    code, out, _ = await dgdr(url, "get", "-o", "yaml")
    assert code == 0 and "kind: List" in out

    # a spec change while Deployed is refused: exit 1, the reason on stderr
    changed = (ROOT / "examples/qwen3-0.6b.yaml").read_text().replace("ttft: 300", "ttft: 400")
    code, _, err = await dgdr(url, "apply", "-f", "-", stdin=changed.encode())
    assert code == 1 and "SpecChangeRejected" in err

    code, out, _ = await dgdr(url, "delete", "qwen3-0-6b")
    assert code == 0 and "deleted" in out


async def test_invalid_example_names_every_field_and_exits_1(running: Running) -> None:
    code, _, err = await dgdr(running.server.url, "apply", "-f", "examples/invalid-sla.yaml")
    assert code == 1
    assert "spec.sla.e2eLatency" in err and "spec.workload.concurrency" in err
    assert "Traceback" not in err
    code, _, err = await dgdr(
        running.server.url, "wait", "invalid-sla", "--for", "phase=Deployed", "--timeout", "10s"
    )
    assert code == 1 and "ValidationFailed" in err


async def test_a_dgdr_deleted_and_applied_again_takes_over_the_dgd_it_left(
    running: Running, tmp_path: Path
) -> None:
    url = running.server.url
    path = tmp_path / "again.yaml"
    path.write_text(json.dumps(manifest("again")))
    code, _, err = await dgdr(url, "apply", "-f", str(path))
    assert code == 0, err
    code, _, err = await dgdr(url, "wait", "again", "--for", "phase=Deployed", "--timeout", "60s")
    assert code == 0, err
    code, _, err = await dgdr(url, "delete", "again")
    assert code == 0, err
    code, out, err = await dgdr(url, "apply", "-f", str(path))
    assert code == 0 and "created" in out, err
    code, _, err = await dgdr(url, "wait", "again", "--for", "phase=Deployed", "--timeout", "60s")
    assert code == 0, err  # before: Failed, DeploymentConflict with the DGD the first one left
    code, out, _ = await dgdr(url, "get", "again", "-o", "json")
    status = json.loads(out)["status"]
    assert status["phase"] == "Deployed" and status["dgdName"] == "again-dgd"


async def test_a_deployment_conflict_is_retried_by_applying_again_once_it_is_gone(
    running: Running, tmp_path: Path
) -> None:
    url = running.server.url
    squatter = manifest("squatter", overrides={"dgd": {
        "apiVersion": "nvidia.com/v1beta1", "kind": "DynamoGraphDeployment",
        "metadata": {"name": "late-dgd"}}})  # fmt: skip
    (tmp_path / "squatter.yaml").write_text(json.dumps(squatter))
    (tmp_path / "late.yaml").write_text(json.dumps(manifest("late")))
    code, _, err = await dgdr(url, "apply", "-f", str(tmp_path / "squatter.yaml"))
    assert code == 0, err
    code, _, err = await dgdr(
        url, "wait", "squatter", "--for", "phase=Deployed", "--timeout", "60s"
    )
    assert code == 0, err
    code, _, err = await dgdr(url, "apply", "-f", str(tmp_path / "late.yaml"))
    assert code == 0, err
    code, _, err = await dgdr(url, "wait", "late", "--for", "phase=Deployed", "--timeout", "60s")
    assert code == 1 and "DeploymentConflict" in err, err

    code, _, err = await dgdr(url, "cluster", "delete", "late-dgd")  # the conflict goes away
    assert code == 0, err
    code, out, err = await dgdr(url, "apply", "-f", str(tmp_path / "late.yaml"))
    assert code == 0 and "unchanged" not in out, (out, err)  # before: unchanged, still Failed
    code, _, err = await dgdr(url, "wait", "late", "--for", "phase=Deployed", "--timeout", "60s")
    assert code == 0, err


async def test_a_name_too_long_for_its_dgd_is_refused_at_apply_naming_the_limit(
    running: Running, tmp_path: Path
) -> None:
    name = "n" * 60  # `<name>-dgd` would be 64 characters, `profile-<name>` 68
    path = tmp_path / "long.yaml"
    path.write_text(json.dumps(manifest(name)))
    code, _, err = await dgdr(running.server.url, "apply", "-f", str(path))
    assert code == 1 and "Traceback" not in err, err
    assert "metadata.name: 60 characters is too long: the limit is 55" in err
    code, _, err = await dgdr(running.server.url, "get", name)
    assert code == 1 and "not found" in err.lower(), err


async def test_user_mistakes_are_one_line_never_a_traceback(
    running: Running, tmp_path: Path
) -> None:
    url = running.server.url
    nowhere = f"nats://127.0.0.1:{free_port()}"
    code, _, err = await dgdr(nowhere, "get")
    assert code == 1 and "cannot reach NATS" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1

    code, _, err = await dgdr(url, "apply", "-f", str(tmp_path / "missing.yaml"))
    assert code == 1 and "cannot read" in err and "Traceback" not in err
    (tmp_path / "broken.yaml").write_text("spec: [unclosed")
    code, _, err = await dgdr(url, "apply", "-f", str(tmp_path / "broken.yaml"))
    assert code == 1 and "Traceback" not in err
    assert "broken.yaml: not YAML" in err and "line 1" in err
    assert len(err.strip().splitlines()) == 1
    (tmp_path / "latin1.yaml").write_bytes("metadata: {name: caf\xe9}".encode("latin-1"))
    code, _, err = await dgdr(url, "apply", "-f", str(tmp_path / "latin1.yaml"))
    assert code == 1 and "latin1.yaml: not UTF-8 text" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = await dgdr(url, "apply", "-f", "-", stdin=b"\xff\xfe")
    assert code == 1 and "<stdin>: not UTF-8 text" in err and "Traceback" not in err

    code, _, err = await dgdr(url, "get", "-o", "table")
    assert code == 2 and "allowed formats are: custom-columns,json,jsonpath,name,wide,yaml" in err
    code, _, err = await dgdr(url, "wait", "x", "--for", "color=blue")
    assert code == 2
    code, _, err = await dgdr(url, "frobnicate")
    assert code == 2
    code, _, err = await dgdr(url, "get", "nope")
    assert code == 1 and "not found" in err
