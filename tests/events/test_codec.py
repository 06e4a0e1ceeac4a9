"""The fast JSON codec reads and writes what the standard library does, on any input."""

from __future__ import annotations

import gc
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import codec


# Every JSON value, with what orjson treats differently from `json`: integers past 64 bits,
# non-finite floats, lone surrogates and other non-ASCII text.
def json_values(floats: st.SearchStrategy[float]) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.integers(min_value=2**63 - 2, max_value=2**90)
        | st.integers(min_value=-(2**90), max_value=-(2**63) + 2)
        | floats
        | st.text(max_size=8)
        | st.sampled_from(["\ud800", "é", "\u2028", "\x7f"]),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=20,
    )


VALUES = json_values(st.floats())
# What a status holds: JSON a stored commit decodes to, whose floats are finite.
FINITE_VALUES = json_values(st.floats(allow_nan=False, allow_infinity=False))


def same(a: Any, b: Any) -> bool:
    """Equal as JSON values, NaN equal to NaN, and an int never equal to a float."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=300, deadline=None)
@given(value=VALUES, ascii_only=st.booleans(), indent=st.none() | st.just(1))
def test_loads_reads_any_json_text_as_the_standard_library(
    value: Any, ascii_only: bool, indent: int | None
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, indent=indent)
    data = text.encode("utf-8", "surrogatepass")
    assert same(codec.loads(data), json.loads(data))
    assert same(codec.loads(text), json.loads(text))


def test_an_integer_past_64_bits_reads_back_exact_not_as_a_float() -> None:
    big = 2**64 * 1000 + 7
    assert codec.loads(f'{{"replicas": {big}}}'.encode()) == {"replicas": big}
    assert codec.loads(f"[{-big}]".encode()) == [-big]
    # 19 digits: below int64 (orjson reads it as a float), within uint64 on the positive side
    for exact in (-(2**63) - 1, -9_500_000_000_000_000_000, 2**64 - 1):
        assert codec.loads(f"[{exact}]".encode()) == [exact]
        assert type(codec.loads(f"[{exact}]".encode())[0]) is int


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff\x00garbage", b"[1,", b"{'a': 1}", b"[" * 5000 + b"]" * 5000, b"\xef\xbb\xbf[1]"],
)
def test_loads_refuses_what_the_standard_library_refuses(data: bytes) -> None:
    try:
        expected: Any = json.loads(data)
    except (ValueError, RecursionError) as exc:
        with pytest.raises(type(exc)):
            codec.loads(data)
    else:
        assert codec.loads(data) == expected


@settings(max_examples=300, deadline=None)
@given(value=FINITE_VALUES)
def test_canonical_bytes_read_back_as_the_value_and_depend_only_on_it(value: Any) -> None:
    encoded = codec.canonical(value)
    assert same(json.loads(encoded), value)
    reordered = json.loads(json.dumps(value, sort_keys=True))
    assert codec.canonical(reordered) == encoded


def test_canonical_bytes_are_sorted_compact_utf8() -> None:
    assert codec.canonical({"b": "é", "a": [1, {"d": 2.5, "c": None}]}) == (
        '{"a":[1,{"c":null,"d":2.5}],"b":"é"}'.encode()
    )
    assert codec.canonical({"n": 2**70}) == b'{"n":1180591620717411303424}'


@pytest.mark.parametrize("enabled", [True, False])
def test_loads_all_reads_each_value_and_leaves_the_collector_as_it_was(enabled: bool) -> None:
    values = [json.dumps({"n": i, "big": 2**70 + i, "xs": [i] * 3}).encode() for i in range(50)]
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        assert codec.loads_all(values) == [json.loads(v) for v in values]
        assert gc.isenabled() is enabled
        with pytest.raises(ValueError):
            codec.loads_all([values[0], b"{not json"])
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()
