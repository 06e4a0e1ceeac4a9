"""The DynamoGraphDeployment generated for a picked config, in either DGD API version.

Owns: the `DgdPlan` (one `WorkerShape` per kind of worker) and turning it into one internal
description (`sim._dgd_model.Component`s: Frontend, the backend's aggregated worker or its prefill
and decode workers, or Dynamo's mocker, and the Planner) that is rendered as `nvidia.com/v1beta1`
(the default, `DGD_API_VERSIONS[0]`) or, through `sim._dgd_convert.convert_dgd`, as
`nvidia.com/v1alpha1`; the DGD name, the ownership labels (`dgdr.domain.target.owned_labels`),
runtime images (`sim._dgd_images`), model-cache PVC
wiring (the PVC as a pod volume mounted on the workers and the Frontend; `HF_HOME` on it when no
model directory is named), `DYN_BENCHMARK_MODE` on planner-driven vLLM workers (as Dynamo's
profiler sets it), `spec.overrides.dgd` (`sim._dgd_overrides`), and tolerations from
`spec.overrides.profilingJob.template.spec.tolerations` appended (deduplicated) to every
component's pod. A worker whose GPUs per replica (TP x PP) exceed `gpus_per_node` gets
`multinode.nodeCount` = ceil(GPUs / gpus_per_node) and a per-node GPU limit, so that nodeCount x
GPU limit covers the worker (Dynamo: total GPUs = nodeCount x gpu limit).

Failure semantics: `build_dgd` raises `ProfilingError("GeneratingDGD", ...)` when the DGD name is
not a DNS label of at most 63 characters, and ValueError for an unknown API version (a
programming error: the CLI checks it). Everything else is reported, not raised: `build_dgd`
returns notes (one short sentence each) for overrides it skipped or that resize a worker, and
for fields with no place in the requested version. The returned dict is a fresh, JSON-safe
object with a deterministic key order.
"""

from __future__ import annotations

import copy
import math
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dgdr.domain.errors import ProfilingError
from dgdr.domain.spec import DGD_KIND, DGDRSpec
from dgdr.domain.target import owned_labels

from ._dgd_backends import (
    AGG_WORKER,
    DISAGG_WORKERS,
    EPHEMERAL_STORAGE,
    MOCKER_WORKERS,
    WORKING_DIR,
    EngineArgs,
    ephemeral_storage,
    mocker_args,
    worker_args,
    worker_command,
)
from ._dgd_convert import GPU_RESOURCE, V1ALPHA1, V1BETA1, convert_dgd, service_to_component
from ._dgd_images import (
    DEFAULT_REGISTRY,
    DEFAULT_RUNTIME_VERSION,
    RUNTIME_IMAGE,
    retag_own_versions,
    runtime_image,
)
from ._dgd_model import (
    Component,
    ComponentType,
    Container,
    main_container,
    render_components,
)
from ._dgd_overrides import apply_override

DGD_API_VERSIONS = (V1BETA1, V1ALPHA1)  # the first is the default
DEFAULT_DGD_API_VERSION = DGD_API_VERSIONS[0]
__all__ = [  # with the image names re-exported from sim._dgd_images
    "DEFAULT_DGD_API_VERSION",
    "DEFAULT_REGISTRY",
    "DEFAULT_RUNTIME_VERSION",
    "DGD_API_VERSIONS",
    "DISAGG_SERVICES",
    "HF_SECRET",
    "MOCKER_DATA_MOUNT",
    "RUNTIME_IMAGE",
    "WORKER_SERVICE",
    "DgdPlan",
    "WorkerShape",
    "build_dgd",
    "dgd_name",
    "job_tolerations",
    "model_path",
    "node_layout",
    "runtime_image",
]
# Backward-compatible names: the aggregated worker and the disaggregated workers per backend.
WORKER_SERVICE = AGG_WORKER
DISAGG_SERVICES = DISAGG_WORKERS
MOCKER_DATA_MOUNT = "/workspace/profiling_results"
HF_SECRET = "hf-token-secret"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def dgd_name(spec: DGDRSpec, name: str) -> str:
    override = (spec.overrides.dgd if spec.overrides else None) or {}
    meta = override.get("metadata")
    given = meta.get("name") if isinstance(meta, dict) else None
    chosen = given if isinstance(given, str) and given else f"{name}-dgd"
    if len(chosen) > 63 or not _DNS_LABEL.match(chosen):
        source = (
            "spec.overrides.dgd.metadata.name" if chosen == given else f"'<name>-dgd' ({name!r})"
        )
        raise ProfilingError(
            "GeneratingDGD",
            f"DGD name {chosen!r} from {source} is not a DNS label: use at most 63 lower-case "
            "letters, digits and '-', starting and ending with a letter or digit (set "
            "spec.overrides.dgd.metadata.name to choose one)",
        )
    return chosen


