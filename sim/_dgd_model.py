"""The internal description of a generated DGD, independent of the DGD API version, and its
rendering as a `nvidia.com/v1beta1` DynamoGraphDeployment (`spec.components`, each
`{name, type, replicas, podTemplate: {spec: {containers: [{name: main, ...}]}}}` as Dynamo's
templates have it; multinode, shared memory and the runtime version at the component level as
the v1beta1 CRD puts them). The v1alpha1 shape is derived from it by `sim._dgd_convert`.

Owns: `Container`, `Component` and `render_components`. Kubernetes-native field shapes
(resources with `nvidia.com/gpu`, `envFrom`, `volumeMounts` with `mountPath`, pod `volumes`).

Failure semantics: pure; rendering returns fresh JSON-safe dicts and never raises.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

ComponentType = Literal["frontend", "worker", "prefill", "decode", "planner"]


@dataclass
class Container:
    """The component's `main` container."""

    image: str
    command: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    env: list[dict[str, Any]] = field(default_factory=list)
    env_from_secret: str | None = None
    working_dir: str | None = None
    limits: dict[str, str] = field(default_factory=dict)
    requests: dict[str, str] = field(default_factory=dict)
    volume_mounts: list[dict[str, Any]] = field(default_factory=list)

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": "main", "image": self.image}
        if self.command:
            out["command"] = list(self.command)
        if self.args:
            out["args"] = list(self.args)
        if self.env:
            out["env"] = copy.deepcopy(self.env)
        if self.env_from_secret:
            out["envFrom"] = [{"secretRef": {"name": self.env_from_secret}}]
        if self.working_dir:
            out["workingDir"] = self.working_dir
        resources = {
            side: dict(values)
            for side, values in (("limits", self.limits), ("requests", self.requests))
            if values
        }
        if resources:
            out["resources"] = resources
        if self.volume_mounts:
            out["volumeMounts"] = copy.deepcopy(self.volume_mounts)
        return out


@dataclass
class Component:
    """One DGD component: Frontend, a worker (agg `worker`, or `prefill`/`decode`), Planner."""

    name: str
    type: ComponentType
    replicas: int
    container: Container
    node_count: int = 1  # > 1: a multinode worker (GPUs per replica = nodes x GPU limit)
    shared_memory_size: str | None = None
    runtime_version: str | None = None  # the component's runtimeVersionOverride
    volumes: list[dict[str, Any]] = field(default_factory=list)
    pod_fields: dict[str, Any] = field(default_factory=dict)  # other pod spec fields, as given

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "replicas": self.replicas}
        if self.runtime_version:
            out["runtimeVersionOverride"] = self.runtime_version
        if self.node_count > 1:
            out["multinode"] = {"nodeCount": self.node_count}
        if self.shared_memory_size is not None:
            out["sharedMemorySize"] = self.shared_memory_size
        pod: dict[str, Any] = {"containers": [self.container.render()]}
        if self.volumes:
            pod["volumes"] = copy.deepcopy(self.volumes)
        pod.update(copy.deepcopy(self.pod_fields))
        out["podTemplate"] = {"spec": pod}
        return out


def render_components(components: list[Component]) -> list[dict[str, Any]]:
    return [c.render() for c in components]


def main_container(component: dict[str, Any]) -> dict[str, Any] | None:
    """The `main` container of a rendered v1beta1 component (None when it has none)."""
    pod = component.get("podTemplate")
    spec = pod.get("spec") if isinstance(pod, dict) else None
    containers = spec.get("containers") if isinstance(spec, dict) else None
    for container in containers if isinstance(containers, list) else []:
        if isinstance(container, dict) and container.get("name") == "main":
            return container
    return None
