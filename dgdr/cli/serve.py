"""`dgdr up` (the service, with an embedded NATS and a simulated, emulated or real cluster) and
`dgdr demo` (all of it in a temporary directory, one example followed to Deployed).

Failure semantics: bad option combinations exit 2 before anything starts; SIGINT/SIGTERM stop the
service cleanly; an unreachable cluster is one line and exit 2.

The embedded NATS server runs with authorization (`events.auth`): the service connects as `service`,
the demo's client as `client`, and the client and admin contexts are written to DATA_DIR/contexts;
`--insecure` turns it off and says so on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from dgdr.cli import render
from dgdr.cli.base import Settings, app, run, settings_of
from dgdr.cli.console import err, fail, out
from dgdr.cli.writing import parse_duration, print_outcome
from dgdr.client import DgdrClient, load_documents
from events.connection import ConnectOptions, redact_url

SYNC_INTERVAL = re.compile(r"always|[0-9]+(ms|s|m|h)")


def _check_durability(replicas: int, sync: str | None, embedded: bool) -> None:
    """`--replicas` and `--sync`: exit 2 with one line when they cannot apply."""
    if replicas < 1:
        raise fail(f"--replicas {replicas}: use 1 (a single server) or more (a cluster)", 2)
    if replicas > 1 and embedded:
        raise fail(
            f"--replicas {replicas} needs a JetStream cluster: the embedded server is a single "
            "server; use --no-embedded --server nats://host1:4222,nats://host2:4222,...",
            2,
        )
    if sync is not None and not embedded:
        raise fail(
            "--sync sets the embedded server's fsync; for your own servers set "
            "`jetstream { sync_interval: always }` in their configuration",
            2,
        )
    if sync is not None and not SYNC_INTERVAL.fullmatch(sync):
        raise fail(f"--sync {sync!r}: use always, or a duration such as 500ms, 10s, 2m", 2)


def _up_config(
    settings: Settings, rollout_delay: float, roles: str | None = None, replicas: int = 1
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
        connect=settings.service_options,
        rollout_delay=rollout_delay,
        roles=chosen,
        replicas=replicas,
    )


# `dgdr up`'s options for the durability, trust and webhook settings.
WebhookPortOption = Annotated[
    int | None,
    typer.Option(
        help="serve the DGDR admission and conversion webhooks over HTTPS on this port "
        "(emulated: always, on a free port unless given; kubernetes: only with this option)"
    ),
]
WebhookCertDirOption = Annotated[
    Path | None,
    typer.Option(
        help="tls.crt, tls.key (and ca.crt) for the webhooks, e.g. a mounted cert-manager "
        "Secret (default: a self-signed CA generated into DATA_DIR/webhook-tls)"
    ),
]
ReplicasOption = Annotated[
    int,
    typer.Option(
        help="copies of every stream and bucket: 1 for a single server, 3 for a 3-node "
        "JetStream cluster (with --no-embedded)"
    ),
]
SyncOption = Annotated[
    str | None,
    typer.Option(
        help="embedded server: JetStream fsync interval, `always` (every message, slower) "
        "or a duration (default: the server's 2m; see the README on durability)"
    ),
]
ModelDirOption = Annotated[
    list[Path] | None,
    typer.Option(
        help="a directory whose Hugging Face config.json files spec.model may name as a local "
        "path (repeatable); without it, a spec.model that is a path is refused",
        exists=True,
        file_okay=False,
        resolve_path=True,
    ),
]
InsecureOption = Annotated[
    bool,
    typer.Option(
        help="embedded NATS without authorization: any local process may write history, "
        "status, or delete streams (default: users and permissions, contexts in "
        "DATA_DIR/contexts)"
    ),
]


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
    webhook_port: WebhookPortOption = None,
    webhook_cert_dir: WebhookCertDirOption = None,
    replicas: ReplicasOption = 1,
    sync: SyncOption = None,
    model_dir: ModelDirOption = None,
    log_level: Annotated[str, typer.Option()] = "INFO",
    insecure: InsecureOption = False,
) -> None:
    """Run the service (embedded NATS, profiling worker, deployment target) until interrupted."""
    from dgdr.app.logs import LEVELS, configure

    if log_level.upper() not in LEVELS:
        raise fail(f"--log-level {log_level!r}: use one of {', '.join(LEVELS)}", 2)
    if insecure and not embedded:
        raise fail("--insecure goes with the embedded server (not with --no-embedded)", 2)
    _check_durability(replicas, sync, embedded)
    config = _up_config(settings_of(ctx), rollout_delay, roles, replicas)
    config = replace(config, model_dirs=tuple(model_dir or ()))
    side = _cluster_side(
        cluster,
        kubeconfig,
        write_kubeconfig,
        watch_namespace,
        rollout_delay,
        lease_namespace,
        lease_duration,
        webhook=(webhook_port, webhook_cert_dir),
    )
    configure(log_level)
    run(
        _serve(
            config,
            data_dir,
            port if embedded else None,
            cluster=side,
            secure=not insecure,
            sync=sync,
        )
    )


CLUSTER_MODES = ("simulated", "emulated", "kubernetes")


def _cluster_side(
    mode: str,
    kubeconfig: Path | None,
    write_kubeconfig: Path | None,
    namespace: str | None,
    rollout_delay: float,
    lease_namespace: str = "default",
    lease_duration: int = 15,
    webhook: tuple[int | None, Path | None] = (None, None),
) -> Any:
    if kubeconfig is not None and mode == "simulated":
        mode = "kubernetes"
    if mode not in CLUSTER_MODES:
        raise fail(f"--cluster: unknown {mode!r}; use one of {', '.join(CLUSTER_MODES)}", 2)
    if kubeconfig is not None and mode != "kubernetes":
        raise fail(f"--kubeconfig goes with --cluster kubernetes, not --cluster {mode}", 2)
    if write_kubeconfig is not None and mode != "emulated":
        raise fail("--write-kubeconfig goes with --cluster emulated", 2)
    webhook_port, webhook_cert_dir = webhook
    if mode == "simulated" and (webhook_port is not None or webhook_cert_dir is not None):
        raise fail("--webhook-port and --webhook-cert-dir go with --cluster emulated|kubernetes", 2)
    if mode == "kubernetes" and webhook_cert_dir is not None and webhook_port is None:
        raise fail("--webhook-cert-dir goes with --webhook-port", 2)
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
            webhook_port=webhook_port,
            webhook_cert_dir=webhook_cert_dir,
        )
    )


async def _serve(
    config: Any,
    data_dir: Path,
    port: int | None,
    ready: Callable[[ConnectOptions], Awaitable[None]] | None = None,
    cluster: Any = None,
    secure: bool = True,
    sync: str | None = None,
) -> None:
    from dgdr.app.service import Service
    from events.auth import start_embedded

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
        client = config.connect
        if port is not None:
            embedded = await start_embedded(data_dir, port, secure=secure, jetstream_sync=sync)
            server = embedded.server
            config = replace(config, connect=embedded.roles["service"])
            client = embedded.roles["client"]
            if not secure:
                err.print(
                    f"warning: --insecure: NATS at {server.url} has NO authorization; any process "
                    "that reaches it may write history and status or delete streams",
                    markup=False,
                )
        service = Service(config)
        await service.start()
        if cluster is not None:
            await cluster.start_adapter(config.connect)
            where = "emulated" if cluster.emulator is not None else "cluster"
            err.print(f"Kubernetes ({where}): kubectl --kubeconfig {cluster.kubeconfig} get dgdr")
            if getattr(cluster, "webhooks", None) is not None:
                err.print(f"DGDR admission and conversion webhooks: {cluster.webhooks.url}")
        if ready is None:
            err.print(_banner(config.connect, data_dir if port is not None else None, secure))
            await stop.wait()
        else:
            await ready(client)
    finally:
        if cluster is not None:
            await cluster.close()
        if service is not None:
            await service.stop()
        if server is not None:
            await server.stop()


def _banner(service: ConnectOptions, data_dir: Path | None, secure: bool) -> str:
    shown = redact_url(service.url)
    if data_dir is None and service.identity != "an anonymous connection":
        return f"dgdr is up: NATS at {shown} as {service.identity}; Ctrl-C to stop"
    if data_dir is None or not secure:
        return f"dgdr is up: NATS at {shown} (export DGDR_NATS_URL={shown}); Ctrl-C to stop"
    contexts = (data_dir / "contexts").resolve()
    return (
        f"dgdr is up: NATS at {shown} with authorization; contexts in {contexts} "
        f"(export DGDR_CONTEXT={contexts / 'client.json'}; admin.json for operators); "
        "Ctrl-C to stop"
    )


async def _open_cluster(cluster: Any, data_dir: Path) -> None:
    from dgdr.domain.errors import ConfigurationError

    try:
        await cluster.open(data_dir)
    except ConfigurationError as exc:  # no usable cluster, or unusable webhook certificates
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
    settings = settings_of(ctx)
    result: dict[str, Any] = {}

    async def run_demo(client_options: ConnectOptions) -> None:
        async with DgdrClient(client_options) as client:
            out.print(
                f"[bold]dgdr demo[/]: NATS at {client_options.safe_url} as user "
                f"{client_options.user or '(none)'}; applying {example}"
            )
            outcome = await client.apply(docs[0])
            if not print_outcome(docs[0]["metadata"]["name"], outcome):
                return
            result["obj"] = await _follow(client, docs[0]["metadata"]["name"], seconds)
            result["history"] = await client.history(docs[0]["metadata"]["name"])

    with tempfile.TemporaryDirectory(prefix="dgdr-demo-") as tmp:
        config = _up_config(settings, rollout_delay=1.0)
        run(_serve(config, Path(tmp), free_port(), ready=run_demo))
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
    for component in dgd.get("spec", {}).get("components", []):  # v1beta1
        containers = component.get("podTemplate", {}).get("spec", {}).get("containers", [])
        main: dict[str, Any] = next((c for c in containers if c.get("name") == "main"), {})
        gpus = main.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", "0")
        out.print(
            f"  component {component.get('name')}: replicas {component.get('replicas', 1)}, "
            f"GPUs each {gpus}"
        )
    for svc_name, svc in dgd.get("spec", {}).get("services", {}).items():  # v1alpha1
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
