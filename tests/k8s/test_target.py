"""GPU discovery from node labels (pure)."""

from __future__ import annotations

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
