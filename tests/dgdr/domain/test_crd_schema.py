"""The spec models against Dynamo's v1beta1 DGDR CRD schema (test data copied from its repository).

Every field of the CRD's `spec` is a field of `DGDRSpec` and nothing else is; types, integer formats,
enums, patterns, `minLength`, `required` and defaults match. The compact `JobSpec` of
`overrides.profilingJob` types each of its fields as the CRD's embedded JobSpec does (it may type
fewer fields than the CRD has; those are allowed untyped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dgdr.domain.jobspec import JobSpec
from dgdr.domain.spec import DGDRSpec

CRD_SPEC: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parent / "data" / "dgdr_v1beta1_spec_schema.yaml").read_text()
)
# Defaults we apply (when read, never written back) that the CRD leaves to Go's zero value.
OUR_EXTRA_DEFAULTS = {"spec.features.mocker.enabled": False}
# Our documented stricter bounds that show in the JSON schema (the numeric maxima do not).
OUR_STRICTER = {
    path: {"minLength": 1}
    for path in (
        "spec.image",
        "spec.hardware.interconnect",
        "spec.modelCache.pvcName",
        "spec.modelCache.pvcModelPath",
        "spec.modelCache.pvcMountPath",
    )
}


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Follow a `$ref`, drop the `null` branch of an optional field; keep a default it had."""
    default = schema.get("default", ...)
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[1]]
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        schema = {
            **_resolve(branches[0], defs),
            **{k: v for k, v in schema.items() if k != "anyOf"},
        }
    if default is not ...:
        schema = {**schema, "default": default}
    return schema


def _crd_enum(crd: dict[str, Any]) -> list[str] | None:
    if "enum" in crd:
        return list(crd["enum"])
    for branch in crd.get("allOf", []):
        if "enum" in branch:
            return list(branch["enum"])
    return None


def _compare(
    ours: dict[str, Any], crd: dict[str, Any], defs: dict[str, Any], path: str, *, exact: bool
) -> list[str]:
    """Differences between one of our JSON schemas and the CRD's; `exact` also wants every CRD
    property to be ours (the DGDR spec), not only ours to be the CRD's (the JobSpec)."""
    ours = _resolve(ours, defs)
    if ours.get("x-kubernetes-int-or-string"):
        return [] if crd.get("x-kubernetes-int-or-string") else [f"{path}: not int-or-string"]
    problems: list[str] = []
    if ours.get("type") != crd.get("type"):
        problems.append(f"{path}: type {ours.get('type')} != CRD {crd.get('type')}")
    for key in ("format", "pattern", "minLength"):
        if ours.get(key) != OUR_STRICTER.get(path, {}).get(key, crd.get(key)):
            problems.append(f"{path}: {key} {ours.get(key)!r} != CRD {crd.get(key)!r}")
    if sorted(ours.get("enum") or []) != sorted(_crd_enum(crd) or []):
        problems.append(f"{path}: enum {ours.get('enum')} != CRD {_crd_enum(crd)}")
    expected_default = crd.get("default", OUR_EXTRA_DEFAULTS.get(path))
    if exact and ours.get("default") != expected_default:
        problems.append(f"{path}: default {ours.get('default')!r} != CRD {crd.get('default')!r}")
    if "properties" in ours:
        theirs = crd.get("properties", {})
        for name, sub in ours["properties"].items():
            if name not in theirs:
                problems.append(f"{path}.{name}: not in the CRD")
            else:
                problems += _compare(sub, theirs[name], defs, f"{path}.{name}", exact=exact)
        if exact:
            problems += [f"{path}.{n}: missing" for n in theirs if n not in ours["properties"]]
        if sorted(ours.get("required", [])) != sorted(crd.get("required", [])):
            problems.append(f"{path}: required {ours.get('required')} != CRD {crd.get('required')}")
    elif isinstance(ours.get("additionalProperties"), dict) and ours["additionalProperties"]:
        problems += _compare(
            ours["additionalProperties"], crd.get("additionalProperties", {}), defs, f"{path}.*",
            exact=exact,
        )  # fmt: skip
    if "items" in ours:
        problems += _compare(ours["items"], crd.get("items", {}), defs, f"{path}[]", exact=exact)
    return problems


def _schema(model: type[DGDRSpec] | type[JobSpec]) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return schema, schema.get("$defs", {})


def test_the_dgdr_spec_is_exactly_the_crds_spec() -> None:
    ours, defs = _schema(DGDRSpec)
    crd = {**CRD_SPEC, "properties": dict(CRD_SPEC["properties"])}
    # Opaque objects here: the JobSpec is compared below; dgd and planner preserve unknown fields.
    assert crd["properties"]["overrides"]["properties"]["dgd"]["x-kubernetes-embedded-resource"]
    job = crd["properties"]["overrides"]["properties"]["profilingJob"]
    crd["properties"]["overrides"] = {
        **crd["properties"]["overrides"],
        "properties": {
            **crd["properties"]["overrides"]["properties"],
            "profilingJob": {"type": job["type"]},
        },
    }
    assert _compare(ours, crd, defs, "spec", exact=True) == []


def test_every_field_the_job_spec_types_is_typed_as_the_crd_types_it() -> None:
    ours, defs = _schema(JobSpec)
    crd = CRD_SPEC["properties"]["overrides"]["properties"]["profilingJob"]
    assert _compare(ours, crd, defs, "spec.overrides.profilingJob", exact=False) == []


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda s: s["properties"].pop("image"), "spec.image: not in the CRD"),
        (
            lambda s: s["properties"]["workload"]["properties"]["isl"].update(format="int64"),
            "format",
        ),
        (lambda s: s["properties"]["backend"].update(allOf=[{"enum": ["auto"]}]), "enum"),
        (lambda s: s.update(required=[]), "required"),
    ],
)
def test_the_comparison_finds_a_difference(mutate: Any, problem: str) -> None:
    import copy

    crd = copy.deepcopy(CRD_SPEC)
    mutate(crd)
    ours, defs = _schema(DGDRSpec)
    problems = _compare(ours, crd, defs, "spec", exact=True)
    assert any(problem in p for p in problems), problems
