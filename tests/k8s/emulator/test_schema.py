"""The structural-schema rules kube-apiserver applies to custom resources beyond the basics of
test_units.py: value validations inside `allOf`/`anyOf`/`oneOf`/`not`, defaults only from
`properties`, embedded resources, `nullable`, string formats, list types, and the CEL pass being
blocked by type errors."""

from __future__ import annotations

from typing import Any

import pytest

from k8s.emulator import formats, schema
from k8s.emulator.errors import FieldError


def obj_schema(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"spec": {"type": "object", "properties": props}}}


def problems(s: dict[str, Any], spec: Any) -> list[tuple[str, str, str]]:
    return [(e.field, e.reason, e.detail) for e in schema.validate(s, {"spec": spec})]


BACKEND = {
    "type": "string",
    "default": "auto",
    "allOf": [{"enum": ["auto", "vllm"]}, {"enum": ["auto", "vllm"]}],
}


def test_an_enum_inside_allof_is_enforced_once() -> None:
    s = obj_schema(backend=BACKEND)
    assert problems(s, {"backend": "vllm"}) == []
    assert problems(s, {"backend": "tgi"}) == [
        (
            "spec.backend",
            "FieldValueNotSupported",
            'Unsupported value: "tgi": supported values: "auto", "vllm"',
        )
    ]


def test_defaults_come_from_properties_only_never_from_junctors() -> None:
    s = obj_schema(
        backend=BACKEND,
        mode={"type": "string", "allOf": [{"default": "fast"}], "anyOf": [{"default": "x"}]},
    )
    obj: dict[str, Any] = {"spec": {}}
    schema.apply_defaults(s, obj)
    assert obj == {"spec": {"backend": "auto"}}


def test_anyof_oneof_and_not() -> None:
    quantity = {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
    }
    s = obj_schema(
        size=quantity,
        either={"type": "object", "anyOf": [{"required": ["a"]}, {"required": ["b"]}]},
        exactly={"type": "object", "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
        never={"type": "string", "not": {"enum": ["forbidden"]}},
    )
    assert problems(s, {"size": 3, "either": {"b": 1}, "exactly": {"a": 1}, "never": "ok"}) == []
    assert problems(s, {"size": "1Gi"}) == []
    assert problems(s, {"either": {}}) == [
        (
            "spec.either",
            "FieldValueInvalid",
            'Invalid value: "": spec.either must validate at least one schema (anyOf)',
        ),
        ("spec.either.a", "FieldValueRequired", "Required value"),
    ]
    (both, *_) = problems(s, {"exactly": {"a": 1, "b": 2}})
    assert both[2].endswith(
        "must validate one and only one schema (oneOf). Found 2 valid alternatives"
    )
    (none, *rest) = problems(s, {"exactly": {}})
    assert none[2].endswith("(oneOf). Found none valid") and rest
    assert problems(s, {"never": "forbidden"}) == [
        (
            "spec.never",
            "FieldValueInvalid",
            'Invalid value: "": spec.never must not validate the schema (not)',
        )
    ]


EMBEDDED = {"type": "object", "x-kubernetes-embedded-resource": True}


def test_an_embedded_resource_needs_apiversion_and_kind() -> None:
    s = obj_schema(dgd={**EMBEDDED, "x-kubernetes-preserve-unknown-fields": True})
    assert problems(s, {"dgd": {"apiVersion": "nvidia.com/v1beta1", "kind": "Dgd"}}) == []
    assert problems(s, {"dgd": {"apiVersion": "nvidia.com/v1beta1", "spec": {}}}) == [
        ("spec.dgd.kind", "FieldValueRequired", "Required value")
    ]
    got = problems(
        s, {"dgd": {"apiVersion": "a/b/c", "kind": "Not_A_Kind", "metadata": {"name": "x/y"}}}
    )
    assert [(f, r) for f, r, _ in got] == [
        ("spec.dgd.apiVersion", "FieldValueInvalid"),
        ("spec.dgd.kind", "FieldValueInvalid"),
        ("spec.dgd.metadata.name", "FieldValueInvalid"),
    ]
    assert "may have mixed case, but should otherwise match: a DNS-1035 label" in got[1][2]


def test_an_embedded_resource_is_pruned_unless_it_preserves_unknown_fields() -> None:
    strict = obj_schema(dgd={**EMBEDDED, "properties": {"spec": {"type": "object"}}})
    obj: dict[str, Any] = {
        "spec": {
            "dgd": {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "n", "labels": {"a": "b"}, "bogus": 1},
                "spec": {},
                "data": {"k": "v"},
            }
        }
    }
    assert sorted(schema.prune(strict, obj)) == ["spec.dgd.data", "spec.dgd.metadata.bogus"]
    assert obj["spec"]["dgd"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "n", "labels": {"a": "b"}},
        "spec": {},
    }
    loose = obj_schema(dgd={**EMBEDDED, "x-kubernetes-preserve-unknown-fields": True})
    kept: dict[str, Any] = {"spec": {"dgd": {"apiVersion": "v1", "kind": "X", "data": {"k": 1}}}}
    assert schema.prune(loose, kept) == []
    assert kept["spec"]["dgd"]["data"] == {"k": 1}


