"""Server-side printing: `meta.k8s.io` Table responses for `kubectl get`.

Owns the column definitions and cells for every served kind: NAME plus a CRD's
`additionalPrinterColumns` (evaluated with the JSONPath subset; `priority` > 0 columns are shown by
kubectl only with `-o wide`; `date` columns become an age such as "5s", "3m", "2h" as the real
server renders them), and hand-written columns for built-in kinds modelled on the real printers
(configmaps NAME DATA AGE; events LAST SEEN TYPE REASON OBJECT MESSAGE; nodes NAME STATUS ROLES AGE
VERSION; jobs NAME STATUS COMPLETIONS DURATION AGE; pods NAME READY STATUS RESTARTS AGE; ...).
Rows carry `object` as PartialObjectMetadata (includeObject=Metadata, the default), the whole
object (includeObject=Object) or nothing (includeObject=None).

Failure semantics: never raises for object content; a value that is missing or of the wrong type
becomes a null cell (kubectl prints `<none>`); a printer column whose JSONPath cannot be parsed
prints `<invalid>`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from k8s import jsonpath
from k8s.emulator.meta import parse_time
from k8s.emulator.resources import ResourceType

Column = dict[str, Any]
CellFn = Callable[[dict[str, Any]], list[Any]]

NAME_DESC = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
AGE_DESC = (
    "CreationTimestamp is a timestamp representing the server time when this object was created."
)


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // 24 // 365}y{rest}d" if rest else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age(timestamp: Any) -> str:
    when = parse_time(timestamp)
    if when is None:
        return "<unknown>"
    return human_duration((datetime.now(UTC) - when).total_seconds())


def _col(
    name: str, type_: str = "string", priority: int = 0, fmt: str = "", desc: str = ""
) -> Column:
    return {"name": name, "type": type_, "format": fmt, "description": desc, "priority": priority}


NAME_COL = _col("Name", fmt="name", desc=NAME_DESC)
AGE_COL = _col("Age", desc=AGE_DESC)


def _md(obj: dict[str, Any]) -> dict[str, Any]:
    md = obj.get("metadata")
    return md if isinstance(md, dict) else {}


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _has_condition(obj: dict[str, Any], ctype: str) -> bool:
    for cond in _get(obj, "status", "conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == ctype and cond.get("status") == "True":
            return True
    return False


def _configmap(obj: dict[str, Any]) -> list[Any]:
    n = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [_md(obj).get("name"), n, age(_md(obj).get("creationTimestamp"))]


def _secret(obj: dict[str, Any]) -> list[Any]:
    n = len(obj.get("data") or {}) + len(obj.get("stringData") or {})
    return [
        _md(obj).get("name"),
        obj.get("type", "Opaque"),
        n,
        age(_md(obj).get("creationTimestamp")),
    ]


def _serviceaccount(obj: dict[str, Any]) -> list[Any]:
    return [
        _md(obj).get("name"),
        len(obj.get("secrets") or []),
        age(_md(obj).get("creationTimestamp")),
    ]


def _namespace(obj: dict[str, Any]) -> list[Any]:
    return [
        _md(obj).get("name"),
        _get(obj, "status", "phase") or "Active",
        age(_md(obj).get("creationTimestamp")),
    ]


def _node(obj: dict[str, Any]) -> list[Any]:
    status = "Ready" if _has_condition(obj, "Ready") else "NotReady"
    if _get(obj, "spec", "unschedulable"):
        status += ",SchedulingDisabled"
    labels = _md(obj).get("labels") or {}
    roles = sorted(
        {k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")}
        | ({labels["kubernetes.io/role"]} if labels.get("kubernetes.io/role") else set())
    )
    addresses = {a.get("type"): a.get("address") for a in _get(obj, "status", "addresses") or []}
    info = _get(obj, "status", "nodeInfo") or {}
    return [
        _md(obj).get("name"),
        status,
        ",".join(roles) or "<none>",
        age(_md(obj).get("creationTimestamp")),
        info.get("kubeletVersion", ""),
        addresses.get("InternalIP", "<none>"),
        addresses.get("ExternalIP", "<none>"),
        info.get("osImage", "<unknown>"),
        info.get("kernelVersion", "<unknown>"),
        info.get("containerRuntimeVersion", "<unknown>"),
    ]


def _pod(obj: dict[str, Any]) -> list[Any]:
    containers = _get(obj, "spec", "containers") or []
    statuses = _get(obj, "status", "containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    phase = _get(obj, "status", "reason") or _get(obj, "status", "phase") or "Pending"
    if _md(obj).get("deletionTimestamp"):
        phase = "Terminating"
    return [
        _md(obj).get("name"),
        f"{ready}/{len(containers)}",
        phase,
        str(restarts),
        age(_md(obj).get("creationTimestamp")),
        _get(obj, "status", "podIP") or "<none>",
        _get(obj, "spec", "nodeName") or "<none>",
        _get(obj, "status", "nominatedNodeName") or "<none>",
        "<none>",
    ]


def _job(obj: dict[str, Any]) -> list[Any]:
    if _has_condition(obj, "Complete"):
        status = "Complete"
    elif _has_condition(obj, "Failed"):
        status = "Failed"
    elif _md(obj).get("deletionTimestamp"):
        status = "Terminating"
    elif _has_condition(obj, "Suspended"):
        status = "Suspended"
    else:
        status = "Running"
    completions = _get(obj, "spec", "completions")
    succeeded = _get(obj, "status", "succeeded") or 0
    done = (
        f"{succeeded}/{completions}"
        if completions is not None
        else f"{succeeded}/1 of {_get(obj, 'spec', 'parallelism') or 1}"
    )
    start = parse_time(_get(obj, "status", "startTime"))
    end = parse_time(_get(obj, "status", "completionTime")) or datetime.now(UTC)
    duration = human_duration((end - start).total_seconds()) if start else ""
    containers = _get(obj, "spec", "template", "spec", "containers") or []
    selector = _get(obj, "spec", "selector", "matchLabels") or {}
    return [
        _md(obj).get("name"),
        status,
        done,
        duration,
        age(_md(obj).get("creationTimestamp")),
        ",".join(str(c.get("name", "")) for c in containers),
        ",".join(str(c.get("image", "")) for c in containers),
        ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>",
    ]


def _event(obj: dict[str, Any], *, v1: bool = False) -> list[Any]:
    ref = (obj.get("regarding") if v1 else obj.get("involvedObject")) or {}
    first_raw = obj.get("deprecatedFirstTimestamp" if v1 else "firstTimestamp") or obj.get(
        "eventTime"
    )
    last_raw = obj.get("deprecatedLastTimestamp" if v1 else "lastTimestamp")
    first = age(first_raw) if first_raw else "<unknown>"
    last = age(last_raw) if last_raw else first
    count = int(obj.get("deprecatedCount" if v1 else "count") or 0)
    series = obj.get("series")
    if isinstance(series, dict) and series.get("lastObservedTime"):
        last = age(series["lastObservedTime"])
        count = int(series.get("count") or count)
    elif count > 1:
        last = f"{last} (x{count} over {first})"
    kind = str(ref.get("kind", "")).lower()
    target = f"{kind}/{ref['name']}" if ref.get("name") else kind
    source = obj.get("deprecatedSource" if v1 else "source") or {}
    component = (
        source.get("component")
        or obj.get("reportingController" if v1 else "reportingComponent")
        or ""
    )
    host = source.get("host", "")
    src = f"{component}, {host}" if host else component
    message = str(obj.get("note" if v1 else "message") or "").strip()
    return [
        last,
        obj.get("type", ""),
        obj.get("reason", ""),
        target,
        ref.get("fieldPath", ""),
        src,
        message,
        first,
        count,
        _md(obj).get("name"),
    ]


def _service(obj: dict[str, Any]) -> list[Any]:
    spec = obj.get("spec") or {}
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    selector = spec.get("selector") or {}
    return [
        _md(obj).get("name"),
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP", "<none>"),
        ",".join(spec.get("externalIPs") or []) or "<none>",
        ports or "<none>",
        age(_md(obj).get("creationTimestamp")),
        ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>",
    ]


def _lease(obj: dict[str, Any]) -> list[Any]:
    return [
        _md(obj).get("name"),
        _get(obj, "spec", "holderIdentity") or "",
        age(_md(obj).get("creationTimestamp")),
    ]


def _crd(obj: dict[str, Any]) -> list[Any]:
    return [_md(obj).get("name"), _md(obj).get("creationTimestamp")]


_EVENT_COLS = [
    _col("Last Seen"),
    _col("Type"),
    _col("Reason"),
    _col("Object"),
    _col("Subobject", priority=1),
    _col("Source", priority=1),
    _col("Message"),
    _col("First Seen", priority=1),
    _col("Count", "integer", priority=1),
    _col("Name", priority=1, fmt="name", desc=NAME_DESC),
]

BUILTIN_PRINTERS: dict[tuple[str, str], tuple[list[Column], CellFn]] = {
    ("", "configmaps"): ([NAME_COL, _col("Data", "integer"), AGE_COL], _configmap),
    ("", "secrets"): ([NAME_COL, _col("Type"), _col("Data", "integer"), AGE_COL], _secret),
    ("", "serviceaccounts"): ([NAME_COL, _col("Secrets", "integer"), AGE_COL], _serviceaccount),
    ("", "namespaces"): ([NAME_COL, _col("Status"), AGE_COL], _namespace),
    ("", "services"): (
        [
            NAME_COL,
            _col("Type"),
            _col("Cluster-IP"),
            _col("External-IP"),
            _col("Port(s)"),
            AGE_COL,
            _col("Selector", priority=1),
        ],
        _service,
    ),
    ("", "nodes"): (
        [
            NAME_COL,
            _col("Status"),
            _col("Roles"),
            AGE_COL,
            _col("Version"),
            _col("Internal-IP", priority=1),
            _col("External-IP", priority=1),
            _col("OS-Image", priority=1),
            _col("Kernel-Version", priority=1),
            _col("Container-Runtime", priority=1),
        ],
        _node,
    ),
    ("", "pods"): (
        [
            NAME_COL,
            _col("Ready"),
            _col("Status"),
            _col("Restarts"),
            AGE_COL,
            _col("IP", priority=1),
            _col("Node", priority=1),
            _col("Nominated Node", priority=1),
            _col("Readiness Gates", priority=1),
        ],
        _pod,
    ),
    ("batch", "jobs"): (
        [
            NAME_COL,
            _col("Status"),
            _col("Completions"),
            _col("Duration"),
            AGE_COL,
            _col("Containers", priority=1),
            _col("Images", priority=1),
            _col("Selector", priority=1),
        ],
        _job,
    ),
    ("", "events"): (_EVENT_COLS, _event),
    ("events.k8s.io", "events"): (_EVENT_COLS, lambda o: _event(o, v1=True)),
    ("coordination.k8s.io", "leases"): ([NAME_COL, _col("Holder"), AGE_COL], _lease),
    ("apiextensions.k8s.io", "customresourcedefinitions"): (
        [NAME_COL, _col("Created At", "date")],
        _crd,
    ),
}


def _custom_columns(rt: ResourceType) -> tuple[list[Column], CellFn]:
    printer = list(rt.printer_columns) or [
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    ]
    columns = [NAME_COL] + [
        {
            "name": c["name"],
            "type": c.get("type", "string"),
            "format": c.get("format", ""),
            "description": c.get("description", ""),
            "priority": int(c.get("priority", 0)),
        }
        for c in printer
    ]
    compiled: list[tuple[str, tuple[jsonpath.Step, ...] | None]] = []
    for c in printer:
        try:
            compiled.append((c.get("type", "string"), jsonpath.compile_path(c.get("jsonPath", ""))))
        except ValueError:
            compiled.append((c.get("type", "string"), None))

    def cells(obj: dict[str, Any]) -> list[Any]:
        row: list[Any] = [_md(obj).get("name")]
        for type_, steps in compiled:
            if steps is None:
                row.append("<invalid>")
                continue
            found = jsonpath.evaluate(steps, obj)
            row.append(_cell(type_, found[0]) if found else None)
        return row

    return columns, cells


def _cell(type_: str, value: Any) -> Any:
    if value is None:
        return None
    if type_ == "string":
        return jsonpath.render(value)
    if type_ == "integer":
        if isinstance(value, bool):
            return None
        return int(value) if isinstance(value, int | float) else None
    if type_ == "number":
        if isinstance(value, bool):
            return None
        return value if isinstance(value, int | float) else None
    if type_ == "boolean":
        return value if isinstance(value, bool) else None
    if type_ == "date":
        return age(value) if isinstance(value, str) else None
    return None


def printer(rt: ResourceType) -> tuple[list[Column], CellFn]:
    if rt.custom:
        return _custom_columns(rt)
    found = BUILTIN_PRINTERS.get((rt.group, rt.plural))
    if found is not None:
        return found
    return [NAME_COL, AGE_COL], lambda o: [_md(o).get("name"), age(_md(o).get("creationTimestamp"))]


def partial_metadata(obj: dict[str, Any], api_version: str) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": api_version, "metadata": _md(obj)}


def make_table(
    rt: ResourceType,
    objects: list[dict[str, Any]],
    *,
    api_version: str = "meta.k8s.io/v1",
    include_object: str = "Metadata",
    resource_version: str | None = None,
    headers: bool = True,
) -> dict[str, Any]:
    columns, cells = printer(rt)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": cells(obj)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj, api_version)
        rows.append(row)
    table: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": {"resourceVersion": resource_version} if resource_version else {},
        "columnDefinitions": columns if headers else None,
        "rows": rows,
    }
    return table
