"""The profile's stages one by one: resolve, sweep, search, pick per mode, planner objects, DGD plan
and the message words (the whole pipeline is `test_profile.py`'s and the golden files')."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import sim._catalog
from dgdr.domain.hardware import ResolvedHardware
from dgdr.domain.spec import SLA, Workload
from sim import ProfilingError, gpus, models, profile
from sim._deploy import (
    PlannerObjects,
    curves_message,
    dgd_plan,
    generating_message,
    planner_objects,
)
from sim._dgd import build_dgd
from sim._dgd_model import main_container
from sim._message import auto_note, load_note, ms, result_message, shape, sla_summary
from sim._planner import autoscale_pick
from sim._resolve import AUTO_BACKENDS, Setup, initializing_message, resolve
from sim._search import Candidate, Pick, rank_key
from sim._select import Searched, search_backends, select, selecting_message
from sim._sweep import decode_message, prefill_message, sweep_decode, sweep_prefill

H200x8 = ResolvedHardware.from_dict({"gpuSku": "h200_sxm", "totalGpus": 8, "numGpusPerNode": 8})
OWNED = {
    "dgdr.nvidia.com/name": "p",
    "dgdr.nvidia.com/namespace": "ns",
    "nvidia.com/managed-by": "dgdr",
}


def _hw(sku: str, total: int, per_node: int = 8) -> ResolvedHardware:
    return ResolvedHardware.from_dict(
        {"gpuSku": sku, "totalGpus": total, "numGpusPerNode": per_node}
    )


def _setup(hardware: ResolvedHardware = H200x8, **spec: Any) -> Setup:
    return resolve(
        {"model": "Qwen/Qwen3-0.6B", "backend": "vllm", **spec}, hardware, name="p", namespace="ns"
    )


def _searched(hardware: ResolvedHardware = H200x8, **spec: Any) -> tuple[Setup, Searched]:
    setup = _setup(hardware, **spec)
    sweep = sweep_prefill(setup)
    return setup, search_backends(setup, sweep, sweep_decode(setup, sweep))


def _candidate(**fields: Any) -> Candidate:
    base: dict[str, Any] = {
        "backend": "vllm",
        "tp": 2,
        "batch": 8,
        "replicas": 2,
        "ttft_ms": 150.0,
        "itl_ms": 12.5,
        "e2e_ms": 1000.0,
        "tokens_per_s_per_gpu": 1234.5,
        "tokens_per_s_per_user": 80.0,
        "requests_per_s": 8.0,
        "meets_sla": True,
        "worst_ratio": 0.5,
    }
    return Candidate(**{**base, **fields})


# --- resolve ---------------------------------------------------------------------------------


def test_resolve_reads_a_manifest_and_the_hardware_of_its_spec() -> None:
    manifest = {
        "apiVersion": "nvidia.com/v1beta1",
        "kind": "DynamoGraphDeploymentRequest",
        "metadata": {"name": "chat", "namespace": "team"},
        "spec": {
            "model": "Qwen/Qwen3-0.6B",
            "hardware": {"gpuSku": "h100_sxm", "totalGpus": 4},
        },
    }
    setup = resolve(manifest, None)
    assert (setup.name, setup.namespace) == ("chat", "team")
    assert setup.gpu is gpus()["h100_sxm"]
    assert (setup.total_gpus, setup.gpus_per_node) == (4, 8)
    assert setup.auto and setup.backends == AUTO_BACKENDS == ("vllm", "sglang", "trtllm")
    assert resolve(manifest, None, name="other").name == "other"


def test_the_profile_never_reads_the_gpu_sku_as_a_string_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(value: str) -> None:
        raise AssertionError(f"the SKU {value!r} was normalised again")

    monkeypatch.setattr(sim._catalog, "gpu_sku_named", refuse)
    spec = {
        "model": "Qwen/Qwen3-0.6B",
        "backend": "vllm",
        "searchStrategy": "thorough",  # the request-level simulator gets the GPU record too
        "workload": {"isl": 500, "osl": 20, "concurrency": 4},
    }
    assert profile(spec, H200x8).message.startswith("Picked vllm")


def test_resolve_refuses_a_context_longer_than_the_models() -> None:
    longest = models()["Qwen/Qwen3-0.6B"].max_position_embeddings
    with pytest.raises(ProfilingError) as err:
        _setup(workload={"isl": longest, "osl": 1})
    assert err.value.sub_phase == "Initializing"
    assert f"{longest + 1} tokens exceeds Qwen/Qwen3-0.6B's max context of {longest}" in str(
        err.value
    )


def test_the_initializing_report_names_model_size_gpus_workload_and_backends() -> None:
    setup = _setup(workload={"isl": 3000, "osl": 500})
    assert initializing_message(setup) == (
        "rapid roofline for Qwen/Qwen3-0.6B (0.60 B params, 1.2 GB bf16) on 8 x h200_sxm "
        "(8 per node), isl 3000, osl 500, backend vllm"
    )
    assert initializing_message(_setup(backend="auto")).endswith(
        "backend auto (vllm, sglang, trtllm)"
    )


# --- sweep -----------------------------------------------------------------------------------


def test_one_node_sweep_searches_every_tp_the_heads_allow_and_says_which_it_skips() -> None:
    setup = _setup(model="Qwen/Qwen2.5-0.5B-Instruct")  # 14 attention heads, 2 KV heads
    sweep = sweep_prefill(setup)
    assert (sweep.tps, sweep.skipped) == ((1, 2), (4, 8))
    assert sweep.layouts.pp == (1, 1) and sweep.notes == ()
    assert set(sweep.grids) == {"vllm"} and sweep.grids["vllm"].tp.tolist() == [1, 2]
    assert "TP 4,8 skipped (incompatible with 14 attention / 2 KV heads)" in prefill_message(
        setup, sweep
    )


def test_a_moe_model_is_also_searched_with_experts_spread_over_the_tp_gpus() -> None:
    sweep = sweep_prefill(_setup(model="Qwen/Qwen3-30B-A3B"))
    rows = set(zip(sweep.layouts.tp, sweep.layouts.ep, strict=True))
    assert {(1, 1), (2, 2), (8, 8)} <= rows and not {(2, 1), (8, 1)} & rows


def test_multinode_layouts_only_when_nothing_fits_one_node() -> None:
    setup = _setup(_hw("h100_sxm", 16), model="deepseek-ai/DeepSeek-R1", backend="sglang")
    sweep = sweep_prefill(setup)
    assert sweep.tps == (16,)
    rows = sweep.layouts
    assert list(zip(rows.tp, rows.ep, rows.pp, rows.ranks(), strict=True)) == [
        (16, 16, 1, 1),
        # every TP within a node, its experts spread over each stage's GPUs, with as many
        # stages as the 16 GPUs allow
        (8, 8, 2, 1),
        (4, 4, 4, 1),
        (2, 2, 8, 1),
        (1, 1, 16, 1),
        *((w, w, 1, w) for w in (2, 4, 8, 16)),  # DEP workers, up to the budget
    ]
    assert sweep.notes == (
        "deepseek-ai/DeepSeek-R1 does not fit one node of 8 h100_sxm: TP 16 across nodes and "
        "TP 8 x PP 2; TP 4 x PP 4; TP 2 x PP 8; TP 1 x PP 16 across nodes searched "
        "(multinode workers)",
    )
    splits = sweep_decode(setup, sweep)
    # never pipelined; the 16-GPU worker is TP 16 or DEP 16 (DEP 8 does not fit 8 h100_sxm)
    assert all(c.tp == 16 and c.prefill_tp == 16 for c in splits["sglang"])


def test_a_budget_without_room_for_a_multinode_worker_keeps_the_one_node_sweep() -> None:
    setup = _setup(_hw("h100_sxm", 12), model="deepseek-ai/DeepSeek-R1")
    sweep = sweep_prefill(setup)
    assert sweep.tps == (1, 2, 4, 8) and sweep.notes == ()
    with pytest.raises(ProfilingError) as err:
        search_backends(setup, sweep, sweep_decode(setup, sweep))
    assert err.value.sub_phase == "SelectingConfig" and "does not fit" in str(err.value)


def test_one_gpu_gives_no_disaggregated_combination() -> None:
    setup = _setup(_hw("h200_sxm", 1))
    sweep = sweep_prefill(setup)
    splits = sweep_decode(setup, sweep)
    assert splits == {"vllm": []}
    assert "; 0 disaggregated (prefill TP, decode TP, batch) combinations" in decode_message(
        setup, sweep, splits
    )


# --- search and pick -------------------------------------------------------------------------


def test_backends_are_ranked_by_their_picks() -> None:
    setup, searched = _searched(backend="auto")
    assert sorted(searched.ranked) == sorted(AUTO_BACKENDS) and not searched.some_unfit
    keys = [rank_key(searched.picks[b].chosen) for b in searched.ranked]
    assert keys == sorted(keys)
    selection = select(setup, searched)
    assert selection.backend == searched.ranked[0]
    assert selection.auto_note is not None
    assert selection.auto_note.startswith(f"backend auto: {selection.backend} won (")
    assert {c.backend for c in selection.front} <= set(AUTO_BACKENDS)
    assert "(TP, backend) pairs meet the SLA" in selecting_message(setup, searched, selection)


def test_default_mode_deploys_the_search_pick() -> None:
    setup, searched = _searched()
    selection = select(setup, searched)
    pick = searched.picks["vllm"]
    assert selection.chosen == pick.chosen and selection.front == tuple(pick.pareto)
    assert not selection.autoscaled and selection.auto_note is None
    assert [n for n in selection.notes if not n.startswith("margin: ")] == []
    assert selection.simulated == ""


def test_load_match_mode_sizes_replicas_to_the_load() -> None:
    setup, searched = _searched(workload={"isl": 3000, "osl": 500, "requestRate": 2})
    c = select(setup, searched).chosen
    assert c.load_match and c.served == 1.0
    assert c.gpus < setup.total_gpus  # a small load does not take the whole budget


def test_autoscale_mode_starts_one_prefill_and_one_decode_worker() -> None:
    setup, searched = _searched(features={"planner": {}})
    selection = select(setup, searched)
    c = selection.chosen
    assert selection.autoscaled and c.mode == "disagg"
    assert (c.prefill_workers, c.replicas) == (1, 1)


@pytest.mark.parametrize("model", ["Qwen/Qwen3-0.6B", "Qwen/Qwen3-8B", "Qwen/Qwen3-32B"])
def test_under_auto_the_best_autoscale_start_wins(model: str) -> None:
    setup, searched = _searched(backend="auto", model=model, features={"planner": {}})
    starts = [autoscale_pick(searched.splits[b], setup.workload, setup.sla) for b in AUTO_BACKENDS]
    best = min((s for s in starts if s is not None), key=rank_key)
    selection = select(setup, searched)
    assert selection.chosen == best and selection.backend == best.backend


def test_autoscale_without_a_disaggregated_config_deploys_without_the_planner() -> None:
    setup, searched = _searched(_hw("h200_sxm", 1), features={"planner": {}})
    selection = select(setup, searched)
    assert not selection.autoscaled and selection.chosen.mode == "agg"
    assert tuple(n for n in selection.notes if not n.startswith("margin: ")) == (
        "features.planner needs a disaggregated deployment and none fits 1 h200_sxm GPUs: "
        "deployed without the Planner",
    )
    assert planner_objects(setup, selection).configmaps == []


def test_mocker_mode_picks_the_best_disaggregated_config_or_fails_without_one() -> None:
    setup, searched = _searched(features={"mocker": {"enabled": True}})
    selection = select(setup, searched)
    split = [c for b in searched.ranked for c in searched.splits[b]]
    assert selection.chosen == min(split, key=rank_key)
    assert "the mocker is disagg" in selection.notes[-1]
    setup, searched = _searched(_hw("h200_sxm", 1), features={"mocker": {"enabled": True}})
    with pytest.raises(ProfilingError) as err:
        select(setup, searched)
    assert err.value.sub_phase == "SelectingConfig" and "totalGpus to 2 or more" in str(err.value)


def test_thorough_mode_picks_from_the_simulated_shortlist() -> None:
    setup, searched = _searched(
        searchStrategy="thorough", workload={"isl": 500, "osl": 20, "concurrency": 4}
    )
    selection = select(setup, searched)
    shortlist = [*searched.picks["vllm"].candidates, *searched.splits["vllm"]]
    assert selection.chosen in shortlist
    assert selection.simulated.startswith("; thorough: ")
    assert selection.notes[-1].startswith("thorough: picked and judged as measured")
    assert selection.measured is not None
    assert selection.measured[1].startswith("SLA met as measured: p90 TTFT")


# --- planner objects and the DGD -------------------------------------------------------------


def test_nothing_is_deployed_next_to_the_workers_by_default() -> None:
    setup, searched = _searched()
    objects = planner_objects(setup, select(setup, searched))
    assert (objects.configmaps, objects.services, objects.mocker_data) == ([], {}, None)
    assert objects.curves is None


def test_autoscale_deploys_the_planner_with_its_two_configmaps() -> None:
    setup, searched = _searched(features={"planner": {}})
    selection = select(setup, searched)
    objects = planner_objects(setup, selection)
    names = [m["metadata"]["name"] for m in objects.configmaps]
    assert [n.rsplit("-", 1)[0] for n in names] == ["planner-config", "planner-profile-data"]
    assert all(m["metadata"]["labels"] == OWNED for m in objects.configmaps)
    volumes = objects.services["Planner"]["extraPodSpec"]["volumes"]
    assert [v["configMap"]["name"] for v in volumes] == names
    assert objects.mocker_data is None
    assert curves_message(selection, objects).startswith("planner curves: prefill TTFT over ")


def test_the_mocker_reads_the_profile_data_configmap() -> None:
    setup, searched = _searched(features={"mocker": {"enabled": True}})
    objects = planner_objects(setup, select(setup, searched))
    (data,) = objects.configmaps
    assert data["metadata"]["name"].startswith("planner-profile-data-")
    assert objects.mocker_data == data["metadata"]["name"] and objects.services == {}


@pytest.mark.parametrize(
    ("hardware", "spec"),
    [
        (H200x8, {}),
        (
            _hw("h200_sxm", 16),
            {
                "model": "meta-llama/Llama-3.3-70B-Instruct",
                "backend": "trtllm",
                "sla": {"ttft": 3000, "itl": 25},
                "workload": {"isl": 8000, "osl": 500},
            },
        ),
        (
            _hw("h100_sxm", 16),
            {
                "model": "deepseek-ai/DeepSeek-R1",
                "backend": "sglang",
                "workload": {"isl": 2000, "osl": 200},
            },
        ),
    ],
    ids=["agg", "disagg", "multinode"],
)
def test_the_dgd_holds_exactly_the_gpus_of_the_selected_config(
    hardware: ResolvedHardware, spec: dict[str, Any]
) -> None:
    setup, searched = _searched(hardware, **spec)
    selection = select(setup, searched)
    objects = planner_objects(setup, selection)
    plan = dgd_plan(setup, selection, objects)
    assert (plan.prefill is None) == (selection.chosen.mode == "agg")
    assert plan.prefill is None or plan.prefill.pp == 1
    dgd, notes = build_dgd(plan)
    assert notes == [] and dgd["metadata"]["labels"] == OWNED
    workers = [c for c in dgd["spec"]["components"] if c["type"] in ("worker", "prefill", "decode")]
    used = sum(
        int(_main(w)["resources"]["limits"]["nvidia.com/gpu"])
        * w.get("multinode", {"nodeCount": 1})["nodeCount"]
        * w["replicas"]
        for w in workers
    )
    assert used == selection.chosen.gpus <= hardware.total_gpus
    assert generating_message(setup, selection, objects, dgd).startswith(
        "generated DGD p-dgd: Frontend + "
    )


def _main(component: dict[str, Any]) -> dict[str, Any]:
    """A v1beta1 component's main container."""
    container = main_container(component)
    assert container is not None
    return container