def job_tolerations(spec: DGDRSpec) -> list[Any]:
    """`spec.overrides.profilingJob.template.spec.tolerations`, or [] when absent or malformed."""
    job = spec.overrides.profiling_job if spec.overrides else None
    template = job.get("template") if isinstance(job, dict) else None
    pod = template.get("spec") if isinstance(template, dict) else None
    tolerations = pod.get("tolerations") if isinstance(pod, dict) else None
    return list(tolerations) if isinstance(tolerations, list) else []


def _add_tolerations(components: list[Any], tolerations: list[Any]) -> None:
    for component in components:
        if not isinstance(component, dict):
            continue
        pod = component.setdefault("podTemplate", {})
        spec = pod.setdefault("spec", {}) if isinstance(pod, dict) else None
        if not isinstance(spec, dict):
            continue
        existing = spec.get("tolerations")
        merged = list(existing) if isinstance(existing, list) else []
        for toleration in tolerations:
            if toleration not in merged:
                merged.append(copy.deepcopy(toleration))
        spec["tolerations"] = merged


def node_layout(tp: int, gpus_per_node: int | None) -> tuple[int, int]:
    """(nodeCount, GPUs per node) for one worker replica of `tp` GPUs: (1, tp) when it fits one
    node, else ceil(tp / gpus_per_node) nodes with the TP group spread evenly over them."""
    if gpus_per_node is None or tp <= gpus_per_node:
        return 1, tp
    nodes = math.ceil(tp / gpus_per_node)
    return nodes, math.ceil(tp / nodes)


@dataclass(frozen=True)
class WorkerShape:
    """One kind of worker: GPUs per replica are `tp * pp` (`ep` spreads a MoE model's experts
    over the `tp` GPUs of a stage). `max_batch` (sequences in flight: the picked batch size) and
    `max_num_tokens` (tokens per engine step) become the engine's limits when given."""

    tp: int
    replicas: int
    ep: int = 1
    pp: int = 1
    max_batch: int | None = None
    max_num_tokens: int | None = None
    dp: int = 1  # attention DP ranks (> 1: a DEP worker, `sim._dep`); `max_batch` is worker-wide

    @property
    def gpus_per_replica(self) -> int:
        return self.tp * self.pp


@dataclass(frozen=True)
class DgdPlan:
    """Everything the DGD is generated from. `workers` sizes the aggregated worker or, with
    `prefill` given, the decode workers of a disaggregated deployment. `mocker_data` (the
    planner-profile-data ConfigMap's name) makes the workers Dynamo's mocker (`prefill`/`decode`,
    no GPUs, reading their timings from that ConfigMap). `extra_services` (the Planner, as
    v1alpha1 services) are added as components; with them the vLLM workers self-benchmark
    (`DYN_BENCHMARK_MODE`). `api_version` is the DGD version generated."""

    spec: DGDRSpec
    backend: str
    name: str  # the DGDR's: the DGD is `<name>-dgd` unless the overrides name it
    namespace: str
    workers: WorkerShape
    prefill: WorkerShape | None = None
    gpus_per_node: int | None = None
    extra_services: Mapping[str, Any] = field(default_factory=dict)
    mocker_data: str | None = None
    api_version: str = DEFAULT_DGD_API_VERSION

    def worker_services(self) -> dict[str, tuple[WorkerShape, str | None]]:
        """Each worker component's name -> (shape, disaggregation role), in the DGD's order
        (decode before prefill, as Dynamo's templates list them)."""
        if self.prefill is None:
            return {AGG_WORKER[self.backend]: (self.workers, None)}
        prefill, decode = (
            MOCKER_WORKERS if self.mocker_data is not None else DISAGG_WORKERS[self.backend]
        )
        return {decode: (self.workers, "decode"), prefill: (self.prefill, "prefill")}


