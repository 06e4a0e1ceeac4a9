"""`dgdr cluster list|degrade|recover|delete`: inspect and disturb the simulated cluster.

`list` prints a table as `kubectl get` does (`dgdr.cli.printer`).

Failure semantics: a DGD that is not in the simulated cluster is one line on stderr and exit 1.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from dgdr.cli.base import cluster_app, load_nats, run, settings_of
from dgdr.cli.console import err, fail, out
from dgdr.cli.printer import columns

if TYPE_CHECKING:
    from dgdr.client import DgdrClient


async def _cluster(ctx: typer.Context, action: str, name: str | None = None) -> Any:
    settings = settings_of(ctx)
    load_nats(settings.options)
    from dgdr.client import DgdrClient

    async with DgdrClient(settings.options, namespace=settings.namespace) as client:
        # The simulated cluster's bucket is the service's (and admin's): fail at once, not at a
        # timeout, when a client context is refused; say so when NATS has no JetStream.
        return await client.jetstream(_act(client, settings.namespace, action, name))


async def _act(client: "DgdrClient", namespace: str, action: str, name: str | None) -> Any:
    from dgdr.app.simcluster import SimulatedCluster

    cluster = SimulatedCluster(client.nc.jetstream())
    if action == "list":
        return await cluster.list()
    assert name is not None
    if action == "degrade":
        return await cluster.degrade(namespace, name)
    if action == "recover":
        return await cluster.recover(namespace, name)
    return await cluster.delete(namespace, name)


@cluster_app.command("list")
def cluster_list(ctx: typer.Context) -> None:
    """DynamoGraphDeployments in the simulated cluster."""
    dgds = run(ctx, _cluster(ctx, "list"))
    if not dgds:
        err.print("No DynamoGraphDeployments in the simulated cluster.")
        return
    rows = [
        [d["metadata"]["namespace"], d["metadata"]["name"], str(d["status"].get("state", ""))]
        for d in dgds
    ]
    print(columns(("NAMESPACE", "NAME", "STATE"), rows), flush=True)


PAST = {"degrade": "degraded", "recover": "recovered", "delete": "deleted"}


def _cluster_action(action: str) -> Callable[[typer.Context, str], None]:
    def command(ctx: typer.Context, dgd: str) -> None:
        if not run(ctx, _cluster(ctx, action, dgd)):
            raise fail(f"no DynamoGraphDeployment {dgd} in the simulated cluster")
        out.print(f"dynamographdeployment/{dgd} {PAST[action]}")

    command.__doc__ = f"{action.capitalize()} a DynamoGraphDeployment in the simulated cluster."
    return command


for _action in ("degrade", "recover", "delete"):
    cluster_app.command(_action)(_cluster_action(_action))
