"""Object metadata rules shared by every kind: names, timestamps, server-owned fields, defaults.

Owns the pure helpers the store applies on each write: RFC 3339 timestamps, `generateName`
suffixes, DNS-1123 name and label checks (worded like the real server), which metadata fields the
server owns (uid, creationTimestamp, generation, deletionTimestamp, ...), "did spec change" for
generation, and the few defaults the real server gives built-in kinds (namespace phase, job
completions, CRD status).

Failure semantics: pure functions; checks return `FieldError` lists (never raise), the store turns
them into 422 Invalid.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from typing import Any

from k8s.emulator import errors
from k8s.emulator.errors import FieldError
from k8s.emulator.resources import ResourceType

SERVER_OWNED = (
    "uid",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "resourceVersion",
    "selfLink",
)

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_DNS1123_LABEL_RE = re.compile(rf"^{_DNS1123_LABEL}$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


def now() -> str:
    """The current time as the API writes it: RFC 3339, UTC, seconds, `Z`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None


def generate_name(prefix: str) -> str:
    return prefix + "".join(random.choice(_SUFFIX_ALPHABET) for _ in range(5))


def check_metadata(rt: ResourceType, meta: dict[str, Any]) -> list[FieldError]:
    """Name and label checks the real server runs on every create and update."""
    problems: list[FieldError] = []
    name = meta.get("name", "")
    if rt.plural == "namespaces" and rt.group == "":
        if len(name) > 63:
            problems.append(
                errors.invalid_value("metadata.name", name, "must be no more than 63 characters")
            )
        if not _DNS1123_LABEL_RE.match(name):
            problems.append(errors.invalid_value("metadata.name", name, LABEL_MSG))
    elif rt.group == "rbac.authorization.k8s.io":  # a path segment: `system:discovery` is valid
        for bad, why in ((".", "may not be '.'"), ("..", "may not be '..'")):
            if name == bad:
                problems.append(errors.invalid_value("metadata.name", name, why))
        for bad in ("/", "%"):
            if bad in name:
                problems.append(
                    errors.invalid_value("metadata.name", name, f"may not contain '{bad}'")
                )
    else:
        if len(name) > 253:
            problems.append(
                errors.invalid_value("metadata.name", name, "must be no more than 253 characters")
            )
        if not _DNS1123_SUBDOMAIN.match(name):
            problems.append(errors.invalid_value("metadata.name", name, SUBDOMAIN_MSG))
    labels = meta.get("labels")
    if labels is not None and not isinstance(labels, dict):
        problems.append(errors.type_invalid("metadata.labels", labels, "must be a map"))
    for key, value in (labels or {}).items():
        if not _qualified(key):
            problems.append(
                errors.invalid_value(
                    "metadata.labels",
                    key,
                    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                )
            )
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            problems.append(
                errors.invalid_value(
                    "metadata.labels",
                    value,
                    "a valid label must be an empty string or consist of alphanumeric characters, "
                    "'-', '_' or '.', and must start and end with an alphanumeric character",
                )
            )
    annotations = meta.get("annotations")
    if annotations is not None and (
        not isinstance(annotations, dict)
        or not all(isinstance(v, str) for v in annotations.values())
    ):
        problems.append(
            errors.type_invalid("metadata.annotations", annotations, "must be a map of strings")
        )
    finalizers = meta.get("finalizers")
    if finalizers is not None and (
        not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers)
    ):
        problems.append(
            errors.type_invalid("metadata.finalizers", finalizers, "must be a list of strings")
        )
    return problems


def _qualified(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_QUALIFIED_NAME.match(name))


def content(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The part of an object whose change bumps metadata.generation."""
    if not rt.custom:
        return {"spec": obj.get("spec")}
    skip = {"metadata", "status"} if rt.status_subresource else {"metadata"}
    return {k: v for k, v in obj.items() if k not in skip and k not in ("apiVersion", "kind")}


def builtin_defaults(rt: ResourceType, obj: dict[str, Any], *, creating: bool) -> None:
    """The defaults a real server gives built-in kinds, where something relies on them."""
    key = (rt.group, rt.plural)
    if key == ("", "namespaces"):
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        if creating:
            obj["status"] = {"phase": "Active"}
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"][
            "name"
        ]
    elif key == ("batch", "jobs"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("suspend", False)
        spec.setdefault("completionMode", "NonIndexed")
        if creating:
            obj["status"] = {}
    elif key == ("", "pods") and creating:
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    elif key == ("", "services"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        if creating and spec.get("clusterIP") in (None, ""):
            n = random.randrange(1, 65534)
            spec["clusterIP"] = f"10.96.{n // 256}.{n % 256}"
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        if creating:
            obj["status"] = {"loadBalancer": {}}
    elif key == ("", "secrets"):
        obj.setdefault("type", "Opaque")
    elif key == ("apiextensions.k8s.io", "customresourcedefinitions") and creating:
        spec = obj.get("spec") or {}
        obj["status"] = {
            "acceptedNames": spec.get("names", {}),
            "storedVersions": [v["name"] for v in spec.get("versions", []) if v.get("storage")],
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": now(),
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": now(),
                },
            ],
        }
