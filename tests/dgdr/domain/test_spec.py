"""DGDRSpec: fields, camelCase aliases, defaults, manifest round-trip and every validation rule."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dgdr.domain.spec import (
    API_VERSION,
    DEFAULT_ITL_MS,
    DEFAULT_TTFT_MS,
    GPU_SKUS,
    KIND,
    SLA,
    Backend,
    DGDRSpec,
    FieldError,
    GpuSku,
    Manifest,
    Workload,
    check_spec,
    dump_manifest,
    dump_spec,
    gpu_sku_named,
    normalise_gpu_sku,
    parse_manifest,
    parse_spec,
)

SKU_LIST = ", ".join(GPU_SKUS)

FULL_SPEC: dict[str, Any] = {
    "model": "Qwen/Qwen3-8B",
    "image": "nvcr.io/nvidia/ai-dynamo/dynamo-planner:1.1.0",
    "backend": "vllm",
    "searchStrategy": "thorough",
    "autoApply": False,
    "sla": {"ttft": 250.0, "itl": 12.5},
    "workload": {"isl": 3000, "osl": 500, "concurrency": 32.0},
    "hardware": {
        "gpuSku": "h100_sxm",
        "vramMb": 81920.0,
        "totalGpus": 16,
        "numGpusPerNode": 8,
        "interconnect": "nvlink",
        "rdma": True,
    },
    "modelCache": {"pvcName": "model-cache", "pvcModelPath": "qwen3-8b", "pvcMountPath": "/cache"},
    "features": {
        "planner": {"enabled": True, "adjustmentInterval": 60, "scaling": {"min": 1, "max": [4]}},
        "mocker": {"enabled": True},
    },
    "overrides": {
        "profilingJob": {
            "backoffLimit": 1,
            "template": {
                "spec": {"containers": [], "nodeSelector": {"pool": "gpu"}, "tolerations": []}
            },
        },
        "dgd": {
            "apiVersion": "nvidia.com/v1alpha1",
            "kind": "DynamoGraphDeployment",
            "metadata": {"name": "custom-dgd", "labels": {"team": "a"}},
            "spec": {"envs": [{"name": "X", "value": "1"}]},
        },
    },
}

FULL_MANIFEST: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": KIND,
    "metadata": {
        "name": "qwen3-8b",
        "namespace": "team-a",
        "uid": "0b5c7f3e-1d2a-4c7e-9f00-1234567890ab",
        "labels": {"app": "chat"},
        "annotations": {"owner": "me"},
        # unknown metadata keys survive the round trip
        "resourceVersion": "42",
        "generation": 3,
        "creationTimestamp": "2025-01-01T00:00:00Z",
        "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
    },
    "spec": FULL_SPEC,
    "status": {"phase": "Pending", "conditions": []},
}


def manifest(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": "req"},
        "spec": {"model": "m", **spec},
    }


def check_errors(spec: dict[str, Any]) -> list[FieldError]:
    """Errors at the schema level (admission): `check_spec` refuses the spec."""
    result = check_spec(spec)
    assert isinstance(result, list), f"expected schema errors, parsed {result!r}"
    return result


def later(spec: dict[str, Any]) -> list[FieldError]:
    """Errors of the later rules only: the schema admits the spec, `parse_spec` fails it."""
    assert isinstance(check_spec(spec), DGDRSpec), f"refused at the schema level: {spec!r}"
    return errors_of(spec)


def errors_of(spec: dict[str, Any]) -> list[FieldError]:
    result = parse_spec(spec)
    assert isinstance(result, list), f"expected errors, parsed {result!r}"
    return result


def fields_of(errors: list[FieldError]) -> list[str]:
    return [e.field for e in errors]


def ok(spec: dict[str, Any]) -> DGDRSpec:
    result = parse_spec(spec)
    assert isinstance(result, DGDRSpec), f"expected a spec, got {result!r}"
    return result


# -------------------------------------------------------------------------------- fields, defaults


def test_defaults_of_a_minimal_spec() -> None:
    spec = ok({"model": "Qwen/Qwen3-0.6B"})
    assert spec.model == "Qwen/Qwen3-0.6B"
    assert spec.image is None
    assert spec.backend is Backend.AUTO
    assert spec.search_strategy == "rapid"
    assert spec.auto_apply is True
    assert spec.sla is None
    assert spec.workload is None
    assert spec.hardware is None
    assert spec.model_cache is None
    assert spec.features is None
    assert spec.overrides is None
    assert spec.mocker_enabled is False


def test_effective_defaults_are_what_the_profiler_uses() -> None:
    spec = ok({"model": "m"})
    assert spec.effective_sla == SLA(ttft=DEFAULT_TTFT_MS, itl=DEFAULT_ITL_MS)
    assert (DEFAULT_TTFT_MS, DEFAULT_ITL_MS) == (2000.0, 30.0)
    assert spec.effective_workload == Workload()
    assert (spec.effective_workload.isl, spec.effective_workload.osl) == (4000, 1000)
    assert spec.effective_workload.request_rate is None
    assert spec.effective_workload.concurrency is None
    hw = spec.effective_hardware
    assert (hw.gpu_sku, hw.vram_mb, hw.total_gpus, hw.num_gpus_per_node) == (None,) * 4
    assert (hw.interconnect, hw.rdma) == (None, None)


def test_effective_sla_fills_only_the_missing_target() -> None:
    assert ok({"model": "m", "sla": {"ttft": 500}}).effective_sla == SLA(ttft=500, itl=30)
    assert ok({"model": "m", "sla": {"itl": 10}}).effective_sla == SLA(ttft=2000, itl=10)
    e2e = ok({"model": "m", "sla": {"e2eLatency": 9000}}).effective_sla
    assert e2e == SLA.model_validate({"e2eLatency": 9000})
    assert (e2e.ttft, e2e.itl) == (None, None)


def test_nested_defaults() -> None:
    spec = ok(
        {
            "model": "m",
            "workload": {},
            "modelCache": {"pvcName": "c"},
            "features": {"mocker": {}},
        }
    )
    assert spec.workload is not None
    assert (spec.workload.isl, spec.workload.osl) == (4000, 1000)
    assert spec.model_cache is not None
    assert spec.model_cache.pvc_mount_path == "/opt/model-cache"
    assert spec.model_cache.pvc_model_path is None
    assert spec.features is not None and spec.features.mocker is not None
    assert spec.features.mocker.enabled is False
    assert spec.features.planner is None
    assert spec.mocker_enabled is False
    assert ok({"model": "m", "features": {"mocker": {"enabled": True}}}).mocker_enabled is True


def test_every_field_is_read_through_its_camel_case_alias() -> None:
    spec = ok(FULL_SPEC)
    assert spec.model == "Qwen/Qwen3-8B"
    assert spec.image == "nvcr.io/nvidia/ai-dynamo/dynamo-planner:1.1.0"
    assert spec.backend is Backend.VLLM
    assert spec.search_strategy == "thorough"
    assert spec.auto_apply is False
    assert spec.sla == SLA(ttft=250, itl=12.5)
    assert spec.workload is not None
    assert (spec.workload.isl, spec.workload.osl) == (3000, 500)
    assert (spec.workload.concurrency, spec.workload.request_rate) == (32, None)
    hw = spec.hardware
    assert hw is not None
    assert hw.gpu_sku is GpuSku.H100_SXM
    assert (hw.vram_mb, hw.total_gpus, hw.num_gpus_per_node) == (81920, 16, 8)
    assert (hw.interconnect, hw.rdma) == ("nvlink", True)
    mc = spec.model_cache
    assert mc is not None
    assert (mc.pvc_name, mc.pvc_model_path, mc.pvc_mount_path) == (
        "model-cache",
        "qwen3-8b",
        "/cache",
    )
    assert spec.features is not None
    assert spec.features.planner == FULL_SPEC["features"]["planner"]
    assert spec.mocker_enabled is True
    assert spec.overrides is not None
    assert spec.overrides.profiling_job == FULL_SPEC["overrides"]["profilingJob"]
    assert spec.overrides.dgd == FULL_SPEC["overrides"]["dgd"]


def test_request_rate_and_e2e_latency_aliases() -> None:
    spec = ok({"model": "m", "sla": {"e2eLatency": 8000}, "workload": {"requestRate": 2.5}})
    assert spec.sla is not None and spec.sla.e2e_latency == 8000
    assert spec.workload is not None and spec.workload.request_rate == 2.5


def test_dump_spec_writes_camel_case_and_only_what_was_set() -> None:
    assert dump_spec(ok({"model": "m"})) == {"model": "m"}
    assert dump_spec(ok(FULL_SPEC)) == FULL_SPEC
    assert dump_spec(ok({"model": "m", "workload": {"requestRate": 3.0}})) == {
        "model": "m",
        "workload": {"requestRate": 3.0},
    }


# ------------------------------------------------------------------------------------- round trip


def test_full_manifest_round_trips_unchanged() -> None:
    original = copy.deepcopy(FULL_MANIFEST)
    parsed = parse_manifest(FULL_MANIFEST)
    assert isinstance(parsed, Manifest), parsed
    assert dump_manifest(parsed) == FULL_MANIFEST
    assert original == FULL_MANIFEST  # parsing did not mutate the input


def test_minimal_manifest_round_trips_without_defaults_written_back() -> None:
    m = manifest()
    parsed = parse_manifest(m)
    assert isinstance(parsed, Manifest)
    assert dump_manifest(parsed) == m
    assert "status" not in dump_manifest(parsed)


def test_manifest_with_request_rate_and_e2e_round_trips() -> None:
    m = manifest(sla={"e2eLatency": 9000.0}, workload={"isl": 100, "requestRate": 1.5})
    parsed = parse_manifest(m)
    assert isinstance(parsed, Manifest)
    assert dump_manifest(parsed) == m


@pytest.mark.parametrize(
    "spec",
    [
        {"auto_apply": False},
        {"search_strategy": "rapid"},
        {"hardware": {"gpu_sku": "h100_sxm"}},
    ],
    ids=["auto_apply", "search_strategy", "gpu_sku"],
)
def test_snake_case_keys_are_rejected_or_round_trip(spec: dict[str, Any]) -> None:
    m = manifest(**spec)
    parsed = parse_manifest(m)
    assert isinstance(parsed, list) or dump_manifest(parsed) == m


# --------------------------------------------------------------------------------- validation rules


@pytest.mark.parametrize("other", [{"ttft": 100}, {"itl": 10}, {"ttft": 100, "itl": 10}])
def test_e2e_latency_excludes_ttft_and_itl(other: dict[str, float]) -> None:
    errors = later({"model": "m", "sla": {**other, "e2eLatency": 5000}})
    assert fields_of(errors) == ["spec.sla.e2eLatency"]
    assert "e2eLatency cannot be combined with ttft/itl" in errors[0].message


def test_request_rate_excludes_concurrency() -> None:
    errors = later({"model": "m", "workload": {"requestRate": 1, "concurrency": 8}})
    assert fields_of(errors) == ["spec.workload.concurrency"]
    assert "mutually exclusive" in errors[0].message
    assert "keep only one" in errors[0].message


@pytest.mark.parametrize("value", [0, -1, -4000])
@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("sla", "ttft"),
        ("sla", "itl"),
        ("sla", "e2eLatency"),
        ("workload", "isl"),
        ("workload", "osl"),
        ("workload", "requestRate"),
        ("workload", "concurrency"),
    ],
)
def test_non_positive_numbers_are_rejected(section: str, key: str, value: float) -> None:
    errors = later({"model": "m", section: {key: value}})
    assert fields_of(errors) == [f"spec.{section}.{key}"]
    assert "greater than 0" in errors[0].message


@pytest.mark.parametrize("key", ["vramMb", "totalGpus", "numGpusPerNode"])
def test_non_positive_hardware_is_rejected(key: str) -> None:
    errors = later({"model": "m", "hardware": {key: 0}})
    assert fields_of(errors) == [f"spec.hardware.{key}"]


def test_thorough_with_auto_backend_is_rejected() -> None:
    for spec in (
        {"model": "m", "searchStrategy": "thorough"},
        {"model": "m", "searchStrategy": "thorough", "backend": "auto"},
    ):
        errors = later(spec)
        assert fields_of(errors) == ["spec.searchStrategy"]
        assert "set backend to vllm, sglang or trtllm" in errors[0].message


@pytest.mark.parametrize("backend", ["vllm", "sglang", "trtllm"])
def test_thorough_with_a_concrete_backend_is_accepted(backend: str) -> None:
    spec = ok({"model": "m", "searchStrategy": "thorough", "backend": backend})
    assert spec.backend == backend


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"model": "m", "replicas": 2}, "spec.replicas"),
        ({"model": "m", "sla": {"tpot": 3}}, "spec.sla.tpot"),
        ({"model": "m", "workload": {"batch": 3}}, "spec.workload.batch"),
        ({"model": "m", "hardware": {"gpu": "x"}}, "spec.hardware.gpu"),
        ({"model": "m", "modelCache": {"pvc": "x"}}, "spec.modelCache.pvc"),
        ({"model": "m", "features": {"router": {}}}, "spec.features.router"),
        ({"model": "m", "features": {"mocker": {"on": True}}}, "spec.features.mocker.on"),
        ({"model": "m", "overrides": {"job": {}}}, "spec.overrides.job"),
    ],
)
def test_unknown_fields_are_forbidden(spec: dict[str, Any], field: str) -> None:
    errors = check_errors(spec)
    assert fields_of(errors) == [field]
    assert "remove it" in errors[0].message


def test_unknown_top_level_manifest_field_is_forbidden() -> None:
    result = parse_manifest({**manifest(), "extra": 1})
    assert isinstance(result, list)
    assert fields_of(result) == ["extra"]


def test_empty_model_is_rejected() -> None:
    errors = check_errors({"model": ""})
    assert fields_of(errors) == ["spec.model"]
    assert "non-empty" in errors[0].message


def test_missing_model_is_rejected() -> None:
    errors = check_errors({})
    assert fields_of(errors) == ["spec.model"]
    assert "add it" in errors[0].message


@pytest.mark.parametrize(("key", "value"), [("backend", "tensorrt"), ("searchStrategy", "fast")])
def test_bad_enum_values_list_the_allowed_ones(key: str, value: str) -> None:
    errors = check_errors({"model": "m", key: value})
    assert fields_of(errors) == [f"spec.{key}"]
    assert repr(value) in errors[0].message
    allowed = ["auto", "vllm", "sglang", "trtllm"] if key == "backend" else ["rapid", "thorough"]
    for name in allowed:
        assert f"'{name}'" in errors[0].message


def test_overrides_dgd_must_be_a_dgd_object() -> None:
    errors = check_errors({"model": "m", "overrides": {"dgd": {"spec": {}}}})
    assert fields_of(errors) == ["spec.overrides.dgd"]
    assert "apiVersion: nvidia.com/v1alpha1" in errors[0].message


def test_manifest_api_version_and_kind() -> None:
    result = parse_manifest({**manifest(), "apiVersion": "nvidia.com/v1alpha1", "kind": "DGD"})
    assert isinstance(result, list)
    assert [str(e) for e in result] == [
        f"apiVersion: must be {API_VERSION}",
        f"kind: must be {KIND}",
    ]


@pytest.mark.parametrize("document", [[], "spec: {}", None, 3])
def test_non_mapping_document_is_rejected_without_raising(document: Any) -> None:
    result = parse_manifest(document)
    assert isinstance(result, list)
    assert fields_of(result) == ["(document)"]


def test_field_error_renders_and_serialises() -> None:
    err = FieldError("spec.model", "add it")
    assert str(err) == "spec.model: add it"
    assert err.to_dict() == {"field": "spec.model", "message": "add it"}


# ------------------------------------------------------------------------------------------- GPUs


def test_the_skus_are_those_of_dynamos_v1beta1_crd() -> None:
    assert len(GPU_SKUS) == 17
    assert set(GPU_SKUS) == {
        "gb200_sxm", "gb10", "b200_sxm", "h200_sxm", "h100_sxm", "h100_pcie", "a100_sxm", "a100_pcie",
        "a30", "l40s", "l40", "l4", "v100_sxm", "v100_pcie", "t4", "mi200", "mi300",
    }  # fmt: skip


@pytest.mark.parametrize("sku", GPU_SKUS)
def test_every_sku_id_is_accepted_as_is(sku: str) -> None:
    spec = ok({"model": "m", "hardware": {"gpuSku": sku}})
    assert spec.hardware is not None and spec.hardware.gpu_sku == sku
    assert normalise_gpu_sku(sku) == sku
    assert dump_spec(spec) == {"model": "m", "hardware": {"gpuSku": sku}}


@pytest.mark.parametrize(
    ("product", "sku"),
    [
        ("NVIDIA-H100-80GB-HBM3", "h100_sxm"),
        ("H100-SXM5-80GB", "h100_sxm"),
        ("NVIDIA-H100-PCIe", "h100_pcie"),
        ("NVIDIA-A100-SXM4-80GB", "a100_sxm"),
        ("NVIDIA-H200-141GB-HBM3", "h200_sxm"),
        ("NVIDIA-L40S", "l40s"),
        ("Tesla-T4", "t4"),
        ("AMD Instinct MI300X", "mi300"),
    ],
)
def test_raw_product_names_map_to_a_sku_but_the_spec_refuses_them_naming_it(
    product: str, sku: str
) -> None:
    # Discovered node labels are mapped; in a spec the CRD's enum refuses them (as Dynamo's API
    # server does), and the message says which SKU to write instead.
    assert normalise_gpu_sku(product) == sku
    errors = check_errors({"model": "m", "hardware": {"gpuSku": product}})
    assert fields_of(errors) == ["spec.hardware.gpuSku"]
    assert f"looks like {sku}" in errors[0].message
    assert SKU_LIST in errors[0].message


@pytest.mark.parametrize(
    ("spelling", "sku"),
    [
        ("h200_sxm", "h200_sxm"),
        ("H200_SXM", "h200_sxm"),
        ("h200-sxm", "h200_sxm"),
        ("H100 PCIe", "h100_pcie"),
        ("H200", "h200_sxm"),
        ("NVIDIA-H100-80GB-HBM3", "h100_sxm"),
        ("mi300x", "mi300"),
    ],
)
def test_a_gpu_as_a_person_spells_it_names_its_sku(spelling: str, sku: str) -> None:
    assert gpu_sku_named(spelling) == sku


@pytest.mark.parametrize(
    ("spelling", "says"),
    [
        ("h100", "'h100' names 2 GPUs, h100_sxm and h100_pcie: use one of them"),
        ("NVIDIA A100 80GB", "'NVIDIA A100 80GB' names 2 GPUs, a100_sxm and a100_pcie"),
        ("V100", "'V100' names 2 GPUs, v100_sxm and v100_pcie"),
        ("RTX-4090", f"'RTX-4090' is not a known GPU: use one of {SKU_LIST}"),
    ],
)
def test_a_gpu_that_names_no_single_sku_says_what_to_write(spelling: str, says: str) -> None:
    with pytest.raises(ValueError) as err:
        gpu_sku_named(spelling)
    assert says in str(err.value)


def test_the_spec_refuses_a_family_name_naming_its_forms() -> None:
    errors = check_errors({"model": "m", "hardware": {"gpuSku": "H100"}})
    assert fields_of(errors) == ["spec.hardware.gpuSku"]
    assert errors[0].message.endswith(
        "('H100' names 2 GPUs, h100_sxm and h100_pcie: use one of them)"
    )


@pytest.mark.parametrize("product", ["A100", "RTX-4090", "H100", "", "gpu"])
def test_ambiguous_or_unknown_gpu_is_rejected_with_the_valid_values(product: str) -> None:
    assert normalise_gpu_sku(product) is None
    errors = check_errors({"model": "m", "hardware": {"gpuSku": product}})
    assert fields_of(errors) == ["spec.hardware.gpuSku"]
    assert repr(product) in errors[0].message
    assert SKU_LIST in errors[0].message


# -------------------------------------------------------------------------------------- metadata


@pytest.mark.parametrize(
    "name",
    ["Bad_Name", "UPPER", "-leading", "trailing-", "has space", "", "a" * 254, "dots..double"],
)
def test_invalid_metadata_names_are_rejected(name: str) -> None:
    result = parse_manifest({**manifest(), "metadata": {"name": name}})
    assert isinstance(result, list)
    assert fields_of(result) == ["metadata.name"]
    assert "is not a valid name" in result[0].message


@pytest.mark.parametrize("name", ["qwen3-8b", "a", "a.b-c", "0req", "a" * 253])
def test_valid_metadata_names_are_accepted(name: str) -> None:
    assert isinstance(parse_manifest({**manifest(), "metadata": {"name": name}}), Manifest)


@pytest.mark.parametrize("namespace", ["Team", "a.b", "a" * 64, "-x", "x_y"])
def test_invalid_namespaces_are_rejected(namespace: str) -> None:
    result = parse_manifest({**manifest(), "metadata": {"name": "ok", "namespace": namespace}})
    assert isinstance(result, list)
    assert fields_of(result) == ["metadata.namespace"]
    assert "is not a valid namespace" in result[0].message


def test_missing_metadata_name() -> None:
    result = parse_manifest({**manifest(), "metadata": {}})
    assert isinstance(result, list)
    assert fields_of(result) == ["metadata.name"]


# -------------------------------------------------------------------------- every error collected


def test_every_schema_error_is_collected_at_once() -> None:
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": KIND,
        "metadata": {"name": "Bad_Name", "namespace": "NS"},
        "spec": {
            "model": "",
            "backend": "onnx",
            "sla": {"ttft": "100", "e2eLatency": 5000},
            "workload": {"requestRate": 1, "concurrency": 2, "isl": 2.5},
            "hardware": {"gpuSku": "A100"},
            "overrides": {"profilingJob": {"backoffLimit": "1", "template": {}}},
            "colour": "blue",
        },
    }
    result = parse_manifest(document)
    assert isinstance(result, list)
    assert sorted(fields_of(result)) == sorted(
        [
            "apiVersion",
            "metadata.name",
            "metadata.namespace",
            "spec.model",
            "spec.backend",
            "spec.sla.ttft",
            "spec.workload.isl",
            "spec.hardware.gpuSku",
            "spec.overrides.profilingJob.backoffLimit",
            "spec.colour",
        ]
    )
    assert all(e.message for e in result)


def test_every_later_error_is_collected_at_once() -> None:
    errors = errors_of(
        {
            "model": "m",
            "searchStrategy": "thorough",
            "sla": {"itl": -1, "e2eLatency": 9},
            "workload": {"requestRate": 1, "concurrency": 2, "isl": 0},
            "hardware": {"totalGpus": -8},
        }
    )
    assert sorted(fields_of(errors)) == [
        "spec.hardware.totalGpus",
        "spec.searchStrategy",
        "spec.sla.e2eLatency",
        "spec.sla.itl",
        "spec.workload.concurrency",
        "spec.workload.isl",
    ]


def test_schema_errors_are_reported_before_the_later_rules_are_judged() -> None:
    errors = errors_of({"model": "m", "searchStrategy": "thorough", "unknown": 1})
    assert fields_of(errors) == ["spec.unknown"]


# --------------------------------------------------------------------- schema level (admission)


@pytest.mark.parametrize(
    ("spec", "field", "fragment"),
    [
        ({"autoApply": "false"}, "spec.autoApply", "is not a boolean"),
        ({"autoApply": 0}, "spec.autoApply", "is not a boolean"),
        ({"model": 3}, "spec.model", "is not a string"),
        ({"image": ""}, "spec.image", "non-empty"),
        ({"sla": {"ttft": "300"}}, "spec.sla.ttft", "is not a number"),
        ({"sla": {"itl": True}}, "spec.sla.itl", "is not a number"),
        ({"sla": {"ttft": 86_400_001}}, "spec.sla.ttft", "at most 86400000"),
        ({"sla": {"optimizationType": "cost"}}, "spec.sla.optimizationType", "'latency'"),
        ({"workload": {"isl": 2.5}}, "spec.workload.isl", "is not an integer"),
        ({"workload": {"osl": "1000"}}, "spec.workload.osl", "is not an integer"),
        ({"workload": {"isl": 10_000_001}}, "spec.workload.isl", "at most 10000000"),
        ({"workload": {"isl": -(2**31) - 1}}, "spec.workload.isl", "at least -2147483648"),
        ({"workload": {"concurrency": float("inf")}}, "spec.workload.concurrency", "finite"),
        ({"hardware": {"totalGpus": 1025}}, "spec.hardware.totalGpus", "at most 1024"),
        ({"hardware": {"numGpusPerNode": 73}}, "spec.hardware.numGpusPerNode", "at most 72"),
        ({"hardware": {"rdma": "yes"}}, "spec.hardware.rdma", "is not a boolean"),
        ({"hardware": {"gpuSku": "h100"}}, "spec.hardware.gpuSku", "h100_sxm"),
        ({"features": {"mocker": {"enabled": "true"}}}, "spec.features.mocker.enabled", "boolean"),
        ({"features": {"planner": "on"}}, "spec.features.planner", "is not an object"),
        ({"sla": [1]}, "spec.sla", "is not an object"),
        ({"runtimeVersionOverride": "v1.2"}, "spec.runtimeVersionOverride", "MAJOR.MINOR.PATCH"),
        ({"runtimeVersionOverride": "1.02.0"}, "spec.runtimeVersionOverride", "1.2.0"),
        (
            {"overrides": {"dgd": {"kind": "DynamoGraphDeployment"}}},
            "spec.overrides.dgd",
            "apiVersion",
        ),
        ({"overrides": {"profilingJob": {}}}, "spec.overrides.profilingJob.template", "add it"),
    ],
)
def test_the_schema_refuses_without_coercion_naming_the_field(
    spec: dict[str, Any], field: str, fragment: str
) -> None:
    errors = check_errors({"model": "m", **spec})
    assert fields_of(errors) == [field]
    assert fragment in errors[0].message


@pytest.mark.parametrize(
    "spec",
    [
        {"workload": {"isl": 4000.0}},  # a whole float is the integer it spells (the API server)
        {"sla": {"ttft": None, "itl": None, "e2eLatency": 3000}},  # nulls are absent
        {"backend": None, "hardware": None},
        {"sla": {"optimizationType": "throughput", "ttft": 0}},  # 0 is admitted, fails later
        {"hardware": {"totalGpus": 1024, "numGpusPerNode": 72, "gpuSku": "gb10"}},
        {"runtimeVersionOverride": "1.4.0"},
        {"workload": {"isl": 0, "requestRate": 1, "concurrency": 1}},  # admitted, fails later
    ],
)
def test_the_schema_admits(spec: dict[str, Any]) -> None:
    assert isinstance(check_spec({"model": "m", **spec}), DGDRSpec)


def test_a_whole_float_reads_as_the_integer() -> None:
    spec = ok({"model": "m", "workload": {"isl": 4000.0}})
    assert spec.workload is not None and spec.workload.isl == 4000
    assert isinstance(spec.workload.isl, int)


def test_nulls_are_absent_and_defaults_apply() -> None:
    spec = ok({"model": "m", "backend": None, "sla": {"ttft": None, "e2eLatency": 3000}})
    assert spec.backend is Backend.AUTO
    assert spec.sla is not None and spec.sla.ttft is None and spec.sla.e2e_latency == 3000


@pytest.mark.parametrize(
    ("job", "field", "fragment"),
    [
        ({"template": {"spec": {}}}, "template.spec.containers", "add it"),
        (
            {"template": {"spec": {"containers": [{"image": "x"}]}}},
            "template.spec.containers.0.name",
            "add it",
        ),
        ({"template": {}, "backoffLimit": 2.5}, "backoffLimit", "is not an integer"),
        ({"template": {}, "backoffLimit": 2**31}, "backoffLimit", "int32"),
        ({"template": {}, "suspend": "true"}, "suspend", "is not a boolean"),
        (
            {"template": {"metadata": {"labels": {"a": 1}}}},
            "template.metadata.labels.a",
            "is not a string",
        ),
        (
            {
                "template": {
                    "spec": {"containers": [], "tolerations": [{"tolerationSeconds": "60"}]}
                }
            },
            "template.spec.tolerations.0.tolerationSeconds",
            "is not an integer",
        ),
        (
            {
                "template": {
                    "spec": {"containers": [{"name": "p", "resources": {"limits": {"cpu": 0.5}}}]}
                }
            },
            "template.spec.containers.0.resources.limits.cpu",
            "is not a quantity",
        ),
        (
            {"template": {"spec": {"containers": [{"name": "p", "env": [{"value": "1"}]}]}}},
            "template.spec.containers.0.env.0.name",
            "add it",
        ),
        (
            {"template": {"spec": {"containers": [], "nodeSelector": {"pool": True}}}},
            "template.spec.nodeSelector.pool",
            "string",
        ),
    ],
)
def test_overrides_profiling_job_is_checked_as_a_job_spec(
    job: dict[str, Any], field: str, fragment: str
) -> None:
    errors = check_errors({"model": "m", "overrides": {"profilingJob": job}})
    assert fields_of(errors) == [f"spec.overrides.profilingJob.{field}"]
    assert fragment in errors[0].message


def test_overrides_profiling_job_allows_fields_it_does_not_type_and_round_trips() -> None:
    job = {
        "backoffLimit": 0,
        "podFailurePolicy": {"rules": [{"action": "FailJob"}]},
        "someFutureField": {"x": 1},
        "template": {
            "metadata": {"labels": {"team": "a"}},
            "spec": {
                "containers": [
                    {
                        "name": "profiler",
                        "resources": {"limits": {"nvidia.com/gpu": 8, "cpu": "500m"}},
                    }
                ],
                "tolerations": [
                    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                ],
                "hostIPC": True,
                "schedulingGroup": {"name": "g"},
            },
        },
    }
    spec = {"model": "m", "overrides": {"profilingJob": job}}
    assert dump_spec(ok(spec)) == spec
