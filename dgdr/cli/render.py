"""How the CLI shows things: kubectl-like tables, `describe` text and the history.

Pure functions from objects and stored events to text (tables as kubectl prints them,
`dgdr.cli.printer`; values as YAML writes them: true, false); no I/O. What an event
says (type, reason, message) is `dgdr.domain.describe`, the same words Kubernetes Events use; the
Events of `describe` are the noteworthy events of the object's incarnation, as `kubectl describe`
lists them, and `dgdr history` lists every stored event. `describe` shows the whole Pareto front of
the last profiling from its stored ProfilingCompleted event (the status keeps only its top rows,
`projections.status.PARETO_STATUS_ROWS`). Ages are relative to `now` (default: the
clock). Nothing here raises for an event a newer dgdr wrote: it is shown by its type.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dgdr.cli import pareto_rows
from dgdr.cli.printer import columns

if TYPE_CHECKING:  # the event models are imported where events are described: `get` needs none
    from dgdr.client import DgdrObject, HistoryEntry
    from dgdr.domain.describe import Description

COLUMNS = ("NAME", "MODEL", "BACKEND", "PHASE", "PROFILING", "REASON", "MESSAGE", "DGD", "AGE")
WIDE_COLUMNS = (*COLUMNS, "GENERATION", "RESOURCEVERSION", "UID")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def age(timestamp: str | None, now: datetime | None = None) -> str:
    if not timestamp:
        return "<unknown>"
    seconds = int(((now or datetime.now(UTC)) - parse_time(timestamp)).total_seconds())
    seconds = max(seconds, 0)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m{seconds % 60}s" if seconds < 600 else f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h{(seconds % 3600) // 60}m"
    return f"{seconds // 86400}d"


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == ctype:
            return dict(c)
    return {}


def row(obj: dict[str, Any], wide: bool = False, now: datetime | None = None) -> list[str]:
    meta, spec, st = obj["metadata"], obj.get("spec", {}), obj.get("status", {})
    succeeded = condition(obj, "Succeeded")
    cells = [
        meta["name"],
        str(spec.get("model", "")),
        str(spec.get("backend", "auto")),
        st.get("phase", ""),
        st.get("profilingPhase", ""),
        succeeded.get("reason", ""),
        succeeded.get("message", ""),
        st.get("dgdName", ""),
        age(meta.get("creationTimestamp"), now),
    ]
    if wide:
        cells += [
            str(meta.get("generation", "")),
            str(meta.get("resourceVersion", "")),
            meta.get("uid", ""),
        ]
    return cells


def table(
    objects: list[dict[str, Any]],
    wide: bool = False,
    namespaces: bool = False,
    now: datetime | None = None,
) -> str:
    """The `get` table, as kubectl prints it (`dgdr.cli.printer`)."""
    headers = (["NAMESPACE"] if namespaces else []) + list(WIDE_COLUMNS if wide else COLUMNS)
    rows = (
        ([obj["metadata"]["namespace"]] if namespaces else []) + row(obj, wide, now)
        for obj in objects
    )
    return columns(headers, rows)


def describe_stored(stored: HistoryEntry) -> Description:
    """The description of a stored event as `DgdrClient.history` lists it. An event this version
    cannot read (written by a newer dgdr) is named by its type rather than failing the command; a
    damaged message is a warning with its reason and its bytes."""
    from pydantic import ValidationError

    from dgdr.domain.describe import Description, describe_damage
    from dgdr.domain.describe import describe as describe_event
    from dgdr.domain.model import event_from_payload

    if "damaged" in stored:
        return describe_damage(stored["damaged"], stored.get("subject", ""), stored.get("raw", ""))
    try:
        event = event_from_payload(stored["type"], stored.get("payload", {}))
    except ValidationError:
        return Description("Normal", stored["type"], "(not readable by this version of dgdr)")
    return describe_event(event)


def history_table(events: Sequence[HistoryEntry]) -> str:
    rows = []
    for e in events:
        d = describe_stored(e)
        rows.append([str(e["sequence"]), e["time"] or "-", e["type"], d.type, d.reason, d.message])
    return columns(("SEQ", "TIME", "EVENT", "TYPE", "REASON", "MESSAGE"), rows)


def story(
    events: Sequence[HistoryEntry], uid: str | None
) -> list[tuple[HistoryEntry, Description]]:
    """The events `describe` tells of the incarnation `uid`, described: the noteworthy ones, which
    are the Kubernetes Events `kubectl describe` lists for it."""
    described = ((e, describe_stored(e)) for e in events if e["aggregate"]["uid"] == uid)
    return [(e, d) for e, d in described if d.noteworthy]


def last_profiling(events: Sequence[HistoryEntry], uid: str | None) -> dict[str, Any]:
    """The payload of the incarnation `uid`'s last stored ProfilingCompleted event ({} if none)."""
    completed = [
        e for e in events if e["aggregate"]["uid"] == uid and e["type"] == "ProfilingCompleted"
    ]
    return completed[-1].get("payload", {}) if completed else {}


