"""The emulator's pure parts, without a server: selectors, JSONPath, patches, schema handling,
tables, discovery documents and the protobuf decoder."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from k8s import jsonpath
from k8s.emulator import discovery, protobuf, schema, selectors
from k8s.emulator.errors import ApiError
from k8s.emulator.patch import apply_config, json_patch, merge_patch, strategic_as_merge
from k8s.emulator.resources import default_registry, load_crd_manifests, resource_types_from_crd
from k8s.emulator.table import human_duration, make_table

# ---------------------------------------------------------------- label selectors


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("", {}, True),
        ("app=x", {"app": "x"}, True),
        ("app==x", {"app": "y"}, False),
        ("app!=x", {}, True),
        ("app!=x", {"app": "x"}, False),
        ("app in (x, y)", {"app": "y"}, True),
        ("app in (x,y)", {"app": "z"}, False),
        ("app notin (x,y)", {}, True),
        ("app notin (x,y)", {"app": "x"}, False),
        ("app", {"app": ""}, True),
        ("!app", {"app": ""}, False),
        ("!app", {"other": "1"}, True),
        ("app=x,tier in (web),!legacy", {"app": "x", "tier": "web"}, True),
        ("app=x,tier in (web),!legacy", {"app": "x", "tier": "web", "legacy": "1"}, False),
        ("gpus>4", {"gpus": "8"}, True),
        ("gpus<4", {"gpus": "8"}, False),
        ("example.com/role=worker", {"example.com/role": "worker"}, True),
    ],
)
def test_label_selector(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert selectors.parse_label_selector(selector).matches(labels) is expected


@pytest.mark.parametrize("bad", ["app in x", "app=x,", "=x", "app in (x", "app x"])
def test_label_selector_errors_are_400(bad: str) -> None:
    with pytest.raises(ApiError) as err:
        selectors.parse_label_selector(bad)
    assert err.value.code == 400


def test_field_selector() -> None:
    event = {
        "metadata": {"name": "e1", "namespace": "ns"},
        "involvedObject": {"kind": "Pod", "name": "p,1", "uid": "u"},
        "reason": "Started",
        "source": {"component": "kubelet"},
    }
    supported = selectors.supported_fields("", "events")
    sel = selectors.parse_field_selector(
        r"involvedObject.name=p\,1,involvedObject.kind==Pod,reason!=Failed,source=kubelet",
        supported,
    )
    assert sel.matches(event, selectors.field_value)
    assert not selectors.parse_field_selector("metadata.name=e2", supported).matches(
        event, selectors.field_value
    )
    with pytest.raises(ApiError) as err:
        selectors.parse_field_selector("spec.foo=1", selectors.supported_fields("nvidia.com", "x"))
    assert err.value.code == 400 and "field label not supported" in err.value.message


# ---------------------------------------------------------------- JSONPath

DOC: dict[str, Any] = {
    "spec": {"model": "m", "services": {"a": {"replicas": 2}}},
    "status": {
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "r1"},
            {"type": "Succeeded", "status": "True", "reason": "r2", "n": 3},
        ],
        "ports": [1, 2, 3],
    },
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (".spec.model", ["m"]),
        ("{.spec.model}", ["m"]),
        (".spec.missing", []),
        (".status.ports[0]", [1]),
        (".status.ports[-1]", [3]),
        (".status.ports[*]", [1, 2, 3]),
        (".status.conditions[*].type", ["Ready", "Succeeded"]),
        ('.status.conditions[?(@.type=="Succeeded")].reason', ["r2"]),
        (".status.conditions[?(@.type=='Ready')].status", ["False"]),
        ('.status.conditions[?(@.type!="Ready")].reason', ["r2"]),
        (".status.conditions[?(@.n>2)].type", ["Succeeded"]),
        (".status.conditions[?(@.n)].type", ["Succeeded"]),
        (".spec.services.*.replicas", [2]),
        ("..replicas", [2]),
        (".spec['model']", ["m"]),
    ],
)
def test_jsonpath(expr: str, expected: list[Any]) -> None:
    assert jsonpath.find(expr, DOC) == expected


def test_jsonpath_syntax_error() -> None:
    with pytest.raises(ValueError):
        jsonpath.compile_path(".a[?(@.x==)]")
    with pytest.raises(ValueError):
        jsonpath.compile_path(".a[1:2]")


# ---------------------------------------------------------------- patches


def test_merge_patch_rfc7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    patched = merge_patch(target, {"a": "z", "c": {"f": None}, "l": [3], "n": {"x": 1}})
    assert patched == {"a": "z", "c": {"d": "e"}, "l": [3], "n": {"x": 1}}
    assert target["c"] == {"d": "e", "f": "g"}  # input untouched


def test_json_patch_operations() -> None:
    doc = {"a": {"b": [1, 2]}, "x/y": 1, "t~": 2}
    ops = [
        {"op": "add", "path": "/a/b/-", "value": 3},
        {"op": "add", "path": "/a/b/0", "value": 0},
        {"op": "replace", "path": "/x~1y", "value": 10},
        {"op": "test", "path": "/t~0", "value": 2},
        {"op": "copy", "from": "/a/b", "path": "/c"},
        {"op": "move", "from": "/t~0", "path": "/u"},
        {"op": "remove", "path": "/a/b/1"},
    ]
    assert json_patch(doc, ops) == {"a": {"b": [0, 2, 3]}, "x/y": 10, "c": [0, 1, 2, 3], "u": 2}


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/a", "value": 2}],
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/missing", "value": 1}],
        [{"op": "add", "path": "/no/such/parent", "value": 1}],
    ],
)
def test_json_patch_failures_are_422(ops: list[dict[str, Any]]) -> None:
    with pytest.raises(ApiError) as err:
        json_patch({"a": 1}, ops)
    assert err.value.code == 422


def test_json_patch_malformed_is_400() -> None:
    with pytest.raises(ApiError) as err:
        json_patch({"a": 1}, {"op": "add"})
    assert err.value.code == 400


def test_strategic_directives_are_dropped_and_apply_merges() -> None:
    smp = {"metadata": {"$setElementOrder/finalizers": ["a"]}, "data": {"k": "v"}, "$patch": "x"}
    assert strategic_as_merge(smp) == {"metadata": {}, "data": {"k": "v"}}
    live = {"spec": {"a": 1, "b": {"c": 2}}, "status": {"x": 1}}
    assert apply_config(live, {"spec": {"b": {"d": 3}}}) == {
        "spec": {"a": 1, "b": {"c": 2, "d": 3}},
        "status": {"x": 1},
    }


# ---------------------------------------------------------------- schema


def _dgdr_schema() -> dict[str, Any]:
    crd = next(c for c in load_crd_manifests() if c["spec"]["names"]["kind"].endswith("Request"))
    rt = resource_types_from_crd(crd)[0]
    assert rt.schema is not None
    return rt.schema


def test_schema_defaults_and_pruning() -> None:
    s = _dgdr_schema()
    obj: dict[str, Any] = {
        "apiVersion": "nvidia.com/v1beta1",
        "kind": "DynamoGraphDeploymentRequest",
        "metadata": {"name": "x", "whatever": 1},
        "spec": {
            "model": "m",
            "workload": {"isl": 10},
            "foo": 1,
            "features": {"planner": {"free": "form"}},
            "backend": None,
        },
        "extra": True,
    }
    pruned = schema.prune(s, obj)
    assert sorted(pruned) == ["extra", "spec.foo"]
    schema.apply_defaults(s, obj)
    assert obj["spec"]["backend"] == "auto"  # a non-nullable null is dropped, then defaulted
    assert obj["spec"]["searchStrategy"] == "rapid" and obj["spec"]["autoApply"] is True
    assert obj["spec"]["workload"] == {"isl": 10, "osl": 1000}
    assert "sla" not in obj["spec"]  # defaults only where the parent exists
    assert obj["spec"]["features"]["planner"] == {"free": "form"}  # preserve-unknown-fields
    assert obj["metadata"] == {"name": "x", "whatever": 1}  # metadata is not the CRD's business
    assert schema.validate(s, obj) == []


def test_schema_validation_messages() -> None:
    s = _dgdr_schema()
    obj = {
        "spec": {
            "backend": "foo",
            "workload": {"isl": 0, "osl": 1.5},
            "sla": {"ttft": 0},
            "autoApply": "yes",
            "model": "",
        },
        "status": {"conditions": [{"type": "A"}]},
    }
    problems = {e.field: (e.reason, e.detail) for e in schema.validate(s, obj)}
    assert problems["spec.backend"] == (
        "FieldValueNotSupported",
        'Unsupported value: "foo": supported values: "auto", "vllm", "sglang", "trtllm"',
    )
    assert problems["spec.workload.isl"][1] == (
        "Invalid value: 0: spec.workload.isl in body should be greater than or equal to 1"
    )
    assert problems["spec.workload.osl"][0] == "FieldValueTypeInvalid"
    assert "must be of type integer" in problems["spec.workload.osl"][1]
    assert problems["spec.sla.ttft"][1].endswith("should be greater than 0")
    assert "must be of type boolean" in problems["spec.autoApply"][1]
    assert "at least 1 chars long" in problems["spec.model"][1]
    assert problems["status.conditions[0].status"] == ("FieldValueRequired", "Required value")
    missing = schema.validate(s, {"spec": {}})
    assert [(e.field, e.detail) for e in missing] == [("spec.model", "Required value")]


def test_schema_max_properties() -> None:
    s = {"type": "object", "maxProperties": 1, "x-kubernetes-preserve-unknown-fields": True}
    (problem,) = schema.validate(s, {"a": 1, "b": 2})
    assert problem.detail == "Too many: 2: must have at most 1 items"


# ---------------------------------------------------------------- tables, discovery, protobuf


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "5s"), (119, "119s"), (180, "3m"), (190, "3m10s"), (3600, "60m"), (7200 * 2, "4h"),
     (3 * 86400, "3d"), (30 * 86400, "30d")],
)  # fmt: skip
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_custom_resource_table() -> None:
    registry = default_registry()
    rt = next(
        t
        for c in load_crd_manifests()
        for t in resource_types_from_crd(c)
        if t.plural.endswith("requests")
    )
    registry.add(rt)
    obj = {
        "metadata": {"name": "x", "creationTimestamp": "2020-01-01T00:00:00Z"},
        "spec": {"model": "m", "backend": "vllm"},
        "status": {"conditions": [{"type": "Succeeded", "reason": "Done", "status": "True"}]},
    }
    table = make_table(rt, [obj])
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names == [
        "Name",
        "Model",
        "Backend",
        "Phase",
        "Profiling",
        "Reason",
        "Message",
        "DGD",
        "Age",
    ]
    cells = table["rows"][0]["cells"]
    assert cells[:6] == ["x", "m", "vllm", None, None, "Done"]
    assert cells[-1].endswith("d") or cells[-1].endswith("y")
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_openapi_root_lists_every_group_version() -> None:
    registry = default_registry()
    for crd in load_crd_manifests():
        for rt in resource_types_from_crd(crd):
            registry.add(rt)
    root = discovery.openapi_v3_root(registry)
    assert {"api/v1", "apis/nvidia.com/v1beta1", "apis/nvidia.com/v1alpha1"} <= set(root["paths"])
    doc = discovery.openapi_v3_doc(registry, "nvidia.com", "v1beta1")
    assert doc is not None
    item = doc["paths"][
        "/apis/nvidia.com/v1beta1/namespaces/{namespace}/dynamographdeploymentrequests/{name}"
    ]
    assert (
        item["patch"]["x-kubernetes-group-version-kind"]["kind"] == "DynamoGraphDeploymentRequest"
    )
    assert "fieldValidation" in [p["name"] for p in item["patch"]["parameters"]]
    assert "com.nvidia.v1beta1.DynamoGraphDeploymentRequest" in doc["components"]["schemas"]


def _pb_field(number: int, payload: bytes) -> bytes:
    return bytes([(number << 3) | 2, len(payload)]) + payload


def test_protobuf_configmap() -> None:
    meta = (
        _pb_field(1, b"cm")
        + _pb_field(2, b"")
        + _pb_field(11, _pb_field(1, b"k") + _pb_field(2, b"v"))
    )
    raw = _pb_field(1, meta) + _pb_field(2, _pb_field(1, b"a") + _pb_field(2, b"b"))
    type_meta = _pb_field(1, b"v1") + _pb_field(2, b"ConfigMap")
    body = protobuf.MAGIC + _pb_field(1, type_meta) + _pb_field(2, raw)
    assert protobuf.decode(body) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "labels": {"k": "v"}},
        "data": {"a": "b"},
    }
    secret = (
        protobuf.MAGIC
        + _pb_field(1, _pb_field(1, b"v1") + _pb_field(2, b"Secret"))
        + _pb_field(2, _pb_field(2, _pb_field(1, b"t") + _pb_field(2, b"\x00\x01")))
    )
    assert protobuf.decode(secret)["data"] == {"t": base64.b64encode(b"\x00\x01").decode()}
    with pytest.raises(ApiError) as err:
        protobuf.decode(protobuf.MAGIC + _pb_field(1, _pb_field(1, b"v1") + _pb_field(2, b"Pod")))
    assert err.value.code == 415