def test_nullable() -> None:
    s = obj_schema(a={"type": "string", "nullable": True}, b={"type": "string"})
    obj: dict[str, Any] = {"spec": {"a": None, "b": None}}
    schema.prune(s, obj)
    assert obj == {"spec": {"a": None}}
    assert schema.validate(s, obj) == []
    items = obj_schema(xs={"type": "array", "items": {"type": "string"}})
    ((field, reason, _),) = problems(items, {"xs": [None]})
    assert (field, reason) == ("spec.xs[0]", "FieldValueTypeInvalid")


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("date-time", "2026-01-02T03:04:05Z", "yesterday"),
        ("date", "2026-01-02", "2026-13-02"),
        ("uuid", "6a2f41a3-c54c-fce8-32d2-0324e1c32e22", "not-a-uuid"),
        ("ipv4", "10.0.0.1", "10.0.0.300"),
        ("cidr", "10.0.0.0/8", "10.0.0.0"),
        ("byte", "aGVsbG8=", "not base64!"),
        ("hostname", "node-1.example.com", "-bad-"),
    ],
)
def test_string_formats(fmt: str, good: str, bad: str) -> None:
    s = obj_schema(v={"type": "string", "format": fmt})
    assert problems(s, {"v": good}) == []
    ((field, reason, detail),) = problems(s, {"v": bad})
    assert (field, reason) == ("spec.v", "FieldValueTypeInvalid")
    assert detail == f'Invalid value: "{bad}": spec.v in body must be of type {fmt}: "{bad}"'


def test_numeric_formats_are_not_range_checked_as_in_kube() -> None:
    s = obj_schema(n={"type": "integer", "format": "int32"})
    assert problems(s, {"n": 2**40}) == []
    assert not formats.checked("int32") and formats.check("password", "anything")


def test_list_types_refuse_duplicates() -> None:
    s = obj_schema(
        tags={"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        components={
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
    )
    assert problems(s, {"tags": ["a", "b"], "components": [{"name": "a"}, {"name": "b"}]}) == []
    assert problems(s, {"tags": ["a", "a"], "components": [{"name": "x"}, {"name": "x"}]}) == [
        ("spec.tags[1]", "FieldValueDuplicate", 'Duplicate value: "a"'),
        ("spec.components[1]", "FieldValueDuplicate", 'Duplicate value: {"name":"x"}'),
    ]


def test_cel_rules_are_not_checked_when_the_object_has_type_errors() -> None:
    s = obj_schema(
        replicas={"type": "integer"},
        min={"type": "integer"},
    )
    s["properties"]["spec"]["x-kubernetes-validations"] = [
        {"rule": "self.min <= self.replicas", "message": "min above replicas"}
    ]
    assert problems(s, {"replicas": 1, "min": 2}) == [
        ("spec", "FieldValueInvalid", 'Invalid value: "object": min above replicas')
    ]
    got = schema.validate(s, {"spec": {"replicas": "one", "min": 2}})
    assert got[-1] == FieldError(
        "FieldValueInvalid",
        "<nil>",
        'Invalid value: "null": ' + schema.BLOCKED,
    )
    assert not any("min above replicas" in e.detail for e in got)
