"""The `dgdr` verbs that read DGDRs over the public NATS contract, kubectl's way: get, describe,
history, watch (apply, delete and wait are in `dgdr.cli.writing`).

Failure semantics: a missing object exits 1 with one line on stderr; a bad option value exits 2.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
import yaml

from dgdr.cli import render
from dgdr.cli.base import app, run, settings_of, with_client
from dgdr.cli.console import err, fail, out
from dgdr.client import DgdrClient, DgdrObject, HistoryEntry

# --------------------------------------------------------------------------------------- status


def _dump(data: Any, fmt: str) -> None:
    if fmt == "json":
        out.print_json(json.dumps(data)) if sys.stdout.isatty() else print(
            json.dumps(data, indent=2)
        )
    else:
        print(yaml.safe_dump(data, sort_keys=False), end="")


@app.command()
def get(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument()] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="wide, yaml or json")] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A")] = False,
) -> None:
    """List DGDRs, or show one, with Dynamo's printer columns."""
    if output not in (None, "wide", "yaml", "json"):
        raise fail(f"--output {output!r} is not supported: use wide, yaml or json", 2)

    async def go(client: DgdrClient) -> list[dict[str, Any]]:
        if name:
            obj = await client.get(name)
            return [obj] if obj else []
        return await client.list(all_namespaces=all_namespaces)

    objects = run(with_client(ctx, go))
    if name and not objects:
        raise fail(f'dynamographdeploymentrequests "{name}" not found')
    if output in ("yaml", "json"):
        data: Any = objects[0] if name else {"apiVersion": "v1", "kind": "List", "items": objects}
        _dump(data, output)
    elif not objects:
        err.print(f"No resources found in {settings_of(ctx).namespace} namespace.")
    else:
        out.print(render.table(objects, wide=output == "wide", namespaces=all_namespaces))


@app.command()
def describe(ctx: typer.Context, name: str) -> None:
    """Show a DGDR: spec summary, status, conditions and its history as events."""

    async def go(client: DgdrClient) -> tuple[DgdrObject | None, list[HistoryEntry]]:
        return await client.get(name), await client.history(name)

    obj, events = run(with_client(ctx, go))
    if obj is None:
        raise fail(f'dynamographdeploymentrequests "{name}" not found')
    for part in render.describe(obj, events):
        out.print(part)


@app.command()
def history(
    ctx: typer.Context,
    name: str,
    output: Annotated[str | None, typer.Option("--output", "-o", help="json or yaml")] = None,
) -> None:
    """The stored events of a DGDR (every incarnation of the name), in order."""
    events = run(with_client(ctx, lambda c: c.history(name)))
    if not events:
        raise fail(f'no events for dynamographdeploymentrequest "{name}"')
    if output in ("json", "yaml"):
        _dump(events, output)
    else:
        out.print(render.history_table(events))


@app.command()
def watch(ctx: typer.Context, name: Annotated[str | None, typer.Argument()] = None) -> None:
    """Print a row each time a DGDR changes (Ctrl-C to stop)."""

    async def go(client: DgdrClient) -> None:
        seen: set[str] = set()
        async for _ns, nm, obj in client.watch(name):
            if obj is None:
                out.print(f"{nm}\t(deleted)")
                continue
            cells = render.row(obj)
            if not seen:
                out.print("  ".join(render.COLUMNS))
            seen.add(nm)
            out.print("  ".join(c or "-" for c in cells), markup=False)

    run(with_client(ctx, go))
