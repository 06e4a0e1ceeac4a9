"""JSON for stored bytes: orjson's speed with the standard library's exact results.

Owns `loads` (stored bytes → Python values; `loads_all` for many at once) and `canonical` (a
value → its canonical bytes: sorted keys, compact, UTF-8). orjson is 2-3x faster than `json` on
reading and over 10x on writing, but differs from it on a few inputs; on those, both functions fall
back to the standard library, so what they return never depends on which codec ran:

- `loads`: orjson refuses what is not strict UTF-8 JSON (NaN, lone surrogates, other encodings,
  nesting past 1024) and reads an integer past 64 bits as a float; text it refuses, or holding a
  run of 19 digits or more, is read by `json.loads`, and whatever that raises is what `loads`
  raises (`ValueError`, `RecursionError`).
- `canonical`: orjson refuses integers past 64 bits, strings that are not valid Unicode and nesting
  past 254; such a value is written by `json.dumps` (ASCII-escaped). Which codec writes a value
  depends only on the value, so equal values give equal bytes, which is all the status bucket and
  its rebuild need (`projections.status.encode`).
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

# Digits as "0", everything else as " ": a run of 19 digits is then found at memory speed (a
# regular expression takes several times orjson's whole parse). 19, not 20: a negative integer
# of 19 digits can lie below int64, which orjson reads as a float.
_DIGITS_ONLY = bytes(ord("0") if chr(i).isdigit() and i < 128 else ord(" ") for i in range(256))
_LONG_DIGITS = b"0" * 19


def loads(data: bytes | str) -> Any:
    """The value JSON text holds, as `json.loads` reads it."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    fast = fast_loads(raw)
    return fast[0] if fast is not None else json.loads(data)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused (and enabled again after, if it was), for bulk
    decoding: JSON values hold no reference cycles, but each collection that decoding thousands
    of them triggers walks every object decoded so far again. Memory is still freed as the last
    reference goes; only cycles wait for the collector."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def loads_all(values: Iterable[bytes]) -> list[Any]:
    """`loads` of each value, in order, with the collector paused (about half the time of
    decoding thousands of statuses was collections)."""
    with collector_paused():
        return [loads(value) for value in values]


def fast_loads(data: bytes) -> tuple[Any] | None:
    """`(value,)` when orjson reads the text exactly as `json.loads` would: strict UTF-8 JSON, no
    NaN or infinity, nesting up to 1024, integers up to 64 bits; None when only `json.loads` can
    read it (or nothing can)."""
    if _LONG_DIGITS in data.translate(_DIGITS_ONLY):
        return None
    try:
        return (orjson.loads(data),)
    except orjson.JSONDecodeError:
        return None


def canonical(value: Any) -> bytes:
    """The canonical bytes of a JSON value: sorted keys, compact; equal values, equal bytes."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
