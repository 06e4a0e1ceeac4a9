"""The DynamoGraphDeployment (nvidia.com/v1alpha1) generated for a picked config.

Owns: the DGD shape (Frontend + the backend's aggregated worker, as in Dynamo's
`examples/backends/<backend>/deploy/agg.yaml`, or its prefill and decode workers as in
`disagg.yaml`, or Dynamo's mocker), described by a `DgdPlan` (one `WorkerShape` per kind of
worker); the DGD name, the ownership labels (`dgdr.domain.target.owned_labels`, so they are the
ones the adapters select on), runtime image derivation, model-cache PVC wiring, and merging
`spec.overrides.dgd` the way Dynamo's profiler does (`apply_dgd_overrides`): apiVersion/kind
dropped, only metadata labels/annotations merged, recursive dict merge, worker
`extraPodSpec.mainContainer.args` appended, other leaves replaced, overrides for services the DGD
does not have skipped and reported; tolerations from
`spec.overrides.profilingJob.template.spec.tolerations` appended (deduplicated) to every service's
`extraPodSpec.tolerations`. A worker whose GPUs per replica (TP x PP) exceed `gpus_per_node` gets
`multinode.nodeCount` = ceil(GPUs / gpus_per_node) and a per-node `resources` GPU count, so that
nodeCount x gpu limit covers the worker (Dynamo: total GPUs = nodeCount x gpu limit).

Failure semantics: `build_dgd` raises `ProfilingError("GeneratingDGD", ...)` when the DGD name is
not a DNS label of at most 63 characters. Everything else is reported, not raised: `build_dgd`
returns notes (one short sentence each) for overrides it skipped or that resize a worker. The
returned dict is a fresh, JSON-safe object with a deterministic key order.
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
from dgdr.domain.spec import DGD_API_VERSION, DGD_KIND, DGDRSpec
from dgdr.domain.target import owned_labels

WORKER_SERVICE = {"vllm": "VllmWorker", "sglang": "decode", "trtllm": "TRTLLMWorker"}
# (prefill, decode) worker services of a disaggregated DGD, as in Dynamo's disagg.yaml templates.
DISAGG_SERVICES = {
    "vllm": ("VllmPrefillWorker", "VllmDecodeWorker"),
    "sglang": ("prefill", "decode"),
    "trtllm": ("TRTLLMPrefillWorker", "TRTLLMDecodeWorker"),
}
RUNTIME_IMAGE = {
    "vllm": "vllm-runtime",
    "sglang": "sglang-runtime",
    "trtllm": "tensorrtllm-runtime",
    "planner": "dynamo-planner",
}
MOCKER_SERVICES = ("prefill", "decode")
MOCKER_DATA_MOUNT = "/workspace/profiling_results"
DEFAULT_REGISTRY = "nvcr.io/nvidia/ai-dynamo"
HF_SECRET = "hf-token-secret"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def runtime_image(image: str | None, backend: str) -> str:
    """Replace the last path component's name of `image`, keeping registry and tag/digest
    (`backend` "planner" gives the planner image)."""
    runtime = RUNTIME_IMAGE[backend]
    if not image:
        return f"{DEFAULT_REGISTRY}/{runtime}:latest"
    ref, at, digest = image.partition("@")
    head, slash, last = ref.rpartition("/")
    _, colon, tag = last.partition(":")
    return f"{head}{slash}{runtime}{colon}{tag}{at}{digest}"


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


def _worker_command(
    backend: str,
    model_path: str,
    served_name: str,
    tp: int,
    role: str | None = None,
    ep: int = 1,
    pp: int = 1,
) -> tuple[list[str], list[str]]:
    """The worker's command and args; `role` is prefill/decode for a disaggregated worker, `ep` > 1
    spreads a MoE model's experts over the worker's GPUs."""
    module = f"dynamo.{backend}"
    if backend == "vllm":
        args = ["--model", model_path, "--tensor-parallel-size", str(tp)]
        if pp > 1:
            args += ["--pipeline-parallel-size", str(pp)]
        if ep > 1:
            args.append("--enable-expert-parallel")
        if role == "prefill":
            args.append("--is-prefill-worker")
    elif backend == "sglang":
        args = ["--model-path", model_path, "--tp", str(tp)]
        if pp > 1:
            args += ["--pp-size", str(pp)]
        if ep > 1:
            args += ["--ep-size", str(ep)]
        if role:
            args += ["--disaggregation-mode", role, "--disaggregation-transfer-backend", "nixl"]
    else:
        args = ["--model-path", model_path, "--tensor-parallel-size", str(tp)]
        if pp > 1:
            args += ["--pipeline-parallel-size", str(pp)]
        if ep > 1:
            args += ["--expert-parallel-size", str(ep)]
        if role:
            args += ["--disaggregation-mode", role]
    if model_path != served_name:
        args += ["--served-model-name", served_name]
    return ["python3", "-m", module], args


def _mocker_worker(
    spec: DGDRSpec, model_path: str, count: int, role: str, data_cm: str
) -> dict[str, Any]:
    """A mocker worker (Dynamo's examples/backends/mocker/deploy/disagg.yaml): the engine's
    timings come from the profile data, so it needs no GPU."""
    image = spec.image or f"{DEFAULT_REGISTRY}/{RUNTIME_IMAGE['vllm']}:latest"
    args = [
        "--model-path",
        model_path,
        "--model-name",
        spec.model,
        "--disaggregation-mode",
        role,
        "--planner-profile-data",
        MOCKER_DATA_MOUNT,
    ]
    return {
        "componentType": "worker",
        "subComponentType": role,
        "replicas": count,
        "envFromSecret": HF_SECRET,
        "extraPodSpec": {
            "mainContainer": {
                "image": image,
                "command": ["python3", "-m", "dynamo.mocker"],
                "args": args,
                "volumeMounts": [
                    {
                        "name": "planner-profile-data",
                        "mountPath": MOCKER_DATA_MOUNT,
                        "readOnly": True,
                    }
                ],
            },
            "volumes": [{"name": "planner-profile-data", "configMap": {"name": data_cm}}],
        },
    }


def job_tolerations(spec: DGDRSpec) -> list[Any]:
    """`spec.overrides.profilingJob.template.spec.tolerations`, or [] when absent or malformed."""
    job = spec.overrides.profiling_job if spec.overrides else None
    template = job.get("template") if isinstance(job, dict) else None
    pod = template.get("spec") if isinstance(template, dict) else None
    tolerations = pod.get("tolerations") if isinstance(pod, dict) else None
    return list(tolerations) if isinstance(tolerations, list) else []


def _add_tolerations(services: dict[str, Any], tolerations: list[Any]) -> None:
    for service in services.values():
        if not isinstance(service, dict):
            continue
        pod = service.setdefault("extraPodSpec", {})
        if not isinstance(pod, dict):
            continue
        existing = pod.get("tolerations")
        merged = list(existing) if isinstance(existing, list) else []
        for toleration in tolerations:
            if toleration not in merged:
                merged.append(copy.deepcopy(toleration))
        pod["tolerations"] = merged


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
    over the `tp` GPUs of a stage)."""

    tp: int
    replicas: int
    ep: int = 1
    pp: int = 1

    @property
    def gpus_per_replica(self) -> int:
        return self.tp * self.pp


@dataclass(frozen=True)
class DgdPlan:
    """Everything the DGD is generated from. `workers` sizes the aggregated worker or, with
    `prefill` given, the decode workers of a disaggregated deployment. `mocker_data` (the
    planner-profile-data ConfigMap's name) makes the workers Dynamo's mocker (`prefill`/`decode`,
    no GPUs, reading their timings from that ConfigMap). `extra_services` (the Planner) are added
    as given."""

    spec: DGDRSpec
    backend: str
    name: str  # the DGDR's: the DGD is `<name>-dgd` unless the overrides name it
    namespace: str
    workers: WorkerShape
    prefill: WorkerShape | None = None
    gpus_per_node: int | None = None
    extra_services: Mapping[str, Any] = field(default_factory=dict)
    mocker_data: str | None = None

    def worker_services(self) -> dict[str, tuple[WorkerShape, str | None]]:
        """Each worker service's name -> (shape, disaggregation role), in the DGD's order."""
        if self.prefill is None:
            return {WORKER_SERVICE[self.backend]: (self.workers, None)}
        prefill, decode = (
            MOCKER_SERVICES if self.mocker_data is not None else DISAGG_SERVICES[self.backend]
        )
        return {prefill: (self.prefill, "prefill"), decode: (self.workers, "decode")}


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


def _gpu_worker(plan: DgdPlan, shape: WorkerShape, role: str | None, path: str) -> dict[str, Any]:
    """A backend worker running one TP group per replica (spread over nodes when it is wider
    than a node)."""
    spec = plan.spec
    command, args = _worker_command(
        plan.backend, path, spec.model, shape.tp, role, shape.ep, shape.pp
    )
    nodes, per_node = node_layout(shape.gpus_per_replica, plan.gpus_per_node)
    out: dict[str, Any] = {"componentType": "worker"}
    if role:
        out["subComponentType"] = role
    out.update(
        {
            "replicas": shape.replicas,
            "envFromSecret": HF_SECRET,
            "resources": {"limits": {"gpu": str(per_node)}, "requests": {"gpu": str(per_node)}},
            "extraPodSpec": {
                "mainContainer": {
                    "image": runtime_image(spec.image, plan.backend),
                    "command": command,
                    "args": args,
                }
            },
        }
    )
    if nodes > 1:
        out["multinode"] = {"nodeCount": nodes}
    cache = spec.model_cache
    if cache and cache.pvc_name:
        out["volumeMounts"] = [{"name": cache.pvc_name, "mountPoint": cache.pvc_mount_path}]
        if not cache.pvc_model_path:  # no model directory: the PVC is the Hugging Face cache
            out["envs"] = [{"name": "HF_HOME", "value": cache.pvc_mount_path}]
    return out


def _services(plan: DgdPlan) -> dict[str, Any]:
    """Frontend, the worker services, then the extra services."""
    services: dict[str, Any] = {
        "Frontend": {
            "componentType": "frontend",
            "replicas": 1,
            "extraPodSpec": {
                "mainContainer": {"image": runtime_image(plan.spec.image, plan.backend)}
            },
        }
    }
    path = model_path(plan.spec)
    for service, (shape, role) in plan.worker_services().items():
        if plan.mocker_data is not None:
            services[service] = _mocker_worker(
                plan.spec, path, shape.replicas, role or "decode", plan.mocker_data
            )
        else:
            services[service] = _gpu_worker(plan, shape, role, path)
    services.update(copy.deepcopy(dict(plan.extra_services)))
    return services


def _resized_notes(dgd: dict[str, Any], plan: DgdPlan) -> list[str]:
    """A note for each worker whose replicas or GPUs the overrides changed from the profiled."""
    notes: list[str] = []
    for service, (shape, _) in plan.worker_services().items():
        per_node = node_layout(shape.gpus_per_replica, plan.gpus_per_node)[1]
        merged = dgd["spec"]["services"][service]
        resources = merged.get("resources")
        limits = resources.get("limits") if isinstance(resources, dict) else None
        limits = limits if isinstance(limits, dict) else {}
        gpu_differs = plan.mocker_data is None and limits.get("gpu") != str(per_node)
        if merged.get("replicas") != shape.replicas or gpu_differs:
            notes.append(
                f"overrides.dgd sets {service} to replicas {merged.get('replicas')!r}, gpu "
                f"{limits.get('gpu')!r} (profiled: {shape.replicas} x {per_node}); the GPU budget "
                "is not rechecked"
            )
    return notes


def build_dgd(plan: DgdPlan) -> tuple[dict[str, Any], list[str]]:
    """The complete DGD, with overrides merged; plus override notes."""
    spec = plan.spec
    cache = spec.model_cache
    spec_out: dict[str, Any] = (
        {} if plan.mocker_data is not None else {"backendFramework": plan.backend}
    )
    if cache and cache.pvc_name:
        spec_out["pvcs"] = [{"name": cache.pvc_name, "create": False}]
    spec_out["services"] = _services(plan)
    dgd: dict[str, Any] = {
        "apiVersion": DGD_API_VERSION,
        "kind": DGD_KIND,
        "metadata": {
            "name": dgd_name(spec, plan.name),
            "namespace": plan.namespace,
            "labels": owned_labels({}, plan.namespace, plan.name),
        },
        "spec": spec_out,
    }
    notes: list[str] = []
    override = spec.overrides.dgd if spec.overrides else None
    if override:
        notes = apply_overrides(dgd, override, worker_services=set(plan.worker_services()))
        notes += _resized_notes(dgd, plan)
    tolerations = job_tolerations(spec)
    if tolerations:
        _add_tolerations(dgd["spec"]["services"], tolerations)
    # The ownership labels always win over the overrides'.
    dgd["metadata"]["labels"] = owned_labels(dgd, plan.namespace, plan.name)
    return dgd, notes


def apply_overrides(
    dgd: dict[str, Any], override: dict[str, Any], *, worker_services: set[str]
) -> list[str]:
    """Merge `overrides.dgd` into `dgd` in place (Dynamo's rules); notes on what was skipped."""
    notes: list[str] = []
    ov = copy.deepcopy(override)
    ov.pop("apiVersion", None)
    ov.pop("kind", None)
    meta = ov.pop("metadata", None)
    if isinstance(meta, dict):
        for key in ("labels", "annotations"):
            if isinstance(meta.get(key), dict):
                target = dgd["metadata"].setdefault(key, {})
                target.update(meta[key])
    spec_ov = ov.pop("spec", None)
    ignored = sorted(ov)
    if ignored:
        notes.append(f"overrides.dgd keys other than metadata/spec ignored: {', '.join(ignored)}")
    if not isinstance(spec_ov, dict):
        return notes
    services_ov = spec_ov.pop("services", None)
    _merge(dgd["spec"], spec_ov)
    if isinstance(services_ov, dict):
        services = dgd["spec"]["services"]
        unknown = sorted(s for s in services_ov if s not in services)
        if unknown:
            notes.append(
                "overrides.dgd services not in the generated DGD were skipped: "
                f"{', '.join(unknown)} (generated: {', '.join(sorted(services))})"
            )
        for svc in sorted(services_ov):
            if svc in services and isinstance(services_ov[svc], dict):
                body = services_ov[svc]
                extra_args = _pop_args(body) if svc in worker_services else None
                _merge(services[svc], body)
                if extra_args is not None:
                    container = (
                        services[svc].setdefault("extraPodSpec", {}).setdefault("mainContainer", {})
                    )
                    container["args"] = list(container.get("args", [])) + extra_args
    return notes


def _pop_args(service: dict[str, Any]) -> list[Any] | None:
    pod = service.get("extraPodSpec")
    container = pod.get("mainContainer") if isinstance(pod, dict) else None
    if isinstance(container, dict) and isinstance(container.get("args"), list):
        args: list[Any] = container.pop("args")
        return args
    return None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> None:
    for key in sorted(over):
        value = over[key]
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
