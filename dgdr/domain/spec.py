"""The DGDR v1beta1 spec and manifest models, and their validation.

Owns: the shape of `spec` exactly as Dynamo's v1beta1 field reference (camelCase aliases), the defaults,
the cross-field rules, GPU SKU normalisation, and turning pydantic errors into `FieldError`s that name the
field (as a dotted camelCase path such as `spec.sla.e2eLatency`) and say how to fix it.

Failure semantics: `parse_manifest` never raises for bad user input; it returns the list of every field
error. A manifest round-trips unchanged: `dump_manifest(parse_manifest(m))` == `m` for any valid `m`
(defaults are applied when read through `effective_*`, not written back).
"""

from __future__ import annotations

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
    PositiveInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)

API_VERSION = "nvidia.com/v1beta1"
KIND = "DynamoGraphDeploymentRequest"
DGD_API_VERSION = "nvidia.com/v1alpha1"
DGD_KIND = "DynamoGraphDeployment"

DEFAULT_TTFT_MS = 2000.0
DEFAULT_ITL_MS = 30.0


def _positive_number(value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{value!r} is not allowed: use a number greater than 0")
    return value


# A positive number that keeps its type: `ttft: 300` round-trips as 300, not 300.0.
PositiveNumber = Annotated[float, PlainValidator(_positive_number), PlainSerializer(lambda v: v)]


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
    # unknown field, not an alias), so what validates is exactly what round-trips.
    model_config = ConfigDict(
        extra="forbid", validate_by_name=False, validate_by_alias=True, frozen=True
    )


class SLA(_Model):
    ttft: PositiveNumber | None = None
    itl: PositiveNumber | None = None
    e2e_latency: PositiveNumber | None = Field(default=None, alias="e2eLatency")
    optimization_type: OptimizationType | None = Field(default=None, alias="optimizationType")

    @field_validator("e2e_latency")
    @classmethod
    def _e2e_excludes_ttft_itl(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and (info.data.get("ttft") or info.data.get("itl")):
            raise ValueError(
                "e2eLatency cannot be combined with ttft/itl: set either e2eLatency alone, "
                "or ttft and/or itl"
            )
        return value


class Workload(_Model):
    isl: PositiveInt = 4000
    osl: PositiveInt = 1000
    request_rate: PositiveNumber | None = Field(default=None, alias="requestRate")
    concurrency: PositiveNumber | None = None

    @field_validator("concurrency")
    @classmethod
    def _rate_excludes_concurrency(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("request_rate") is not None:
            raise ValueError(
                "requestRate and concurrency are mutually exclusive: keep only one of them"
            )
        return value


class Hardware(_Model):
    gpu_sku: GpuSku | None = Field(default=None, alias="gpuSku")
    vram_mb: PositiveNumber | None = Field(default=None, alias="vramMb")
    total_gpus: PositiveInt | None = Field(default=None, alias="totalGpus")
    num_gpus_per_node: PositiveInt | None = Field(default=None, alias="numGpusPerNode")
    interconnect: str | None = None
    rdma: bool | None = None

    @field_validator("gpu_sku", mode="before")
    @classmethod
    def _map_product_name(cls, value: Any) -> Any:
        if value is None or not isinstance(value, str):
            return value
        sku = normalise_gpu_sku(value)
        if sku is None:
            raise ValueError(
                f"unknown or ambiguous GPU {value!r}: use one of {', '.join(GPU_SKUS)}"
            )
        return sku


class ModelCache(_Model):
    pvc_name: str | None = Field(default=None, alias="pvcName")
    pvc_model_path: str | None = Field(default=None, alias="pvcModelPath")
    pvc_mount_path: str = Field(default="/opt/model-cache", alias="pvcMountPath")


class Mocker(_Model):
    enabled: bool = False


class Features(_Model):
    planner: dict[str, Any] | None = None
    mocker: Mocker | None = None


class Overrides(_Model):
    profiling_job: dict[str, Any] | None = Field(default=None, alias="profilingJob")
    dgd: dict[str, Any] | None = None

    @field_validator("dgd")
    @classmethod
    def _dgd_is_embedded_resource(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and (not value.get("apiVersion") or not value.get("kind")):
            raise ValueError(
                "must be a DynamoGraphDeployment object with apiVersion and kind "
                f"(apiVersion: {DGD_API_VERSION}, kind: {DGD_KIND})"
            )
        return value


class DGDRSpec(_Model):
    model: str = Field(min_length=1)
    image: str | None = None
    backend: Backend = Backend.AUTO
    search_strategy: SearchStrategy = Field(default=SearchStrategy.RAPID, alias="searchStrategy")
    auto_apply: bool = Field(default=True, alias="autoApply")
    sla: SLA | None = None
    workload: Workload | None = None
    hardware: Hardware | None = None
    model_cache: ModelCache | None = Field(default=None, alias="modelCache")
    features: Features | None = None
    overrides: Overrides | None = None
    runtime_version_override: str | None = Field(
        default=None,
        alias="runtimeVersionOverride",
        pattern=r"^(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})$",
    )

    @field_validator("search_strategy")
    @classmethod
    def _thorough_needs_backend(cls, value: SearchStrategy, info: ValidationInfo) -> SearchStrategy:
        if value is SearchStrategy.THOROUGH and info.data.get("backend") is Backend.AUTO:
            raise ValueError(
                "searchStrategy thorough needs a concrete backend: set backend to vllm, sglang "
                "or trtllm, or use searchStrategy rapid"
            )
        return value

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
        if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
            raise ValueError(
                f"{value!r} is not a valid name: use lower-case letters, digits, '-' and '.', "
                "starting and ending with a letter or digit, at most 253 characters"
            )
        return value

    @field_validator("namespace")
    @classmethod
    def _dns_label(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 63 or not _DNS_LABEL.match(value)):
            raise ValueError(
                f"{value!r} is not a valid namespace: use lower-case letters, digits and '-', "
                "at most 63 characters"
            )
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
}


def errors_from(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    out: list[FieldError] = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        field = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "(document)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "literal_error" and loc in ("apiVersion", "kind"):
            msg = f"must be {API_VERSION if loc == 'apiVersion' else KIND}"
        if err["type"] == "enum":
            expected = err.get("ctx", {}).get("expected", "")
            msg = f"{err.get('input')!r} is not allowed: use one of {expected}"
        hint = _FIX_HINTS.get(err["type"])
        if hint:
            msg = f"{msg}: {hint}"
        out.append(FieldError(field, msg))
    return out


def parse_manifest(document: Any) -> Manifest | list[FieldError]:
    """Validate a whole DGDR manifest; every problem is reported, none raises."""
    if not isinstance(document, dict):
        return [
            FieldError(
                "(document)",
                "a DGDR manifest must be a mapping with apiVersion, kind, metadata and spec",
            )
        ]
    try:
        return Manifest.model_validate(document)
    except ValidationError as exc:
        return errors_from(exc)


def parse_spec(spec: Any) -> DGDRSpec | list[FieldError]:
    """Validate a bare spec; field paths are prefixed with `spec.`."""
    try:
        return DGDRSpec.model_validate(spec)
    except ValidationError as exc:
        return errors_from(exc, "spec.")


def dump_spec(spec: DGDRSpec) -> dict[str, Any]:
    """The spec as the user wrote it (camelCase, only the fields that were set)."""
    return spec.model_dump(mode="json", by_alias=True, exclude_unset=True)


def dump_manifest(manifest: Manifest) -> dict[str, Any]:
    return manifest.model_dump(mode="json", by_alias=True, exclude_unset=True)
