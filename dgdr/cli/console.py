"""Shared terminal output for the CLI modules: stdout/stderr consoles and the one-line failure."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

# Wide when piped, so rich tables are not folded at 80 columns in logs and tests; soft_wrap: a
# line of text is never broken by rich (a one-line error stays one line in a pipe). The `get`
# tables are plain text (`dgdr.cli.printer`).
out = Console(width=None if sys.stdout.isatty() else 250, highlight=False, soft_wrap=True)
err = Console(
    stderr=True, highlight=False, width=None if sys.stderr.isatty() else 250, soft_wrap=True
)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `error: <message>` on stderr and return the Exit to raise (1 failure, 2 usage)."""
    err.print(f"error: {message}", markup=False)
    return typer.Exit(code)
