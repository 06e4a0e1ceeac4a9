"""The DGDR v1beta1 spec and manifest models, and their validation in two levels.

Owns: the shape of `spec` exactly as Dynamo's v1beta1 CRD (camelCase names, enums, defaults), GPU SKU
normalisation for discovered product names (`normalise_gpu_sku`) and the one rule for a GPU a person
types (`gpu_sku_named`: `--gpu H200`, the spec's hint for a refused `gpuSku`), and turning pydantic
errors into `FieldError`s that name the field (a dotted camelCase path such as
`spec.sla.e2eLatency`) and say how to fix it.

Two levels, as Dynamo splits them:
- Schema level (`check_spec`, `check_manifest`): what Dynamo's API server refuses from the CRD's
  OpenAPI schema, so nothing is stored. Types with no coercion (a string is not a boolean or a
  number, an integer field does not take 2.5 -- 8.0 is read as 8, as the API server does), int32
  ranges, the enums (`backend`, `searchStrategy`, `sla.optimizationType`, `hardware.gpuSku`: a raw
  product name such as `NVIDIA-H100-80GB-HBM3` is refused, naming the SKU it looks like), `model`
  non-empty, the `runtimeVersionOverride` pattern, `overrides.dgd` an embedded resource (apiVersion
  and kind), `overrides.profilingJob` a JobSpec (`dgdr.domain.jobspec`), unknown fields (kubectl's
  default strict field validation refuses them; inside `overrides.profilingJob` they are allowed). A
  null field is absent (the API server drops nulls; a null unknown field is still refused). The JobSpec
  is checked by `check_spec`/`check_manifest`, not by `DGDRSpec.model_validate` alone (the field keeps
  the dict as written). Our own stricter bounds, refused the same way:
  - `image`, when given, is non-empty (an empty image cannot run the profiler);
  - `sla.ttft`, `sla.itl`, `sla.e2eLatency` at most `MAX_LATENCY_MS` (a day);
  - `workload.isl`, `workload.osl` at most `MAX_TOKENS` (10M tokens, the longest context of a
    served model today);
  - `hardware.numGpusPerNode` at most `MAX_GPUS_PER_NODE` (72, one NVL72 NVLink domain);
  - `hardware.totalGpus` at most `MAX_TOTAL_GPUS` (1024);
  - `hardware.vramMb` at most `MAX_VRAM_MB` (1 TiB, over 3x the largest HBM of a GPU today);
  - `workload.requestRate` at most `MAX_REQUEST_RATE` req/s and `workload.concurrency` at most
    `MAX_CONCURRENCY` requests (both 2^20: 1024 GPUs x the largest batch AIConfigurator sweeps);
  - `hardware.interconnect` and the `modelCache` strings, when given, non-empty;
  - every number finite.
- Semantic level (`semantic_errors`): what Dynamo checks later, in its controller or profiler; the
  DGDR is stored and goes Failed with `ValidationFailed`. Positive SLA targets, sequence lengths,
  rates and GPU facts; `model` and `image` not blank (only spaces); `concurrency` a whole number of
  requests (the CRD types it `number`, as Dynamo does, but it counts requests in flight: Dynamo's
  replay runs `int(concurrency)` and aiperf's `--concurrency` is an integer, so 2.5 would silently
  run as 2); `e2eLatency` not with `ttft`/`itl`; `requestRate` not with `concurrency`; the
  `features.planner` keys dgdr reads (`enable_load_scaling`, `enable_throughput_scaling` JSON
  booleans, `optimization_target` one of Dynamo's planner's four: a string "false" is truthy);
  `searchStrategy: thorough` needs a concrete backend (`dgdr.domain.admission` refuses it first, on
  create or an update that brings it; an update keeping a stored one is admitted and fails here, as in
  Dynamo's profiler).
`parse_spec`/`parse_manifest` apply both: what they return is a spec fit to profile.

Failure semantics: nothing here raises for bad user input; every function returns the list of every
field error (schema errors first: semantic rules are judged only on a schema-valid spec). A manifest
round-trips unchanged: `dump_manifest(parse_manifest(m))` == `m` for any valid `m` without nulls
(defaults are applied when read through `effective_*`, not written back).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    StrictStr,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from dgdr.domain.jobspec import INT32, JobSpec, whole_number
from dgdr.domain.kinds import API_VERSION as API_VERSION  # re-exported: spec's public names
from dgdr.domain.kinds import DGD_API_VERSION as DGD_API_VERSION
from dgdr.domain.kinds import DGD_KIND as DGD_KIND
from dgdr.domain.kinds import KIND as KIND

# The Dynamo release dgdr stands in for: the tag of the images it names when the user names none
# (the runtime images of a generated DGD, the profiler image the defaulting webhook sets), as
# Dynamo's operator uses its own version. The latest GA; main's 1.5.0 has no published images yet.
DYNAMO_VERSION = "1.4.0"

DEFAULT_TTFT_MS = 2000.0
DEFAULT_ITL_MS = 30.0

# Our stricter bounds (see the module docstring).
MAX_LATENCY_MS = 86_400_000.0
MAX_TOKENS = 10_000_000
MAX_GPUS_PER_NODE = 72
MAX_TOTAL_GPUS = 1024
MAX_VRAM_MB = 1_048_576.0
MAX_REQUEST_RATE = 1_048_576.0
MAX_CONCURRENCY = 1_048_576.0


def _number(maximum: float, why: str) -> Any:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{value!r} is not a number: use a number, without quotes")
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not allowed: use a finite number")
        if value > maximum:
            raise ValueError(f"{value!r} is too large: use at most {maximum:.15g} ({why})")
        return value

    return check


# JSON numbers that keep their type: `ttft: 300` round-trips as 300, not 300.0.
Milliseconds = Annotated[
    float,
    PlainValidator(_number(MAX_LATENCY_MS, "a day in milliseconds")),
    PlainSerializer(lambda v: v),
    WithJsonSchema({"type": "number"}),
]
MiB = Annotated[
    float,
    PlainValidator(_number(MAX_VRAM_MB, "1 TiB per GPU")),
    PlainSerializer(lambda v: v),
    WithJsonSchema({"type": "number"}),
]
RequestRate = Annotated[
    float,
    PlainValidator(_number(MAX_REQUEST_RATE, "requests per second for 1024 GPUs")),
    PlainSerializer(lambda v: v),
    WithJsonSchema({"type": "number"}),
]
Concurrency = Annotated[
    float,
    PlainValidator(_number(MAX_CONCURRENCY, "requests in flight on 1024 GPUs")),
    PlainSerializer(lambda v: v),
    WithJsonSchema({"type": "number"}),
]
Tokens = Annotated[
    int,
    PlainValidator(whole_number(INT32[0], MAX_TOKENS, "at most 10M tokens")),
    PlainSerializer(lambda v: v),
    WithJsonSchema({"type": "integer", "format": "int32"}),
]
GpusPerNode = Annotated[
    int,
    PlainValidator(whole_number(INT32[0], MAX_GPUS_PER_NODE, "one NVL72 NVLink domain at most")),
    PlainSerializer(lambda v: v),
    WithJsonSchema({"type": "integer", "format": "int32"}),
]
TotalGpus = Annotated[
    int,
    PlainValidator(whole_number(INT32[0], MAX_TOTAL_GPUS, "the largest GPU budget dgdr profiles")),
    PlainSerializer(lambda v: v),
    WithJsonSchema({"type": "integer", "format": "int32"}),
]


class GpuSku(StrEnum):
    GB200_SXM = "gb200_sxm"
    GB10 = "gb10"
    B200_SXM = "b200_sxm"
    H200_SXM = "h200_sxm"
    H100_SXM = "h100_sxm"
    H100_PCIE = "h100_pcie"
    A100_SXM = "a100_sxm"
    A100_PCIE = "a100_pcie"
    A30 = "a30"
    L40S = "l40s"
    L40 = "l40"
    L4 = "l4"
    V100_SXM = "v100_sxm"
    V100_PCIE = "v100_pcie"
    T4 = "t4"
    MI200 = "mi200"
    MI300 = "mi300"


GPU_SKUS = tuple(s.value for s in GpuSku)

# Ordered: the first pattern that matches a normalised product name wins. A product name that matches
# the family but none of its form factors (e.g. plain "A100") is ambiguous and is rejected.
_PRODUCT_PATTERNS: tuple[tuple[str, GpuSku], ...] = (
    (r"GB200", GpuSku.GB200_SXM),
    (r"\bGB10\b", GpuSku.GB10),
    (r"B200", GpuSku.B200_SXM),
    (r"(?<![A-Z])H200", GpuSku.H200_SXM),
    (r"H100.*(PCIE|NVL)", GpuSku.H100_PCIE),
    (r"H100.*(SXM|HBM3)", GpuSku.H100_SXM),
    (r"A100.*PCIE", GpuSku.A100_PCIE),
    (r"A100.*SXM", GpuSku.A100_SXM),
    (r"\bA30\b", GpuSku.A30),
    (r"L40S", GpuSku.L40S),
    (r"\bL40\b", GpuSku.L40),
    (r"\bL4\b", GpuSku.L4),
    (r"V100.*PCIE", GpuSku.V100_PCIE),
    (r"V100.*SXM", GpuSku.V100_SXM),
    (r"\bT4\b", GpuSku.T4),
    (r"MI2[0-9]{2}", GpuSku.MI200),
    (r"MI3[0-9]{2}", GpuSku.MI300),
)


@functools.lru_cache(maxsize=256)
def normalise_gpu_sku(value: str) -> GpuSku | None:
    """Map a SKU id or a raw product name (`NVIDIA-H100-80GB-HBM3`) to a SKU; None if unknown/ambiguous."""
    if value in GPU_SKUS:
        return GpuSku(value)
    name = re.sub(r"[\s_]+", "-", value.strip().upper())
    name = re.sub(r"^(NVIDIA|AMD|TESLA)-", "", name)
    name = re.sub(r"^(TESLA|INSTINCT)-", "", name)
    for pattern, sku in _PRODUCT_PATTERNS:
        if re.search(pattern, name):
            return sku
    return None


# Families sold in more than one form factor: their bare name names no single SKU.
_FAMILY = re.compile(r"^(?:NVIDIA-|TESLA-)*([AHV]100)(?:-\d+GB)?$")


def gpu_sku_named(value: str) -> GpuSku:
    """The SKU a person's spelling names, wherever one is typed (`--gpu`, the spec's hint): a SKU
    id in any case, with `-` or a space for `_` (`H100-SXM`), or a product name
    (`NVIDIA-H200-141GB-HBM3`, `H200`). Otherwise a `ValueError` saying what to write: the forms of
    a family sold in several (`h100`: h100_sxm or h100_pcie), else every known SKU."""
    spelled = re.sub(r"[\s-]+", "_", value.strip().lower())
    if spelled in GPU_SKUS:
        return GpuSku(spelled)
    sku = normalise_gpu_sku(value)
    if sku is not None:
        return sku
    raise ValueError(
        _unnamed(value) or f"{value!r} is not a known GPU: use one of {', '.join(GPU_SKUS)}"
    )


def _unnamed(value: str) -> str:
    """Why a family's bare name (`H100`) names no SKU, or "" for any other spelling."""
    family = _FAMILY.match(re.sub(r"[\s_]+", "-", value.strip().upper()))
    if family is None:
        return ""
    forms = [s for s in GPU_SKUS if s.startswith(family.group(1).lower() + "_")]
    return f"{value!r} names {len(forms)} GPUs, {' and '.join(forms)}: use one of them"


