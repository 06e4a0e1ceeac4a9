"""GPU discovery from node labels, and what a DGD is observed as (both pure)."""

from __future__ import annotations

from typing import Any

from dgdr.domain.target import LABEL_NAME, LABEL_NAMESPACE, OWNER_UID, Observation, observe_dgd
from k8s.emulator.controllers import dgd_status
from k8s.target import hardware_from_nodes


def node(product: str, count: str = "8", memory: str = "81559") -> dict[str, str]:
    return {
        "nvidia.com/gpu.product": product,
        "nvidia.com/gpu.count": count,
        "nvidia.com/gpu.memory": memory,
    }


def test_labelled_nodes_give_sku_per_node_total_and_vram() -> None:
    facts = hardware_from_nodes(
        [node("NVIDIA-H100-80GB-HBM3")] * 2 + [{"kubernetes.io/os": "linux"}]
    )
    assert facts == {"gpuSku": "h100_sxm", "numGpusPerNode": 8, "totalGpus": 16, "vramMb": 81559}


def test_total_gpus_is_capped_at_32_as_dynamo_does() -> None:
    assert hardware_from_nodes([node("NVIDIA-H100-80GB-HBM3")] * 6)["totalGpus"] == 32


def test_the_most_common_product_wins_and_only_its_gpus_count() -> None:
    nodes = [node("NVIDIA-H100-80GB-HBM3")] * 2 + [node("NVIDIA-L4", "4", "23034")]
    facts = hardware_from_nodes(nodes)
    assert (facts["gpuSku"], facts["totalGpus"]) == ("h100_sxm", 16)


def test_nothing_labelled_or_an_unknown_product_gives_no_facts() -> None:
    assert hardware_from_nodes([]) == {}
    assert hardware_from_nodes([{"kubernetes.io/os": "linux"}]) == {}
    assert hardware_from_nodes([node("Tesla-K80")]) == {}


def test_discovery_returns_only_the_facts_a_full_spec_makes_unnecessary() -> None:
    from dgdr.domain.target import DISCOVERED_FACTS

    facts = hardware_from_nodes([node("NVIDIA-H100-80GB-HBM3")])
    assert set(facts) == set(DISCOVERED_FACTS)


def managed_dgd(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "demo-dgd",
            "namespace": "team",
            "labels": {LABEL_NAME: "demo", LABEL_NAMESPACE: "team"},
            "annotations": {OWNER_UID: "uid-1"},
        },
        "spec": {"services": {"Frontend": {"replicas": 1}, "VllmWorker": {"replicas": 3}}},
        "status": status,
    }


def test_an_operator_reported_dgd_counts_its_services_as_dynamo_does() -> None:
    dgd = managed_dgd()
    dgd["status"] = dgd_status(dgd, "successful")  # what Dynamo's operator writes
    assert observe_dgd(dgd) == Observation("team", "demo", "uid-1", "demo-dgd", "successful", 4, 4)
    dgd["status"] = dgd_status(dgd, "pending")
    assert observe_dgd(dgd) == Observation("team", "demo", "uid-1", "demo-dgd", "pending", 4, 0)


def test_services_partly_available_are_counted_whatever_the_state() -> None:
    services = {
        "Frontend": {"replicas": 1, "availableReplicas": 1},
        "VllmWorker": {"replicas": 3, "availableReplicas": 1},
    }
    observed = observe_dgd(managed_dgd(state="pending", services=services))
    assert observed is not None and (observed.replicas, observed.available) == (4, 2)


def test_without_service_counts_the_spec_counts_and_readiness_makes_them_available() -> None:
    ready = observe_dgd(managed_dgd(state="successful"))  # the simulated cluster's shape
    pending = observe_dgd(managed_dgd(state="pending"))
    assert ready is not None and (ready.state, ready.replicas, ready.available) == (
        "successful",
        4,
        4,
    )
    assert pending is not None and (pending.replicas, pending.available) == (4, 0)


def test_a_gone_dgd_is_deleted_and_an_unknown_state_is_pending() -> None:
    gone = observe_dgd(managed_dgd(state="successful"), gone=True)
    assert gone is not None and (gone.state, gone.available) == ("deleted", 0)
    odd = observe_dgd(managed_dgd(state="Reconciling"))
    assert odd is not None and odd.state == "pending"
    assert observe_dgd(managed_dgd()) is not None


def test_a_dgd_no_dgdr_manages_is_not_observed() -> None:
    unlabelled = managed_dgd(state="successful")
    unlabelled["metadata"]["labels"] = {}
    unowned = managed_dgd(state="successful")
    unowned["metadata"]["annotations"] = {}
    assert observe_dgd(unlabelled) is None and observe_dgd(unowned) is None


def test_a_v1beta1_dgd_counts_its_components_from_status_then_from_spec() -> None:
    dgd = managed_dgd(state="pending")
    dgd["apiVersion"] = "nvidia.com/v1beta1"
    dgd["spec"] = {
        "components": [
            {"name": "Frontend", "type": "frontend", "replicas": 1},
            {"name": "VllmDecodeWorker", "type": "worker", "replicas": 2},
            {"name": "Planner", "type": "planner"},  # no replicas stated: one
        ]
    }
    unreported = observe_dgd(dgd)
    assert unreported is not None and (unreported.replicas, unreported.available) == (4, 0)
    dgd["status"]["components"] = {
        "Frontend": {"componentKind": "Deployment", "replicas": 1, "availableReplicas": 1},
        "VllmDecodeWorker": {"componentKind": "Deployment", "replicas": 2, "availableReplicas": 1},
    }
    reported = observe_dgd(dgd)
    assert reported is not None and (reported.replicas, reported.available) == (3, 2)