def model_path(spec: DGDRSpec) -> str:
    """Where the worker loads the model from: a directory on the model-cache PVC when the spec
    names one (`pvcModelPath`, relative to `pvcMountPath` unless already under it), else the
    model id."""
    cache = spec.model_cache
    if not (cache and cache.pvc_name and cache.pvc_model_path):
        return spec.model
    mount = cache.pvc_mount_path.rstrip("/") or "/"
    sub = cache.pvc_model_path
    if sub == mount or sub.startswith(mount + "/"):
        return sub
    return posixpath.join(mount, sub.lstrip("/"))


def _image(plan: DgdPlan, backend: str) -> str:
    return runtime_image(plan.spec.image, backend, plan.spec.runtime_version_override)


def _mount_model_cache(plan: DgdPlan, component: Component) -> None:
    """The model-cache PVC as a pod volume mounted in the main container (HF_HOME on it when the
    spec names no model directory: the PVC is then the Hugging Face cache)."""
    cache = plan.spec.model_cache
    if not (cache and cache.pvc_name):
        return
    component.volumes.append(
        {"name": cache.pvc_name, "persistentVolumeClaim": {"claimName": cache.pvc_name}}
    )
    component.container.volume_mounts.append(
        {"name": cache.pvc_name, "mountPath": cache.pvc_mount_path}
    )
    if not cache.pvc_model_path:
        component.container.env.append({"name": "HF_HOME", "value": cache.pvc_mount_path})


def _frontend(plan: DgdPlan) -> Component:
    mocker = plan.mocker_data is not None
    container = Container(
        image=_image(plan, "planner" if mocker else plan.backend),
        command=["python3"],
        args=["-m", "dynamo.frontend"],
        env_from_secret=None if mocker else HF_SECRET,
    )
    cache = plan.spec.model_cache
    if cache and cache.pvc_name and cache.pvc_model_path:  # the Frontend reads the tokenizer there
        container.args += ["--model-name", plan.spec.model, "--model-path", model_path(plan.spec)]
    frontend = Component("Frontend", "frontend", 1, container)
    _mount_model_cache(plan, frontend)
    return frontend


def _mocker_worker(plan: DgdPlan, name: str, shape: WorkerShape, role: str) -> Component:
    """A mocker worker (Dynamo's mocker template): no GPU; its timings come from the profile
    data ConfigMap, mounted read-only."""
    assert plan.mocker_data is not None
    args = mocker_args(model_path(plan.spec), plan.spec.model, role)
    args += ["--planner-profile-data", MOCKER_DATA_MOUNT]
    container = Container(
        image=_image(plan, "planner"),
        command=["python3", "-m", "dynamo.mocker"],
        args=args,
        env_from_secret=HF_SECRET,
        working_dir=WORKING_DIR["mocker"],
        volume_mounts=[
            {"name": "planner-profile-data", "mountPath": MOCKER_DATA_MOUNT, "readOnly": True}
        ],
    )
    worker = Component(
        name, "prefill" if role == "prefill" else "decode", shape.replicas, container
    )
    worker.volumes.append({"name": "planner-profile-data", "configMap": {"name": plan.mocker_data}})
    _mount_model_cache(plan, worker)
    return worker


def _gpu_worker(plan: DgdPlan, name: str, shape: WorkerShape, role: str | None) -> Component:
    """A backend worker running one TP group per replica (spread over nodes when it is wider
    than a node)."""
    spec = plan.spec
    engine = EngineArgs(
        model_path=model_path(spec),
        served_name=spec.model,
        tp=shape.tp,
        role=role,
        ep=shape.ep,
        pp=shape.pp,
        max_batch=shape.max_batch,
        max_num_tokens=shape.max_num_tokens,
        dp=shape.dp,
    )
    nodes, per_node = node_layout(shape.gpus_per_replica, plan.gpus_per_node)
    container = Container(
        image=_image(plan, plan.backend),
        command=worker_command(plan.backend),
        args=worker_args(plan.backend, engine),
        env_from_secret=HF_SECRET,
        working_dir=WORKING_DIR[plan.backend],
        limits={GPU_RESOURCE: str(per_node)},
    )
    if ephemeral_storage(plan.backend, role is not None):
        container.requests["ephemeral-storage"] = EPHEMERAL_STORAGE
    if plan.backend == "vllm" and plan.extra_services:  # the planner reads its self-benchmark
        container.env.append({"name": "DYN_BENCHMARK_MODE", "value": role or "agg"})
    kind: ComponentType = (
        "worker" if role is None else ("prefill" if role == "prefill" else "decode")
    )
    worker = Component(name, kind, shape.replicas, container, node_count=nodes)
    _mount_model_cache(plan, worker)
    return worker


