"""The limits on what a client may send, as pure checks shared by the service and the client.

A request must fit every message the service derives from it: its outcome subject
(`dgdr.res.<escaped request id>`, under nats-server's 4,096-byte control line), its event
commit, its status in KV and its DGD (each under the server's max payload, 1 MiB by default),
and it must be readable without deep recursion (Python's JSON codec and pydantic recurse per
nesting level). So:

- a request id has at most `MAX_REQUEST_ID_CHARS` printable ASCII characters, no space:
  escaped, its outcome subject stays under 700 bytes;
- a manifest has at most `manifest_limit(max_payload)` bytes: Kubernetes' 256 KiB cap on an
  object's annotations, and a quarter of the server's max payload, because the spec is carried
  up to three times in what the service derives from it (the commit, the status with its
  generated DGD, the DGD);
- `spec.overrides` holds at most `MAX_OVERRIDES_BYTES` bytes of JSON;
- JSON is nested at most `MAX_JSON_DEPTH` levels anywhere in the body (an object or array is
  a level);
- a DGDR's `metadata.name` has at most `MAX_NAME_CHARS` characters: every name derived from it must
  fit Kubernetes' 63-character limits (`DERIVED_NAMES`: the profiling Job `profile-<name>`, whose
  name labels its pods, and the DGD `<name>-dgd`, a DNS label; the output ConfigMap
  `dgdr-output-<name>` is a DNS subdomain of up to 253 and carries the name as a label value, at
  most 63). Dynamo's CRD does not bound the name; its controller then fails at the Job or the DGD,
  as this did at GeneratingDGD, so both front doors refuse such a name on create instead.

Each check returns what is wrong, in one line naming the limit and the field path, or None. The
depth checks never recurse, so they are safe on any input, and run before anything that does; on
text, the depth is measured at C speed (about 0.25 s for 1 MB of brackets on a loaded 2-core
machine) and only text found too deep, and within the size limit, is scanned again to name where.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_REQUEST_ID_CHARS = 200
MAX_JSON_DEPTH = 64
MAX_MANIFEST_BYTES = 256 * 1024
MAX_OVERRIDES_BYTES = 128 * 1024
KUBERNETES_NAME_CHARS = 63  # a DNS label, a label value
DERIVED_NAMES = ("profile-{name}", "{name}-dgd")
MAX_NAME_CHARS = KUBERNETES_NAME_CHARS - max(len(d.format(name="")) for d in DERIVED_NAMES)

_REQUEST_ID = re.compile(r"[!-~]+")  # printable ASCII, no space
_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
_JSON_STRING = re.compile(_STRING, re.DOTALL)
_JSON_TOKEN = re.compile(_STRING + rb"|[\[\]{}:,]", re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKET_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as signed bytes


def request_id_problem(request_id: str) -> str | None:
    """Why `request_id` cannot name a request (and its outcome subject); None when it can."""
    if not request_id:
        return "no Nats-Msg-Id header: every request needs a request id"
    if len(request_id) > MAX_REQUEST_ID_CHARS:
        return (
            f"the request id (Nats-Msg-Id) is {len(request_id)} characters; the limit is "
            f"{MAX_REQUEST_ID_CHARS}"
        )
    if not _REQUEST_ID.fullmatch(request_id):
        return (
            "the request id (Nats-Msg-Id) may hold only printable ASCII characters without "
            "spaces (a UUID, for example)"
        )
    return None


def name_problem(name: str) -> str | None:
    """Why `name` is too long for the names derived from it (one line naming the limit); None
    when every derived name fits."""
    if len(name) <= MAX_NAME_CHARS:
        return None
    derived = " and ".join(f"'{d.format(name='<name>')}'" for d in DERIVED_NAMES)
    return (
        f"{len(name)} characters is too long: the limit is {MAX_NAME_CHARS}, so that {derived} "
        f"fit Kubernetes' {KUBERNETES_NAME_CHARS}-character names"
    )


def manifest_limit(max_payload: int) -> int:
    """The largest manifest, in bytes of JSON, a server with `max_payload` can carry through."""
    return min(MAX_MANIFEST_BYTES, max_payload // 4)


def _field_path(path: list[str]) -> str:
    """`spec.overrides[0].a` from ["spec", "overrides", "[0]", "a"]."""
    return "".join(p if p.startswith("[") or i == 0 else f".{p}" for i, p in enumerate(path)) or (
        "(the body)"
    )


def _too_deep(path: list[str], limit: int) -> tuple[str, str]:
    shown = _field_path(path[:6]) + ("…" if len(path) > 6 else "")
    return (
        _field_path(path[:3]),
        f"JSON nested more than {limit} levels deep (at {shown}); the limit is {limit}",
    )


def max_depth(data: bytes) -> int:
    """How deeply JSON text nests (an object or array is a level), at C speed: strings removed,
    then a running sum over the brackets left."""
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    steps = memoryview(brackets.translate(_BRACKET_STEP)).cast("b")
    return max(accumulate(steps), default=0)


def depth_problem(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> tuple[str, str] | None:
    """(field path, message) when JSON text nests deeper than `limit` levels; None otherwise.

    Never parses or recurses, so it is safe on any input; text that is not JSON passes (the
    parser refuses it next). The depth is measured at C speed; only text nested too deeply is
    scanned token by token, to name where."""
    raw = data.encode() if isinstance(data, str) else data
    if max_depth(raw) <= limit:
        return None
    return _where_too_deep(raw, limit)


def _where_too_deep(raw: bytes, limit: int) -> tuple[str, str]:
    """Token by token (Python speed) to the first place nested deeper than `limit`."""
    # One entry per open container: its key or index in its parent, and for an object the key
    # just read (the next value's name).
    path: list[str] = []
    kinds: list[int] = []  # b"{" or b"["
    indexes: list[int] = []
    last_key: str | None = None
    for match in _JSON_TOKEN.finditer(raw):
        token = match.group()
        first = token[0]
        if first == 0x22:  # a string: in an object before ':', it is a key
            if kinds and kinds[-1] == 0x7B:
                try:
                    last_key = str(json.loads(token))
                except ValueError:
                    last_key = "?"
        elif first in (0x7B, 0x5B):  # { or [
            if kinds:
                path.append((last_key or "?") if kinds[-1] == 0x7B else f"[{indexes[-1]}]")
            kinds.append(first)
            indexes.append(0)
            last_key = None
            if len(kinds) > limit:
                return _too_deep(path, limit)
        elif first in (0x7D, 0x5D):  # } or ]
            if kinds:
                kinds.pop()
                indexes.pop()
                if path:
                    path.pop()
        elif first == 0x2C and indexes:  # ,
            indexes[-1] += 1
    return _too_deep(path, limit)


def text_problems(data: bytes, size_limit: int) -> list[tuple[str, str]]:
    """(field path, message) for the JSON text of a request before it is parsed: nested too deeply
    (named), or, when it is also over `size_limit`, both at once without naming where (so a
    request costs at most a C-speed pass over its bytes, plus a named pass over `size_limit`)."""
    if data.count(b"{") + data.count(b"[") <= MAX_JSON_DEPTH:
        return []  # each level opens a bracket: text with this few cannot nest deeper
    depth = max_depth(data)
    if depth <= MAX_JSON_DEPTH:
        return []
    if len(data) > size_limit:
        return [
            (
                "(the manifest)",
                f"{len(data)} bytes nested {depth} levels deep; the limits are {size_limit} "
                f"bytes and {MAX_JSON_DEPTH} levels",
            )
        ]
    return [_where_too_deep(data, MAX_JSON_DEPTH)]


def value_depth_problem(value: Any, limit: int = MAX_JSON_DEPTH) -> tuple[str, str] | None:
    """`depth_problem` for a Python value (dicts and lists), without recursing."""
    stack: list[tuple[Any, int, list[str]]] = [(value, 0, [])]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, dict):
            children: list[tuple[str, Any]] = [(str(k), v) for k, v in item.items()]
        elif isinstance(item, list | tuple):
            children = [(f"[{i}]", v) for i, v in enumerate(item)]
        else:
            continue
        if depth + 1 > limit:
            return _too_deep(path, limit)
        stack.extend((child, depth + 1, [*path, key]) for key, child in children)
    return None


def size_problems(body: dict[str, Any], size: int, limit: int) -> list[tuple[str, str]]:
    """(field path, message) for a manifest of `size` bytes over `limit`, naming its largest
    top-level field, and for `spec.overrides` over `MAX_OVERRIDES_BYTES`. `body` must have passed
    the depth check (sizes are measured by serialising)."""
    problems = []
    if size > limit:
        sizes = {key: len(json.dumps(value)) for key, value in body.items()}
        largest = max(sizes, key=lambda k: sizes[k]) if sizes else "(the body)"
        problems.append(
            (
                largest,
                f"the manifest is {size} bytes ({largest} {sizes.get(largest, size)}); the "
                f"limit is {limit} bytes",
            )
        )
    spec = body.get("spec")
    overrides = spec.get("overrides") if isinstance(spec, dict) else None
    if overrides is not None:
        overrides_size = len(json.dumps(overrides))
        if overrides_size > MAX_OVERRIDES_BYTES:
            problems.append(
                (
                    "spec.overrides",
                    f"{overrides_size} bytes of JSON; the limit is {MAX_OVERRIDES_BYTES} bytes",
                )
            )
    return problems
