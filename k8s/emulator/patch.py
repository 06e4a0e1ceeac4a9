"""Patch application: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and server-side apply.

Owns the pure functions that turn (current object, patch document) into a new object:
- `merge_patch`: RFC 7386 (objects merge recursively, `null` removes a key, arrays are replaced).
- `json_patch`: RFC 6902 operations add/remove/replace/move/copy/test with RFC 6901 pointers
  (`~1` is `/`, `~0` is `~`; `-` appends to an array).
- `strategic_as_merge`: strategic-merge-patch for built-in kinds, approximated as a JSON merge patch
  after dropping the `$patch`/`$setElementOrder`/`$retainKeys`/`$deleteFromPrimitiveList`
  directives (an approximation: lists are replaced, not merged by key).
- `apply_config`: server-side apply, simplified to a recursive merge of the applied configuration
  onto the live object (no managedFields, no field ownership, so no apply conflicts).

Failure semantics: functions never mutate their inputs. A malformed patch document raises
`ApiError` 400 BadRequest; a JSON patch that cannot be applied (missing path, failing `test`)
raises `ApiError` 422 with the reason in the message, as the real server does.
"""

from __future__ import annotations

import copy
from typing import Any

from k8s.emulator import errors


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch; returns a new document."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_as_merge(patch: Any) -> Any:
    """Drop strategic-merge-patch directives so the rest can be applied as a merge patch."""
    if isinstance(patch, dict):
        return {
            k: strategic_as_merge(v)
            for k, v in patch.items()
            if not k.startswith("$") and not k.startswith("$setElementOrder/")
        }
    if isinstance(patch, list):
        return [strategic_as_merge(v) for v in patch if not (isinstance(v, dict) and "$patch" in v)]
    return patch


def apply_config(live: dict[str, Any], applied: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply, simplified: the applied config merged recursively onto the live object."""
    result = merge_patch(live, applied)
    assert isinstance(result, dict)
    return result


def _unprocessable(message: str) -> errors.ApiError:
    return errors.ApiError(422, "Invalid", message)


def _parse_pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise errors.bad_request(f'JSON pointer "{pointer}" must start with "/"')
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]


def _index(container: list[Any], token: str, pointer: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise _unprocessable(f'invalid array index "{token}" in path "{pointer}"')
    idx = int(token)
    limit = len(container) if allow_end else len(container) - 1
    if idx > limit:
        raise _unprocessable(f"array index out of bounds: {idx} in path {pointer!r}")
    return idx


def _parent(doc: Any, tokens: list[str], pointer: str) -> Any:
    cur = doc
    for token in tokens[:-1]:
        if isinstance(cur, dict):
            if token not in cur:
                raise _unprocessable(f"doc is missing path: {pointer!r}: missing value")
            cur = cur[token]
        elif isinstance(cur, list):
            cur = cur[_index(cur, token, pointer, allow_end=False)]
        else:
            raise _unprocessable(f"doc is missing path: {pointer!r}: missing value")
    return cur


def _get(doc: Any, pointer: str) -> Any:
    tokens = _parse_pointer(pointer)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _unprocessable(f"doc is missing path: {pointer!r}: missing value")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, pointer, allow_end=False)]
    raise _unprocessable(f"doc is missing path: {pointer!r}: missing value")


def _add(doc: Any, pointer: str, value: Any) -> Any:
    tokens = _parse_pointer(pointer)
    if not tokens:
        return value
    parent = _parent(doc, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, pointer, allow_end=True), value)
    else:
        raise _unprocessable(f"doc is missing path: {pointer!r}: missing value")
    return doc


def _remove(doc: Any, pointer: str) -> Any:
    tokens = _parse_pointer(pointer)
    if not tokens:
        raise _unprocessable("unable to remove the whole document")
    parent = _parent(doc, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _unprocessable(f"unable to remove nonexistent key: {last}: missing value")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, pointer, allow_end=False)]
    else:
        raise _unprocessable(f"doc is missing path: {pointer!r}: missing value")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch; returns a new document."""
    if not isinstance(operations, list):
        raise errors.bad_request(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        )
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op:
            raise errors.bad_request("invalid JSON patch operation: missing 'op'")
        kind = op["op"]
        path = op.get("path")
        if not isinstance(path, str):
            raise errors.bad_request(f"invalid JSON patch operation {kind!r}: missing 'path'")
        if kind in ("add", "replace", "test") and "value" not in op:
            raise errors.bad_request(f"invalid JSON patch operation {kind!r}: missing 'value'")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            doc = _remove(doc, path) if _parse_pointer(path) else doc
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise errors.bad_request(f"invalid JSON patch operation {kind!r}: missing 'from'")
            value = copy.deepcopy(_get(doc, source))
            if kind == "move":
                if path.startswith(source + "/"):
                    raise _unprocessable(f"cannot move {source!r} into its own child {path!r}")
                doc = _remove(doc, source)
            doc = _add(doc, path, value)
        elif kind == "test":
            try:
                have = _get(doc, path)
            except errors.ApiError:
                have = _MISSING
            if have is _MISSING or not _equal(have, op["value"]):
                raise _unprocessable(f"testing value {path} failed: test failed")
        else:
            raise errors.bad_request(f"Unexpected kind: {kind}")
    return doc


_MISSING = object()


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)
