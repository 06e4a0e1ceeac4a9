"""The `dgdr` command line: kubectl-like verbs over the public NATS contract, plus `up` and `demo`.

Exit codes: 0 success; 1 a rejected request, a failed wait or an unreachable server (one line on
stderr, never a traceback); 2 a usage error. Global options: `--server/-s` (env `DGDR_NATS_URL`),
`--namespace/-n`, and credentials/TLS options for secured NATS servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml

from dgdr.cli import offline as cli_offline
from dgdr.cli import render
from dgdr.cli.console import err, fail, out
from dgdr.client import DgdrClient, load_documents
from dgdr.domain.errors import DgdrError
from events.connection import DEFAULT_URL, ConnectOptions

app = typer.Typer(
    name="dgdr",
    no_args_is_help=True,
    add_completion=False,
    help="Deploy-by-intent control plane for LLM inference (Dynamo DGDR).",
    pretty_exceptions_enable=False,
)
cluster_app = typer.Typer(
    no_args_is_help=True, help="Inspect and disturb the simulated cluster (for tests and demos)."
)
app.add_typer(cluster_app, name="cluster")

T = TypeVar("T")


class Settings:
    def __init__(self, options: ConnectOptions, namespace: str, explicit_ns: bool = False) -> None:
        self.options, self.namespace, self.explicit_ns = options, namespace, explicit_ns


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


def _run(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except DgdrError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


async def _with_client(ctx: typer.Context, fn: Callable[[DgdrClient], Awaitable[T]]) -> T:
    st = _settings(ctx)
    async with DgdrClient(st.options, namespace=st.namespace) as client:
        return await fn(client)


@app.callback()
def main_options(
    ctx: typer.Context,
    server: Annotated[
        str,
        typer.Option("--server", "-s", envvar="DGDR_NATS_URL", help="NATS URL of the dgdr service"),
    ] = DEFAULT_URL,
    namespace: Annotated[str, typer.Option("--namespace", "-n")] = "default",
    creds: Annotated[
        str | None, typer.Option(envvar="DGDR_NATS_CREDS", help="NATS credentials file")
    ] = None,
    user: Annotated[str | None, typer.Option(envvar="DGDR_NATS_USER")] = None,
    password: Annotated[str | None, typer.Option(envvar="DGDR_NATS_PASSWORD")] = None,
    token: Annotated[str | None, typer.Option(envvar="DGDR_NATS_TOKEN")] = None,
    tls_ca: Annotated[str | None, typer.Option(envvar="DGDR_NATS_TLS_CA")] = None,
    tls_cert: Annotated[str | None, typer.Option(envvar="DGDR_NATS_TLS_CERT")] = None,
    tls_key: Annotated[str | None, typer.Option(envvar="DGDR_NATS_TLS_KEY")] = None,
) -> None:
    options = ConnectOptions(
        url=server,
        creds_file=creds,
        user=user,
        password=password,
        token=token,
        tls_ca=tls_ca,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    source = ctx.get_parameter_source("namespace")
    explicit = source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")
    ctx.obj = Settings(options, namespace, explicit)


# ------------------------------------------------------------------------------------- requests


def _print_outcome(doc_name: str, outcome: dict[str, Any]) -> bool:
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


@app.command()
def apply(
    ctx: typer.Context,
    filename: Annotated[
        str, typer.Option("--filename", "-f", help="manifest file, or - for stdin")
    ],
) -> None:
    """Apply one or more DGDR manifests (YAML or JSON, several documents allowed)."""
    try:
        if filename == "-":
            docs = load_documents("<stdin>", sys.stdin.read())
        else:
            docs = load_documents(filename)
    except (OSError, yaml.YAMLError, DgdrError) as exc:
        raise fail(f"cannot read {filename}: {exc}") from None
    if not docs:
        raise fail(f"{filename} holds no documents")
    st = _settings(ctx)

    async def go(client: DgdrClient) -> bool:
        ok = True
        for doc in docs:
            outcome = await client.apply(doc, namespace=st.namespace if st.explicit_ns else None)
            name = str((doc.get("metadata") or {}).get("name", "?"))
            ok = _print_outcome(name, outcome) and ok
        return ok

    if not _run(_with_client(ctx, go)):
        raise typer.Exit(1)


@app.command()
def delete(ctx: typer.Context, name: str) -> None:
    """Delete a DGDR. Its DynamoGraphDeployment is kept."""
    outcome = _run(_with_client(ctx, lambda c: c.delete(name)))
    if outcome.get("status") != "accepted":
        err.print(f"error: {outcome.get('reason')}: {outcome.get('message')}", markup=False)
        raise typer.Exit(1)
    out.print(f'dynamographdeploymentrequest "{name}" deleted')


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

    objects = _run(_with_client(ctx, go))
    if name and not objects:
        raise fail(f'dynamographdeploymentrequests "{name}" not found')
    if output in ("yaml", "json"):
        data: Any = objects[0] if name else {"apiVersion": "v1", "kind": "List", "items": objects}
        _dump(data, output)
    elif not objects:
        err.print(f"No resources found in {_settings(ctx).namespace} namespace.")
    else:
        out.print(render.table(objects, wide=output == "wide", namespaces=all_namespaces))


@app.command()
def describe(ctx: typer.Context, name: str) -> None:
    """Show a DGDR: spec summary, status, conditions and its history as events."""

    async def go(client: DgdrClient) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        return await client.get(name), await client.history(name)

    obj, events = _run(_with_client(ctx, go))
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
    events = _run(_with_client(ctx, lambda c: c.history(name)))
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

    _run(_with_client(ctx, go))


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

    obj = _run(_with_client(ctx, go))
    phase = obj.get("status", {}).get("phase")
    if key == "phase" and phase != value:
        cond = render.condition(obj, "Succeeded")
        raise fail(f"{name} is {phase}: {cond.get('reason')}: {cond.get('message')}")
    out.print(f"dynamographdeploymentrequest/{name} condition met ({key}={value})")


# ------------------------------------------------------------------------------- up and demo


def _up_config(
    settings: Settings, rollout_delay: float, step_delay: float, roles: str | None = None
) -> Any:
    from dgdr.app.service import ROLES, ServiceConfig

    chosen = ROLES if roles is None else frozenset(r.strip() for r in roles.split(",") if r)
    unknown = chosen - ROLES
    if unknown:
        raise fail(
            f"--roles: unknown {', '.join(sorted(unknown))}; use any of {', '.join(sorted(ROLES))}",
            2,
        )
    return ServiceConfig(
        connect=settings.options,
        rollout_delay=rollout_delay,
        step_delay=step_delay,
        roles=chosen,
    )


@app.command()
def up(
    ctx: typer.Context,
    data_dir: Annotated[Path, typer.Option(help="where the embedded NATS keeps its data")] = Path(
        ".dgdr"
    ),
    port: Annotated[int, typer.Option(help="port of the embedded NATS server")] = 4222,
    embedded: Annotated[
        bool, typer.Option(help="run an embedded NATS server; --no-embedded uses --server instead")
    ] = True,
    rollout_delay: Annotated[float, typer.Option(help="simulated DGD rollout, seconds")] = 1.0,
    step_delay: Annotated[float, typer.Option(help="pause between profiling steps")] = 0.3,
    roles: Annotated[
        str | None,
        typer.Option(help="comma-separated parts to run: requests,projector,reactor,profiler"),
    ] = None,
    cluster: Annotated[
        str,
        typer.Option(
            help="where DGDs go: simulated (NATS KV), emulated (a Kubernetes API emulator, for "
            "kubectl), kubernetes (--kubeconfig, or in-cluster)"
        ),
    ] = "simulated",
    kubeconfig: Annotated[
        Path | None,
        typer.Option(help="kubeconfig of a real cluster (implies --cluster kubernetes)"),
    ] = None,
    write_kubeconfig: Annotated[
        Path | None,
        typer.Option(
            help="with --cluster emulated: write the kubeconfig here (default DATA_DIR/kubeconfig)"
        ),
    ] = None,
    watch_namespace: Annotated[
        str | None,
        typer.Option(
            help="Kubernetes: watch DGDRs in these namespaces only, comma-separated (default all)"
        ),
    ] = None,
    lease_namespace: Annotated[
        str, typer.Option(help="Kubernetes: namespace of the adapter's leader Lease")
    ] = "default",
    lease_duration: Annotated[
        int, typer.Option(help="Kubernetes: seconds a standby waits before taking the Lease over")
    ] = 15,
    log_level: Annotated[str, typer.Option()] = "INFO",
) -> None:
    """Run the service (embedded NATS, profiling worker, deployment target) until interrupted."""
    from dgdr.app.logs import configure

    configure(log_level)
    config = _up_config(_settings(ctx), rollout_delay, step_delay, roles)
    side = _cluster_side(
        cluster,
        kubeconfig,
        write_kubeconfig,
        watch_namespace,
        rollout_delay,
        lease_namespace,
        lease_duration,
    )
    _run(_serve(config, data_dir, port if embedded else None, cluster=side))


CLUSTER_MODES = ("simulated", "emulated", "kubernetes")


def _cluster_side(
    mode: str,
    kubeconfig: Path | None,
    write_kubeconfig: Path | None,
    namespace: str | None,
    rollout_delay: float,
    lease_namespace: str = "default",
    lease_duration: int = 15,
) -> Any:
    if kubeconfig is not None and mode == "simulated":
        mode = "kubernetes"
    if mode not in CLUSTER_MODES:
        raise fail(f"--cluster: unknown {mode!r}; use one of {', '.join(CLUSTER_MODES)}", 2)
    if kubeconfig is not None and mode != "kubernetes":
        raise fail(f"--kubeconfig goes with --cluster kubernetes, not --cluster {mode}", 2)
    if write_kubeconfig is not None and mode != "emulated":
        raise fail("--write-kubeconfig goes with --cluster emulated", 2)
    if mode == "simulated":
        return None
    if kubeconfig is not None and not kubeconfig.is_file():
        raise fail(f"--kubeconfig: no such file {kubeconfig}", 2)
    from k8s.runner import ClusterOptions, KubernetesSide

    return KubernetesSide(
        ClusterOptions(
            mode=mode,
            kubeconfig=kubeconfig,
            write_kubeconfig=write_kubeconfig,
            namespaces=[n.strip() for n in namespace.split(",") if n.strip()]
            if namespace
            else None,
            lease_namespace=lease_namespace,
            lease_duration=lease_duration,
            dgd_ready_delay=rollout_delay,
        )
    )


async def _serve(
    config: Any,
    data_dir: Path,
    port: int | None,
    ready: Callable[[str], Awaitable[None]] | None = None,
    cluster: Any = None,
) -> None:
    from dgdr.app.service import Service
    from events.server import EmbeddedNatsServer

    server = None
    service = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if cluster is not None:
            await _open_cluster(cluster, data_dir)
            config = replace(config, target=cluster.target)
        if port is not None:
            server = await EmbeddedNatsServer(data_dir, port).start()
            config = replace(config, connect=replace(config.connect, url=server.url))
        url = config.connect.url
        service = Service(config)
        await service.start()
        if cluster is not None:
            await cluster.start_adapter(config.connect)
            where = "emulated" if cluster.emulator is not None else "cluster"
            err.print(f"Kubernetes ({where}): kubectl --kubeconfig {cluster.kubeconfig} get dgdr")
        if ready is None:
            err.print(f"dgdr is up: NATS at {url} (export DGDR_NATS_URL={url}); Ctrl-C to stop")
            await stop.wait()
        else:
            await ready(url)
    finally:
        if cluster is not None:
            await cluster.close()
        if service is not None:
            await service.stop()
        if server is not None:
            await server.stop()


async def _open_cluster(cluster: Any, data_dir: Path) -> None:
    from dgdr.domain.errors import ClusterUnreachable

    try:
        await cluster.open(data_dir)
    except ClusterUnreachable as exc:
        raise fail(str(exc), 2) from exc


def _example_path() -> Path:
    local = Path("examples/qwen3-0.6b.yaml")
    return local if local.is_file() else Path(__file__).resolve().parents[1] / local


@app.command()
def demo(
    ctx: typer.Context,
    timeout: Annotated[str, typer.Option(help="give up after this long")] = "120s",
) -> None:
    """Start everything in a temporary directory, apply examples/qwen3-0.6b.yaml, follow it to
    Deployed, and show what was chosen."""
    from dgdr.app.logs import configure
    from events.server import free_port

    configure("WARNING")
    example = _example_path()
    docs = load_documents(example)
    seconds = parse_duration(timeout)
    settings = _settings(ctx)
    result: dict[str, Any] = {}

    async def run_demo(url: str) -> None:
        opts = replace(settings.options, url=url)
        async with DgdrClient(opts) as client:
            out.print(f"[bold]dgdr demo[/]: NATS at {url}; applying {example}")
            outcome = await client.apply(docs[0])
            if not _print_outcome(docs[0]["metadata"]["name"], outcome):
                return
            result["obj"] = await _follow(client, docs[0]["metadata"]["name"], seconds)
            result["history"] = await client.history(docs[0]["metadata"]["name"])

    with tempfile.TemporaryDirectory(prefix="dgdr-demo-") as tmp:
        config = _up_config(settings, rollout_delay=1.0, step_delay=0.3)
        _run(_serve(config, Path(tmp), free_port(), ready=run_demo))
    obj = result.get("obj")
    if not obj or obj.get("status", {}).get("phase") != "Deployed":
        raise fail("the demo DGDR did not reach Deployed")
    st = obj["status"]
    dgd = st["profilingResults"]["selectedConfig"]
    out.print()
    out.print(
        f"[bold green]Deployed[/]: DGD [bold]{st['dgdName']}[/] in namespace "
        f"{obj['metadata']['namespace']}"
    )
    out.print(f"selected: {render.condition(obj, 'Profiling').get('message', '')}")
    for svc_name, svc in dgd.get("spec", {}).get("services", {}).items():
        gpus = svc.get("resources", {}).get("limits", {}).get("gpu", "0")
        out.print(f"  service {svc_name}: replicas {svc.get('replicas', 1)}, GPUs each {gpus}")
    out.print(
        f"pareto front: {len(st['profilingResults'].get('pareto', []))} configs; "
        f"history: {len(result['history'])} stored events"
    )


async def _follow(client: DgdrClient, name: str, timeout: float) -> dict[str, Any]:
    last: tuple[Any, ...] = ()
    latest: dict[str, Any] = {}

    async def loop() -> None:
        nonlocal last, latest
        async for _, _, obj in client.watch(name):
            if obj is None:
                continue
            latest = obj
            st = obj.get("status", {})
            shown = "Profiling" if st.get("phase") == "Profiling" else "Succeeded"
            message = render.condition(obj, shown).get("message", "")
            key = (st.get("phase"), st.get("profilingPhase"), message)
            if key != last:
                last = key
                where = st.get("phase", "") + (
                    f"/{st['profilingPhase']}" if st.get("profilingPhase") else ""
                )
                out.print(f"  [cyan]{where:<28}[/] {message}", markup=True)
            if st.get("phase") in ("Deployed", "Failed"):
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(loop(), timeout)
    return latest


# ---------------------------------------------------------------------------- simulated cluster


async def _cluster(ctx: typer.Context, action: str, name: str | None = None) -> Any:
    from dgdr.app.simcluster import SimulatedCluster

    settings = _settings(ctx)
    async with DgdrClient(settings.options, namespace=settings.namespace) as client:
        cluster = SimulatedCluster(client.nc.jetstream())
        if action == "list":
            return await cluster.list()
        assert name is not None
        if action == "degrade":
            return await cluster.degrade(settings.namespace, name)
        if action == "recover":
            return await cluster.recover(settings.namespace, name)
        return await cluster.delete(settings.namespace, name)


@cluster_app.command("list")
def cluster_list(ctx: typer.Context) -> None:
    """DynamoGraphDeployments in the simulated cluster."""
    for dgd in _run(_cluster(ctx, "list")):
        meta = dgd["metadata"]
        out.print(f"{meta['namespace']}/{meta['name']}\t{dgd['status'].get('state')}")


def _cluster_action(action: str) -> Callable[[typer.Context, str], None]:
    def command(ctx: typer.Context, dgd: str) -> None:
        if not _run(_cluster(ctx, action, dgd)):
            raise fail(f"no DynamoGraphDeployment {dgd} in the simulated cluster")
        out.print(f"dynamographdeployment/{dgd} {action}d")

    command.__doc__ = f"{action.capitalize()} a DynamoGraphDeployment in the simulated cluster."
    return command


for _action in ("degrade", "recover", "delete"):
    cluster_app.command(_action)(_cluster_action(_action))


cli_offline.register(app)


def main() -> None:
    app()