def pareto_front(events: Sequence[HistoryEntry], uid: str | None) -> list[Any]:
    """The whole Pareto front of the incarnation `uid`'s last profiling, as its ProfilingCompleted
    event stored it (the status holds only its top rows); [] when there is none."""
    front = last_profiling(events, uid).get("pareto")
    return front if isinstance(front, list) else []


def scalar(value: Any) -> str:
    """A value as YAML (and `kubectl describe`) writes it: true/false, <none>, numbers, text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<none>"
    if isinstance(value, dict):
        return ", ".join(f"{k}={scalar(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(scalar(v) for v in value)
    return str(value)


def _indented(text: str, indent: int = 2) -> list[str]:
    return [" " * indent + line for line in text.splitlines()]


def describe(
    obj: DgdrObject, events: Sequence[HistoryEntry], now: datetime | None = None
) -> list[str]:
    """`dgdr describe`: metadata, a spec summary, the status, conditions and the story as Events."""
    meta, spec, st = obj["metadata"], obj.get("spec", {}), obj.get("status", {})
    out: list[str] = []

    def kv(key: str, value: Any, indent: int = 0) -> None:
        if value not in (None, "", {}, []):
            out.append(f"{' ' * indent}{key + ':':<22}{scalar(value)}")

    kv("Name", meta["name"])
    kv("Namespace", meta["namespace"])
    kv("Labels", meta.get("labels"))
    kv("UID", meta.get("uid"))
    kv("Generation", meta.get("generation"))
    kv("Resource Version", meta.get("resourceVersion"))
    kv("Created", meta.get("creationTimestamp"))
    out.append("Spec:")
    for key in ("model", "backend", "searchStrategy", "autoApply", "image"):
        kv(key, spec.get(key), 2)
    for key in ("sla", "workload", "hardware", "modelCache", "features", "overrides"):
        value = spec.get(key)
        kv(key, list(value) if key in ("features", "overrides") and value else value, 2)
    out.append("Status:")
    kv("Phase", st.get("phase"), 2)
    kv("Profiling Phase", st.get("profilingPhase"), 2)
    kv("Profiling Job", st.get("profilingJobName"), 2)
    kv("DGD", st.get("dgdName"), 2)
    kv("Observed Generation", st.get("observedGeneration"), 2)
    info = st.get("deploymentInfo")
    if info:
        kv("Replicas", f"{info.get('availableReplicas', 0)}/{info.get('replicas', 0)} available", 2)
    conditions = [
        [c["type"], c["status"], c["reason"], c["lastTransitionTime"], c["message"]]
        for c in st.get("conditions", [])
    ]
    out.append("Conditions:")
    out += _indented(
        columns(("TYPE", "STATUS", "REASON", "LAST TRANSITION", "MESSAGE"), conditions)
    )
    front = pareto_front(events, meta.get("uid")) if st.get("profilingResults") else []
    if front:
        out.append("Pareto Front:")
        rows = [pareto_rows.cells(pareto_rows.config_of(r)) for r in front]
        out += _indented(columns(pareto_rows.COLUMNS, rows))
    stories = [
        [d.type, d.reason, age(e["time"], now), d.message]
        for e, d in story(events, meta.get("uid"))
    ]
    out.append("Events:")
    out += (
        _indented(columns(("TYPE", "REASON", "AGE", "MESSAGE"), stories))
        if stories
        else ["  <none>"]
    )
    return out
