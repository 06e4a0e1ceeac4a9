"""DynamoGraphDeploymentRequest conversion between nvidia.com/v1alpha1 (deprecated) and
nvidia.com/v1beta1 (the storage version, the hub), as Dynamo's conversion webhook does it.

Owns the pure functions behind `POST /convert`: `convert(obj, desired_api_version)` and the two
directions `to_v1beta1` / `to_v1alpha1`. The field mapping (Dynamo's notes §1.5):

    v1alpha1                                         v1beta1
    spec.model / backend / autoApply                 spec.model / backend / autoApply
    spec.runtimeVersionOverride                      spec.runtimeVersionOverride
    spec.useMocker                                   spec.features.mocker.enabled
    spec.profilingConfig.profilerImage               spec.image (else deploymentOverrides.workersImage)
    spec.profilingConfig.config.sla.{ttft,itl,optimizationType}   spec.sla.*
    spec.profilingConfig.config.sla.{isl,osl}        spec.workload.{isl,osl}
    spec.profilingConfig.config.deployment.modelCache.{pvcName,modelPathInPvc,pvcMountPath}
                                                     spec.modelCache.{pvcName,pvcModelPath,pvcMountPath}
    spec.profilingConfig.config.planner              spec.features.planner
    spec.profilingConfig.{tolerations,nodeSelector}  spec.overrides.profilingJob.template.spec.*
    spec.profilingConfig.resources                   ...template.spec.containers[{name: profiler}]
    status.state                                     status.phase (Ready+deployment.created is
                                                     Deployed; Initializing is Pending;
                                                     DeploymentDeleted is Ready)
    status.deployment.name                           status.dgdName
    status.generatedDeployment                       status.profilingResults.selectedConfig

What one version cannot express survives the trip through the other in two annotations, as in
Dynamo: `nvidia.com/dgdr-spec` and `nvidia.com/dgdr-status` hold, as JSON, the spec and status of
the version the object came from whenever the mapping alone would lose something. Converting back
restores that saved spec (status) exactly when the fields the mapping carries have not changed in
between; when they have, the mapped fields win and the saved object only fills in the fields the
mapping does not carry. So v1beta1 -> v1alpha1 -> v1beta1 and v1alpha1 -> v1beta1 -> v1alpha1 are
both lossless. Dynamo's older per-field annotations (`nvidia.com/dgdr-config-map-ref`, ...) are
scrubbed, as Dynamo's current converter does.

Failure semantics: pure, never does I/O; an object that is not a DGDR of either version, a desired
version that is neither, or a `profilingConfig.config` that is not a JSON object raises
`dgdr.domain.errors.RequestRejected` (reason `invalid`; the webhook answers the ConversionReview
with `result.status: Failure` and its message).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from dgdr.domain.errors import RequestRejected

GROUP = "nvidia.com"
KIND = "DynamoGraphDeploymentRequest"
V1ALPHA1 = f"{GROUP}/v1alpha1"
V1BETA1 = f"{GROUP}/v1beta1"
ANN_SPEC = "nvidia.com/dgdr-spec"
ANN_STATUS = "nvidia.com/dgdr-status"
RETIRED_ANNOTATIONS = (
    "nvidia.com/dgdr-config-map-ref",
    "nvidia.com/dgdr-output-pvc",
    "nvidia.com/dgdr-enable-gpu-discovery",
    "nvidia.com/dgdr-deployment-overrides",
    "nvidia.com/dgdr-profiling-config",
    "nvidia.com/dgdr-status-backend",
    "nvidia.com/dgdr-profiling-results",
    "nvidia.com/dgdr-deployment-status",
    "nvidia.com/dgdr-profiling-job-name",
)
PROFILER_CONTAINER = "profiler"

Obj = dict[str, Any]


def _refuse(message: str) -> RequestRejected:
    """What the converter raises for an object it cannot convert."""
    return RequestRejected("invalid", message)


# --------------------------------------------------------------------------- small helpers


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def _has(obj: Any, *path: str) -> bool:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return False
        obj = obj[key]
    return True


def _put(obj: Obj, value: Any, *path: str) -> None:
    for key in path[:-1]:
        obj = obj.setdefault(key, {})
    obj[path[-1]] = copy.deepcopy(value)


def _carry(src: Any, src_path: tuple[str, ...], dst: Obj, dst_path: tuple[str, ...]) -> None:
    """Copy src[src_path] to dst[dst_path] when it is present (a null stays a null)."""
    if _has(src, *src_path):
        _put(dst, _get(src, *src_path), *dst_path)


def _fill_missing(
    into: Any, saved: Any, skip: frozenset[tuple[str, ...]], at: tuple[str, ...]
) -> Any:
    """`into` with what only `saved` has added, except under the mapped paths in `skip`."""
    if not isinstance(into, dict) or not isinstance(saved, dict):
        return into
    for key, value in saved.items():
        path = (*at, key)
        if path in skip:
            continue
        if key not in into:
            if not any(p[: len(path)] == path for p in skip):
                into[key] = copy.deepcopy(value)
            elif isinstance(value, dict):
                child = _fill_missing({}, value, skip, path)
                if child:
                    into[key] = child
        else:
            into[key] = _fill_missing(into[key], value, skip, path)
    return into


# --------------------------------------------------------------------------- spec mapping

# (v1alpha1 path, v1beta1 path) of the fields carried one to one.
_SPEC_PAIRS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("model",), ("model",)),
    (("backend",), ("backend",)),
    (("autoApply",), ("autoApply",)),
    (("runtimeVersionOverride",), ("runtimeVersionOverride",)),
    (("useMocker",), ("features", "mocker", "enabled")),
    (("profilingConfig", "profilerImage"), ("image",)),
    (
        ("profilingConfig", "tolerations"),
        ("overrides", "profilingJob", "template", "spec", "tolerations"),
    ),
    (
        ("profilingConfig", "nodeSelector"),
        ("overrides", "profilingJob", "template", "spec", "nodeSelector"),
    ),
)
# (path inside profilingConfig.config, v1beta1 path) of the blob fields carried.
_BLOB_PAIRS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("sla", "ttft"), ("sla", "ttft")),
    (("sla", "itl"), ("sla", "itl")),
    (("sla", "optimizationType"), ("sla", "optimizationType")),
    (("sla", "isl"), ("workload", "isl")),
    (("sla", "osl"), ("workload", "osl")),
    (("deployment", "modelCache", "pvcName"), ("modelCache", "pvcName")),
    (("deployment", "modelCache", "modelPathInPvc"), ("modelCache", "pvcModelPath")),
    (("deployment", "modelCache", "pvcMountPath"), ("modelCache", "pvcMountPath")),
    (("planner",), ("features", "planner")),
)
_CONTAINERS = ("overrides", "profilingJob", "template", "spec", "containers")
HUB_MAPPED = frozenset([b for _, b in _SPEC_PAIRS] + [b for _, b in _BLOB_PAIRS] + [_CONTAINERS])
SPOKE_MAPPED = frozenset(
    [a for a, _ in _SPEC_PAIRS]
    + [("profilingConfig", "config", *a) for a, _ in _BLOB_PAIRS]
    + [("profilingConfig", "resources")]
)


def _profiler_resources(hub_spec: Obj) -> Any:
    """The profiler container's resources, when the containers override is exactly that."""
    containers = _get(hub_spec, *_CONTAINERS)
    if (
        isinstance(containers, list)
        and len(containers) == 1
        and isinstance(containers[0], dict)
        and containers[0].get("name") == PROFILER_CONTAINER
        and set(containers[0]) == {"name", "resources"}
    ):
        return containers[0]["resources"]
    return None