def test_a_pipelined_pick_gives_a_multinode_worker_of_tp_x_pp_gpus() -> None:
    setup, searched = _searched(
        _hw("h100_sxm", 16), model="deepseek-ai/DeepSeek-R1", workload={"isl": 2000, "osl": 200}
    )
    pipelined = next(c for c in searched.picks["vllm"].candidates if c.pp == 2)
    selection = dataclasses.replace(select(setup, searched), chosen=pipelined)
    dgd, _ = build_dgd(dgd_plan(setup, selection, PlannerObjects()))
    (worker,) = [c for c in dgd["spec"]["components"] if c["name"] == "VllmDecodeWorker"]
    assert worker["type"] == "worker" and worker["multinode"] == {"nodeCount": 2}
    assert _main(worker)["resources"]["limits"]["nvidia.com/gpu"] == "8"
    args = _main(worker)["args"]
    assert args[args.index("--pipeline-parallel-size") + 1] == "2"


# --- the words -------------------------------------------------------------------------------


def test_figures_keep_about_three_significant_digits() -> None:
    assert [ms(x) for x in (1.234, 12.34, 123.4, 1234.5)] == ["1.23", "12.3", "123", "1234"]


def test_the_sla_verdict_says_by_how_much_each_target_is_missed() -> None:
    c = _candidate(ttft_ms=150.0, itl_ms=12.5, e2e_ms=1000.0)
    assert sla_summary(c, SLA.model_validate({"ttft": 100, "itl": 20}), met=False) == (
        "SLA missed: TTFT 150 ms > 100 ms (+50%), ITL 12.5 ms <= 20.0 ms "
        "(closest achievable config)"
    )
    assert sla_summary(c, SLA.model_validate({"e2eLatency": 2000}), met=True) == (
        "SLA met: e2eLatency 1000 ms <= 2000 ms"
    )


