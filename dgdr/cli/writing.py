"""The `dgdr` verbs that change DGDRs or wait for them, kubectl's way: apply, delete, wait.

- `apply -f FILE|DIR|-` (several `-f`, `-R` for subdirectories): every *.json, *.yaml, *.yml of a
  directory in lexical order, every document of a file, the items of a `kind: List`.
- `delete NAME...`, `delete -f FILE|DIR`, `delete --all`; `--ignore-not-found`.
- `wait NAME... --for=phase=<Phase>|condition=<Type>[=<Status>]|delete|resourceVersion=<n>`.

A DGDR whose pick misses its SLA is reported on stderr as a warning once `wait` sees it (exit code
unchanged); `apply --require-sla` makes that a failure of the DGDR instead (`dgdr.domain.sla`).

Failure semantics: each object gets one line, on stdout when it succeeds, on stderr when it does not
(a document of another kind, a rejected request, `Error from server (NotFound): ...`); the command
goes on with the other objects and exits 1 if any failed. A bad option value exits 2 at once (a
`--for` that is not a wait condition, a phase spelled wrongly: the valid ones are listed). `wait`
fails at once for a name that does not exist and for a DGDR that can no longer meet the condition
without a new spec, and counts its `--timeout` from the start of the command (the imports and the
connection included), so the whole command ends within the timeout and a fraction of a second.
"""

import re
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dgdr.cli import STARTED, render
from dgdr.cli.base import app, run, settings_of, with_client
from dgdr.cli.console import err, fail, out
from dgdr.domain.errors import DgdrError, NotFound, WaitTimeout
from dgdr.domain.sla import REQUIRE_SLA_ANNOTATION
from dgdr.domain.waiting import FORMS, Outcome, Verdict, WaitFor, parse_wait_for

if TYPE_CHECKING:  # the client (nats-py) and the models are imported by the commands that use them
    from dgdr.client import DgdrClient, DgdrObject, RequestOutcome
    from dgdr.manifests import Document

RESOURCE = "dynamographdeploymentrequest.nvidia.com"  # as kubectl names a deleted object

FilenameOption = Annotated[
    list[str] | None,
    typer.Option(
        "--filename",
        "-f",
        help="manifest file or directory (*.json, *.yaml, *.yml), or - for stdin; repeatable",
    ),
]
RecursiveOption = Annotated[
    bool, typer.Option("--recursive", "-R", help="with -f DIR, also read its subdirectories")
]


def print_outcome(doc_name: str, outcome: "RequestOutcome") -> bool:
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
        soft_wrap=True,
    )
    for e in outcome.get("errors", []):
        err.print(f"  {e['field']}: {e['message']}", markup=False, soft_wrap=True)
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
        help="fail the DGDR (reason SLANotMet, nothing deployed) when no config meets its SLA, "
        f"instead of deploying the closest one: sets the annotation {REQUIRE_SLA_ANNOTATION}: "
        '"true", which kubectl users set themselves',
    ),
]


def _manifests(filenames: list[str], recursive: bool) -> list["Document"]:
    from dgdr.manifests import load_manifests

    stdin = sys.stdin.buffer.read() if "-" in filenames else None
    try:
        docs = load_manifests(filenames, recursive=recursive, stdin=stdin)
    except DgdrError as exc:  # unreadable, not UTF-8, not YAML, a document that is not a mapping
        raise fail(str(exc)) from None
    if not docs:
        raise fail(f"{', '.join(filenames)}: no documents")
    return docs


def _refused(doc: "Document") -> bool:
    """Print why dgdr will not handle `doc` (another kind), if it will not."""
    problem = doc.kind_problem()
    if problem is not None:
        err.print(f"error: {problem}", markup=False, soft_wrap=True)
    return problem is not None


@app.command()
def apply(
    ctx: typer.Context,
    filename: FilenameOption = None,
    recursive: RecursiveOption = False,
    required_sla: RequireSlaOption = False,
) -> None:
    """Apply DGDR manifests: files, directories, `kind: List`s, several documents per file."""
    if not filename:
        raise fail("give the manifests with -f FILE|DIR (or -f - for stdin)", 2)
    docs = _manifests(filename, recursive)
    st = settings_of(ctx)

    async def go(client: "DgdrClient") -> bool:
        ok = True
        for doc in docs:
            if _refused(doc):
                ok = False
                continue
            body = require_sla(doc.body) if required_sla else doc.body
            outcome = await client.apply(body, namespace=st.namespace if st.explicit_ns else None)
            ok = print_outcome(doc.name or "?", outcome) and ok
        return ok

    if not run(ctx, with_client(ctx, go)):
        raise typer.Exit(1)


