"""Admission: what Dynamo's API server (the DGDR CRD's schema) and its validating webhook refuse.

Owns the one judgement both front doors make before anything is stored: the NATS command path
(the decider calls `review_apply`) answers a refused request `invalid` and records nothing, and the
Kubernetes admission webhook (`review`) answers `allowed: false` with the same message. Refused:
- anything the v1beta1 CRD's OpenAPI schema refuses, and our documented stricter bounds
  (`dgdr.domain.spec.check_manifest`; the spec module's docstring lists them);
- on create, a `metadata.name` too long for the names derived from it
  (`dgdr.domain.limits.name_problem`; the NATS door checks it with `name_errors` too);
- `searchStrategy: thorough` with `backend: auto` (Dynamo's webhook), on create, and on update when
  the stored spec did not already have it;
- on update, a spec change while the stored object's phase is Profiling, Ready, Deploying or
  Deployed (Dynamo's webhook at main): "spec updates are forbidden while the resource is in phase
  'Profiling'; delete and recreate the resource to change its spec". Skipped for an object being
  deleted. As in Dynamo, a DGDR stored with `autoApply: false` that is Ready may still turn autoApply
  on and set `runtimeVersionOverride` (nothing else); Dynamo also lets such a DGDR set
  `runtimeVersionOverride` while Profiling, which this refuses (a profiling run here cannot take a
  new spec; it is allowed again once Ready).
- an annotation `dgdr.nvidia.com/require-sla` that is not "true" or "false" (`dgdr.domain.sla`).
Other metadata-only changes and deletes are always admitted. Dynamo's webhook at main (2026-08) also
refuses what this does not (yet): `runtimeVersionOverride` missing when `image` has no
semantic-version tag, and `hardware` missing when the operator's GPU discovery is disabled (a
deployment setting). Everything else is admitted and stored; the
rules Dynamo checks later (`dgdr.domain.spec.semantic_errors`, hardware resolution) fail the stored
DGDR with `ValidationFailed` instead.

Failure semantics: pure; nothing here raises for user input or does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dgdr.domain.limits import name_problem
from dgdr.domain.sla import require_sla_error
from dgdr.domain.spec import (
    THOROUGH_WITH_AUTO,
    DGDRSpec,
    FieldError,
    check_manifest,
    check_spec,
    thorough_needs_backend,
)

Operation = Literal["CREATE", "UPDATE", "DELETE"]

# Phases in which Dynamo's validating webhook forbids a spec change (old object's phase).
SPEC_FROZEN_PHASES = ("Profiling", "Ready", "Deploying", "Deployed")
# What a Ready DGDR stored with autoApply false may still change (Dynamo: a deferred deployment).
DEFERRED_FIELDS = ("autoApply", "runtimeVersionOverride")


@dataclass(frozen=True)
class Review:
    """The verdict: `allowed`, and when refused the field errors, a one-line message and a reason
    (`Invalid`, or Dynamo's `SpecChangeRejected` for a spec change in a frozen phase)."""

    allowed: bool
    errors: tuple[FieldError, ...] = ()
    message: str = ""
    reason: str = ""

    @staticmethod
    def allow() -> Review:
        return Review(True)

    @staticmethod
    def refuse(
        errors: list[FieldError] | tuple[FieldError, ...],
        message: str = "",
        reason: str = "Invalid",
    ) -> Review:
        errs = tuple(errors)
        return Review(False, errs, message or "; ".join(str(e) for e in errs), reason)


def frozen_message(phase: str) -> str:
    """Dynamo's webhook message for a spec change in a frozen phase."""
    return (
        f"spec updates are forbidden while the resource is in phase {phase!r}; "
        "delete and recreate the resource to change its spec"
    )


def review_apply(
    spec: Mapping[str, Any],
    parsed: DGDRSpec | list[FieldError] | None = None,
    *,
    old_spec: Mapping[str, Any] | None = None,
    old_phase: str | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Review:
    """Judge a spec applied to a DGDR: a create when `old_spec` is None, else an update of the
    stored `old_spec` in `old_phase` (a frozen phase is judged first, as the webhook's message). `parsed` is the spec already parsed at both levels
    (`parse_spec`), when the caller has it; only a list of errors is looked at again."""
    typed = parsed if isinstance(parsed, DGDRSpec) else check_spec(dict(spec))
    if isinstance(typed, list):
        return Review.refuse(typed)
    bad_annotation = require_sla_error(annotations or {})
    if bad_annotation is not None:
        return Review.refuse([bad_annotation])
    if (
        old_phase in SPEC_FROZEN_PHASES
        and old_spec is not None
        and dict(old_spec) != dict(spec)
        and not _deferred_update(old_spec, spec, old_phase)
    ):
        return Review.refuse(
            [FieldError("spec", frozen_message(old_phase).removeprefix("spec "))],
            frozen_message(old_phase),
            "SpecChangeRejected",
        )
    if thorough_needs_backend(typed) and not (old_spec is not None and _thorough_auto(old_spec)):
        return Review.refuse([THOROUGH_WITH_AUTO])
    return Review.allow()


def _deferred_update(old_spec: Mapping[str, Any], spec: Mapping[str, Any], old_phase: str) -> bool:
    """Dynamo's exception to the freeze: a Ready DGDR stored with `autoApply: false` may turn
    autoApply on and set `runtimeVersionOverride`, every other field unchanged."""
    if old_phase != "Ready" or old_spec.get("autoApply") is not False:
        return False

    def rest(s: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in s.items() if k not in DEFERRED_FIELDS}

    return rest(old_spec) == rest(spec)


def _thorough_auto(spec: Mapping[str, Any]) -> bool:
    """The stored spec already asked for thorough with backend auto (so an update may keep it)."""
    return spec.get("searchStrategy") == "thorough" and (spec.get("backend") or "auto") == "auto"


def name_errors(name: str) -> list[FieldError]:
    """`metadata.name` too long for the names derived from it, as a field error (or none)."""
    problem = name_problem(name)
    return [] if problem is None else [FieldError("metadata.name", problem)]


def review(
    operation: Operation,
    new: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None = None,
    old_phase: str | None = None,
) -> Review:
    """Judge a v1beta1 DGDR object (`apiVersion`, `kind`, `metadata`, `spec`) as Dynamo admits it.

    `old`/`old_phase` are the stored object and its phase on UPDATE (None when there is none)."""
    if operation == "DELETE" or new is None:
        return Review.allow()
    parsed = check_manifest(dict(new))
    if isinstance(parsed, list):
        return Review.refuse(parsed)
    meta = new.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    if operation == "CREATE":
        too_long = name_errors(parsed.metadata.name)
        if too_long:
            return Review.refuse(too_long)
        return review_apply(new.get("spec") or {}, parsed.spec, annotations=annotations)
    if old is None or meta.get("deletionTimestamp"):
        return Review.allow()
    return review_apply(
        new.get("spec") or {},
        parsed.spec,
        old_spec=old.get("spec") or {},
        old_phase=old_phase,
        annotations=annotations,
    )