def _components(plan: DgdPlan, notes: list[str]) -> list[dict[str, Any]]:
    """Frontend, the workers, then the extra services (converted from v1alpha1)."""
    components = [_frontend(plan)]
    for name, (shape, role) in plan.worker_services().items():
        if plan.mocker_data is not None:
            components.append(_mocker_worker(plan, name, shape, role or "decode"))
        else:
            components.append(_gpu_worker(plan, name, shape, role))
    version = plan.spec.runtime_version_override
    for component in components:
        component.runtime_version = version
    rendered = render_components(components)
    for name, service in plan.extra_services.items():
        extra = service_to_component(name, copy.deepcopy(service), notes, f"services.{name}")
        if version:
            extra["runtimeVersionOverride"] = version
        rendered.append(extra)
    return rendered


def _resized_notes(dgd: dict[str, Any], plan: DgdPlan) -> list[str]:
    """A note for each worker whose replicas or GPUs the overrides changed from the profiled."""
    notes: list[str] = []
    by_name = {c.get("name"): c for c in dgd["spec"]["components"]}
    for name, (shape, _) in plan.worker_services().items():
        per_node = node_layout(shape.gpus_per_replica, plan.gpus_per_node)[1]
        merged = by_name[name]
        container = main_container(merged) or {}
        resources = container.get("resources")
        limits = resources.get("limits") if isinstance(resources, dict) else None
        gpu = limits.get(GPU_RESOURCE) if isinstance(limits, dict) else None
        gpu_differs = plan.mocker_data is None and gpu != str(per_node)
        if merged.get("replicas") != shape.replicas or gpu_differs:
            notes.append(
                f"overrides.dgd sets {name} to replicas {merged.get('replicas')!r}, gpu "
                f"{gpu!r} (profiled: {shape.replicas} x {per_node}); the GPU budget "
                "is not rechecked"
            )
    return notes


def build_dgd(plan: DgdPlan) -> tuple[dict[str, Any], list[str]]:
    """The complete DGD in `plan.api_version`, with overrides merged; plus notes."""
    if plan.api_version not in DGD_API_VERSIONS:
        raise ValueError(f"DGD apiVersion {plan.api_version!r}: use one of {DGD_API_VERSIONS}")
    spec = plan.spec
    notes: list[str] = []
    spec_out: dict[str, Any] = (
        {} if plan.mocker_data is not None else {"backendFramework": plan.backend}
    )
    spec_out["components"] = _components(plan, notes)
    dgd: dict[str, Any] = {
        "apiVersion": V1BETA1,
        "kind": DGD_KIND,
        "metadata": {
            "name": dgd_name(spec, plan.name),
            "namespace": plan.namespace,
            "labels": owned_labels({}, plan.namespace, plan.name),
        },
        "spec": spec_out,
    }
    generated = {
        str(c["name"]): str((main_container(c) or {}).get("image")) for c in spec_out["components"]
    }
    override = spec.overrides.dgd if spec.overrides else None
    if override:
        notes += apply_override(dgd, override)
        notes += _resized_notes(dgd, plan)
        retag_own_versions(dgd["spec"]["components"], spec.runtime_version_override, generated)
    tolerations = job_tolerations(spec)
    if tolerations:
        _add_tolerations(dgd["spec"]["components"], tolerations)
    # The ownership labels always win over the overrides'.
    dgd["metadata"]["labels"] = owned_labels(dgd, plan.namespace, plan.name)
    if plan.api_version != V1BETA1:
        dgd, lost = convert_dgd(dgd, plan.api_version)
        notes += [f"DGD {plan.api_version}: {n}" for n in lost]
    return dgd, notes
