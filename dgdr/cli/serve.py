"""`dgdr up` (the service, with an embedded NATS and a simulated, emulated or real cluster) and
`dgdr demo` (all of it in a temporary directory, one example followed to Deployed).

Failure semantics: bad option combinations and values exit 2 before anything starts; a data dir
another `dgdr up` holds, or a port another process listens on, is one line naming it and exit 1,
also before anything starts (`dgdr.cli.preflight`); an unreachable cluster is one line and exit 2;
a NATS that never answers (--no-embedded) is one line and exit 1 after --startup-timeout. SIGINT and
SIGTERM stop whatever runs at once, everything started is stopped in reverse order (the embedded
nats-server last): `dgdr up` then exits 0, `dgdr demo` 128 + the signal, its temporary dir removed.

The embedded NATS server runs with authorization (`events.auth`): the service connects as `service`,
the demo's client as `client`, and the client and admin contexts are written to DATA_DIR/contexts;
`--insecure` turns it off and says so on stderr.
"""

import contextlib
import re
import signal
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dgdr.cli import preflight, render
from dgdr.cli.base import Settings, app, run, settings_of
from dgdr.cli.console import err, fail, out
from dgdr.cli.writing import parse_duration, print_outcome, print_sla_warning
from events.connection import ConnectOptions, redact_url

if TYPE_CHECKING:  # the client (nats-py) and asyncio are imported by the commands that run
    import asyncio

    from dgdr.client import DgdrClient

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


