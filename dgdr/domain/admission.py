"""Admission: what Dynamo's API server (the DGDR CRD's schema) and its validating webhook refuse.

Owns the one judgement both front doors make before anything is stored: the NATS command path
answers a refused request `invalid` and records nothing, and the Kubernetes admission webhook
answers `allowed: false` with the same message. Dynamo refuses at admission:
- anything the v1beta1 CRD's OpenAPI schema refuses (types, enums, `model` empty, the
  `runtimeVersionOverride` pattern, `overrides.dgd` without apiVersion/kind) -- `spec.parse_manifest`;
- `searchStrategy: thorough` with `backend: auto` (the webhook, on create);
- a spec change while the stored object's phase is Profiling, Deploying or Deployed (the webhook, on
  update): "spec updates are forbidden while the resource is in phase ...".
Metadata-only changes and deletes are always admitted.

Failure semantics: pure; `review` never raises for user input and never does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dgdr.domain.spec import FieldError, parse_manifest

Operation = Literal["CREATE", "UPDATE", "DELETE"]

# Phases in which Dynamo's validating webhook forbids a spec change (old object's phase).
SPEC_FROZEN_PHASES = ("Profiling", "Deploying", "Deployed")


@dataclass(frozen=True)
class Review:
    """The verdict: `allowed`, and when refused the field errors and a one-line message."""

    allowed: bool
    errors: tuple[FieldError, ...] = ()
    message: str = ""

    @staticmethod
    def allow() -> Review:
        return Review(True)

    @staticmethod
    def refuse(errors: list[FieldError] | tuple[FieldError, ...], message: str = "") -> Review:
        errs = tuple(errors)
        return Review(False, errs, message or "; ".join(str(e) for e in errs))


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
    parsed = parse_manifest(dict(new))
    if isinstance(parsed, list):
        return Review.refuse(parsed)
    if (
        operation == "UPDATE"
        and old is not None
        and (
            old_phase in SPEC_FROZEN_PHASES
            and old.get("spec") != new.get("spec")
            and not (new.get("metadata") or {}).get("deletionTimestamp")
        )
    ):
        return Review.refuse(
            [FieldError("spec", f"cannot change the spec in phase {old_phase}")],
            f"spec updates are forbidden while the resource is in phase {old_phase!r}; "
            "delete and recreate the resource to change its spec",
        )
    return Review.allow()
