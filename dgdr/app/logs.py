"""Logging set-up: structlog, JSON lines when stderr is not a terminal, readable lines when it is.

Context (namespace, name, uid, event sequence) is bound by the callers with `log.bind(...)`.
Lines go to whatever `sys.stderr` is when they are written (not the stream of the moment `configure`
ran, which a test runner may have closed since). An unknown level is a `ConfigurationError`.
"""

from __future__ import annotations

import logging
import sys

import structlog

from dgdr.domain.errors import ConfigurationError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _CurrentStderr:
    """A file that writes to the current `sys.stderr`."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "INFO", *, json_output: bool | None = None) -> None:
    if level.upper() not in LEVELS:
        raise ConfigurationError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    as_json = not sys.stderr.isatty() if json_output is None else json_output
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        # A logger is bound once, on its first use, not on every call: `configure` runs once per
        # process (`dgdr up`, `dgdr demo`), before the service logs.
        cache_logger_on_first_use=True,
    )
