"""The thorough-search profiling Job `profile-<name>`, built as Dynamo's operator builds it, and
`overrides.profilingJob` merged through an explicit allow-list.

`profiling_job(...)` is pure. It returns the Job and the list of override fields it did *not*
apply (outside the allow-list, or a protected label), so the caller can tell the user instead of
dropping them silently. The allow-list (Dynamo's `profiling_job_overrides.go`, as the issue lists):
- Job spec: `backoffLimit`, `activeDeadlineSeconds`, `ttlSecondsAfterFinished`;
- pod metadata: `labels` and `annotations` merged, the protected labels (`app`, `dgdr`,
  `dgdr.nvidia.com/name`, `dgdr.nvidia.com/namespace`, `nvidia.com/managed-by`) never overwritten;
- pod spec: `tolerations`, `nodeSelector`, `affinity`, `priorityClassName`, `runtimeClassName`,
  `serviceAccountName` replace; `imagePullSecrets` union (ours first); `securityContext` merged field
  by field; `volumes` merged by name (the override's replaces ours);
- the first container only, applied to the `profiler` container: `image`, `resources` (replace),
  `env` and `volumeMounts` merged by name.
The profiler container runs `spec.image` with the DGDR spec as `--config` and `/data` as output; the
`output-copier` sidecar relays `/data/profiler_status.yaml` into ConfigMap `dgdr-output-<name>`
(`phase`, `message`, `final_config.yaml`), the protocol Dynamo's profiler image speaks.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from dgdr.domain.target import (
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_NAMESPACE,
    OWNER_UID,
    owned_labels,
)
from k8s.kube import DGDR_KIND, DGDR_VERSION, GROUP

PROTECTED_LABELS = ("app", "dgdr", LABEL_NAME, LABEL_NAMESPACE, LABEL_MANAGED_BY)
JOB_FIELDS = ("backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished")
POD_REPLACE = (
    "tolerations",
    "nodeSelector",
    "affinity",
    "priorityClassName",
    "runtimeClassName",
    "serviceAccountName",
)
CONTAINER_MERGE_BY_NAME = ("env", "volumeMounts")
OUTPUT_DIR = "/data"
SIDECAR_IMAGE = "bitnami/kubectl:latest"

# Relays the profiler's status file into the output ConfigMap whenever the phase changes, and the
# final config once the profiler container has terminated (Dynamo's sidecar protocol).
_RELAY_TEMPLATE = r"""
set -u
CM="dgdr-output-${DGDR_NAME}"
status_file=/data/profiler_status.yaml
write_cm() {
  args="--from-literal=phase=$1 --from-literal=message=$2"
  [ -f /data/final_config.yaml ] && [ "$3" = final ] && args="$args --from-file=final_config.yaml=/data/final_config.yaml"
  kubectl create configmap "$CM" -n "$DGDR_NAMESPACE" $args --dry-run=client -o yaml \
    | kubectl label --local -f - @NAME_LABEL@="$DGDR_NAME" @NAMESPACE_LABEL@="$DGDR_NAMESPACE" -o yaml \
    | kubectl apply -f -
}
last=""
while ! kubectl get pod "$HOSTNAME" -o jsonpath='{.status.containerStatuses[?(@.name=="profiler")].state}' | grep -q terminated; do
  if [ -f "$status_file" ]; then
    phase=$(sed -n 's/^phase: *//p' "$status_file"); message=$(sed -n 's/^message: *//p' "$status_file")
    [ -n "$phase" ] && [ "$phase" != "$last" ] && write_cm "$phase" "$message" progress && last="$phase"
  fi
  sleep 10
