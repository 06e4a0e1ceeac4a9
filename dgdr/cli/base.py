"""The `dgdr` command's shared parts: the typer apps, the global options (NATS URL, credentials,
namespace) and how a command runs its coroutine.

Failure semantics: `run` turns every `DgdrError` into one line on stderr and exit code 1, and Ctrl-C
into exit code 130; nothing a user does produces a traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from dgdr.cli.console import fail
from dgdr.client import DgdrClient
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


def settings_of(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


def run(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except DgdrError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


async def with_client(ctx: typer.Context, fn: Callable[[DgdrClient], Awaitable[T]]) -> T:
    st = settings_of(ctx)
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
