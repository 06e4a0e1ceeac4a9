"""Properties of every profile over random specs and hardware: finite JSON, the budget kept, a
non-dominated front, the pick meeting the SLA whenever any config does; or a refusal in the
sub-phase where it belongs. Both branches must be reached (`Reached`)."""

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from dgdr.domain.hardware import ResolvedHardware
from dgdr.domain.spec import GPU_SKUS, DGDRSpec
from sim import ProfilingError, models, profile

from .reached import Reached

slas = st.one_of(
    st.none(),
    st.fixed_dictionaries({"ttft": st.floats(1, 20000), "itl": st.floats(0.5, 500)}),
    st.fixed_dictionaries({"e2eLatency": st.floats(10, 600000)}),
)
workloads = st.fixed_dictionaries({"isl": st.integers(1, 40000), "osl": st.integers(1, 8000)})


def _finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def test_profile_invariants() -> None:
    reached = Reached()

    @settings(max_examples=150, deadline=None, database=None)
    @given(
        sku=st.sampled_from(GPU_SKUS),
        model=st.sampled_from(sorted(models())),
        total=st.integers(1, 64),
        per_node=st.integers(1, 8),
        sla=slas,
        workload=workloads,
    )
    def check(
        sku: str,
        model: str,
        total: int,
        per_node: int,
        sla: dict[str, float] | None,
        workload: dict[str, int],
    ) -> None:
        raw: dict[str, object] = {"model": model, "workload": workload}
        if sla is not None:
            raw["sla"] = sla
        spec = DGDRSpec.model_validate(raw)
        hw = ResolvedHardware.from_dict(
            {"gpuSku": sku, "totalGpus": total, "numGpusPerNode": per_node}
        )
        try:
            result = profile(spec, hw, name="p", namespace="ns")
        except ProfilingError as err:
            assert err.sub_phase in {"Initializing", "SelectingConfig"}
            reached("refused")
            return
        reached("profiled")
        assert result.pareto
        assert _finite(result.pareto)
        json.dumps(result.pareto, allow_nan=False)
        json.dumps(result.selected_config, allow_nan=False)
        for point in result.pareto:
            assert point["config"]["totalGpus"] <= total
        configs = [p["config"] for p in result.pareto]
        # The selected config is always listed; it may sit off the front only when it misses the SLA.
        # Without a load to match, configs are ranked (and the front judged) by tokens/s per GPU
        # of the whole budget: GPUs a config leaves idle count against it.
        on_front = [c for c in configs if not (c["selected"] and not c["meetsSla"])]
        for c in configs:
            assert c["budgetGpus"] == total
            per_budget = c["tokensPerSecondPerGpu"] * c["totalGpus"] / total
            assert math.isclose(
                c["tokensPerSecondPerBudgetGpu"], per_budget, rel_tol=1e-3, abs_tol=1e-3
            )
        front = [(c["tokensPerSecondPerUser"], c["tokensPerSecondPerBudgetGpu"]) for c in on_front]
        for a in front:  # mutually non-dominated
            assert not any(b != a and b[0] >= a[0] and b[1] >= a[1] for b in front)
        (selected,) = [c for c in configs if c["selected"]]
        if any(c["meetsSla"] for c in configs):  # the pick meets the SLA whenever any config does
            assert selected["meetsSla"]
        components = result.selected_config["spec"]["components"]
        assert result.selected_config["spec"]["backendFramework"] == result.backend
        assert result.backend in {"vllm", "sglang", "trtllm"}
        workers = [c for c in components if c["type"] in ("worker", "prefill", "decode")]
        assert len(workers) in (1, 2)
        if len(workers) == 2:
            assert {w["type"] for w in workers} == {"prefill", "decode"}
        used = 0
        for worker in workers:
            (main,) = worker["podTemplate"]["spec"]["containers"]
            tp = int(main["resources"]["limits"]["nvidia.com/gpu"])
            assert tp <= min(per_node, total)
            assert worker["replicas"] >= 1
            used += tp * worker["replicas"]
        assert used <= total
        assert "\n" not in result.message

    check()
    reached.assert_reached("profiled", "refused")
