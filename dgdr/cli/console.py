"""Shared terminal output for the CLI modules: stdout/stderr consoles and the one-line failure."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

# Wide when piped, so tables are not folded at 80 columns in logs and tests.
out = Console(width=None if sys.stdout.isatty() else 250, highlight=False)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 250)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `error: <message>` on stderr and return the Exit to raise (1 failure, 2 usage)."""
    err.print(f"error: {message}", markup=False)
    return typer.Exit(code)
