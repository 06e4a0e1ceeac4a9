"""`dgdr simulate` as a user runs it (a subprocess): the load it simulates is explained, its
verdict agrees with the pick's or says why not, and its percentiles are distinct."""

from __future__ import annotations

import subprocess

from tests.dgdr.cli.test_offline import dgdr_cli


def dgdr(*args: str) -> subprocess.CompletedProcess[str]:
    return dgdr_cli(*args, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"}, timeout=300)


def test_simulate_explains_its_load_and_agrees_with_the_pick() -> None:
    done = dgdr("simulate", "-f", "examples/qwen3-0.6b.yaml")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    out = done.stdout
    assert (
        "load: no workload.requestRate or concurrency in the spec, so the load the pick is sized "
        "for: 8 replicas x batch 160 = 1280 users, each sending its next request when its last "
        "one finishes; they join over the first"
    ) in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if " ms " in line[:8]}
    ttft = rows["TTFT"]  # TTFT ms P50 P90 P99 SLA AT-P90
    p50, p90, p99 = (float(v) for v in ttft[2:5])
    assert p50 < p90 < p99, out
    assert ttft[6] == "met", "the pick meets TTFT 300 ms as estimated, and at p90 as simulated"
    assert "the pick as estimated (roofline, steady state at batch 160 per worker" in out
    assert "SLA met; measured here at p90" in out and out.rstrip().endswith("SLA met")

    helped = dgdr("simulate", "--help")
    assert "the load the pick is sized for" in " ".join(helped.stdout.split())
