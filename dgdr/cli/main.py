"""The `dgdr` entry point: every command module registers its commands on the one typer app.

`python -m dgdr` and the `dgdr` script both call `main()`.

Start-up: the command modules import only what defining their commands needs; what a command
uses (the client and nats-py, the spec and event models, `sim`, PyYAML, rich's tables) is imported
when it runs, so `dgdr --help` loads nothing of NATS and `dgdr get` nothing of `sim`
(tests/dgdr/cli/test_lazy_imports.py; bench/cli_startup.py measures it).
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
