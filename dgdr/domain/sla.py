"""Whether a DGDR requires its SLA, and the words of a pick that misses it.

Owns the annotation `dgdr.nvidia.com/require-sla` ("true" or "false"; Dynamo's CRD has no spec field
for it, and an annotation travels through `kubectl apply` unchanged), the reason `SLANotMet` of a
DGDR failed because its SLA is required and the closest achievable config misses it, and that
failure's message. Dynamo's profiler never fails on an SLA (it warns and raises the target to what
is achievable); without the annotation, neither does dgdr: the pick deploys and the status says
the SLA is missed (condition `SLAMet` False, and the phase message). A service started with
`dgdr up --require-sla` records the annotation "true" on every DGDR that does not set it (so the
stored object says why it failed, and replaying its events decides the same).

Pure functions; an annotation value other than "true"/"false" is a `FieldError` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # at run time imported where used: the CLI reads the names here without pydantic
    from dgdr.domain.spec import FieldError

REQUIRE_SLA_ANNOTATION = "dgdr.nvidia.com/require-sla"
SLA_NOT_MET = "SLANotMet"
_VALUES = {"true": True, "false": False}


def require_sla_error(annotations: Mapping[str, str]) -> FieldError | None:
    """The annotation's value is not "true" or "false" (None when absent or valid)."""
    from dgdr.domain.spec import FieldError

    value = annotations.get(REQUIRE_SLA_ANNOTATION)
    if value is None or value in _VALUES:
        return None
    return FieldError(
        f"metadata.annotations[{REQUIRE_SLA_ANNOTATION}]",
        f'{value!r} is not "true" or "false": set "true" to fail the DGDR when no config '
        'meets its SLA, "false" (or leave it out) to deploy the closest config',
    )


def sla_required(annotations: Mapping[str, str]) -> bool:
    """Whether the annotations ask for the SLA to be met (a value that is not "true" does not)."""
    return _VALUES.get(annotations.get(REQUIRE_SLA_ANNOTATION, ""), False)


def with_service_default(annotations: Mapping[str, str], required: bool) -> dict[str, str]:
    """The annotations a DGDR is recorded with when the service requires SLAs by default
    (`dgdr up --require-sla`): the annotation set to "true" unless the DGDR sets it itself."""
    if not required or REQUIRE_SLA_ANNOTATION in annotations:
        return dict(annotations)
    return {**annotations, REQUIRE_SLA_ANNOTATION: "true"}


def sla_not_met_message(summary: str, pick: str) -> str:
    """Why a DGDR that requires its SLA failed: the SLA verdict, then the closest config picked."""
    return (
        f'{summary}; the SLA is required ({REQUIRE_SLA_ANNOTATION}: "true"), so nothing was '
        f"deployed. Closest config: {pick}. Relax spec.sla, give more GPUs "
        f"(spec.hardware.totalGpus), or remove the annotation to deploy the closest config"
    )
