"""The request limits: each check names what is over which limit, and none of them recurses."""

from __future__ import annotations

import json
from typing import Any

from dgdr.domain.limits import (
    MAX_JSON_DEPTH,
    MAX_MANIFEST_BYTES,
    MAX_NAME_CHARS,
    MAX_OVERRIDES_BYTES,
    MAX_REQUEST_ID_CHARS,
    depth_problem,
    manifest_limit,
    max_depth,
    name_problem,
    request_id_problem,
    size_problems,
    text_problems,
    value_depth_problem,
)
from events import subjects


def nested(levels: int) -> str:
    """A manifest whose `spec.overrides.dgd.spec` holds objects nested to `levels` in total."""
    inner = '{"a":' * (levels - 4) + "1" + "}" * (levels - 4)
    return '{"spec": {"overrides": {"dgd": {"spec": ' + inner + "}}}}"


def test_depth_is_checked_without_recursion_and_names_the_field() -> None:
    problem = depth_problem(nested(100_000).encode())  # far beyond Python's recursion limit
    assert problem is not None
    field, message = problem
    assert field == "spec.overrides.dgd"
    assert f"the limit is {MAX_JSON_DEPTH}" in message and "spec.overrides.dgd.spec.a" in message


def test_depth_up_to_the_limit_passes_and_one_more_does_not() -> None:
    assert depth_problem(nested(MAX_JSON_DEPTH)) is None
    assert depth_problem(nested(MAX_JSON_DEPTH + 1)) is not None
    assert depth_problem("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is None
    assert depth_problem("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)) is not None


def test_brackets_inside_strings_and_escaped_quotes_do_not_count() -> None:
    text = json.dumps({'k"{[': "[" * 500, "v": ['\\"{' * 100], "w": "\\"})
    assert depth_problem(text) is None
    assert max_depth(text.encode()) == 2


def test_a_request_too_deep_and_too_large_is_refused_without_naming_where() -> None:
    deep = ("[" + "[]," * 100_000 + "[" * 100 + "]" * 100 + "]").encode()
    assert text_problems(deep, 1024) == [
        (
            "(the manifest)",
            f"{len(deep)} bytes nested 101 levels deep; the limits are 1024 bytes and "
            f"{MAX_JSON_DEPTH} levels",
        )
    ]
    [(field, _)] = text_problems(deep, len(deep))
    assert field == "[100000][0][0]"  # the first three levels of the path
    assert text_problems(b'{"spec": {}}', 10) == []  # the size alone is judged after parsing


def test_array_positions_are_named_as_indexes() -> None:
    problem = depth_problem('{"spec": {"x": [1, 2, ' + "[" * 70 + "]" * 70 + "]}}")
    assert problem is not None and problem[0] == "spec.x[2]"


def test_a_python_value_is_checked_the_same_way_without_recursion() -> None:
    deep: dict[str, Any] = {}
    cursor = deep
    for _ in range(10_000):
        cursor["k"] = {}
        cursor = cursor["k"]
    problem = value_depth_problem({"spec": {"overrides": deep}})
    assert problem is not None and problem[0] == "spec.overrides.k"
    assert value_depth_problem(json.loads(nested(MAX_JSON_DEPTH))) is None
    assert value_depth_problem(json.loads(nested(MAX_JSON_DEPTH + 1))) is not None


def test_request_ids_have_a_length_and_a_charset_and_their_subject_stays_short() -> None:
    assert request_id_problem("3f0c2d7e-5b8a-4c1e-9f2a-0d6b7c8e9a10") is None
    assert request_id_problem("k8s-delete:3f0c2d7e") is None
    assert "no Nats-Msg-Id" in (request_id_problem("") or "")
    too_long = request_id_problem("x" * (MAX_REQUEST_ID_CHARS + 1))
    assert too_long is not None and f"limit is {MAX_REQUEST_ID_CHARS}" in too_long
    for bad in ("has space", "tab\there", "é", "\x00"):
        assert request_id_problem(bad) is not None
    # The worst allowed id (every character escaped to _XX) keeps the outcome subject far below
    # nats-server's 4,096-byte control line, with room for the rest of the protocol line.
    worst = "." * MAX_REQUEST_ID_CHARS
    assert request_id_problem(worst) is None
    assert len(subjects.result_subject(worst)) < 1024


def test_manifest_size_names_the_largest_field_and_the_limit() -> None:
    body = {"metadata": {"name": "x"}, "spec": {"model": "m" * 300_000}}
    size, spec_size = len(json.dumps(body)), len(json.dumps(body["spec"]))
    problems = size_problems(body, size, manifest_limit(1024 * 1024))
    assert problems == [
        ("spec", f"the manifest is {size} bytes (spec {spec_size}); the limit is 262144 bytes")
    ]
    assert manifest_limit(1024 * 1024) == MAX_MANIFEST_BYTES
    assert manifest_limit(64 * 1024) == 16 * 1024  # a quarter of a small server's max payload


def test_overrides_have_their_own_total() -> None:
    overrides = {"dgd": {"apiVersion": "v", "kind": "k", "spec": {"x": "y" * MAX_OVERRIDES_BYTES}}}
    body = {"spec": {"model": "m", "overrides": overrides}}
    problems = size_problems(body, len(json.dumps(body)), MAX_MANIFEST_BYTES)
    assert [field for field, _ in problems] == ["spec.overrides"]
    assert f"the limit is {MAX_OVERRIDES_BYTES} bytes" in problems[0][1]
    small = {"spec": {"model": "m", "overrides": {"dgd": {"spec": {}}}}}
    assert size_problems(small, len(json.dumps(small)), MAX_MANIFEST_BYTES) == []


def test_a_name_is_refused_when_a_name_derived_from_it_would_not_fit_63() -> None:
    longest = "n" * MAX_NAME_CHARS
    assert name_problem(longest) is None
    assert len(f"profile-{longest}") == 63 and len(f"{longest}-dgd") <= 63
    problem = name_problem(longest + "n")
    assert problem is not None and "56 characters" in problem and "limit is 55" in problem
    assert "'profile-<name>'" in problem and "'<name>-dgd'" in problem
