"""CEL validation rules (`x-kubernetes-validations`): messages, transition rules, the Kubernetes
CEL libraries, compile caching, and the rules enforced through the emulator's API on create and
update with kube-apiserver's 422 wording."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from k8s.emulator import Emulator, cel

pytestmark = pytest.mark.timeout(60)
MERGE = "application/merge-patch+json"


def with_rules(schema: dict[str, Any], *rules: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "x-kubernetes-validations": list(rules)}


REPLICAS = {
    "type": "object",
    "properties": {"replicas": {"type": "integer"}, "minAvailable": {"type": "integer"}},
}


def details(schema: dict[str, Any], obj: Any, old: Any = None) -> list[tuple[str, str, str]]:
    return [(e.field, e.reason, e.detail) for e in cel.validate(schema, obj, old, "spec")]


def test_messages_default_expression_field_path_and_reason() -> None:
    rule = "!has(self.minAvailable) || self.minAvailable <= self.replicas"
    plain = with_rules(REPLICAS, {"rule": rule})
    bad = {"replicas": 1, "minAvailable": 2}
    assert details(plain, {"replicas": 2, "minAvailable": 2}) == []
    assert details(plain, bad) == [
        ("spec", "FieldValueInvalid", f'Invalid value: "object": failed rule: {rule}')
    ]
    expressed = with_rules(
        REPLICAS,
        {
            "rule": rule,
            "message": "static",
            "messageExpression": "'minAvailable ' + string(self.minAvailable) + ' > replicas'",
            "fieldPath": ".minAvailable",
            "reason": "FieldValueForbidden",
        },
    )
    assert details(expressed, bad) == [
        ("spec.minAvailable", "FieldValueForbidden", "Forbidden: minAvailable 2 > replicas")
    ]
    broken_expression = with_rules(
        REPLICAS, {"rule": rule, "message": "static", "messageExpression": "self.nope"}
    )
    assert details(broken_expression, bad)[0][2] == 'Invalid value: "object": static'


def test_evaluation_and_compile_errors_name_the_rule() -> None:
    missing = with_rules(REPLICAS, {"rule": "self.minAvailable > 0", "message": "positive"})
    assert details(missing, {"replicas": 1}) == [
        (
            "spec",
            "FieldValueInvalid",
            'Invalid value: "object": no such key: minAvailable evaluating rule: positive',
        )
    ]
    broken = with_rules(REPLICAS, {"rule": "self.replicas >"})
    ((_, _, text),) = details(broken, {"replicas": 1})
    assert "rule compile error" in text


def test_transition_rules_run_only_with_an_old_value() -> None:
    immutable = with_rules(
        REPLICAS,
        {
            "rule": "!has(oldSelf.minAvailable) || self.minAvailable == oldSelf.minAvailable",
            "message": "minAvailable is immutable after creation",
        },
    )
    assert details(immutable, {"minAvailable": 1}) == []  # a create: no oldSelf, not evaluated
    assert details(immutable, {"minAvailable": 1}, {"minAvailable": 1}) == []
    assert details(immutable, {"minAvailable": 2}, {"minAvailable": 1}) == [
        (
            "spec",
            "FieldValueInvalid",
            'Invalid value: "object": minAvailable is immutable after creation',
        )
    ]
    on_create = with_rules(
        {"type": "object", "properties": {"restart": {"type": "object"}}},
        {
            "rule": "oldSelf.hasValue() || !has(self.restart)",
            "optionalOldSelf": True,
            "message": "m",
        },
    )
    assert details(on_create, {"restart": {}}) == [
        ("spec", "FieldValueInvalid", 'Invalid value: "object": m')
    ]
    assert details(on_create, {}) == []
    assert details(on_create, {"restart": {}}, {}) == []  # an update may set it


def test_list_map_items_correlate_by_key_not_by_index() -> None:
    item = with_rules(
        REPLICAS | {"properties": {**REPLICAS["properties"], "name": {"type": "string"}}},
        {"rule": "self.minAvailable == oldSelf.minAvailable", "message": "immutable"},
    )
    components = {
        "type": "object",
        "properties": {
            "components": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": item,
            }
        },
    }
    old = {"components": [{"name": "a", "minAvailable": 1}, {"name": "b", "minAvailable": 2}]}
    swapped = {"components": [{"name": "b", "minAvailable": 2}, {"name": "a", "minAvailable": 1}]}
    assert details(components, swapped, old) == []
    changed = copy.deepcopy(swapped)
    changed["components"][1]["minAvailable"] = 5
    assert [f for f, _, _ in details(components, changed, old)] == ["spec.components[1]"]
    atomic = copy.deepcopy(components)
    atomic["properties"]["components"]["x-kubernetes-list-type"] = "atomic"
    assert details(atomic, changed, old) == []  # items of atomic lists do not correlate


@pytest.mark.parametrize(
    ("rule", "value", "ok"),
    [
        ("self.lowerAscii() == 'abc'", "AbC", True),
        ("self.split('/')[0].size() <= 3", "abcd/e", False),
        ("self.upperAscii().startsWith('X')", "xy", True),
        ("quantity(self).isGreaterThan(quantity('1Gi'))", "2Gi", True),
        ("quantity(self).isGreaterThan(quantity('0'))", "0", False),
        ("quantity(self).compareTo(quantity('1000m')) == 0", "1", True),
        ("isQuantity(self)", "1.5Gi", True),
        ("isQuantity(self)", "lots", False),
        ("self.find('[0-9]+') == '42'", "ab42cd", True),
        ("self.matches('^[a-z]+$')", "abc", True),
    ],
)
def test_kubernetes_libraries(rule: str, value: str, ok: bool) -> None:
    assert (details(with_rules({"type": "string"}, {"rule": rule}), value) == []) is ok


def test_lists_library_and_macros() -> None:
    s = {"type": "array", "items": {"type": "integer"}}
    assert details(with_rules(s, {"rule": "self.isSorted() && self.sum() == 6"}), [1, 2, 3]) == []
    assert details(with_rules(s, {"rule": "self.isSorted()"}), [3, 1]) != []
    unique = "self.all(c1, self.filter(c2, c2 == c1).size() == 1)"
    assert details(with_rules(s, {"rule": unique}), [1, 2]) == []
    assert details(with_rules(s, {"rule": unique}), [1, 1]) != []


def test_numbers_are_doubles_where_the_schema_says_number() -> None:
    s = with_rules(
        {"type": "object", "properties": {"score": {"type": "number"}}},
        {"rule": "self.score <= 1.0"},
    )
    assert details(s, {"score": 1}) == []  # the JSON integer 1 is the double 1.0 here


def test_each_expression_compiles_once() -> None:
    first = cel.compile_expression("self.size() > 100")
    assert cel.compile_expression("self.size() > 100") is first
    assert not first.uses_old_self and cel.compile_expression("self == oldSelf").uses_old_self


WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": with_rules(
                                REPLICAS,
                                {
                                    "rule": "!has(self.minAvailable) || self.minAvailable <= self.replicas",
                                    "message": "minAvailable must not exceed replicas",
                                },
                                {
                                    "rule": "self.replicas >= oldSelf.replicas",
                                    "message": "replicas may not shrink",
                                },
                            )
                        },
                    }
                },
            }
        ],
    },
}


async def test_rules_through_the_api_on_create_and_update() -> None:
    emu = Emulator(crds=[WIDGET_CRD])
    await emu.start()
    try:
        async with client.ApiClient(client.Configuration(host=emu.url)) as api:
            objects = client.CustomObjectsApi(api)
            body = {
                "apiVersion": "example.com/v1",
                "kind": "Widget",
                "metadata": {"name": "w"},
                "spec": {"replicas": 1, "minAvailable": 2},
            }
            with pytest.raises(ApiException) as refused:
                await objects.create_namespaced_custom_object(
                    "example.com", "v1", "default", "widgets", body
                )
            assert refused.value.status == 422
            status = json.loads(refused.value.body)
            assert status["reason"] == "Invalid"
            assert status["message"] == (
                'Widget.example.com "w" is invalid: spec: Invalid value: "object": '
                "minAvailable must not exceed replicas"
            )
            body["spec"] = {"replicas": 3}
            await objects.create_namespaced_custom_object(
                "example.com", "v1", "default", "widgets", body
            )
            with pytest.raises(ApiException) as shrunk:
                await objects.patch_namespaced_custom_object(
                    "example.com",
                    "v1",
                    "default",
                    "widgets",
                    "w",
                    {"spec": {"replicas": 2}},
                    _content_type=MERGE,
                )
            assert shrunk.value.status == 422 and "replicas may not shrink" in shrunk.value.body
            grown = await objects.patch_namespaced_custom_object(
                "example.com",
                "v1",
                "default",
                "widgets",
                "w",
                {"spec": {"replicas": 4}},
                _content_type=MERGE,
            )
            assert grown["spec"]["replicas"] == 4
    finally:
        await emu.stop()
