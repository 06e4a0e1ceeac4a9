"""A compact typed `batch/v1` JobSpec: what Dynamo's DGDR CRD schema checks in `overrides.profilingJob`.

Owns the schema-level judgement of `spec.overrides.profilingJob` (admission): the fields that matter
for a profiling Job (the ones the profiling Job merge uses and their neighbours) are typed exactly as
the CRD's embedded JobSpec schema types them, with its `required` lists (`template`,
`template.spec.containers`, a container's `name`, an env var's `name`, a volume mount's `name` and
`mountPath`, ...). Every other field is allowed untyped, as the API server would keep or prune it;
it is never refused here. `tests/dgdr/domain/test_jobspec.py` checks each typed field against the
CRD's profilingJob schema (type, integer format, required).

Failure semantics: pure; validation raises pydantic's `ValidationError`, which `dgdr.domain.spec`
turns into `FieldError`s under `spec.overrides.profilingJob.`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    StrictStr,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


def whole_number(low: int, high: int, what: str) -> Any:
    """A validator for a JSON integer in [low, high]: a bool, a string or 2.5 is refused (no
    coercion); a float with no fraction (8.0) is the integer it spells, as the API server reads it."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{value!r} is not an integer: use a whole number, without quotes")
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{value!r} is not an integer: use a whole number")
        number = int(value)
        if number > high:
            raise ValueError(f"{number} is too large: use at most {high} ({what})")
        if number < low:
            raise ValueError(f"{number} is too small: use at least {low} ({what})")
        return number

    return check


Int32 = Annotated[
    int,
    PlainValidator(whole_number(*INT32, "int32")),
    PlainSerializer(lambda v: v),
    WithJsonSchema({"type": "integer", "format": "int32"}),
]
Int64 = Annotated[
    int,
    PlainValidator(whole_number(*INT64, "int64")),
    PlainSerializer(lambda v: v),
    WithJsonSchema({"type": "integer", "format": "int64"}),
]

_QUANTITY = re.compile(
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _quantity(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _QUANTITY.match(value):
        return value
    raise ValueError(
        f'{value!r} is not a quantity: use an integer or a string such as "500m" or "16Gi"'
    )


Quantity = Annotated[
    Any,
    PlainValidator(_quantity),
    PlainSerializer(lambda v: v),
    WithJsonSchema({"x-kubernetes-int-or-string": True}),
]


class _K8sObject(BaseModel):
    """camelCase fields only; unknown fields allowed (the API server keeps or prunes them); a null
    field is absent (the API server drops nulls of fields that are not nullable)."""

    model_config = ConfigDict(
        extra="allow",
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        frozen=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


class EnvVar(_K8sObject):
    name: StrictStr
    value: StrictStr | None = None
    value_from: dict[str, Any] | None = None


class VolumeMount(_K8sObject):
    name: StrictStr
    mount_path: StrictStr
    read_only: StrictBool | None = None
    sub_path: StrictStr | None = None


class ContainerPort(_K8sObject):
    container_port: Int32
    name: StrictStr | None = None
    protocol: StrictStr | None = None


class ResourceClaim(_K8sObject):
    name: StrictStr


class ResourceRequirements(_K8sObject):
    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None
    claims: list[ResourceClaim] | None = None


class Container(_K8sObject):
    name: StrictStr
    image: StrictStr | None = None
    image_pull_policy: StrictStr | None = None
    command: list[StrictStr] | None = None
    args: list[StrictStr] | None = None
    working_dir: StrictStr | None = None
    env: list[EnvVar] | None = None
    env_from: list[dict[str, Any]] | None = None
    resources: ResourceRequirements | None = None
    volume_mounts: list[VolumeMount] | None = None
    ports: list[ContainerPort] | None = None
    security_context: dict[str, Any] | None = None


class Toleration(_K8sObject):
    key: StrictStr | None = None
    operator: StrictStr | None = None
    value: StrictStr | None = None
    effect: StrictStr | None = None
    toleration_seconds: Int64 | None = None


class LocalObjectReference(_K8sObject):
    name: StrictStr | None = None


class PersistentVolumeClaimSource(_K8sObject):
    claim_name: StrictStr
    read_only: StrictBool | None = None


class Volume(_K8sObject):
    name: StrictStr
    config_map: dict[str, Any] | None = None
    secret: dict[str, Any] | None = None
    empty_dir: dict[str, Any] | None = None
    persistent_volume_claim: PersistentVolumeClaimSource | None = None


class TopologySpreadConstraint(_K8sObject):
    max_skew: Int32
    topology_key: StrictStr
    when_unsatisfiable: StrictStr
    label_selector: dict[str, Any] | None = None


class PodSpec(_K8sObject):
    containers: list[Container]
    init_containers: list[Container] | None = None
    tolerations: list[Toleration] | None = None
    node_selector: dict[str, StrictStr] | None = None
    affinity: dict[str, Any] | None = None
    priority_class_name: StrictStr | None = None
    priority: Int32 | None = None
    runtime_class_name: StrictStr | None = None
    scheduler_name: StrictStr | None = None
    dns_policy: StrictStr | None = None
    restart_policy: StrictStr | None = None
    service_account_name: StrictStr | None = None
    automount_service_account_token: StrictBool | None = None
    security_context: dict[str, Any] | None = None
    image_pull_secrets: list[LocalObjectReference] | None = None
    volumes: list[Volume] | None = None
    active_deadline_seconds: Int64 | None = None
    termination_grace_period_seconds: Int64 | None = None
    host_network: StrictBool | None = None
    host_ipc: StrictBool | None = Field(default=None, alias="hostIPC")
    host_pid: StrictBool | None = Field(default=None, alias="hostPID")
    enable_service_links: StrictBool | None = None
    share_process_namespace: StrictBool | None = None
    topology_spread_constraints: list[TopologySpreadConstraint] | None = None


class TemplateMetadata(_K8sObject):
    name: StrictStr | None = None
    namespace: StrictStr | None = None
    labels: dict[str, StrictStr] | None = None
    annotations: dict[str, StrictStr] | None = None
    finalizers: list[StrictStr] | None = None


class PodTemplateSpec(_K8sObject):
    metadata: TemplateMetadata | None = None
    spec: PodSpec | None = None


class _Rules(_K8sObject):
    rules: list[dict[str, Any]]


class JobSpec(_K8sObject):
    template: PodTemplateSpec
    active_deadline_seconds: Int64 | None = None
    backoff_limit: Int32 | None = None
    backoff_limit_per_index: Int32 | None = None
    completions: Int32 | None = None
    parallelism: Int32 | None = None
    max_failed_indexes: Int32 | None = None
    ttl_seconds_after_finished: Int32 | None = None
    completion_mode: StrictStr | None = None
    managed_by: StrictStr | None = None
    pod_replacement_policy: StrictStr | None = None
    manual_selector: StrictBool | None = None
    suspend: StrictBool | None = None
    selector: dict[str, Any] | None = None
    pod_failure_policy: _Rules | None = None
    success_policy: _Rules | None = None
