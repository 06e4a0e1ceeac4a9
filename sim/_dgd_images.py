"""Runtime images of a generated DGD.

Owns: which image each component runs: the backend's runtime image (`vllm-runtime`,
`sglang-runtime`, `tensorrtllm-runtime`; the planner's and the mocker's `dynamo-planner`) in
`spec.image`'s registry with its tag or digest, the tag set by `spec.runtimeVersionOverride`
when given, and without `spec.image` Dynamo's registry at that version or at
`DEFAULT_RUNTIME_VERSION` (never `:latest`); and a component whose own `runtimeVersionOverride`
(from the overrides) differs runs that version's image unless the overrides chose its image.

Failure semantics: pure; an unknown backend is a programming error (KeyError).
"""

from __future__ import annotations

from typing import Any

from dgdr.domain.spec import DYNAMO_VERSION

from ._dgd_model import main_container

# The Dynamo release whose runtime images a DGD without spec.image or runtimeVersionOverride runs.
DEFAULT_RUNTIME_VERSION = DYNAMO_VERSION
RUNTIME_IMAGE = {
    "vllm": "vllm-runtime",
    "sglang": "sglang-runtime",
    "trtllm": "tensorrtllm-runtime",
    "planner": "dynamo-planner",
}
DEFAULT_REGISTRY = "nvcr.io/nvidia/ai-dynamo"


def runtime_image(image: str | None, backend: str, version: str | None = None) -> str:
    """`backend`'s runtime image ("planner": the planner's): `image` with its last path
    component's name replaced (registry and tag/digest kept), the tag set to `version` when given;
    without `image`, Dynamo's registry at `version` or `DEFAULT_RUNTIME_VERSION`."""
    runtime = RUNTIME_IMAGE[backend]
    if not image:
        return f"{DEFAULT_REGISTRY}/{runtime}:{version or DEFAULT_RUNTIME_VERSION}"
    ref, at, digest = image.partition("@")
    head, slash, last = ref.rpartition("/")
    _, colon, tag = last.partition(":")
    if version:
        return f"{head}{slash}{runtime}:{version}"
    return f"{head}{slash}{runtime}{colon}{tag}{at}{digest}"


def retag_own_versions(
    components: list[Any], spec_version: str | None, generated: dict[str, str]
) -> None:
    """A component the overrides gave its own runtimeVersionOverride runs that version's image,
    unless the overrides also chose its image."""
    for component in components:
        version = component.get("runtimeVersionOverride")
        container = main_container(component)
        name = component.get("name")
        if not (isinstance(version, str) and version and container and name in generated):
            continue
        if version != spec_version and container.get("image") == generated[name]:
            image = str(container["image"])
            ref = image.partition("@")[0]
            head, slash, last = ref.rpartition("/")
            container["image"] = f"{head}{slash}{last.partition(':')[0]}:{version}"