# `dgdr up`'s options for the durability, trust, start-up and webhook settings.
StartupTimeoutOption = Annotated[
    str,
    typer.Option(
        help="how long to wait for NATS at start-up (--no-embedded: a server not answering yet; "
        "any: one failing during the start) before exiting 1, e.g. 60s, 5m"
    ),
]
WebhookPortOption = Annotated[
    int | None,
    typer.Option(
        help="serve the DGDR admission and conversion webhooks over HTTPS on this port "
        "(emulated: always, on a free port unless given; kubernetes: only with this option)",
        min=0,
        max=65535,
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
MetricsAddrOption = Annotated[
    str | None,
    typer.Option(
        metavar="HOST:PORT",
        help="serve Prometheus metrics (/metrics) and the probes /healthz and /readyz here, "
        "e.g. :8080 (default: not served)",
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

RequireSlaDefaultOption = Annotated[
    bool,
    typer.Option(
        "--require-sla",
        help="fail every DGDR whose pick misses its SLA (reason SLANotMet, nothing deployed) "
        'unless it sets the annotation dgdr.nvidia.com/require-sla: "false"; by default the '
        "closest config deploys and the status says the SLA is missed",
    ),
]

HfFetchOption = Annotated[
    bool,
    typer.Option(
        "--hf-fetch",
        help="let the profiling worker fetch the config.json (only that file) of a Hugging Face "
        "model it does not know from the Hub (HF_ENDPOINT, HF_TOKEN honoured) into the local "
        "cache; by default the service reaches no network but NATS and Kubernetes",
    ),
]


DataDirUpOption = Annotated[Path, typer.Option(help="where the embedded NATS keeps its data")]
PortUpOption = Annotated[
    int, typer.Option(help="port of the embedded NATS server", min=1, max=65535)
]
EmbeddedUpOption = Annotated[
    bool, typer.Option(help="run an embedded NATS server; --no-embedded uses --server instead")
]
RolloutDelayUpOption = Annotated[float, typer.Option(help="simulated DGD rollout, seconds", min=0)]
RolesUpOption = Annotated[
    str | None,
    typer.Option(help="comma-separated parts to run: requests,projector,reactor,profiler"),
]
ClusterUpOption = Annotated[
    str,
    typer.Option(
        help="where DGDs go: simulated (NATS KV), emulated (a Kubernetes API emulator, for "
        "kubectl), kubernetes (--kubeconfig, or in-cluster)"
    ),
]
KubeconfigUpOption = Annotated[
    Path | None,
    typer.Option(help="kubeconfig of a real cluster (implies --cluster kubernetes)"),
]
WriteKubeconfigUpOption = Annotated[
    Path | None,
    typer.Option(
        help="with --cluster emulated: write the kubeconfig here (default DATA_DIR/kubeconfig)"
    ),
]
WatchNamespaceUpOption = Annotated[
    str | None,
    typer.Option(
        help="Kubernetes: watch DGDRs in these namespaces only, comma-separated (default all)"
    ),
]
LeaseNamespaceUpOption = Annotated[
    str, typer.Option(help="Kubernetes: namespace of the adapter's leader Lease")
]
LeaseDurationUpOption = Annotated[
    int, typer.Option(help="Kubernetes: seconds a standby waits before taking the Lease over")
]


@app.command()
def up(
    ctx: typer.Context,
    data_dir: DataDirUpOption = Path(".dgdr"),
    port: PortUpOption = 4222,
    embedded: EmbeddedUpOption = True,
    rollout_delay: RolloutDelayUpOption = 1.0,
    roles: RolesUpOption = None,
    cluster: ClusterUpOption = "simulated",
    kubeconfig: KubeconfigUpOption = None,
    write_kubeconfig: WriteKubeconfigUpOption = None,
    watch_namespace: WatchNamespaceUpOption = None,
    lease_namespace: LeaseNamespaceUpOption = "default",
    lease_duration: LeaseDurationUpOption = 15,
    webhook_port: WebhookPortOption = None,
    webhook_cert_dir: WebhookCertDirOption = None,
    replicas: ReplicasOption = 1,
    sync: SyncOption = None,
    model_dir: ModelDirOption = None,
    log_level: Annotated[str, typer.Option()] = "INFO",
    insecure: InsecureOption = False,
    require_sla: RequireSlaDefaultOption = False,
    hf_fetch: HfFetchOption = False,
    metrics_addr: MetricsAddrOption = None,
    startup_timeout: StartupTimeoutOption = "60s",
) -> None:
    """Run the service (embedded NATS, profiling worker, deployment target) until interrupted.

    Before anything starts: the data dir is locked (one `dgdr up` per data dir) and the ports to
    listen on are checked free (`dgdr.cli.preflight`). SIGINT and SIGTERM stop it cleanly, exit 0:
    stopping is a service's normal end (a Kubernetes pod ends Completed, not Error).

    With --no-embedded, a NATS that does not answer yet is waited for (saying so at once) for
    --startup-timeout, then exit 1 with one line: in a container, the restart policy (compose
    `restart:`, a Deployment) starts it again, so a NATS that comes late is still picked up."""
    from dgdr.app.logs import LEVELS, configure

    if log_level.upper() not in LEVELS:
        raise fail(f"--log-level {log_level!r}: use one of {', '.join(LEVELS)}", 2)
    if insecure and not embedded:
        raise fail("--insecure goes with the embedded server (not with --no-embedded)", 2)
    _check_durability(replicas, sync, embedded)
    wait_for_nats = parse_duration(startup_timeout)
    config = _up_config(settings_of(ctx), rollout_delay, roles, replicas)
    config = replace(
        config,
        model_dirs=tuple(model_dir or ()),
        require_sla=require_sla,
        hub_fetch=hf_fetch,
        startup_deadline=max(wait_for_nats, 1.0),
    )
    if metrics_addr is not None:
        from dgdr.app.metrics import parse_address

        try:
            config = replace(config, metrics_addr=parse_address(metrics_addr))
        except ValueError as exc:
            raise fail(f"--metrics-addr {exc}", 2) from None
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
    with contextlib.ExitStack() as held:
        if embedded or side is not None:  # the data dir is used: NATS's store, emulator's files
            lock = preflight.DataDirLock(preflight.usable_dir(data_dir))
            lock.acquire(f"nats://127.0.0.1:{port}" if embedded else redact_url(config.connect.url))
            held.callback(lock.release)
        if write_kubeconfig is not None:
            preflight.usable_dir(write_kubeconfig.parent, "--write-kubeconfig")
        preflight.check_ports_free(
            _listening(port if embedded else None, cluster, webhook_port, config.metrics_addr)
        )
        configure(log_level)
        _run_until_signal(
            ctx,
            _serve(
                config,
                data_dir,
                port if embedded else None,
                cluster=side,
                secure=not insecure,
                sync=sync,
                wait_for_nats=None if embedded else wait_for_nats,
            ),
        )


def _listening(
    nats_port: int | None,
    cluster: str,
    webhook_port: int | None,
    metrics: tuple[str, int] | None = None,
) -> list[tuple[str, str, int]]:
    """(option, host, port) of each port `dgdr up` is told to listen on."""
    ports = [] if nats_port is None else [("--port", "127.0.0.1", nats_port)]
    if webhook_port:  # 0: any free port
        host = "127.0.0.1" if cluster == "emulated" else "0.0.0.0"
        ports.append(("--webhook-port", host, webhook_port))
    if metrics is not None and metrics[1] and ":" not in metrics[0]:  # the probe is IPv4
        ports.append(("--metrics-addr", *metrics))
    return ports


def _run_until_signal(ctx: typer.Context, coro: Awaitable[int | None]) -> int | None:
    """Run `_serve`; the signal that stopped it (after its clean-up), or None if it ended."""
    return run(ctx, coro)


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
    wait_for_nats: float | None = None,
) -> int | None:
    """Start the parts, run `ready` (or until a signal), stop them all in reverse order.

    SIGINT or SIGTERM cancels whatever runs (a start, `ready`, the wait), the parts are stopped,
    and the signal's number is returned (None when `ready` ends). A signal during the clean-up is
    ignored, so that it completes: every stop is bounded (the nats-server is killed if it does not
    exit)."""
    import asyncio

    main = asyncio.current_task()
    assert main is not None
    received: list[int] = []
    cleaning_up = asyncio.Event()

    def on_signal(signum: int) -> None:
        if not received and not cleaning_up.is_set():
            received.append(signum)
            main.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await _start_and_run(
            config, data_dir, port, ready, cluster, secure, sync, wait_for_nats, cleaning_up
        )
    except asyncio.CancelledError:
        if not received:
            raise
        main.uncancel()
        return received[0]
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return None


async def _start_and_run(
    config: Any,
    data_dir: Path,
    port: int | None,
    ready: Callable[[ConnectOptions], Awaitable[None]] | None,
    cluster: Any,
    secure: bool,
    sync: str | None,
    wait_for_nats: float | None,
    cleaning_up: "asyncio.Event",
) -> None:
    import asyncio

    from dgdr.app.service import Service, freeze_startup
    from events.auth import start_embedded

    server = None
    service = None
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
        if wait_for_nats is not None:
            await _wait_for_nats(config.connect, wait_for_nats)
        service = Service(config)
        await service.start()
        freeze_startup()
        if service.metrics_url is not None:
            err.print(f"Prometheus metrics: {service.metrics_url}/metrics", markup=False)
        if cluster is not None:
            await cluster.start_adapter(config.connect, observer=service.metrics)
            where = "emulated" if cluster.emulator is not None else "cluster"
            err.print(f"Kubernetes ({where}): kubectl --kubeconfig {cluster.kubeconfig} get dgdr")
            if getattr(cluster, "webhooks", None) is not None:
                err.print(f"DGDR admission and conversion webhooks: {cluster.webhooks.url}")
        if ready is None:
            err.print(_banner(config.connect, data_dir if port is not None else None, secure))
            await asyncio.Event().wait()  # until a signal cancels it
        else:
            await ready(client)
    finally:
        cleaning_up.set()

        async def stop_all() -> None:
            if cluster is not None:
                await cluster.close()
            if service is not None:
                await service.stop()
            if server is not None:
                await server.stop()

        # To the end even if a cancellation requested just before lands here.
        stopping = asyncio.ensure_future(stop_all())
        while not stopping.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(stopping)
        stopping.result()


async def _wait_for_nats(options: ConnectOptions, seconds: float) -> None:
    """Return once NATS at `options` answers; until then retry, having said so once on stderr.
    Past `seconds`, `ServerUnavailable` (one line). A refusal (credentials) is not retried."""
    import asyncio

    from dgdr.domain.errors import ServerUnavailable
    from events.connection import connect

    loop = asyncio.get_running_loop()
    give_up = loop.time() + seconds
    waiting = False
    while True:
        try:
            nc = await connect(options, reconnect=False, timeout=max(1.0, give_up - loop.time()))
        except ServerUnavailable as exc:
            if loop.time() >= give_up:
                raise ServerUnavailable(
                    f"NATS at {options.safe_url} did not answer within {seconds:g} s "
                    f"(--startup-timeout): {exc}"
                ) from None
            if not waiting:
                waiting = True
                err.print(
                    f"waiting for NATS at {options.safe_url} ({exc}): retrying for "
                    f"{seconds:g} s (--startup-timeout), then exit 1",
                    markup=False,
                )
            await asyncio.sleep(min(0.5, max(0.0, give_up - loop.time())))
            continue
        await nc.close()
        return


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
    return local if local.is_file() else Path(__file__).resolve().parents[2] / local


@app.command()
def demo(
    ctx: typer.Context,
    timeout: Annotated[str, typer.Option(help="give up after this long")] = "120s",
) -> None:
    """Start everything in a temporary directory, apply examples/qwen3-0.6b.yaml, follow it to
    Deployed, and show what was chosen.

    Ctrl-C (SIGINT) or SIGTERM stops it at once: the service and its nats-server are stopped,
    the temporary directory removed, and it exits 128 + the signal (130, 143) as an interrupted
    command does, so that `dgdr demo && ...` does not go on as if the demo had run."""
    from dgdr.app.logs import configure
    from dgdr.client import DgdrClient, load_documents
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
        stopped_by = _run_until_signal(ctx, _serve(config, Path(tmp), free_port(), ready=run_demo))
    if stopped_by is not None:
        err.print(f"dgdr demo: stopped ({signal.Signals(stopped_by).name})", markup=False)
        raise typer.Exit(128 + stopped_by)
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
    profiled = render.last_profiling(result["history"], obj["metadata"].get("uid"))
    out.print(f"selected: {profiled.get('message', '')}")
    print_sla_warning(obj["metadata"]["name"], obj)
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
        f"pareto front: {len(profiled.get('pareto', []))} configs; "
        f"history: {len(result['history'])} stored events"
    )


async def _follow(client: "DgdrClient", name: str, timeout: float) -> dict[str, Any]:
    import asyncio

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