def print_deleted(name: str, outcome: "RequestOutcome", ignore_not_found: bool) -> bool:
    if outcome.get("status") == "accepted":
        out.print(f'{RESOURCE} "{name}" deleted', markup=False, soft_wrap=True)
        return True
    reason = outcome.get("reason", "Rejected")
    if reason == "NotFound":
        if ignore_not_found:
            return True
        err.print(
            f"Error from server (NotFound): {NotFound('', name)}", markup=False, soft_wrap=True
        )
    else:
        err.print(
            f"Error from server ({reason}): {outcome.get('message', '')}",
            markup=False,
            soft_wrap=True,
        )
    return False


@app.command()
def delete(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="DGDR names")] = None,
    filename: FilenameOption = None,
    recursive: RecursiveOption = False,
    all_: Annotated[bool, typer.Option("--all", help="every DGDR in the namespace")] = False,
    ignore_not_found: Annotated[
        bool, typer.Option("--ignore-not-found", help="a missing DGDR is not an error")
    ] = False,
) -> None:
    """Delete DGDRs by name, by manifest (-f) or all in the namespace. Their DGDs are kept."""
    if sum((bool(names), bool(filename), all_)) != 1:
        raise fail("give one or more names, or -f FILE|DIR, or --all (one of them)", 2)
    docs = _manifests(filename, recursive) if filename else []
    st = settings_of(ctx)

    async def targets(client: "DgdrClient") -> tuple[list[tuple[str | None, str]], bool]:
        if names:
            return [(None, name) for name in names], True
        if all_:
            return [(None, obj["metadata"]["name"]) for obj in await client.list()], True
        found: list[tuple[str | None, str]] = []
        ok = True
        for doc in docs:
            if _refused(doc):
                ok = False
            elif not doc.name:
                err.print(f"error: {doc.where}: no metadata.name", markup=False, soft_wrap=True)
                ok = False
            elif doc.namespace and st.explicit_ns and doc.namespace != st.namespace:
                err.print(
                    f"error: {doc.where}: the namespace from the object ({doc.namespace}) does "
                    f"not match the namespace asked for ({st.namespace})",
                    markup=False,
                    soft_wrap=True,
                )
                ok = False
            else:
                found.append((doc.namespace, doc.name))
        return found, ok

    async def go(client: "DgdrClient") -> bool:
        found, ok = await targets(client)
        if all_ and not found:
            err.print(f"No resources found in {st.namespace} namespace.")
        for namespace, name in found:
            outcome = await client.delete(name, namespace=namespace)
            ok = print_deleted(name, outcome, ignore_not_found) and ok
        return ok

    if not run(ctx, with_client(ctx, go)):
        raise typer.Exit(1)


# ------------------------------------------------------------------------------------------ wait

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def parse_duration(text: str) -> float:
    m = _DURATION.match(text.strip())
    if not m:
        raise typer.BadParameter(f"{text!r} is not a duration: use e.g. 30s, 2m, 500ms")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    return float(m.group(1)) * scale


def print_wait_result(name: str, until: WaitFor, found: Verdict, obj: "DgdrObject | None") -> bool:
    """One line for a finished wait: met on stdout, or why it never will be on stderr."""
    if found.outcome is Outcome.MET:
        out.print(
            f"dynamographdeploymentrequest/{name} condition met ({until})",
            markup=False,
            soft_wrap=True,
        )
        if obj is not None:
            print_sla_warning(name, obj)
        return True
    err.print(f"error: {name} is {found.why}", markup=False, soft_wrap=True)
    return False


@app.command()
def wait(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="DGDR names")],
    for_: Annotated[str, typer.Option("--for", help=FORMS)],
    timeout: Annotated[str, typer.Option(help="e.g. 60s, 2m (from the command's start)")] = "60s",
) -> None:
    """Wait until DGDRs meet a condition; exit 1 if one fails, cannot meet it, or times out."""
    import asyncio

    from projections.status import CONDITION_ORDER

    try:
        until = parse_wait_for(for_, CONDITION_ORDER)
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    deadline = STARTED + parse_duration(timeout)

    async def one(client: "DgdrClient", name: str) -> bool:
        try:
            found, obj = await client.wait_for(name, until, timeout=deadline - time.monotonic())
        except NotFound as exc:
            err.print(f"Error from server (NotFound): {exc}", markup=False, soft_wrap=True)
            return False
        except WaitTimeout:
            err.print(
                f"error: timed out waiting for {until} on dynamographdeploymentrequest/{name} "
                f"(--timeout {timeout})",
                markup=False,
                soft_wrap=True,
            )
            return False
        return print_wait_result(name, until, found, obj)

    async def go(client: "DgdrClient") -> bool:
        return all(await asyncio.gather(*(one(client, name) for name in names)))

    if not run(ctx, with_client(ctx, go)):
        raise typer.Exit(1)