class Backend(StrEnum):
    AUTO = "auto"
    VLLM = "vllm"
    SGLANG = "sglang"
    TRTLLM = "trtllm"


class SearchStrategy(StrEnum):
    RAPID = "rapid"
    THOROUGH = "thorough"


class OptimizationType(StrEnum):
    LATENCY = "latency"
    THROUGHPUT = "throughput"


class _Model(BaseModel):
    # Only the camelCase names of the v1beta1 schema are accepted from users (`auto_apply` is an
    # unknown field, not an alias), so what validates is exactly what round-trips. A null field is
    # absent, as the API server drops it.
    model_config = ConfigDict(
        extra="forbid", validate_by_name=False, validate_by_alias=True, frozen=True
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        # only of known fields: an unknown one is refused even when null (strict field validation)
        if isinstance(data, dict):
            if None not in data.values():
                return data
            known = _field_names(cls)
            return {k: v for k, v in data.items() if v is not None or k not in known}
        return data


@functools.cache
def _field_names(model: type[BaseModel]) -> frozenset[str]:
    """The names a model's fields are given by in a document (their aliases)."""
    return frozenset(f.alias or name for name, f in model.model_fields.items())


class SLA(_Model):
    ttft: Milliseconds | None = None
    itl: Milliseconds | None = None
    e2e_latency: Milliseconds | None = Field(default=None, alias="e2eLatency")
    optimization_type: OptimizationType | None = Field(default=None, alias="optimizationType")


class Workload(_Model):
    isl: Tokens = 4000
    osl: Tokens = 1000
    request_rate: RequestRate | None = Field(default=None, alias="requestRate")
    concurrency: Concurrency | None = None


def _looks_like(value: str) -> str:
    """The hint after the enum's values: the SKU the spelling names, or the family's forms."""
    try:
        return f" ({value!r} looks like {gpu_sku_named(value).value})"
    except ValueError:
        return f" ({_unnamed(value)})" if _unnamed(value) else ""


class Hardware(_Model):
    gpu_sku: GpuSku | None = Field(default=None, alias="gpuSku")
    vram_mb: MiB | None = Field(default=None, alias="vramMb")
    total_gpus: TotalGpus | None = Field(default=None, alias="totalGpus")
    num_gpus_per_node: GpusPerNode | None = Field(default=None, alias="numGpusPerNode")
    interconnect: StrictStr | None = Field(default=None, min_length=1)
    rdma: StrictBool | None = None

    @field_validator("gpu_sku", mode="before")
    @classmethod
    def _one_of_the_skus(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in GPU_SKUS:
            raise ValueError(
                f"{value!r} is not allowed: use one of {', '.join(GPU_SKUS)}{_looks_like(value)}"
            )
        return value


class ModelCache(_Model):
    pvc_name: StrictStr | None = Field(default=None, alias="pvcName", min_length=1)
    pvc_model_path: StrictStr | None = Field(default=None, alias="pvcModelPath", min_length=1)
    pvc_mount_path: StrictStr = Field(
        default="/opt/model-cache", alias="pvcMountPath", min_length=1
    )


class Mocker(_Model):
    enabled: StrictBool = False


class Features(_Model):
    planner: dict[str, Any] | None = None
    mocker: Mocker | None = None


class Overrides(_Model):
    # Checked against `dgdr.domain.jobspec.JobSpec` by `check_spec`; kept as written here.
    profiling_job: dict[str, Any] | None = Field(default=None, alias="profilingJob")
    dgd: dict[str, Any] | None = None

    @field_validator("dgd")
    @classmethod
    def _dgd_is_embedded_resource(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return value
        api_version, kind = value.get("apiVersion"), value.get("kind")
        if not (isinstance(api_version, str) and api_version and isinstance(kind, str) and kind):
            raise ValueError(
                "must be a DynamoGraphDeployment object with apiVersion and kind "
                f"(apiVersion: {DGD_API_VERSION}, kind: {DGD_KIND})"
            )
        if not isinstance(value.get("metadata", {}), dict):
            raise ValueError("metadata must be an object (name, labels, annotations)")
        return value


class DGDRSpec(_Model):
    model: StrictStr = Field(min_length=1)
    image: StrictStr | None = Field(default=None, min_length=1)
    backend: Backend = Backend.AUTO
    search_strategy: SearchStrategy = Field(default=SearchStrategy.RAPID, alias="searchStrategy")
    auto_apply: StrictBool = Field(default=True, alias="autoApply")
    sla: SLA | None = None
    workload: Workload | None = None
    hardware: Hardware | None = None
    model_cache: ModelCache | None = Field(default=None, alias="modelCache")
    features: Features | None = None
    overrides: Overrides | None = None
    runtime_version_override: StrictStr | None = Field(
        default=None,
        alias="runtimeVersionOverride",
        pattern=r"^(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})$",
    )

    # Effective values: what the profiler uses when the user left a field out.
    @property
    def effective_sla(self) -> SLA:
        sla = self.sla or SLA()
        if sla.e2e_latency is not None:
            return sla
        return SLA.model_construct(
            ttft=sla.ttft or DEFAULT_TTFT_MS,
            itl=sla.itl or DEFAULT_ITL_MS,
            e2e_latency=None,
            optimization_type=sla.optimization_type,
        )

    @property
    def effective_workload(self) -> Workload:
        return self.workload or Workload()

    @property
    def effective_hardware(self) -> Hardware:
        return self.hardware or Hardware()

    @property
    def mocker_enabled(self) -> bool:
        return bool(self.features and self.features.mocker and self.features.mocker.enabled)


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def dns_name_problem(value: str) -> str | None:
    """Why `value` is not a valid `metadata.name` (a DNS subdomain); None when it is one."""
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        return (
            f"{value!r} is not a valid name: use lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit, at most 253 characters"
        )
    return None


def dns_namespace_problem(value: str) -> str | None:
    """Why `value` is not a valid `metadata.namespace` (a DNS label); None when it is one."""
    if len(value) > 63 or not _DNS_LABEL.match(value):
        return (
            f"{value!r} is not a valid namespace: use lower-case letters, digits and '-', "
            "at most 63 characters"
        )
    return None


class Metadata(BaseModel):
    """Object metadata. Unknown keys (managedFields, ...) are kept so a manifest round-trips."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    name: str
    namespace: str | None = None
    uid: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None

    @field_validator("name")
    @classmethod
    def _dns_subdomain(cls, value: str) -> str:
        problem = dns_name_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("namespace")
    @classmethod
    def _dns_label(cls, value: str | None) -> str | None:
        problem = None if value is None else dns_namespace_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    api_version: Literal["nvidia.com/v1beta1"] = Field(alias="apiVersion")
    kind: Literal["DynamoGraphDeploymentRequest"]
    metadata: Metadata
    spec: DGDRSpec
    status: dict[str, Any] | None = None


@dataclass(frozen=True)
class FieldError:
    """One problem with user input: which field (dotted camelCase path), what is wrong, how to fix it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


_FIX_HINTS: dict[str, str] = {
    "missing": "add it",
    "extra_forbidden": "remove it (not a DGDR v1beta1 field; check the spelling)",
    "string_too_short": "set it to a non-empty value",
    "string_pattern_mismatch": "use the form it shows",
}

# Type errors say what was given and what to write instead (no coercion, as the API server).
_TYPE_MESSAGES: dict[str, str] = {
    "string_type": "is not a string: use a string (quote it in YAML)",
    "bool_type": "is not a boolean: use true or false, without quotes",
    "dict_type": "is not an object: use a mapping of fields",
    "model_type": "is not an object: use a mapping of fields",
    "model_attributes_type": "is not an object: use a mapping of fields",
    "list_type": "is not a list: use a list",
}


def _message(err: Any, loc: str) -> str:
    msg = str(err["msg"]).removeprefix("Value error, ")
    kind = err["type"]
    if kind == "literal_error" and loc in ("apiVersion", "kind"):
        msg = f"must be {API_VERSION if loc == 'apiVersion' else KIND}"
    elif kind == "enum":
        expected = err.get("ctx", {}).get("expected", "")
        msg = f"{err.get('input')!r} is not allowed: use one of {expected}"
    elif kind in _TYPE_MESSAGES:
        msg = f"{err.get('input')!r} {_TYPE_MESSAGES[kind]}"
    elif kind == "string_pattern_mismatch" and loc.endswith("runtimeVersionOverride"):
        msg = f"{err.get('input')!r} is not a version: use MAJOR.MINOR.PATCH such as 1.2.0"
        return msg
    hint = _FIX_HINTS.get(kind)
    return f"{msg}: {hint}" if hint else msg


def errors_from(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    out: list[FieldError] = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        field = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "(document)"
        out.append(FieldError(field, _message(err, loc)))
    return out


def _job_spec_errors(spec: Any, prefix: str) -> list[FieldError]:
    """`overrides.profilingJob` checked as the CRD's JobSpec (only when it is an object at all)."""
    overrides = spec.get("overrides") if isinstance(spec, dict) else None
    job = overrides.get("profilingJob") if isinstance(overrides, dict) else None
    if not isinstance(job, dict):
        return []
    try:
        JobSpec.model_validate(job)
    except ValidationError as exc:
        return errors_from(exc, f"{prefix}overrides.profilingJob.")
    return []


def check_spec(spec: Any) -> DGDRSpec | list[FieldError]:
    """Schema level only (what Dynamo's API server refuses); paths are prefixed with `spec.`."""
    errors = _job_spec_errors(spec, "spec.")
    try:
        parsed = DGDRSpec.model_validate(spec)
    except ValidationError as exc:
        return errors_from(exc, "spec.") + errors
    return errors or parsed


def check_manifest(document: Any) -> Manifest | list[FieldError]:
    """Schema level only, for a whole manifest (apiVersion, kind, metadata, spec)."""
    if not isinstance(document, dict):
        return [
            FieldError(
                "(document)",
                "a DGDR manifest must be a mapping with apiVersion, kind, metadata and spec",
            )
        ]
    errors = _job_spec_errors(document.get("spec"), "spec.")
    try:
        manifest = Manifest.model_validate(document)
    except ValidationError as exc:
        return errors_from(exc) + errors
    return errors or manifest


def _positive(errors: list[FieldError], field: str, value: float | None) -> None:
    if value is not None and value <= 0:
        errors.append(FieldError(field, f"{value!r} is not allowed: use a number greater than 0"))


# What Dynamo's planner accepts as `optimization_target` (its PlannerConfig's Literal).
PLANNER_OPTIMIZATION_TARGETS = ("throughput", "latency", "load", "sla")


def _blank(errors: list[FieldError], field: str, value: str | None) -> None:
    if value is not None and not value.strip():
        errors.append(FieldError(field, f"{value!r} is blank: set it to a non-blank value"))


def _planner_errors(planner: dict[str, Any]) -> list[FieldError]:
    """The `features.planner` keys dgdr itself reads, typed as Dynamo's planner types them (the
    rest is the planner's to judge)."""
    errors: list[FieldError] = []
    for key in ("enable_load_scaling", "enable_throughput_scaling"):
        value = planner.get(key)
        if value is not None and not isinstance(value, bool):
            errors.append(
                FieldError(
                    f"spec.features.planner.{key}",
                    f"{value!r} is not a boolean: use true or false, without quotes",
                )
            )
    target = planner.get("optimization_target")
    if target is not None and target not in PLANNER_OPTIMIZATION_TARGETS:
        errors.append(
            FieldError(
                "spec.features.planner.optimization_target",
                f"{target!r} is not allowed: use one of {', '.join(PLANNER_OPTIMIZATION_TARGETS)}",
            )
        )
    return errors


def _fractional_concurrency(value: float) -> FieldError:
    whole = sorted({max(1, math.floor(value)), math.ceil(value)})
    return FieldError(
        "spec.workload.concurrency",
        f"{value!r} is not a whole number of requests in flight: use "
        f"{' or '.join(map(str, whole))} (Dynamo's profiler would run it as {int(value)})",
    )


def semantic_errors(spec: DGDRSpec) -> list[FieldError]:
    """The rules Dynamo checks after storing the DGDR (controller and profiler); see the module
    docstring. Judged on a schema-valid spec."""
    errors: list[FieldError] = []
    _blank(errors, "spec.model", spec.model)
    _blank(errors, "spec.image", spec.image)
    if spec.sla is not None:
        sla = spec.sla
        for alias, value in (("ttft", sla.ttft), ("itl", sla.itl), ("e2eLatency", sla.e2e_latency)):
            _positive(errors, f"spec.sla.{alias}", value)
        if sla.e2e_latency is not None and (sla.ttft is not None or sla.itl is not None):
            errors.append(
                FieldError(
                    "spec.sla.e2eLatency",
                    "e2eLatency cannot be combined with ttft/itl: set either e2eLatency alone, "
                    "or ttft and/or itl",
                )
            )
    if spec.workload is not None:
        w = spec.workload
        for alias, value in (
            ("isl", w.isl),
            ("osl", w.osl),
            ("requestRate", w.request_rate),
            ("concurrency", w.concurrency),
        ):
            _positive(errors, f"spec.workload.{alias}", value)
        if (
            w.concurrency is not None
            and w.concurrency > 0
            and w.concurrency != math.floor(w.concurrency)
        ):
            errors.append(_fractional_concurrency(w.concurrency))
        if w.request_rate is not None and w.concurrency is not None:
            errors.append(
                FieldError(
                    "spec.workload.concurrency",
                    "requestRate and concurrency are mutually exclusive: keep only one of them",
                )
            )
    if spec.hardware is not None:
        hw = spec.hardware
        for alias, value in (
            ("vramMb", hw.vram_mb),
            ("totalGpus", hw.total_gpus),
            ("numGpusPerNode", hw.num_gpus_per_node),
        ):
            _positive(errors, f"spec.hardware.{alias}", value)
    if spec.features is not None and spec.features.planner is not None:
        errors.extend(_planner_errors(spec.features.planner))
    if thorough_needs_backend(spec):
        errors.append(THOROUGH_WITH_AUTO)
    return errors


THOROUGH_WITH_AUTO = FieldError(
    "spec.searchStrategy",
    "searchStrategy thorough needs a concrete backend: set backend to vllm, sglang or trtllm, "
    "or use searchStrategy rapid",
)


def thorough_needs_backend(spec: DGDRSpec) -> bool:
    """`searchStrategy: thorough` with `backend: auto` (Dynamo's webhook refuses it on create)."""
    return spec.search_strategy is SearchStrategy.THOROUGH and spec.backend is Backend.AUTO


def parse_manifest(document: Any) -> Manifest | list[FieldError]:
    """Validate a whole DGDR manifest at both levels; every problem is reported, none raises."""
    manifest = check_manifest(document)
    if isinstance(manifest, list):
        return manifest
    return semantic_errors(manifest.spec) or manifest


def parse_spec(spec: Any) -> DGDRSpec | list[FieldError]:
    """Validate a bare spec at both levels; field paths are prefixed with `spec.`."""
    parsed = check_spec(spec)
    if isinstance(parsed, list):
        return parsed
    return semantic_errors(parsed) or parsed


def dump_spec(spec: DGDRSpec) -> dict[str, Any]:
    """The spec as the user wrote it (camelCase, only the fields that were set)."""
    return spec.model_dump(mode="json", by_alias=True, exclude_unset=True)


def dump_manifest(manifest: Manifest) -> dict[str, Any]:
    return manifest.model_dump(mode="json", by_alias=True, exclude_unset=True)
