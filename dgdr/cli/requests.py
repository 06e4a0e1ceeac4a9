"""The `dgdr` verbs that change or wait over the public NATS contract, kubectl's way: apply, delete,
wait (the reading verbs are `dgdr.cli.reading`).

A DGDR whose pick misses its SLA is reported on stderr as a warning once `wait` sees it (exit code
unchanged); `apply --require-sla` makes that a failure of the DGDR instead.

Failure semantics: a rejected request prints every field error and exits 1; a missing object, a
failed or timed-out wait exits 1 with one line on stderr; a bad option value exits 2.
"""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any

import typer

from dgdr.cli import render
from dgdr.cli.base import app, run, settings_of, with_client
from dgdr.cli.console import err, fail, out
from dgdr.client import DgdrClient, RequestOutcome, load_documents
from dgdr.domain.errors import DgdrError
from dgdr.domain.sla import REQUIRE_SLA_ANNOTATION


def print_outcome(doc_name: str, outcome: RequestOutcome) -> bool:
    status = outcome.get("status")
    if status == "accepted":
        changed = "configured" if outcome.get("events") else "unchanged"
        if "Created" in outcome.get("events", []):
            changed = "created"
        out.print(
            f"dynamographdeploymentrequest/{doc_name} {changed} "
            f"(resourceVersion {outcome.get('resourceVersion', '-')})"
        )
        return True
    head = "invalid" if status == "invalid" else "rejected"
    err.print(
        f"error: dynamographdeploymentrequest/{doc_name} {head}: "
        f"{outcome.get('reason', '')}: {outcome.get('message', '')}",
        markup=False,
    )
    for e in outcome.get("errors", []):
        err.print(f"  {e['field']}: {e['message']}", markup=False)
    return False


def sla_warning(name: str, obj: dict[str, Any]) -> str | None:
    """What a user is told when a DGDR's pick misses its SLA (condition `SLAMet` False): None
    when it meets it, was not checked, or no verdict is recorded yet."""
    sla = render.condition(obj, "SLAMet")
    if sla.get("status") != "False":
        return None
    return f"warning: dynamographdeploymentrequest/{name}: {sla.get('message')}"


def print_sla_warning(name: str, obj: dict[str, Any]) -> None:
    """`sla_warning` on stderr, when there is one (the exit code stays what it was)."""
    warning = sla_warning(name, obj)
    if warning:
        err.print(warning, markup=False, soft_wrap=True)


def require_sla(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` with the annotation that makes a missed SLA fail the DGDR (`dgdr.domain.sla`)."""
    meta = dict(doc.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), REQUIRE_SLA_ANNOTATION: "true"}
    return {**doc, "metadata": meta}


RequireSlaOption = Annotated[
    bool,
    typer.Option(
        "--require-sla",
        help=f"fail the DGDR (reason SLANotMet, nothing deployed) when no config meets its SLA, "
        f"instead of deploying the closest one: sets the annotation {REQUIRE_SLA_ANNOTATION}: "
        f'"true", which kubectl users set themselves',
    ),
]


@app.command()
def apply(
    ctx: typer.Context,
    filename: Annotated[
        str, typer.Option("--filename", "-f", help="manifest file, or - for stdin")
    ],
    required_sla: RequireSlaOption = False,
) -> None:
    """Apply one or more DGDR manifests (YAML or JSON, several documents allowed)."""
    try:
        if filename == "-":
            docs = load_documents("<stdin>", sys.stdin.buffer.read())
        else:
            docs = load_documents(filename)
    except OSError as exc:
        raise fail(f"cannot read {filename}: {exc.strerror or exc}") from None
    except DgdrError as exc:  # not UTF-8, not YAML, a document that is not a mapping
        raise fail(str(exc)) from None
    if not docs:
        raise fail(f"{filename} holds no documents")
    st = settings_of(ctx)

    async def go(client: DgdrClient) -> bool:
        ok = True
        for doc in docs:
            doc = require_sla(doc) if required_sla else doc
            outcome = await client.apply(doc, namespace=st.namespace if st.explicit_ns else None)
            name = str((doc.get("metadata") or {}).get("name", "?"))
            ok = print_outcome(name, outcome) and ok
        return ok

    if not run(with_client(ctx, go)):
        raise typer.Exit(1)


@app.command()
def delete(ctx: typer.Context, name: str) -> None:
    """Delete a DGDR. Its DynamoGraphDeployment is kept."""
    outcome = run(with_client(ctx, lambda c: c.delete(name)))
    if outcome.get("status") != "accepted":
        err.print(f"error: {outcome.get('reason')}: {outcome.get('message')}", markup=False)
        raise typer.Exit(1)
    out.print(f'dynamographdeploymentrequest "{name}" deleted')


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def parse_duration(text: str) -> float:
    m = _DURATION.match(text.strip())
    if not m:
        raise typer.BadParameter(f"{text!r} is not a duration: use e.g. 30s, 2m, 500ms")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    return float(m.group(1)) * scale


@app.command()
def wait(
    ctx: typer.Context,
    name: str,
    for_: Annotated[str, typer.Option("--for", help="phase=<Phase> or resourceVersion=<n>")],
    timeout: Annotated[str, typer.Option(help="e.g. 60s, 2m")] = "60s",
) -> None:
    """Wait until a DGDR reaches a phase (or a resourceVersion). Exit 1 if it fails or times out."""
    key, _, value = for_.partition("=")
    if key not in ("phase", "resourceVersion") or not value:
        raise fail("--for must be phase=<Phase> or resourceVersion=<n>", 2)
    seconds = parse_duration(timeout)

    async def go(client: DgdrClient) -> dict[str, Any]:
        if key == "phase":
            return await client.wait(name, phase=value, timeout=seconds)
        return await client.wait(name, resource_version=value, timeout=seconds)

    obj = run(with_client(ctx, go))
    phase = obj.get("status", {}).get("phase")
    if key == "phase" and phase != value:
        cond = render.condition(obj, "Succeeded")
        raise fail(f"{name} is {phase}: {cond.get('reason')}: {cond.get('message')}")
    out.print(f"dynamographdeploymentrequest/{name} condition met ({key}={value})")
    print_sla_warning(name, obj)
