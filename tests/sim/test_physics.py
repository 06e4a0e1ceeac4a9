"""The estimator never beats the hardware: a decode step is no faster than reading the weights it
must read from HBM, and a prefill no faster than the GPU's peak FLOP/s allow, for every catalog
model, GPU, backend and TP (hypothesis). The TP sizes are drawn from those the model allows, so no
example is filtered out, and each property asserts that its examples reached the bound check."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dgdr.domain.spec import GPU_SKUS
from sim import BACKENDS, estimate, gpus, models
from sim._catalog import ModelArch

from .reached import Reached

MODELS = sorted(models())


def _tp_ok(model: ModelArch, tp: int) -> bool:
    kvh = model.num_key_value_heads
    return model.num_attention_heads % tp == 0 and (model.is_mla or not (kvh % tp and tp % kvh))


def _allowed_tps(model_id: str) -> list[int]:
    return [tp for tp in (1, 2, 4, 8) if _tp_ok(models()[model_id], tp)]


# Every (model id, TP its heads allow); TP 1 always is, so every model is drawn.
model_and_tp = st.sampled_from([(m, tp) for m in MODELS for tp in _allowed_tps(m)])


def _peak_flops(sku: str) -> float:
    gpu = gpus()[sku]
    return max(gpu.dense_bf16_tflops, gpu.dense_fp8_tflops or 0.0) * 1e12


def test_a_decode_step_is_no_faster_than_reading_the_weights() -> None:
    reached = Reached()

    @settings(max_examples=200, deadline=None, database=None)
    @given(
        model_tp=model_and_tp,
        sku=st.sampled_from(GPU_SKUS),
        backend=st.sampled_from(sorted(BACKENDS)),
        batch=st.integers(1, 64),
    )
    def check(model_tp: tuple[str, int], sku: str, backend: str, batch: int) -> None:
        model_id, tp = model_tp
        model = models()[model_id]
        est = estimate(model_id, sku, backend, tp=tp, batch_size=batch, isl=512, osl=2)
        # Dense: every weight is read each step. MoE: at least the non-expert body is.
        body = model.non_expert_body_params * model.body_weight_bytes_per_param
        must_read = (model.weight_bytes if not model.is_moe else body) / tp
        bound_ms = must_read / (gpus()[sku].memory_bandwidth_gbps * 1e9) * 1e3
        reached("bound checked, TP > 1" if tp > 1 else "bound checked, TP 1")
        assert est.itl_ms >= bound_ms * 0.999, (est.itl_ms, bound_ms)

    check()
    reached.assert_reached("bound checked, TP 1", "bound checked, TP > 1")


def test_a_prefill_is_no_faster_than_the_peak_flops() -> None:
    reached = Reached()

    @settings(max_examples=200, deadline=None, database=None)
    @given(
        model_tp=model_and_tp,
        sku=st.sampled_from(GPU_SKUS),
        backend=st.sampled_from(sorted(BACKENDS)),
        batch=st.integers(1, 16),
        isl=st.integers(128, 8192),
    )
    def check(model_tp: tuple[str, int], sku: str, backend: str, batch: int, isl: int) -> None:
        model_id, tp = model_tp
        model = models()[model_id]
        est = estimate(model_id, sku, backend, tp=tp, batch_size=batch, isl=isl, osl=1)
        flops = 2.0 * model.active_body_params * isl * batch / tp  # the linear layers alone
        bound_ms = flops / _peak_flops(sku) * 1e3
        reached("bound checked, TP > 1" if tp > 1 else "bound checked, TP 1")
        assert est.ttft_ms >= bound_ms * 0.999, (est.ttft_ms, bound_ms)

    check()
    reached.assert_reached("bound checked, TP 1", "bound checked, TP > 1")
