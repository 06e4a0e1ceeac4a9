"""Shared terminal output for the CLI modules: stdout/stderr consoles and the one-line failure.

The consoles are rich `Console`s made on first use (`LazyConsole`): a command that prints plain
text (`dgdr get`) does not pay for importing rich.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console


class LazyConsole:
    """A rich `Console` with these options, made when first used; every attribute is the
    console's."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            stream = sys.stderr if self._options.get("stderr") else sys.stdout
            self._console = Console(width=None if stream.isatty() else 250, **self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


# Wide when piped, so rich tables are not folded at 80 columns in logs and tests; soft_wrap: a
# line of text is never broken by rich (a one-line error stays one line in a pipe). The `get`
# tables are plain text (`dgdr.cli.printer`).
out = LazyConsole(highlight=False, soft_wrap=True)
err = LazyConsole(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `error: <message>` on stderr and return the Exit to raise (1 failure, 2 usage)."""
    err.print(f"error: {message}", markup=False)
    return typer.Exit(code)