done
status=$(sed -n 's/^status: *//p' "$status_file" 2>/dev/null)
phase=$(sed -n 's/^phase: *//p' "$status_file" 2>/dev/null)
message=$(sed -n 's/^message: *//p' "$status_file" 2>/dev/null)
write_cm "${phase:-Done}" "${message:-}" final
[ "$status" = success ]
"""
_RELAY = _RELAY_TEMPLATE.replace("@NAME_LABEL@", LABEL_NAME).replace(
    "@NAMESPACE_LABEL@", LABEL_NAMESPACE
)


def _labels(name: str, namespace: str) -> dict[str, str]:
    return owned_labels({}, namespace, name) | {"app": "dynamo-profiler", "dgdr": name}


def _merge_by_name(base: list[dict[str, Any]], extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = {item.get("name") for item in extra}
    return [item for item in base if item.get("name") not in names] + list(extra)


def profiling_job(
    name: str, namespace: str, uid: str, spec: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The Job for a thorough DGDR, and the override fields that were not applied."""
    labels = _labels(name, namespace)
    env = [
        {"name": "DGDR_NAME", "value": name},
        {"name": "DGDR_NAMESPACE", "value": namespace},
        {"name": "DGDR_UID", "value": uid},
    ]
    mounts: list[dict[str, Any]] = [{"name": "profiling-output", "mountPath": OUTPUT_DIR}]
    volumes: list[dict[str, Any]] = [{"name": "profiling-output", "emptyDir": {}}]
    cache = spec.get("modelCache") or {}
    if cache.get("pvcName"):
        mounts.append(
            {
                "name": "model-cache",
                "mountPath": cache.get("pvcMountPath", "/opt/model-cache"),
                "readOnly": True,
            }
        )
        volumes.append(
            {
                "name": "model-cache",
                "persistentVolumeClaim": {"claimName": cache["pvcName"], "readOnly": True},
            }
        )
    profiler = {
        "name": "profiler",
        "image": spec.get("image") or "",
        "command": ["python", "-m", "dynamo.profiler"],
        "args": ["--config", json.dumps(spec, sort_keys=True), "--output-dir", OUTPUT_DIR],
        "workingDir": "/workspace",
        "env": env,
        "volumeMounts": mounts,
    }
    sidecar = {
        "name": "output-copier",
        "image": SIDECAR_IMAGE,
        "command": ["/bin/sh", "-c", _RELAY],
        "env": env,
        "volumeMounts": [{"name": "profiling-output", "mountPath": OUTPUT_DIR, "readOnly": True}],
    }
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"profile-{name}",
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": {OWNER_UID: uid},
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{DGDR_VERSION}",
                    "kind": DGDR_KIND,
                    "name": name,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": "dgdr-profiling-job",
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "runAsGroup": 1000,
                        "fsGroup": 1000,
                    },
                    "containers": [profiler, sidecar],
                    "volumes": volumes,
                },
            },
        },
    }
    overrides = (spec.get("overrides") or {}).get("profilingJob") or {}
    ignored = merge_overrides(job, overrides)
    return job, ignored


def merge_overrides(job: dict[str, Any], overrides: dict[str, Any]) -> list[str]:
    """Apply `overrides` (a JobSpec) to `job` in place; return the fields not applied."""
    prefix = "spec.overrides.profilingJob"
    ignored: list[str] = []
    spec = job["spec"]
    for key, value in overrides.items():
        if key in JOB_FIELDS:
            spec[key] = copy.deepcopy(value)
        elif key != "template":
            ignored.append(f"{prefix}.{key}")
    template = overrides.get("template") or {}
    for key in template:
        if key not in ("metadata", "spec"):
            ignored.append(f"{prefix}.template.{key}")
    meta_over = template.get("metadata") or {}
    meta = spec["template"]["metadata"]
    for key, value in meta_over.items():
        if key == "labels":
            for label, label_value in value.items():
                if label in PROTECTED_LABELS:
                    ignored.append(f"{prefix}.template.metadata.labels.{label}")
                else:
                    meta["labels"][label] = label_value
        elif key == "annotations":
            meta.setdefault("annotations", {}).update(value)
        else:
            ignored.append(f"{prefix}.template.metadata.{key}")
    pod = spec["template"]["spec"]
    for key, value in (template.get("spec") or {}).items():
        path = f"{prefix}.template.spec.{key}"
        if key in POD_REPLACE:
            pod[key] = copy.deepcopy(value)
        elif key == "imagePullSecrets":
            have = {s.get("name") for s in pod.get("imagePullSecrets", [])}
            pod["imagePullSecrets"] = pod.get("imagePullSecrets", []) + [
                s for s in value if s.get("name") not in have
            ]
        elif key == "securityContext":
            pod["securityContext"] = {**pod.get("securityContext", {}), **value}
        elif key == "volumes":
            pod["volumes"] = _merge_by_name(pod["volumes"], copy.deepcopy(value))
        elif key == "containers":
            ignored.extend(_merge_container(pod["containers"][0], value, path))
        else:
            ignored.append(path)
    return ignored


def _merge_container(profiler: dict[str, Any], containers: list[Any], path: str) -> list[str]:
    ignored = [f"{path}[{i}]" for i in range(1, len(containers))]
    if not containers:
        return ignored
    first = containers[0] or {}
    for key, value in first.items():
        if key == "image":
            profiler["image"] = value
        elif key == "resources":
            profiler["resources"] = copy.deepcopy(value)
        elif key in CONTAINER_MERGE_BY_NAME:
            profiler[key] = _merge_by_name(profiler.get(key, []), copy.deepcopy(value))
        elif key != "name":
            ignored.append(f"{path}[0].{key}")
    return ignored
