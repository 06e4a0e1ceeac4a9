"""The `dgdr` command's shared parts: the typer apps, the global options (NATS URL, credentials,
namespace) and how a command runs its coroutine.

Where the connection comes from: `--context FILE` (or `DGDR_CONTEXT`), a NATS CLI context; with
neither and no `--server`/`DGDR_NATS_URL`, `./.dgdr/contexts/client.json` when it exists (the client
context `dgdr up` writes into its default data dir); the URL and credential options given explicitly
override the context's values. A context that cannot be read is one line and exit code 2.

nats-py without aiohttp (`load_nats`): nats-py 2.16 imports aiohttp, when it is installed
(kubernetes-asyncio brings it), for its websocket transport alone, and that import is a third of
`dgdr get`'s start-up. A command that connects imports nats-py with `import aiohttp` made to fail
for that one import (`sys.modules["aiohttp"] = None`, the documented way to make an import
fail), unless a server URL is `ws://`/`wss://`, nats-py or aiohttp is already imported (the import
would then cost nothing). Safe for everything else in the process: the block is lifted as soon as
nats-py is imported, so aiohttp (kubernetes-asyncio, in `dgdr up`) imports as usual afterwards;
what stays is nats-py's websocket transport being unavailable in this process, which only a
`ws://`/`wss://` URL would use, and such a URL skips the block.

Failure semantics: `run` turns every `DgdrError` into one line on stderr and exit code 1 (NATS not
answering says how to start the service or name its URL), and Ctrl-C into exit code 130; nothing a
user does produces a traceback. The global options are accepted before or after the verb
(`dgdr.cli.group`).
"""

import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from dgdr.cli.console import fail
from dgdr.cli.group import DgdrGroup
from dgdr.domain.errors import DgdrError, ServerUnavailable
from events.connection import DEFAULT_URL, ConnectOptions

if TYPE_CHECKING:  # the client (nats-py) is imported by the commands that connect
    from dgdr.client import DgdrClient

app = typer.Typer(
    name="dgdr",
    cls=DgdrGroup,
    no_args_is_help=True,
    add_completion=False,
    help="Deploy-by-intent control plane for LLM inference (Dynamo DGDR).",
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
cluster_app = typer.Typer(
    no_args_is_help=True,
    help="Inspect and disturb the simulated cluster (for tests and demos).",
    rich_markup_mode=None,
)
app.add_typer(cluster_app, name="cluster")

T = TypeVar("T")


DEFAULT_CONTEXT = Path(".dgdr/contexts/client.json")


class Settings:
    def __init__(
        self,
        options: ConnectOptions,
        namespace: str,
        explicit_ns: bool = False,
        without_default_context: ConnectOptions | None = None,
    ) -> None:
        self.options, self.namespace, self.explicit_ns = options, namespace, explicit_ns
        # What `dgdr up --no-embedded` connects with: never the client context found by default.
        self.service_options = without_default_context or options


def settings_of(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


NO_SERVER_HINT = (
    ": is the dgdr service running? Start it with `dgdr up`, or name its NATS with --server URL "
    "(or DGDR_NATS_URL) or --context FILE"
)


def run(ctx: typer.Context, coro: Awaitable[T]) -> T:
    """Run the command `ctx`'s coroutine: a `DgdrError` is one line on stderr and exit code 1."""
    import asyncio

    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except ServerUnavailable as exc:
        hint = "" if ctx.info_name == "up" else NO_SERVER_HINT
        raise fail(_scrubbed(ctx, f"{exc}{hint}")) from None
    except DgdrError as exc:
        raise fail(_scrubbed(ctx, str(exc))) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def load_nats(options: ConnectOptions) -> None:
    """Import nats-py for a connection with `options`, without aiohttp unless a URL is a websocket
    (see the module's docstring)."""
    websocket = any(url.lower().startswith(("ws://", "wss://")) for url in options.servers)
    if websocket or "nats" in sys.modules or "aiohttp" in sys.modules:
        return
    sys.modules["aiohttp"] = None  # type: ignore[assignment]
    try:
        import nats.aio.client  # noqa: F401
    finally:
        del sys.modules["aiohttp"]


async def with_client(ctx: typer.Context, fn: Callable[["DgdrClient"], Awaitable[T]]) -> T:
    st = settings_of(ctx)
    load_nats(st.options)
    from dgdr.client import DgdrClient

    async with DgdrClient(st.options, namespace=st.namespace) as client:
        return await fn(client)


def _scrubbed(ctx: typer.Context, message: str) -> str:
    """`message` without any secret of the options this command was given (belt and braces)."""
    obj = ctx.find_root().obj
    return obj.options.scrub(message) if isinstance(obj, Settings) else message


def _explicit(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


@app.callback()
def main_options(
    ctx: typer.Context,
    context: Annotated[
        Path | None,
        typer.Option(
            "--context",
            envvar="DGDR_CONTEXT",
            help="NATS CLI context file (JSON) with the URL and credentials; default "
            f"{DEFAULT_CONTEXT} when it exists and no --server is given",
        ),
    ] = None,
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
    defaulted = context is None and not _explicit(ctx, "server") and DEFAULT_CONTEXT.is_file()
    if defaulted:
        context = DEFAULT_CONTEXT
    try:
        base = ConnectOptions.from_context(context) if context else ConnectOptions()
    except DgdrError as exc:
        raise fail(str(exc), 2) from None
    explicit = {
        "url": server if _explicit(ctx, "server") or context is None else None,
        "creds_file": creds,
        "user": user,
        "password": password,
        "token": token,
        "tls_ca": tls_ca,
        "tls_cert": tls_cert,
        "tls_key": tls_key,
    }
    given = {k: v for k, v in explicit.items() if v is not None}
    options = replace(base, **given)
    without = replace(ConnectOptions(), **given) if defaulted else None
    ctx.obj = Settings(options, namespace, _explicit(ctx, "namespace"), without)
