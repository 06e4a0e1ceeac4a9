"""Merging `spec.overrides.dgd` (either DGD version) into a generated v1beta1 DGD, the way Dynamo's
profiler does it (`dgd-apply-overrides`, `deploy/operator/internal/dgdoverride`).

Owns: the merge rules. An override without `apiVersion` is read as v1alpha1 (Dynamo's legacy
contract); a v1alpha1 override is first converted to v1beta1 (`sim._dgd_convert.convert_dgd`), and
the args it gives a worker service (any but Frontend and Planner) are appended to the generated
ones, as v1alpha1 overrides always did. `apiVersion`/`kind` are dropped; of `metadata` only
labels and annotations merge (`name` names the DGD, see `sim._dgd.dgd_name`). The spec merges
structurally: objects key by key, lists of the CRD's list-map kind by their key (components,
containers, env and volumes by `name`, volumeMounts by `mountPath`), any other list or leaf
replaced; a container's `$patch: {args: append}` appends its args to the generated ones (Dynamo's
v1beta1 directive). Components the generated DGD lacks are skipped.

Failure semantics: never raises; everything skipped or without a place in v1beta1 is returned as a
note naming its path (they surface as a Warning), never dropped silently.
"""

from __future__ import annotations

import copy
from typing import Any

from ._dgd_convert import MAIN, V1ALPHA1, V1BETA1, convert_dgd

# List fields whose items merge by a key (x-kubernetes-list-map-keys in Dynamo's and Kubernetes'
# schemas); every other list is atomic and replaced.
LIST_MAP_KEYS = {
    "components": "name",
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
}
_NO_ARG_APPEND = ("Frontend", "Planner")


def apply_override(dgd: dict[str, Any], override: dict[str, Any]) -> list[str]:
    """Merge `override` into the v1beta1 `dgd` in place; notes on what was not merged."""
    notes: list[str] = []
    source = override.get("apiVersion") or V1ALPHA1
    if source not in (V1ALPHA1, V1BETA1):
        return [f"overrides.dgd apiVersion {source!r} is not a DGD version: not applied"]
    ov, converted = convert_dgd(override, V1BETA1)
    notes += [f"overrides.dgd {n} (not applied)" for n in converted]
    if source == V1ALPHA1:
        _mark_alpha_worker_args(override, ov)
    ov.pop("apiVersion", None)
    ov.pop("kind", None)
    meta = ov.pop("metadata", None)
    if isinstance(meta, dict):
        for key in ("labels", "annotations"):
            if isinstance(meta.get(key), dict):
                dgd["metadata"].setdefault(key, {}).update(meta[key])
        ignored = sorted(k for k in meta if k not in ("labels", "annotations", "name"))
        if ignored:
            notes.append(f"overrides.dgd metadata fields ignored: {', '.join(ignored)}")
    spec_ov = ov.pop("spec", None)
    if ov:
        notes.append(
            f"overrides.dgd keys other than metadata/spec ignored: {', '.join(sorted(ov))}"
        )
    if not isinstance(spec_ov, dict):
        return notes
    components_ov = spec_ov.pop("components", None)
    merge(dgd["spec"], spec_ov, path="spec")
    if isinstance(components_ov, list):
        notes += _merge_components(dgd["spec"].setdefault("components", []), components_ov)
    return notes


def _mark_alpha_worker_args(alpha: dict[str, Any], beta: dict[str, Any]) -> None:
    """Give the converted main container of each worker service whose v1alpha1 override set args
    the append directive (v1alpha1 overrides extend a worker's command line)."""
    spec = alpha.get("spec")
    services = spec.get("services") if isinstance(spec, dict) else None
    if not isinstance(services, dict):
        return
    for component in beta.get("spec", {}).get("components", []):
        name = component.get("name")
        service = services.get(name)
        if name in _NO_ARG_APPEND or not isinstance(service, dict):
            continue
        pod = service.get("extraPodSpec")
        main = pod.get("mainContainer") if isinstance(pod, dict) else None
        if isinstance(main, dict) and isinstance(main.get("args"), list):
            for container in component["podTemplate"]["spec"]["containers"]:
                if container.get("name") == MAIN:
                    container["$patch"] = {"args": "append"}


def _merge_components(components: list[Any], overrides: list[Any]) -> list[str]:
    notes: list[str] = []
    by_name = {c.get("name"): c for c in components if isinstance(c, dict)}
    for i, body in enumerate(overrides):
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(name, str):
            notes.append(f"overrides.dgd spec.components[{i}] has no name: skipped")
            continue
        target = by_name.get(name)
        if target is None:
            notes.append(
                f"overrides.dgd spec.components[name={name}] skipped: the generated DGD has no "
                f"such component (generated: {', '.join(sorted(str(n) for n in by_name))})"
            )
            continue
        notes += _apply_append_directives(target, body, f"spec.components[name={name}]")
        merge(target, body, path=f"spec.components[name={name}]")
    return notes


def _apply_append_directives(target: dict[str, Any], body: dict[str, Any], path: str) -> list[str]:
    """Turn each `$patch: {args: append}` container of `body` into the full args list."""
    pod = body.get("podTemplate")
    spec = pod.get("spec") if isinstance(pod, dict) else None
    containers = spec.get("containers") if isinstance(spec, dict) else None
    notes: list[str] = []
    for container in containers if isinstance(containers, list) else []:
        if not isinstance(container, dict) or "$patch" not in container:
            continue
        directive = container.pop("$patch")
        if directive != {"args": "append"} or not isinstance(container.get("args"), list):
            notes.append(f"overrides.dgd {path} container $patch {directive!r} not supported")
            continue
        base = _container(target, container.get("name"))
        base_args = base.get("args") if base is not None else None
        container["args"] = [
            *(base_args if isinstance(base_args, list) else []),
            *container["args"],
        ]
    return notes


def _container(component: dict[str, Any], name: Any) -> dict[str, Any] | None:
    pod = component.get("podTemplate")
    spec = pod.get("spec") if isinstance(pod, dict) else None
    for container in (spec or {}).get("containers", []) if isinstance(spec, dict) else []:
        if isinstance(container, dict) and container.get("name") == name:
            return container
    return None


def merge(base: dict[str, Any], over: dict[str, Any], *, path: str = "") -> None:
    """Structural merge of `over` into `base` in place (see the module for the rules)."""
    for key in over:
        value = over[key]
        current = base.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merge(current, value, path=f"{path}.{key}")
        elif key in LIST_MAP_KEYS and isinstance(value, list) and isinstance(current, list):
            _merge_keyed(current, value, LIST_MAP_KEYS[key], f"{path}.{key}")
        else:
            base[key] = copy.deepcopy(value)


def _merge_keyed(base: list[Any], over: list[Any], key: str, path: str) -> None:
    """Items of `over` merge into the `base` item with the same `key`, or are appended."""
    index = {item.get(key): item for item in base if isinstance(item, dict) and key in item}
    for item in over:
        match = index.get(item.get(key)) if isinstance(item, dict) else None
        if match is not None:
            merge(match, item, path=f"{path}[{key}={item.get(key)}]")
        else:
            base.append(copy.deepcopy(item))
            if isinstance(item, dict) and key in item:
                index[item[key]] = base[-1]