def test_shapes_in_words() -> None:
    assert shape(_candidate(tp=4, ep=4, pp=2, replicas=1)) == "agg TP 4 EP 4 PP 2 x 1 replica(s)"
    disagg = _candidate(mode="disagg", prefill_tp=1, prefill_workers=2, tp=2, replicas=3)
    assert shape(disagg) == "disagg prefill TP 1 x 2 + decode TP 2 x 3"


def test_the_load_note_says_what_the_load_needs_and_what_is_served() -> None:
    c = _candidate(tp=2, replicas=2, requests_per_s=8.0)  # 4 req/s per replica
    assert load_note(Workload(), c, 8) is None
    assert (
        load_note(Workload.model_validate({"requestRate": 10}), c, 8)
        == "requestRate 10 req/s needs 3 replica(s)"
    )
    short = _candidate(tp=2, replicas=2, requests_per_s=8.0, served=0.8)
    assert load_note(Workload.model_validate({"requestRate": 10}), short, 4) == (
        "requestRate 10 req/s needs 3 replicas but 4 GPUs allow 2: 80% of the load served"
    )
    disagg = _candidate(mode="disagg", prefill_tp=1, prefill_workers=1, replicas=2, served=0.5)
    assert load_note(Workload.model_validate({"concurrency": 64}), disagg, 4) == (
        "concurrency 64: 1 prefill + 2 decode worker(s) within 4 GPUs: 50% of the load served"
    )


