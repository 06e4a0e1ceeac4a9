"""GPU node fixtures: Node objects labelled the way NVIDIA GPU feature discovery labels them.

Owns `gpu_nodes(n, product, gpus_per_node, memory_mb)`, whose result the Emulator's `nodes=`
accepts, and `node_status`, the Ready status a kubelet would report for a node.

Failure semantics: pure functions; they never raise for sensible (non-negative) arguments.
"""

from __future__ import annotations

from typing import Any

DEFAULT_GPU_PRODUCT = "NVIDIA-H200-141GB-HBM3"
DEFAULT_GPUS_PER_NODE = 8
DEFAULT_GPU_MEMORY_MB = 143771


def node_status(capacity: dict[str, str] | None = None, index: int = 0) -> dict[str, Any]:
    """A Ready node status (kubelet-style) with `capacity` added to cpu/memory/pods."""
    cap = {"cpu": "128", "memory": "2113638Mi", "pods": "110", "ephemeral-storage": "3Ti"}
    cap.update(capacity or {})
    return {
        "capacity": dict(cap),
        "allocatable": dict(cap),
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
        "addresses": [{"type": "InternalIP", "address": f"10.0.0.{10 + index}"}],
        "nodeInfo": {  # every field kubernetes_asyncio's V1NodeSystemInfo requires
            "machineID": f"{index:032x}",
            "systemUUID": f"00000000-0000-0000-0000-{index:012x}",
            "bootID": f"b0000000-0000-0000-0000-{index:012x}",
            "kubeProxyVersion": "",
            "kubeletVersion": "v1.37.0",
            "osImage": "Ubuntu 24.04 LTS",
            "kernelVersion": "6.8.0",
            "containerRuntimeVersion": "containerd://2.1.0",
            "architecture": "amd64",
            "operatingSystem": "linux",
        },
    }


def gpu_nodes(
    n: int,
    product: str = DEFAULT_GPU_PRODUCT,
    gpus_per_node: int = DEFAULT_GPUS_PER_NODE,
    memory_mb: int = DEFAULT_GPU_MEMORY_MB,
) -> list[dict[str, Any]]:
    """`n` Node objects named gpu-node-<i> with nvidia.com/gpu.* labels and GPU capacity."""
    nodes = []
    for i in range(n):
        name = f"gpu-node-{i}"
        nodes.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "nvidia.com/gpu.present": "true",
                        "nvidia.com/gpu.product": product,
                        "nvidia.com/gpu.count": str(gpus_per_node),
                        "nvidia.com/gpu.memory": str(memory_mb),
                    },
                },
                "status": node_status({"nvidia.com/gpu": str(gpus_per_node)}, i),
            }
        )
    return nodes