def spoke_spec_of(hub_spec: Obj) -> Obj:
    """The v1alpha1 spec the mapping gives for a v1beta1 spec (nothing restored)."""
    out: Obj = {}
    for alpha, beta in _SPEC_PAIRS:
        _carry(hub_spec, beta, out, alpha)
    blob: Obj = {}
    for inside, beta in _BLOB_PAIRS:
        _carry(hub_spec, beta, blob, inside)
    if blob:
        _put(out, blob, "profilingConfig", "config")
    resources = _profiler_resources(hub_spec)
    if resources is not None:
        _put(out, resources, "profilingConfig", "resources")
    return out


def hub_spec_of(spoke_spec: Obj) -> Obj:
    """The v1beta1 spec the mapping gives for a v1alpha1 spec (nothing restored)."""
    out: Obj = {}
    for alpha, beta in _SPEC_PAIRS:
        _carry(spoke_spec, alpha, out, beta)
    blob = _get(spoke_spec, "profilingConfig", "config")
    if blob is not None and not isinstance(blob, dict):
        raise _refuse("spec.profilingConfig.config must be a JSON object")
    for inside, beta in _BLOB_PAIRS:
        _carry(blob, inside, out, beta)
    workers_image = _get(spoke_spec, "deploymentOverrides", "workersImage")
    if "image" not in out and isinstance(workers_image, str) and workers_image:
        out["image"] = workers_image  # Dynamo's fallback when there is no profilerImage
    if _has(spoke_spec, "profilingConfig", "resources"):
        resources = _get(spoke_spec, "profilingConfig", "resources")
        _put(out, [{"name": PROFILER_CONTAINER, "resources": resources}], *_CONTAINERS)
    return out


