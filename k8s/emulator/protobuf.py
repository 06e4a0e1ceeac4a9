"""Decoding of `application/vnd.kubernetes.protobuf` request bodies for a few built-in kinds.

kubectl's typed clients (`kubectl create configmap|secret|namespace|serviceaccount ...`) send
protobuf, not JSON, and do not fall back. This module owns just enough to read those bodies: the
`k8s\\x00` envelope (runtime.Unknown with TypeMeta and raw bytes), the protobuf wire format, and
the field numbers of ObjectMeta, OwnerReference, ConfigMap, Secret, Namespace and ServiceAccount
(from k8s.io/api generated.proto). Responses are always JSON (clients accept it).

Failure semantics: `decode` raises `ApiError` 415 for a kind it has no schema for, and 400 for
bytes that are not a well-formed envelope or message.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from k8s.emulator import errors

MAGIC = b"k8s\x00"

# A schema maps a field number to (JSON name, kind); kinds: "string", "bytes", "int", "bool",
# "time", "map", "mapbytes", "strings", or a nested schema (dict) optionally in a 1-tuple for
# a repeated message.
Schema = dict[int, tuple[str, Any]]

OWNER_REFERENCE: Schema = {
    1: ("kind", "string"),
    3: ("name", "string"),
    4: ("uid", "string"),
    5: ("apiVersion", "string"),
    6: ("controller", "bool"),
    7: ("blockOwnerDeletion", "bool"),
}
OBJECT_META: Schema = {
    1: ("name", "string"),
    2: ("generateName", "string"),
    3: ("namespace", "string"),
    5: ("uid", "string"),
    6: ("resourceVersion", "string"),
    7: ("generation", "int"),
    8: ("creationTimestamp", "time"),
    9: ("deletionTimestamp", "time"),
    10: ("deletionGracePeriodSeconds", "int"),
    11: ("labels", "map"),
    12: ("annotations", "map"),
    13: ("ownerReferences", (OWNER_REFERENCE,)),
    14: ("finalizers", "strings"),
}
OBJECT_REFERENCE: Schema = {
    1: ("kind", "string"),
    2: ("namespace", "string"),
    3: ("name", "string"),
    4: ("uid", "string"),
    5: ("apiVersion", "string"),
    6: ("resourceVersion", "string"),
    7: ("fieldPath", "string"),
}
KINDS: dict[tuple[str, str], Schema] = {
    ("v1", "ConfigMap"): {
        1: ("metadata", OBJECT_META),
        2: ("data", "map"),
        3: ("binaryData", "mapbytes"),
        4: ("immutable", "bool"),
    },
    ("v1", "Secret"): {
        1: ("metadata", OBJECT_META),
        2: ("data", "mapbytes"),
        3: ("type", "string"),
        4: ("stringData", "map"),
        5: ("immutable", "bool"),
    },
    ("v1", "Namespace"): {
        1: ("metadata", OBJECT_META),
        2: ("spec", {1: ("finalizers", "strings")}),
    },
    ("v1", "ServiceAccount"): {
        1: ("metadata", OBJECT_META),
        2: ("secrets", (OBJECT_REFERENCE,)),
        3: ("imagePullSecrets", ({1: ("name", "string")},)),
        4: ("automountServiceAccountToken", "bool"),
    },
}
UNKNOWN: Schema = {
    1: ("typeMeta", {1: ("apiVersion", "string"), 2: ("kind", "string")}),
    2: ("raw", "raw"),
    3: ("contentEncoding", "string"),
    4: ("contentType", "string"),
}


def _malformed() -> errors.ApiError:
    return errors.bad_request("unable to decode the protobuf request body")


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _malformed()
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise _malformed()
            yield number, buf[pos : pos + size]
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise _malformed()


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _time(buf: bytes) -> str:
    seconds = 0
    for number, value in _fields(buf):
        if number == 1 and isinstance(value, int):
            seconds = _signed(value)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise _malformed()
    return value.decode("utf-8", errors="replace")


def _entry(buf: bytes) -> tuple[str, bytes]:
    key, val = "", b""
    for number, value in _fields(buf):
        if number == 1:
            key = _text(value)
        elif number == 2 and isinstance(value, bytes):
            val = value
    return key, val


def decode_message(buf: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, value in _fields(buf):
        if number not in schema:
            continue
        name, kind = schema[number]
        if kind == "string":
            if value:  # gogo-protobuf writes empty strings; JSON omits them
                out[name] = _text(value)
        elif kind == "raw":
            out[name] = value
        elif kind == "bytes":
            out[name] = base64.b64encode(value if isinstance(value, bytes) else b"").decode()
        elif kind == "int":
            if value:
                out[name] = _signed(value) if isinstance(value, int) else 0
        elif kind == "bool":
            out[name] = bool(value)
        elif kind == "time":
            out[name] = _time(value if isinstance(value, bytes) else b"")
        elif kind in ("map", "mapbytes"):
            key, raw = _entry(value if isinstance(value, bytes) else b"")
            shown = (
                raw.decode("utf-8", "replace") if kind == "map" else base64.b64encode(raw).decode()
            )
            out.setdefault(name, {})[key] = shown
        elif kind == "strings":
            out.setdefault(name, []).append(_text(value))
        elif isinstance(kind, tuple):
            out.setdefault(name, []).append(decode_message(_bytes(value), kind[0]))
        elif isinstance(kind, dict):
            out[name] = decode_message(_bytes(value), kind)
    return out


def _bytes(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise _malformed()
    return value


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded built-in object as its JSON form."""
    if not body.startswith(MAGIC):
        raise _malformed()
    envelope = decode_message(body[len(MAGIC) :], UNKNOWN)
    type_meta = envelope.get("typeMeta") or {}
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    schema = KINDS.get((api_version, kind))
    if schema is None:
        raise errors.unsupported_media_type(["application/json", "application/yaml"])
    obj = decode_message(envelope.get("raw", b""), schema)
    return {"apiVersion": api_version, "kind": kind, **obj}
