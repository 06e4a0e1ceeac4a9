"""An SLA no config can meet, as a user applies it (`dgdr` as a subprocess): deployed with a
warning by default, a failure with `--require-sla` (or the annotation kubectl users set)."""

from __future__ import annotations

from dataclasses import replace

import yaml

from dgdr.app.service import Service
from dgdr.client import DgdrClient
from events.connection import ConnectOptions
from events.server import EmbeddedNatsServer
from tests.integration.conftest import Running, fast_config
from tests.integration.test_cli import ROOT, dgdr

EXAMPLE = (ROOT / "examples/qwen3-0.6b.yaml").read_text()


def unmeetable(name: str, annotation: str | None = None) -> bytes:
    text = EXAMPLE.replace("name: qwen3-0-6b", f"name: {name}").replace("ttft: 300", "ttft: 1")
    if annotation is not None:
        text = text.replace(
            f"name: {name}\n",
            f'name: {name}\n  annotations:\n    dgdr.nvidia.com/require-sla: "{annotation}"\n',
        )
    return text.encode()


async def test_an_unmet_sla_deploys_the_closest_config_and_says_so(running: Running) -> None:
    url = running.server.url
    code, out, err = await dgdr(url, "apply", "-f", "-", stdin=unmeetable("tight"))
    assert code == 0 and "tight created" in out, err
    code, out, err = await dgdr(url, "wait", "tight", "--for", "phase=Deployed", "--timeout", "60s")
    assert code == 0, err
    assert "condition met" in out
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1, err
    assert "dynamographdeploymentrequest/tight: SLA missed: TTFT" in warning[0]
    assert "> 1.00 ms" in warning[0] and "(closest achievable config)" in warning[0]
    obj = await running.client.get("tight")
    assert obj is not None
    conditions = {c["type"]: c for c in obj["status"]["conditions"]}
    succeeded = conditions["Succeeded"]
    assert (succeeded["reason"], succeeded["status"]) == ("Deployed", "True")
    assert succeeded["message"].startswith("Deployment is healthy; SLA missed: TTFT")
    assert (conditions["SLAMet"]["status"], conditions["SLAMet"]["reason"]) == (
        "False",
        "SLAMissed",
    )


async def test_a_required_sla_that_is_missed_fails_and_deploys_nothing(running: Running) -> None:
    url = running.server.url
    code, out, err = await dgdr(
        url, "apply", "--require-sla", "-f", "-", stdin=unmeetable("strict")
    )
    assert code == 0 and "strict created" in out, err
    code, _, err = await dgdr(url, "wait", "strict", "--for", "phase=Deployed", "--timeout", "60s")
    assert code == 1 and "Traceback" not in err
    err = " ".join(err.split())  # the console wraps long lines
    assert "strict is Failed (SLANotMet: Profiling failed: SLA missed: TTFT" in err
    assert "Closest config: Picked vllm" in err
    obj = await running.client.get("strict")
    assert obj is not None
    assert obj["metadata"]["annotations"] == {"dgdr.nvidia.com/require-sla": "true"}
    assert obj["status"]["phase"] == "Failed" and "dgdName" not in obj["status"]
    assert "DeploymentStarted" not in [e["type"] for e in await running.client.history("strict")]

    # the annotation as kubectl users write it; a value that is not a boolean is refused
    outcome = await running.client.apply(yaml.safe_load(unmeetable("by-hand", "true")))
    assert outcome["status"] == "accepted", outcome
    failed = await running.client.wait("by-hand", phase="Failed", timeout=60)
    assert failed["status"]["conditions"][0]["reason"] == "SLANotMet"
    outcome = await running.client.apply(yaml.safe_load(unmeetable("typo", "yes")))
    assert outcome["status"] == "invalid", outcome
    fields = [e["field"] for e in outcome["errors"]]
    assert fields == ["metadata.annotations[dgdr.nvidia.com/require-sla]"]


async def test_a_service_that_requires_slas_fails_a_missed_one_unless_the_dgdr_opts_out(
    nats_server: EmbeddedNatsServer,
) -> None:
    service = Service(
        replace(fast_config(nats_server.url), require_sla=True)
    )  # dgdr up --require-sla
    await service.start()
    try:
        async with DgdrClient(ConnectOptions(url=nats_server.url)) as client:
            await client.apply(yaml.safe_load(unmeetable("by-default")))
            await client.apply(yaml.safe_load(unmeetable("opted-out", "false")))
            failed = await client.wait("by-default", phase="Failed", timeout=60)
            assert failed["status"]["conditions"][0]["reason"] == "SLANotMet"
            assert failed["metadata"]["annotations"] == {"dgdr.nvidia.com/require-sla": "true"}
            deployed = await client.wait("opted-out", phase="Deployed", timeout=60)
            assert deployed["status"]["phase"] == "Deployed"
    finally:
        await service.stop()
