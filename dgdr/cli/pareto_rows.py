"""One row of text per Pareto config, as `dgdr profile` (its alternatives) and `dgdr describe` (the
whole front of the stored ProfilingCompleted event) show them.

Pure formatting of a config dict (`sim`'s `to_json`: mode, shape, GPUs, batch, latencies,
throughputs, `meetsSla`, `selected`). Failure semantics: none; a field a config lacks (one written
by another profiler or another version) shows as "-".
"""

from __future__ import annotations

from typing import Any

COLUMNS = (
    "",
    "BACKEND",
    "MODE",
    "TP",
    "WORKERS",
    "GPUS",
    "BATCH",
    "TTFT MS",
    "ITL MS",
    "TOK/S/GPU",
    "TOK/S/USER",
    "SLA",
)
LEFT_ALIGNED = ("", "BACKEND", "MODE", "SLA")


def _number(config: dict[str, Any], key: str, digits: int) -> str:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value:.{digits}f}"


def _text(config: dict[str, Any], key: str) -> str:
    value = config.get(key)
    return "-" if value is None else str(value)


def shape_cells(config: dict[str, Any]) -> tuple[str, str]:
    """TP and worker counts: `2` and `4` (agg), `P1 D2` and `2+3` (prefill + decode)."""
    if config.get("mode") == "disagg":
        return (
            f"P{_text(config, 'prefillTensorParallelSize')} "
            f"D{_text(config, 'decodeTensorParallelSize')}",
            f"{_text(config, 'prefillWorkers')}+{_text(config, 'decodeWorkers')}",
        )
    return _text(config, "tensorParallelSize"), _text(config, "replicas")


def cells(config: dict[str, Any]) -> list[str]:
    """The row of `COLUMNS` for one config."""
    return [
        "*" if config.get("selected") is True else "",
        str(config.get("backend", "")),
        str(config.get("mode", "agg")),
        *shape_cells(config),
        _text(config, "totalGpus"),
        _text(config, "batchSize"),
        _number(config, "ttftMs", 1),
        _number(config, "itlMs", 2),
        _number(config, "tokensPerSecondPerGpu", 0),
        _number(config, "tokensPerSecondPerUser", 1),
        "met" if config.get("meetsSla") else "missed",
    ]


def config_of(row: Any) -> dict[str, Any]:
    """The config of a stored Pareto row (Dynamo's shape `{"config": {...}}`); {} for any other."""
    config = row.get("config") if isinstance(row, dict) else None
    return config if isinstance(config, dict) else {}