# --------------------------------------------------------------------------- status mapping

_STATE_TO_PHASE = {
    "Initializing": "Pending",
    "Pending": "Pending",
    "Profiling": "Profiling",
    "Deploying": "Deploying",
    "DeploymentDeleted": "Ready",
    "Failed": "Failed",
}
_PHASE_TO_STATE = {
    "Pending": "Pending",
    "Profiling": "Profiling",
    "Ready": "Ready",
    "Deploying": "Deploying",
    "Deployed": "Ready",
    "Failed": "Failed",
}
_STATUS_PAIRS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("observedGeneration",), ("observedGeneration",)),
    (("conditions",), ("conditions",)),
    (("deployment", "name"), ("dgdName",)),
    (("generatedDeployment",), ("profilingResults", "selectedConfig")),
)
HUB_STATUS_MAPPED = frozenset([b for _, b in _STATUS_PAIRS] + [("phase",)])
SPOKE_STATUS_MAPPED = frozenset(
    [a for a, _ in _STATUS_PAIRS] + [("state",), ("deployment", "created"), ("deployment", "state")]
)


def spoke_status_of(hub_status: Obj) -> Obj:
    out: Obj = {}
    for alpha, beta in _STATUS_PAIRS:
        _carry(hub_status, beta, out, alpha)
    phase = hub_status.get("phase")
    if isinstance(phase, str) and phase:
        out["state"] = _PHASE_TO_STATE.get(phase, "Pending")
    if "name" in out.get("deployment", {}):
        out["deployment"]["created"] = phase == "Deployed"
        out["deployment"]["state"] = "successful" if phase == "Deployed" else "pending"
    return out


def hub_status_of(spoke_status: Obj) -> Obj:
    out: Obj = {}
    for alpha, beta in _STATUS_PAIRS:
        _carry(spoke_status, alpha, out, beta)
    state = spoke_status.get("state")
    if isinstance(state, str) and state:
        if state == "Ready":
            created = _get(spoke_status, "deployment", "created") is True
            out["phase"] = "Deployed" if created else "Ready"
        else:
            out["phase"] = _STATE_TO_PHASE.get(state, "Pending")
    return out


# --------------------------------------------------------------------------- objects


def _restore(
    derived: Obj,
    saved: Obj | None,
    forward: Callable[[Obj], Obj],
    backward: Callable[[Obj], Obj],
    mapped: frozenset[tuple[str, ...]],
) -> Obj:
    """`derived` (mapped from the other version), or the `saved` original it came from.

    `forward` maps this version to the other, `backward` the other to this one."""
    if saved is None:
        return derived
    if backward(forward(saved)) == derived:
        return copy.deepcopy(saved)  # the mapped fields are unchanged: the original, exactly
    _fill_missing(derived, saved, mapped, ())
    return derived


