"""The `dgdr` entry point: every command module registers its commands on the one typer app.

`python -m dgdr` and the `dgdr` script both call `main()`.
"""

from __future__ import annotations

from dgdr.cli import cluster, offline, reading, serve, writing
from dgdr.cli.base import app

__all__ = ["app", "main"]

_COMMAND_MODULES = (
    writing,
    reading,
    serve,
    cluster,
)  # imported for their @app.command registrations
offline.register(app)


def main() -> None:
    app()
