"""The estimator never beats the hardware: a decode step is no faster than reading the weights it
must read from HBM, and a prefill no faster than the GPU's peak FLOP/s allow, for every catalog
model, GPU, backend and TP (hypothesis)."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dgdr.domain.spec import GPU_SKUS
from sim import BACKENDS, estimate, gpus, models
from sim._catalog import ModelArch

MODELS = sorted(models())


def _tp_ok(model: ModelArch, tp: int) -> bool:
    kvh = model.num_key_value_heads
    return model.num_attention_heads % tp == 0 and (model.is_mla or not (kvh % tp and tp % kvh))


def _peak_flops(sku: str) -> float:
    gpu = gpus()[sku]
    return max(gpu.dense_bf16_tflops, gpu.dense_fp8_tflops or 0.0) * 1e12


@settings(max_examples=200, deadline=None, database=None)
@given(
    model_id=st.sampled_from(MODELS),
    sku=st.sampled_from(GPU_SKUS),
    backend=st.sampled_from(sorted(BACKENDS)),
    tp=st.sampled_from([1, 2, 4, 8]),
    batch=st.integers(1, 64),
)
def test_a_decode_step_is_no_faster_than_reading_the_weights(
    model_id: str, sku: str, backend: str, tp: int, batch: int
) -> None:
    model = models()[model_id]
    assume(_tp_ok(model, tp))
    est = estimate(model_id, sku, backend, tp=tp, batch_size=batch, isl=512, osl=2)
    # Dense: every weight is read each step. MoE: at least the non-expert body is.
    body = model.non_expert_body_params * model.body_weight_bytes_per_param
    must_read = (model.weight_bytes if not model.is_moe else body) / tp
    bound_ms = must_read / (gpus()[sku].memory_bandwidth_gbps * 1e9) * 1e3
    assert est.itl_ms >= bound_ms * 0.999, (est.itl_ms, bound_ms)


@settings(max_examples=200, deadline=None, database=None)
@given(
    model_id=st.sampled_from(MODELS),
    sku=st.sampled_from(GPU_SKUS),
    backend=st.sampled_from(sorted(BACKENDS)),
    tp=st.sampled_from([1, 2, 4, 8]),
    batch=st.integers(1, 16),
    isl=st.integers(128, 8192),
)
def test_a_prefill_is_no_faster_than_the_peak_flops(
    model_id: str, sku: str, backend: str, tp: int, batch: int, isl: int
) -> None:
    model = models()[model_id]
    assume(_tp_ok(model, tp))
    est = estimate(model_id, sku, backend, tp=tp, batch_size=batch, isl=isl, osl=1)
    flops = 2.0 * model.active_body_params * isl * batch / tp  # the linear layers alone
    bound_ms = flops / _peak_flops(sku) * 1e3
    assert est.ttft_ms >= bound_ms * 0.999, (est.ttft_ms, bound_ms)
