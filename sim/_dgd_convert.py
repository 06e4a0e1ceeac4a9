"""Structural conversion of a DynamoGraphDeployment dict between `nvidia.com/v1alpha1` and
`nvidia.com/v1beta1`.

Owns: the field mapping Dynamo's operator applies in its conversion webhook
(`deploy/operator/api/v1alpha1/*_conversion.go`), restated for plain dicts: the v1alpha1
`spec.services` map <-> the v1beta1 `spec.components` list (the map key is the component
`name`); `componentType` + `subComponentType` prefill/decode <-> `type`; `spec.envs` <->
`spec.env`; a service's `resources` (`gpu` <-> `nvidia.com/gpu`), `envs`, `envFromSecret`,
probes, flat `volumeMounts` (`mountPoint` <-> `mountPath`) and `extraPodSpec.mainContainer`
<-> the `main` container of `podTemplate.spec`; the rest of `extraPodSpec` <-> `podTemplate.spec`;
`extraPodMetadata` <-> `podTemplate.metadata`; `sharedMemory` <-> `sharedMemorySize`;
`scalingAdapter.enabled` <-> `scalingAdapter` present; `gpuMemoryService`/`failover`/`checkpoint`
<-> `experimental.*`; a compilation-cache mount <-> `compilationCache`. It converts partial
objects (an override) as they are: a field absent from the source stays absent.

Failure semantics: pure and total. `convert_dgd` never raises and never mutates its input; a field
the target version has no place for is left out and named (its dotted source path) in the returned
notes. Dynamo's webhook keeps such fields in a private annotation for the round trip; we report
them instead, so nothing is dropped silently.
"""

from __future__ import annotations

import copy
from typing import Any

V1ALPHA1 = "nvidia.com/v1alpha1"
V1BETA1 = "nvidia.com/v1beta1"
MAIN = "main"
GPU_RESOURCE = "nvidia.com/gpu"

# Fields with the same name and meaning in a v1alpha1 service and a v1beta1 component.
_SAME_COMPONENT_FIELDS = (
    "replicas",
    "minAvailable",
    "runtimeVersionOverride",
    "globalDynamoNamespace",
    "multinode",
    "modelRef",
    "topologyConstraint",
    "eppConfig",
    "providerOverride",
)
_SAME_SPEC_FIELDS = (
    "annotations",
    "labels",
    "priorityClassName",
    "backendFramework",
    "providerOverride",
    "restart",
    "topologyConstraint",
    "experimental",
)
_EXPERIMENTAL = ("gpuMemoryService", "failover", "checkpoint")
_PROBES = ("livenessProbe", "readinessProbe")
_ROLE_TYPES = ("prefill", "decode")


def convert_dgd(dgd: dict[str, Any], api_version: str) -> tuple[dict[str, Any], list[str]]:
    """`dgd` (either version; no `apiVersion` reads as v1alpha1, as Dynamo's profiler reads an
    override without one) in `api_version`, and a note per field that has no place there."""
    if api_version not in (V1ALPHA1, V1BETA1):
        raise ValueError(f"unknown DGD apiVersion {api_version!r}: use {V1BETA1} or {V1ALPHA1}")
    source = dgd.get("apiVersion") or V1ALPHA1
    out = copy.deepcopy(dgd)
    if source == api_version or source not in (V1ALPHA1, V1BETA1):
        return out, [] if source == api_version else [f"apiVersion {source!r} not converted"]
    if "apiVersion" in dgd:
        out["apiVersion"] = api_version
    spec = out.get("spec")
    if not isinstance(spec, dict):
        return out, []
    notes: list[str] = []
    if api_version == V1BETA1:
        out["spec"] = _spec_to_beta(spec, notes)
    else:
        out["spec"] = _spec_to_alpha(spec, notes)
    return out, notes


