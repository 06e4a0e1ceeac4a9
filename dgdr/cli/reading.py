"""The reading verbs, kubectl's way: `get` (with `-o`, `-l`, `-A`, `-w`), `describe`, `history`,
`watch` (kept as an alias of `get -w`) and `version`.

`get -w` prints the table of the objects now (header and rows; `--watch-only` skips them), then a
row for each change, as kubectl does; a deleted object prints its last row once and names no
deleted object at the start.

Failure semantics: a missing object exits 1 with one line on stderr; a bad `-o` or `-l` value
exits 2 with one line naming the allowed values or the problem; Ctrl-C ends a watch with exit 130.
"""

from typing import TYPE_CHECKING, Annotated

import typer

from dgdr.cli import render
from dgdr.cli.base import app, load_nats, run, settings_of, with_client
from dgdr.cli.console import fail
from dgdr.cli.output import Output, dump, parse_output
from events.connection import connect
from k8s.labels import LabelSelector, parse_label_selector

if TYPE_CHECKING:
    from dgdr.client import DgdrClient, DgdrObject, HistoryEntry

OutputOption = Annotated[
    str | None,
    typer.Option(
        "--output",
        "-o",
        metavar="FORMAT",
        help="wide, name, json, yaml, jsonpath=TEMPLATE or custom-columns=HEADER:PATH,...",
    ),
]
SelectorOption = Annotated[
    str | None,
    typer.Option(
        "--selector",
        "-l",
        metavar="SELECTOR",
        help="label selector: key=value, key!=value, key in (a,b), key notin (a,b), key, !key",
    ),
]


def _print(text: str, end: str = "\n") -> None:
    if text:
        print(text, end=end, flush=True)


def _output(value: str | None, namespaces: bool) -> Output:
    try:
        return parse_output(value, namespaces)
    except ValueError as exc:
        raise fail(str(exc), 2) from None


def _selector(value: str | None) -> LabelSelector:
    try:
        return parse_label_selector(value)
    except ValueError as exc:
        raise fail(f"-l {value!r}: {exc}", 2) from None


def _selected(objects: list["DgdrObject"], selector: LabelSelector) -> list["DgdrObject"]:
    return [o for o in objects if selector.matches(o["metadata"].get("labels"))]


@app.command()
def get(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(metavar="NAME")] = None,
    output: OutputOption = None,
    selector: SelectorOption = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="list across all namespaces")
    ] = False,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="after listing, print each change")
    ] = False,
    watch_only: Annotated[
        bool, typer.Option("--watch-only", help="print only the changes, not the objects now")
    ] = False,
) -> None:
    """List DGDRs, or show one, with Dynamo's printer columns."""
    out = _output(output, all_namespaces and not name)
    labels = _selector(selector)
    if name and not labels.empty:
        raise fail("a name cannot be given with a selector (-l)", 2)
    if watch or watch_only:
        _watch(ctx, name, out, labels, all_namespaces, watch_only)
        return

    async def go(client: "DgdrClient") -> list["DgdrObject"]:
        if name:
            obj = await client.get(name)
            return [obj] if obj else []
        return await client.list(all_namespaces=all_namespaces)

    objects = _selected(run(ctx, with_client(ctx, go)), labels)
    if name and not objects:
        raise fail(f'dynamographdeploymentrequests "{name}" not found')
    if not objects and out.kind not in ("json", "yaml", "jsonpath"):
        where = "any" if all_namespaces else f"{settings_of(ctx).namespace}"
        typer.echo(f"No resources found in {where} namespace.", err=True)
        return
    _print(out.objects(objects, single=bool(name)), end="" if out.kind == "jsonpath" else "\n")


def _watch(
    ctx: typer.Context,
    name: str | None,
    out: Output,
    labels: LabelSelector,
    all_namespaces: bool,
    watch_only: bool,
) -> None:
    async def go(client: "DgdrClient") -> None:
        async with client.watching(name, all_namespaces=all_namespaces) as watch:
            current = _selected(watch.current, labels)
            if name and not current and not watch_only:
                raise fail(f'dynamographdeploymentrequests "{name}" not found')
            last = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in current}
            if current and not watch_only:
                _print(out.objects(current, single=False) if out.tabular else _each(out, current))
            async for ns, nm, obj in watch.changes:
                shown = obj if obj is not None else last.pop((ns, nm), None)
                if shown is None or not labels.matches(shown["metadata"].get("labels")):
                    continue
                if obj is not None:
                    last[(ns, nm)] = obj
                _print(out.change(shown))

    run(ctx, with_client(ctx, go))


def _each(out: Output, objects: list["DgdrObject"]) -> str:
    return "\n".join(out.change(o) for o in objects)


@app.command(help="Print each change of DGDRs, as `dgdr get -w` (an alias of it).")
def watch(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(metavar="NAME")] = None,
    output: OutputOption = None,
    selector: SelectorOption = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A")] = False,
) -> None:
    out = _output(output, all_namespaces and not name)
    labels = _selector(selector)
    _watch(ctx, name, out, labels, all_namespaces, watch_only=False)


@app.command()
def describe(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
    """Show a DGDR: spec summary, status, conditions and its history as events."""

    async def go(client: "DgdrClient") -> "tuple[DgdrObject | None, list[HistoryEntry]]":
        return await client.get(name), await client.history(name)

    obj, events = run(ctx, with_client(ctx, go))
    if obj is None:
        raise fail(f'dynamographdeploymentrequests "{name}" not found')
    _print("\n".join(render.describe(obj, events)))


@app.command()
def history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    output: Annotated[
        str | None, typer.Option("--output", "-o", metavar="FORMAT", help="json or yaml")
    ] = None,
) -> None:
    """The stored events of a DGDR (every incarnation of the name), in order."""
    if output not in (None, "json", "yaml"):
        raise fail(f"-o {output!r}: use json or yaml (or no -o for the table)", 2)
    events = run(ctx, with_client(ctx, lambda c: c.history(name)))
    if not events:
        raise fail(f'no events for dynamographdeploymentrequest "{name}"')
    _print(dump(events, output) if output else render.history_table(events))


def client_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("dgdr")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


@app.command()
def version(
    ctx: typer.Context,
    client: Annotated[bool, typer.Option("--client", help="the client version only")] = False,
) -> None:
    """The dgdr client's version and the version of the NATS server it reaches (as `kubectl
    version`). The dgdr service does not publish its own version."""
    _print(f"Client Version: {client_version()}")
    if client:
        return

    async def server() -> str:
        load_nats(settings_of(ctx).options)
        nc = await connect(settings_of(ctx).options, reconnect=False, timeout=5)
        try:
            v = nc.connected_server_version
            return f"{v.major}.{v.minor}.{v.patch}"
        finally:
            await nc.close()

    found = run(ctx, server())  # nothing answers: one line and exit 1, after the client's version
    _print(f"NATS Server Version: {found} ({settings_of(ctx).options.safe_url})")
