"""The `dgdr` entry point: every command module registers its commands on the one typer app.

`python -m dgdr` and the `dgdr` script both call `main()`.

Start-up: the command modules import only what defining their commands needs; what a command
uses (the client and nats-py, the spec and event models, `sim`, PyYAML, rich's tables) is imported
when it runs, so `dgdr --help` loads nothing of NATS and `dgdr get` nothing of `sim`
(tests/dgdr/cli/test_lazy_imports.py; bench/cli_startup.py measures it).

The command modules (`base`, `reading`, `writing`, `serve`, `cluster`, `offline`) do not use
`from __future__ import annotations`: typer reads every command's signature twice at each start
(`inspect.signature(eval_str=True)` and `get_type_hints`), and string annotations are compiled and
evaluated each time (about 40 ms of CPU on a loaded 2-core machine); names imported only for type
checking are quoted instead.
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
