"""Label and field selectors, parsed and matched as the real server does.

The `labelSelector` grammar is `k8s.labels` (shared with `dgdr get -l`); a malformed one is answered
here as the server answers it. Owns the `fieldSelector` grammar (`f=v`, `f==v`, `f!=v`; `\\,`
escapes) with the fields each kind supports (`metadata.name` and `metadata.namespace` everywhere;
`involvedObject.*`, `reason`, `type`, ... for events; `spec.nodeName`, `status.phase` for pods).

Failure semantics: a malformed selector or an unsupported field raises `ApiError` 400 BadRequest
(the real server's wording), before any object is read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from k8s import labels
from k8s.emulator import errors
from k8s.labels import LabelSelector


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse a `labelSelector` query value; raises ApiError 400 when malformed."""
    try:
        return labels.parse_label_selector(text)
    except ValueError as exc:
        raise errors.bad_request(str(exc)) from None


# Field selectors.


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    op: str  # "=" or "!="
    value: str


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: dict[str, Any], getter: FieldGetter) -> bool:
        for req in self.requirements:
            have = getter(obj, req.field)
            if (have == req.value) != (req.op == "="):
                return False
        return True

    @property
    def empty(self) -> bool:
        return not self.requirements


FieldGetter = Callable[[dict[str, Any], str], str]


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, cur, i = [], "", 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur += text[i : i + 2]
            i += 2
            continue
        if ch == sep:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    parts.append(cur)
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_field_selector(text: str | None, supported: set[str]) -> FieldSelector:
    """Parse a `fieldSelector`; fields outside `supported` raise ApiError 400 like the server."""
    if not text or not text.strip():
        return FieldSelector()
    reqs = []
    for part in _split_unescaped(text, ","):
        part = part.strip()
        if not part:
            continue
        m = re.match(r"^(.*?)(!=|==|=)(.*)$", part)
        if not m:
            raise errors.bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        name, op, value = m.group(1).strip(), m.group(2), _unescape(m.group(3).strip())
        if name not in supported:
            raise errors.bad_request(f"field label not supported: {name}")
        reqs.append(FieldRequirement(name, "!=" if op == "!=" else "=", value))
    return FieldSelector(tuple(reqs))


def _dig(obj: dict[str, Any], dotted: str) -> str:
    cur: Any = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


COMMON_FIELDS = {"metadata.name", "metadata.namespace"}
EVENT_FIELDS = COMMON_FIELDS | {
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
}
EVENTS_V1_FIELDS = COMMON_FIELDS | {
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "type",
}
POD_FIELDS = COMMON_FIELDS | {"spec.nodeName", "spec.restartPolicy", "status.phase"}
SECRET_FIELDS = COMMON_FIELDS | {"type"}
NAMESPACE_FIELDS = COMMON_FIELDS | {"status.phase"}
NODE_FIELDS = COMMON_FIELDS | {"spec.unschedulable"}
JOB_FIELDS = COMMON_FIELDS | {"status.successful"}


def supported_fields(group: str, plural: str) -> set[str]:
    if plural == "events":
        return EVENTS_V1_FIELDS if group == "events.k8s.io" else EVENT_FIELDS
    if group == "":
        return {
            "pods": POD_FIELDS,
            "secrets": SECRET_FIELDS,
            "namespaces": NAMESPACE_FIELDS,
            "nodes": NODE_FIELDS,
        }.get(plural, COMMON_FIELDS)
    if group == "batch" and plural == "jobs":
        return JOB_FIELDS
    return COMMON_FIELDS


def field_value(obj: dict[str, Any], name: str) -> str:
    """The value of a selectable field, as the server's field-label conversion produces it."""
    if name == "source":
        source = obj.get("source") or {}
        return str(source.get("component", "")) if isinstance(source, dict) else ""
    if name == "status.successful":
        return _dig(obj, "status.succeeded")
    return _dig(obj, name)