def _pick(c: Candidate) -> Pick:
    return Pick(chosen=c, met=c.meets_sla, per_tp={}, pareto=[c], evaluated=1, candidates=[c])


def test_the_auto_note_compares_the_winner_with_the_runner_up() -> None:
    won = _candidate(backend="sglang", tokens_per_s_per_gpu=1100.0)
    both = {"sglang": _pick(won), "vllm": _pick(_candidate(tokens_per_s_per_gpu=1000.0))}
    assert auto_note(both, ["sglang", "vllm"], AUTO_BACKENDS, skipped_backends=True) == (
        "backend auto: sglang won (1100 vs 1000 tok/s/GPU for vllm, +10.0%; trtllm cannot fit "
        "the model)"
    )
    missed = _candidate(meets_sla=False, worst_ratio=1.25)
    one_met = {"sglang": _pick(won), "vllm": _pick(missed)}
    assert "vllm's closest config misses it by 25%" in auto_note(
        one_met, ["sglang", "vllm"], AUTO_BACKENDS, skipped_backends=False
    )
    alone = auto_note({"vllm": _pick(won)}, ["vllm"], AUTO_BACKENDS, skipped_backends=False)
    assert alone == "backend auto: vllm won (the only backend that fits)"


def test_the_result_message_puts_the_verdict_and_the_load_before_the_notes() -> None:
    c = _candidate(tp=2, replicas=2, requests_per_s=8.0)
    message = result_message(
        c,
        backend="vllm",
        gpu_id="h200_sxm",
        total_gpus=8,
        sla=SLA.model_validate({"ttft": 200, "itl": 20}),
        workload=Workload.model_validate({"requestRate": 10}),
        notes=["first note", "second note"],
    )
    assert message.split("; ") == [
        "Picked vllm agg TP 2 x 2 replica(s) (4/8 h200_sxm GPUs), batch 8/worker, 1234 tok/s/GPU, "
        "80.0 tok/s/user (roofline estimate)",
        "SLA met: TTFT 150 ms <= 200 ms, ITL 12.5 ms <= 20.0 ms",
        "requestRate 10 req/s needs 3 replica(s)",
        "first note",
        "second note",
    ]
