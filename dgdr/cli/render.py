"""How the CLI shows things: kubectl-like tables, `describe` text and event messages.

Pure functions from objects and stored events to rich renderables and strings; no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.table import Table
from rich.text import Text

COLUMNS = ("NAME", "MODEL", "BACKEND", "PHASE", "PROFILING", "REASON", "MESSAGE", "DGD", "AGE")
WIDE_COLUMNS = (*COLUMNS, "GENERATION", "RESOURCEVERSION", "UID")
WARNING_TYPES = {
    "ValidationFailed",
    "ProfilingFailed",
    "DeploymentDegraded",
    "DeploymentDeleted",
    "DeploymentFailed",
}


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


def row(obj: dict[str, Any], wide: bool = False) -> list[str]:
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
        age(meta.get("creationTimestamp")),
    ]
    if wide:
        cells += [
            str(meta.get("generation", "")),
            str(meta.get("resourceVersion", "")),
            meta.get("uid", ""),
        ]
    return cells


def table(objects: list[dict[str, Any]], wide: bool = False, namespaces: bool = False) -> Table:
    t = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    headers = WIDE_COLUMNS if wide else COLUMNS
    if namespaces:
        t.add_column("NAMESPACE", no_wrap=True)
    for h in headers:
        t.add_column(h, no_wrap=h != "MESSAGE", overflow="fold")
    for obj in objects:
        cells = row(obj, wide)
        t.add_row(*([obj["metadata"]["namespace"]] if namespaces else []), *cells)
    return t


def event_message(env: dict[str, Any]) -> str:
    p, t = env.get("payload", {}), env["type"]
    match t:
        case "Created":
            return f"DGDR created (generation {p.get('generation')}) for {p['spec'].get('model')}"
        case (
            "Validated"
            | "ProfilingProgressed"
            | "ProfilingFailed"
            | "ProfilingCompleted"
            | "DeploymentFailed"
        ):
            return str(p.get("message", ""))
        case "ValidationFailed":
            return "; ".join(f"{e['field']}: {e['message']}" for e in p.get("errors", []))
        case "SpecUpdated" | "AutoApplyEnabled":
            return f"spec changed (generation {p.get('generation')})"
        case "ProfilingStarted":
            return f"profiling job {p.get('jobName')} created"
        case "DeploymentStarted":
            return f"deploying DynamoGraphDeployment {p.get('dgdName')}"
        case "DeploymentCreated":
            return f"DynamoGraphDeployment {p.get('dgdName')} created"
        case "DeploymentObserved" | "DeploymentDegraded":
            return (
                f"DGD is {p.get('state')}: {p.get('availableReplicas')}/"
                f"{p.get('replicas')} replicas available"
            )
        case "DeploymentReady":
            return f"DGD is ready: {p.get('availableReplicas')}/{p.get('replicas')} replicas"
        case "DeploymentDeleted":
            return f"DynamoGraphDeployment {p.get('dgdName')} was deleted; it is not recreated"
        case "Deleted":
            return "DGDR deleted (its DGD is kept)"
    return ""


def event_reason(env: dict[str, Any]) -> str:
    t = env["type"]
    if t == "ProfilingProgressed":
        sub = env["payload"].get("subPhase", "")
        return "ProfilingCompleted" if sub == "Done" else sub
    if t == "ProfilingFailed":
        sub = env["payload"].get("subPhase")
        return f"{sub}Failed" if sub else "ProfilingFailed"
    reason: str = {
        "Created": "Initialized",
        "ProfilingStarted": "ProfilingJobCreated",
        "ProfilingCompleted": "SpecGenerated",
        "Validated": "Validated",
        "DeploymentStarted": "DeploymentRequested",
    }.get(t, t)
    return reason


def history_table(events: list[dict[str, Any]]) -> Table:
    t = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for h in ("SEQ", "TIME", "EVENT", "TYPE", "REASON", "MESSAGE"):
        t.add_column(h, no_wrap=h != "MESSAGE", overflow="fold")
    for e in events:
        kind = "Warning" if e["type"] in WARNING_TYPES else "Normal"
        t.add_row(str(e["sequence"]), e["time"], e["type"], kind, event_reason(e), event_message(e))
    return t


def describe(obj: dict[str, Any], events: list[dict[str, Any]]) -> list[Any]:
    meta, spec, st = obj["metadata"], obj.get("spec", {}), obj.get("status", {})
    out: list[Any] = []

    def kv(key: str, value: Any, indent: int = 0) -> None:
        if value not in (None, "", {}, []):
            out.append(Text(f"{' ' * indent}{key + ':':<22}{value}"))

    kv("Name", meta["name"])
    kv("Namespace", meta["namespace"])
    kv("UID", meta.get("uid"))
    kv("Generation", meta.get("generation"))
    kv("Resource Version", meta.get("resourceVersion"))
    kv("Created", meta.get("creationTimestamp"))
    out.append(Text("Spec:"))
    for key in ("model", "backend", "searchStrategy", "autoApply", "image"):
        kv(key, spec.get(key), 2)
    for key in ("sla", "workload", "hardware", "modelCache", "features", "overrides"):
        if spec.get(key):
            kv(
                key,
                ", ".join(f"{k}={v}" for k, v in spec[key].items())
                if key not in ("features", "overrides")
                else ", ".join(spec[key]),
                2,
            )
    out.append(Text("Status:"))
    kv("Phase", st.get("phase"), 2)
    kv("Profiling Phase", st.get("profilingPhase"), 2)
    kv("Profiling Job", st.get("profilingJobName"), 2)
    kv("DGD", st.get("dgdName"), 2)
    kv("Observed Generation", st.get("observedGeneration"), 2)
    info = st.get("deploymentInfo")
    if info:
        kv("Replicas", f"{info.get('availableReplicas', 0)}/{info.get('replicas', 0)} available", 2)
    conds = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for h in ("TYPE", "STATUS", "REASON", "LAST TRANSITION", "MESSAGE"):
        conds.add_column(h, no_wrap=h != "MESSAGE", overflow="fold")
    for c in st.get("conditions", []):
        conds.add_row(c["type"], c["status"], c["reason"], c["lastTransitionTime"], c["message"])
    out.append(Text("Conditions:"))
    out.append(conds)
    out.append(Text("Events:"))
    ev = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for h in ("TYPE", "REASON", "AGE", "MESSAGE"):
        ev.add_column(h, no_wrap=h != "MESSAGE", overflow="fold")
    uid = meta.get("uid")
    for e in events:
        if e["aggregate"]["uid"] != uid:
            continue
        kind = "Warning" if e["type"] in WARNING_TYPES else "Normal"
        ev.add_row(kind, event_reason(e), age(e["time"]), event_message(e))
    out.append(ev)
    return out
