"""The DynamoGraphDeployment (nvidia.com/v1alpha1) generated for a picked aggregated config.

Owns: the DGD shape (Frontend + the backend's aggregated worker, as in Dynamo's
`examples/backends/<backend>/deploy/agg.yaml`), the DGD name, labels, runtime image derivation,
model-cache PVC wiring, and merging `spec.overrides.dgd` the way Dynamo's profiler does
(`apply_dgd_overrides`): apiVersion/kind dropped, only metadata labels/annotations merged, recursive
dict merge, worker `extraPodSpec.mainContainer.args` appended, other leaves replaced, overrides for
services the DGD does not have skipped and reported; tolerations from
`spec.overrides.profilingJob.template.spec.tolerations` appended (deduplicated) to every service's
`extraPodSpec.tolerations`. A worker whose GPUs per replica (TP) exceed `gpus_per_node` gets
`multinode.nodeCount` = ceil(TP / gpus_per_node) and a per-node `resources` GPU count, so that
nodeCount x gpu limit covers the TP group (Dynamo: total GPUs = nodeCount x gpu limit).

Failure semantics: `build_dgd` raises `ProfilingError("GeneratingDGD", ...)` when the DGD name is
not a DNS label of at most 63 characters. Everything else is reported, not raised: `build_dgd`
returns notes (one short sentence each) for overrides it skipped. The returned dict is a fresh,
JSON-safe object with a deterministic key order.
"""

from __future__ import annotations

import copy
import math
import posixpath
import re
from typing import Any

from dgdr.domain.errors import ProfilingError
from dgdr.domain.spec import DGD_API_VERSION, DGD_KIND, DGDRSpec

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


def build_dgd(
    spec: DGDRSpec,
    backend: str,
    tp: int,
    replicas: int,
    *,
    name: str,
    namespace: str,
    gpus_per_node: int | None = None,
    prefill: tuple[int, int] | None = None,
    extra_services: dict[str, Any] | None = None,
    mocker_data: str | None = None,
    ep: int = 1,
    prefill_ep: int = 1,
    pp: int = 1,
) -> tuple[dict[str, Any], list[str]]:
    """The complete DGD, with overrides merged; plus override notes. `tp`/`replicas` size the
    aggregated worker, or, with `prefill=(tp, replicas)`, the decode workers of a disaggregated
    deployment. `mocker_data` (the planner-profile-data ConfigMap's name) makes the workers Dynamo's
    mocker (`prefill`/`decode`, no GPUs, reading their timings from that ConfigMap)."""
    image = runtime_image(spec.image, backend)
    cache = spec.model_cache
    model_path = spec.model
    pvc = cache.pvc_name if cache else None
    if cache and pvc and cache.pvc_model_path:
        mount = cache.pvc_mount_path.rstrip("/") or "/"
        sub = cache.pvc_model_path
        model_path = (
            sub
            if sub == mount or sub.startswith(mount + "/")
            else posixpath.join(mount, sub.lstrip("/"))
        )

    def worker(size: int, count: int, role: str | None) -> dict[str, Any]:
        if mocker_data is not None:
            return _mocker_worker(spec, model_path, count, role or "decode", mocker_data)
        experts = prefill_ep if role == "prefill" else ep
        stages = 1 if role == "prefill" else pp
        command, args = _worker_command(
            backend, model_path, spec.model, size, role, experts, stages
        )
        nodes, per_node = node_layout(size * stages, gpus_per_node)
        out: dict[str, Any] = {"componentType": "worker"}
        if role:
            out["subComponentType"] = role
        out.update(
            {
                "replicas": count,
                "envFromSecret": HF_SECRET,
                "resources": {
                    "limits": {"gpu": str(per_node)},
                    "requests": {"gpu": str(per_node)},
                },
                "extraPodSpec": {
                    "mainContainer": {"image": image, "command": command, "args": args}
                },
            }
        )
        if nodes > 1:
            out["multinode"] = {"nodeCount": nodes}
        if cache and pvc:
            out["volumeMounts"] = [{"name": pvc, "mountPoint": cache.pvc_mount_path}]
            if not cache.pvc_model_path:  # no model directory: the PVC is the Hugging Face cache
                out["envs"] = [{"name": "HF_HOME", "value": cache.pvc_mount_path}]
        return out

    spec_out: dict[str, Any] = {} if mocker_data is not None else {"backendFramework": backend}
    if cache and pvc:
        spec_out["pvcs"] = [{"name": pvc, "create": False}]
    services: dict[str, Any] = {
        "Frontend": {
            "componentType": "frontend",
            "replicas": 1,
            "extraPodSpec": {"mainContainer": {"image": image}},
        }
    }
    sizes: dict[str, tuple[int, int]] = {}
    decode_name = WORKER_SERVICE[backend]
    if prefill is None:
        sizes[WORKER_SERVICE[backend]] = (tp, replicas)
        services[WORKER_SERVICE[backend]] = worker(tp, replicas, None)
    else:
        prefill_name, decode_name = (
            MOCKER_SERVICES if mocker_data is not None else DISAGG_SERVICES[backend]
        )
        sizes[prefill_name], sizes[decode_name] = prefill, (tp, replicas)
        services[prefill_name] = worker(*prefill, "prefill")
        services[decode_name] = worker(tp, replicas, "decode")
    services.update(copy.deepcopy(extra_services or {}))
    spec_out["services"] = services
    labels = {
        "dgdr.nvidia.com/name": name,
        "dgdr.nvidia.com/namespace": namespace,
        "nvidia.com/managed-by": "dgdr",
    }
    dgd: dict[str, Any] = {
        "apiVersion": DGD_API_VERSION,
        "kind": DGD_KIND,
        "metadata": {"name": dgd_name(spec, name), "namespace": namespace, "labels": dict(labels)},
        "spec": spec_out,
    }
    notes: list[str] = []
    override = spec.overrides.dgd if spec.overrides else None
    if override:
        notes = apply_overrides(dgd, override, worker_services=set(sizes))
        for worker_name, (size, count) in sizes.items():
            stages = 1 if prefill is not None and worker_name != decode_name else pp
            per_node = node_layout(size * stages, gpus_per_node)[1]
            merged = dgd["spec"]["services"][worker_name]
            resources = merged.get("resources")
            limits = resources.get("limits") if isinstance(resources, dict) else None
            limits = limits if isinstance(limits, dict) else {}
            gpu_differs = mocker_data is None and limits.get("gpu") != str(per_node)
            if merged.get("replicas") != count or gpu_differs:
                notes.append(
                    f"overrides.dgd sets {worker_name} to replicas {merged.get('replicas')!r}, gpu "
                    f"{limits.get('gpu')!r} (profiled: {count} x {per_node}); the GPU budget is "
                    "not rechecked"
                )
    tolerations = job_tolerations(spec)
    if tolerations:
        _add_tolerations(dgd["spec"]["services"], tolerations)
    dgd["metadata"]["labels"].update(labels)  # ownership labels always win
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