def _saved(annotations: dict[str, Any], key: str) -> Obj | None:
    raw = annotations.get(key)
    if not isinstance(raw, str) or not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None  # a hand-edited annotation: converted as if it were not there
    return value if isinstance(value, dict) else None


def _split_metadata(obj: Obj) -> tuple[Obj, Obj | None, Obj | None]:
    """The metadata without the conversion annotations, and the spec and status they saved."""
    md = copy.deepcopy(obj.get("metadata") or {})
    annotations = md.get("annotations") or {}
    spec, status = _saved(annotations, ANN_SPEC), _saved(annotations, ANN_STATUS)
    if "annotations" in md:
        kept = {
            k: v
            for k, v in annotations.items()
            if k not in (ANN_SPEC, ANN_STATUS, *RETIRED_ANNOTATIONS)
        }
        if kept:
            md["annotations"] = kept
        else:
            del md["annotations"]
    return md, spec, status


def _save(md: Obj, key: str, value: Obj, derived_back: Obj) -> None:
    if value != derived_back:
        md.setdefault("annotations", {})[key] = json.dumps(value, sort_keys=True)


def _convert(
    obj: Obj,
    api_version: str,
    spec_fwd: Callable[[Obj], Obj],
    spec_back: Callable[[Obj], Obj],
    status_fwd: Callable[[Obj], Obj],
    status_back: Callable[[Obj], Obj],
    mapped: tuple[frozenset[tuple[str, ...]], frozenset[tuple[str, ...]]],
) -> Obj:
    """Convert `obj` with `*_fwd` (its version to `api_version`) and `*_back` (the reverse)."""
    md, saved_spec, saved_status = _split_metadata(obj)
    out: Obj = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("spec", "status")}
    out["apiVersion"], out["metadata"] = api_version, md
    spec = obj.get("spec")
    if isinstance(spec, dict):
        out["spec"] = _restore(spec_fwd(spec), saved_spec, spec_back, spec_fwd, mapped[0])
        _save(md, ANN_SPEC, spec, spec_back(out["spec"]))
    status = obj.get("status")
    if isinstance(status, dict):
        out["status"] = _restore(
            status_fwd(status), saved_status, status_back, status_fwd, mapped[1]
        )
        _save(md, ANN_STATUS, status, status_back(out["status"]))
    return out


def to_v1alpha1(obj: Obj) -> Obj:
    """A v1beta1 DGDR as v1alpha1."""
    return _convert(
        obj, V1ALPHA1, spoke_spec_of, hub_spec_of, spoke_status_of, hub_status_of,
        (SPOKE_MAPPED, SPOKE_STATUS_MAPPED),
    )  # fmt: skip


def to_v1beta1(obj: Obj) -> Obj:
    """A v1alpha1 DGDR as v1beta1."""
    return _convert(
        obj, V1BETA1, hub_spec_of, spoke_spec_of, hub_status_of, spoke_status_of,
        (HUB_MAPPED, HUB_STATUS_MAPPED),
    )  # fmt: skip


def convert(obj: Any, desired_api_version: str) -> Obj:
    """`obj` (a DGDR in either version) in `desired_api_version`."""
    if not isinstance(obj, dict) or obj.get("kind") != KIND:
        raise _refuse(f"expected a {KIND}, got {_describe(obj)}")
    have = obj.get("apiVersion")
    if desired_api_version not in (V1ALPHA1, V1BETA1):
        raise _refuse(f"cannot convert to {desired_api_version}: served are {V1ALPHA1}, {V1BETA1}")
    if have not in (V1ALPHA1, V1BETA1):
        raise _refuse(f"cannot convert from {have}: served are {V1ALPHA1}, {V1BETA1}")
    if have == desired_api_version:
        return copy.deepcopy(obj)
    return to_v1beta1(obj) if desired_api_version == V1BETA1 else to_v1alpha1(obj)


def _describe(obj: Any) -> str:
    if isinstance(obj, dict):
        return f"{obj.get('apiVersion')} {obj.get('kind')}"
    return type(obj).__name__
