"""Every typed field of a DGDR spec, tried with wrong-typed and out-of-range values: each is refused
(at either level: `parse_spec`) naming exactly that field and saying how to fix it, and a value in
range of the right type is admitted. The fields are listed by hand from the CRD (a field added to
`DGDRSpec` without a row here fails `test_every_leaf_field_of_the_spec_has_a_row`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dgdr.domain.spec import (
    GPU_SKUS,
    MAX_CONCURRENCY,
    MAX_GPUS_PER_NODE,
    MAX_LATENCY_MS,
    MAX_REQUEST_RATE,
    MAX_TOKENS,
    MAX_TOTAL_GPUS,
    MAX_VRAM_MB,
    PLANNER_OPTIMIZATION_TARGETS,
    DGDRSpec,
    FieldError,
    parse_spec,
)


@dataclass(frozen=True)
class Row:
    path: str  # under spec, dotted camelCase
    wrong: st.SearchStrategy[Any]
    right: st.SearchStrategy[Any]

    def spec(self, value: Any) -> dict[str, Any]:
        *parents, leaf = self.path.split(".")
        body: dict[str, Any] = {leaf: value}
        for parent in reversed(parents):
            body = {parent: body}
        return {"model": "Qwen/Qwen3-8B", **body} if self.path != "model" else body


_containers = st.one_of(st.lists(st.integers(), max_size=2), st.dictionaries(st.text(), st.none()))
_any_string = st.text(max_size=8)
_non_finite = st.sampled_from([math.inf, -math.inf, math.nan])


def _not_a_bool() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(["true", "false", "yes", "no", "1", "0", "on"]),
        st.integers(),
        st.floats(allow_nan=False),
        _containers,
    )


def _not_an_int(maximum: int) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(min_value=maximum + 1),  # too large
        st.integers(max_value=0),  # not positive (judged after storing, as Dynamo)
        st.floats(min_value=-1e12, max_value=1e12).filter(lambda f: not f.is_integer()),
        _non_finite,
        st.booleans(),
        st.integers(min_value=1, max_value=maximum).map(str),  # a quoted number
        _any_string,
        _containers,
    )


def _not_a_number(maximum: float) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.floats(min_value=maximum, exclude_min=True, allow_infinity=False),
        st.integers(min_value=int(maximum) + 1),
        st.floats(max_value=0, allow_infinity=False, allow_nan=False),
        _non_finite,
        st.booleans(),
        st.floats(min_value=1, max_value=maximum).map(repr),
        _any_string,
        _containers,
    )


def _not_a_string(blank: bool = True) -> st.SearchStrategy[Any]:
    wrong = st.one_of(st.integers(), st.floats(), st.booleans(), _containers)
    return st.one_of(wrong, st.sampled_from(["", " ", "\t"])) if blank else wrong


def _not_one_of(allowed: tuple[str, ...]) -> st.SearchStrategy[Any]:
    return st.one_of(
        _any_string.filter(lambda s: s not in allowed),
        st.sampled_from([a.upper() for a in allowed if a.upper() != a]),
        st.integers(),
        st.booleans(),
        _containers,
    )


_bool = st.booleans()
_name = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)


def _ints(maximum: int) -> st.SearchStrategy[int]:
    return st.integers(min_value=1, max_value=maximum)


def _numbers(maximum: float) -> st.SearchStrategy[float]:
    return st.one_of(
        st.floats(min_value=0, max_value=maximum, exclude_min=True), st.integers(1, int(maximum))
    )


ROWS = [
    Row("model", _not_a_string(), st.sampled_from(["Qwen/Qwen3-8B", "acme/llama-8B", "gpt2"])),
    Row("image", _not_a_string(), st.sampled_from(["nvcr.io/nvidia/dynamo:1.4.0", "img"])),
    Row("backend", _not_one_of(("auto", "vllm", "sglang", "trtllm")), st.just("vllm")),
    Row("searchStrategy", _not_one_of(("rapid", "thorough")), st.just("rapid")),
    Row("autoApply", _not_a_bool(), _bool),
    Row(
        "runtimeVersionOverride",
        st.one_of(_not_a_string(), st.sampled_from(["v1.2.0", "1.2", "01.2.3", "1.2.3-rc1"])),
        st.sampled_from(["1.2.0", "0.0.1", "9999.0.0"]),
    ),
    Row("sla.ttft", _not_a_number(MAX_LATENCY_MS), _numbers(MAX_LATENCY_MS)),
    Row("sla.itl", _not_a_number(MAX_LATENCY_MS), _numbers(MAX_LATENCY_MS)),
    Row("sla.e2eLatency", _not_a_number(MAX_LATENCY_MS), _numbers(MAX_LATENCY_MS)),
    Row("sla.optimizationType", _not_one_of(("latency", "throughput")), st.just("latency")),
    Row("workload.isl", _not_an_int(MAX_TOKENS), _ints(MAX_TOKENS)),
    Row("workload.osl", _not_an_int(MAX_TOKENS), _ints(MAX_TOKENS)),
    Row("workload.requestRate", _not_a_number(MAX_REQUEST_RATE), _numbers(MAX_REQUEST_RATE)),
    Row(
        "workload.concurrency",
        st.one_of(
            _not_a_number(MAX_CONCURRENCY),
            st.floats(0, MAX_CONCURRENCY, exclude_min=True).filter(lambda f: not f.is_integer()),
        ),
        st.one_of(_ints(int(MAX_CONCURRENCY)), _ints(int(MAX_CONCURRENCY)).map(float)),
    ),
    Row("hardware.gpuSku", _not_one_of(GPU_SKUS), st.sampled_from(GPU_SKUS)),
    Row("hardware.vramMb", _not_a_number(MAX_VRAM_MB), _numbers(MAX_VRAM_MB)),
    Row("hardware.totalGpus", _not_an_int(MAX_TOTAL_GPUS), _ints(MAX_TOTAL_GPUS)),
    Row("hardware.numGpusPerNode", _not_an_int(MAX_GPUS_PER_NODE), _ints(MAX_GPUS_PER_NODE)),
    Row("hardware.interconnect", _not_a_string(blank=False), st.just("nvlink")),
    Row("hardware.rdma", _not_a_bool(), _bool),
    Row("modelCache.pvcName", _not_a_string(blank=False), _name),
    Row("modelCache.pvcModelPath", _not_a_string(blank=False), st.just("hub/qwen")),
    Row("modelCache.pvcMountPath", _not_a_string(blank=False), st.just("/opt/model-cache")),
    Row("features.mocker.enabled", _not_a_bool(), _bool),
    Row("features.planner.enable_load_scaling", _not_a_bool(), _bool),
    Row("features.planner.enable_throughput_scaling", _not_a_bool(), _bool),
    Row(
        "features.planner.optimization_target",
        _not_one_of(PLANNER_OPTIMIZATION_TARGETS),
        st.sampled_from(PLANNER_OPTIMIZATION_TARGETS),
    ),
]

_FIXES = ("use ", "set ", "add ", "remove ")


def _refusal(spec: dict[str, Any]) -> list[FieldError]:
    parsed = parse_spec(spec)
    assert isinstance(parsed, list), f"{spec} was admitted"
    return parsed


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(ROWS).flatmap(lambda row: st.tuples(st.just(row), row.wrong)))
def test_a_wrong_value_is_refused_naming_its_field_and_the_fix(case: tuple[Row, Any]) -> None:
    row, value = case
    errors = _refusal(row.spec(value))
    assert [e.field for e in errors] == [f"spec.{row.path}"], (value, errors)
    assert any(fix in errors[0].message for fix in _FIXES), errors[0].message


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ROWS).flatmap(lambda row: st.tuples(st.just(row), row.right)))
def test_a_value_of_the_right_type_in_range_is_admitted(case: tuple[Row, Any]) -> None:
    row, value = case
    spec = row.spec(value)
    if row.path.startswith("features.planner") and row.path.endswith("scaling"):
        spec["features"]["planner"]["enable_load_scaling"] = True  # one mode stays on
    assert isinstance(parse_spec(spec), DGDRSpec), parse_spec(spec)


def _leaves(model: type[Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}{info.alias or name}"
        nested = [
            a
            for a in getattr(info.annotation, "__args__", (info.annotation,))
            if isinstance(a, type) and hasattr(a, "model_fields")
        ]
        out |= _leaves(nested[0], f"{path}.") if nested else {path}
    return out


def test_every_leaf_field_of_the_spec_has_a_row() -> None:
    # objects kept as written and checked elsewhere: the planner's config (its typed keys have
    # rows), the embedded DGD and the profiling Job's JobSpec (tests/dgdr/domain/test_spec.py)
    free_form = {"features.planner", "overrides.dgd", "overrides.profilingJob"}
    rows = {row.path for row in ROWS if not row.path.startswith("features.planner.")}
    assert _leaves(DGDRSpec) - free_form == rows