def _spec_to_beta(spec: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    out = {k: spec[k] for k in _SAME_SPEC_FIELDS if k in spec}
    if "envs" in spec:
        out["env"] = spec["envs"]
    for key in spec:
        if key not in (*_SAME_SPEC_FIELDS, "envs", "services"):
            notes.append(f"spec.{key} has no place in {V1BETA1}")
    services = spec.get("services")
    if isinstance(services, dict):
        out["components"] = [
            service_to_component(name, body, notes, f"spec.services.{name}")
            for name, body in services.items()
            if isinstance(body, dict)
        ]
    elif "services" in spec:
        notes.append("spec.services is not a map of services")
    return out


def _spec_to_alpha(spec: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    out = {k: spec[k] for k in _SAME_SPEC_FIELDS if k in spec}
    if "env" in spec:
        out["envs"] = spec["env"]
    for key in spec:
        if key not in (*_SAME_SPEC_FIELDS, "env", "components"):
            notes.append(f"spec.{key} has no place in {V1ALPHA1}")
    components = spec.get("components")
    if isinstance(components, list):
        services: dict[str, Any] = {}
        for i, body in enumerate(components):
            name = body.get("name") if isinstance(body, dict) else None
            if not isinstance(name, str) or not name:
                notes.append(f"spec.components[{i}] has no name: left out")
                continue
            services[name] = component_to_service(body, notes, f"spec.components[name={name}]")
        out["services"] = services
    elif "components" in spec:
        notes.append("spec.components is not a list of components")
    return out


def service_to_component(
    name: str, service: dict[str, Any], notes: list[str], path: str
) -> dict[str, Any]:
    """One v1alpha1 service as the v1beta1 component `name`."""
    out: dict[str, Any] = {"name": name}
    kind, role = service.get("componentType"), service.get("subComponentType")
    if kind is not None:
        out["type"] = role if kind == "worker" and role in _ROLE_TYPES else kind
    if role is not None and not (kind == "worker" and role in _ROLE_TYPES):
        notes.append(f"{path}.subComponentType {role!r} has no place in {V1BETA1}")
    if service.get("serviceName") not in (None, name):
        notes.append(f"{path}.serviceName has no place in {V1BETA1} (the map key names it)")
    out.update({k: service[k] for k in _SAME_COMPONENT_FIELDS if k in service})
    shm = service.get("sharedMemory")
    if isinstance(shm, dict):
        if shm.get("disabled"):
            out["sharedMemorySize"] = "0"
        elif "size" in shm:
            out["sharedMemorySize"] = shm["size"]
    adapter = service.get("scalingAdapter")
    if isinstance(adapter, dict) and adapter.get("enabled"):
        out["scalingAdapter"] = {}
    experimental = {k: service[k] for k in _EXPERIMENTAL if k in service}
    if experimental:
        out["experimental"] = experimental
    mounts = service.get("volumeMounts")
    flat = [m for m in mounts if isinstance(m, dict)] if isinstance(mounts, list) else []
    for mount in flat:
        if mount.get("useAsCompilationCache"):
            out["compilationCache"] = {
                "pvcName": mount.get("name"),
                "mountPath": mount.get("mountPoint"),
            }
            break
    pod = _pod_template_to_beta(service, flat)
    if pod is not None:
        out["podTemplate"] = pod
    known = {
        *_SAME_COMPONENT_FIELDS,
        *_EXPERIMENTAL,
        *_PROBES,
        "componentType",
        "subComponentType",
        "serviceName",
        "sharedMemory",
        "scalingAdapter",
        "volumeMounts",
        "resources",
        "envs",
        "envFromSecret",
        "extraPodSpec",
        "extraPodMetadata",
    }
    notes.extend(f"{path}.{k} has no place in {V1BETA1}" for k in service if k not in known)
    return out


def _pod_template_to_beta(
    service: dict[str, Any], flat_mounts: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The podTemplate composed from the service's dedicated fields and `extraPodSpec`
    (`mainContainer` wins over the dedicated fields, except env and volumeMounts, which add)."""
    main: dict[str, Any] = {"name": MAIN}
    if isinstance(service.get("resources"), dict):
        main["resources"] = _resources_to_native(service["resources"])
    if service.get("envs"):
        main["env"] = copy.deepcopy(service["envs"])
    if service.get("envFromSecret"):
        main["envFrom"] = [{"secretRef": {"name": service["envFromSecret"]}}]
    for probe in _PROBES:
        if probe in service:
            main[probe] = service[probe]
    dedicated_mounts = [
        {"name": m.get("name"), "mountPath": m.get("mountPoint")} for m in flat_mounts
    ]
    extra = service.get("extraPodSpec")
    extra = extra if isinstance(extra, dict) else {}
    pod_spec = {k: v for k, v in extra.items() if k != "mainContainer"}
    given = extra.get("mainContainer")
    if isinstance(given, dict):
        given = {k: v for k, v in given.items() if k != "name"}
        env = [*main.get("env", []), *given.get("env", [])]
        main.update(given)
        if env:
            main["env"] = env
        mounts = [*given.get("volumeMounts", []), *dedicated_mounts]
    else:
        mounts = dedicated_mounts
    if mounts:
        main["volumeMounts"] = mounts
    metadata = service.get("extraPodMetadata")
    if len(main) == 1 and not pod_spec and not metadata:
        return None
    others = [
        c for c in pod_spec.get("containers", []) if isinstance(c, dict) and c.get("name") != MAIN
    ]
    pod_spec["containers"] = [main, *others]
    out: dict[str, Any] = {}
    if isinstance(metadata, dict) and metadata:
        out["metadata"] = metadata
    out["spec"] = pod_spec
    return out


def component_to_service(component: dict[str, Any], notes: list[str], path: str) -> dict[str, Any]:
    """One v1beta1 component as a v1alpha1 service (its name becomes the map key)."""
    out: dict[str, Any] = {}
    kind = component.get("type")
    if kind in _ROLE_TYPES:
        out["componentType"], out["subComponentType"] = "worker", kind
    elif kind is not None:
        out["componentType"] = kind
    out.update({k: component[k] for k in _SAME_COMPONENT_FIELDS if k in component})
    if "sharedMemorySize" in component:
        size = component["sharedMemorySize"]
        out["sharedMemory"] = {"disabled": True} if str(size) == "0" else {"size": size}
    if isinstance(component.get("scalingAdapter"), dict):
        out["scalingAdapter"] = {"enabled": True}
    experimental = component.get("experimental")
    if isinstance(experimental, dict):
        for key, value in experimental.items():
            if key in _EXPERIMENTAL:
                out[key] = value
            else:
                notes.append(f"{path}.experimental.{key} has no place in {V1ALPHA1}")
    pod = component.get("podTemplate")
    if isinstance(pod, dict):
        _pod_template_to_alpha(pod, out)
    cache = component.get("compilationCache")
    if isinstance(cache, dict):  # the flat mount it came from, flagged (added when absent)
        flat = {"name": cache.get("pvcName"), "mountPoint": cache.get("mountPath")}
        mounts = out.setdefault("volumeMounts", [])
        if flat in mounts:
            mounts[mounts.index(flat)] = {**flat, "useAsCompilationCache": True}
        else:
            mounts.insert(0, {**flat, "useAsCompilationCache": True})
    known = {*_SAME_COMPONENT_FIELDS, "name", "type", "sharedMemorySize", "scalingAdapter"}
    known |= {"experimental", "compilationCache", "podTemplate"}
    notes.extend(f"{path}.{k} has no place in {V1ALPHA1}" for k in component if k not in known)
    return out


def _pod_template_to_alpha(pod: dict[str, Any], out: dict[str, Any]) -> None:
    """Split the podTemplate into the dedicated fields (resources, env, probes, plain volume
    mounts) and `extraPodSpec` (the rest of `main` as `mainContainer`, the other containers and
    pod fields) and `extraPodMetadata`."""
    metadata = pod.get("metadata")
    if isinstance(metadata, dict) and (metadata.get("labels") or metadata.get("annotations")):
        out["extraPodMetadata"] = {
            k: metadata[k] for k in ("annotations", "labels") if metadata.get(k)
        }
    given = pod.get("spec")
    spec: dict[str, Any] = copy.deepcopy(given) if isinstance(given, dict) else {}
    containers = spec.pop("containers", [])
    main: dict[str, Any] | None = None
    others = []
    for container in containers if isinstance(containers, list) else []:
        if main is None and isinstance(container, dict) and container.get("name") == MAIN:
            main = {k: v for k, v in container.items() if k != "name"}
        else:
            others.append(container)
    if others:
        spec["containers"] = others
    if main is not None:
        if isinstance(main.get("resources"), dict):
            out["resources"] = _resources_from_native(main.pop("resources"))
        if main.get("env"):
            out["envs"] = main.pop("env")
        for probe in _PROBES:
            if probe in main:
                out[probe] = main.pop(probe)
        mounts = main.pop("volumeMounts", None)
        if isinstance(mounts, list) and mounts:
            plain = [m for m in mounts if isinstance(m, dict) and set(m) <= {"name", "mountPath"}]
            rich = [m for m in mounts if m not in plain]
            flat = [{"name": m.get("name"), "mountPoint": m.get("mountPath")} for m in plain]
            if flat:
                out["volumeMounts"] = [*out.get("volumeMounts", []), *flat]
            if rich:
                main["volumeMounts"] = rich
    extra: dict[str, Any] = dict(spec)
    if main:
        extra["mainContainer"] = main
    if extra:
        out["extraPodSpec"] = extra


def _resources_to_native(resources: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side in ("requests", "limits"):
        item = resources.get(side)
        if not isinstance(item, dict):
            continue
        native: dict[str, Any] = {}
        for key in ("cpu", "memory"):
            if item.get(key):
                native[key] = item[key]
        if item.get("gpu"):
            native[item.get("gpuType") or GPU_RESOURCE] = item["gpu"]
        if isinstance(item.get("custom"), dict):
            native.update(item["custom"])
        if native:
            out[side] = native
    if "claims" in resources:
        out["claims"] = resources["claims"]
    return out


def _resources_from_native(resources: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side in ("requests", "limits"):
        native = resources.get(side)
        if not isinstance(native, dict) or not native:
            continue
        item: dict[str, Any] = {}
        for key, value in native.items():
            if key in ("cpu", "memory"):
                item[key] = str(value)
            elif key == GPU_RESOURCE:
                item["gpu"] = str(value)
            else:
                item.setdefault("custom", {})[key] = str(value)
        out[side] = item
    if "claims" in resources:
        out["claims"] = resources["claims"]
    return out
