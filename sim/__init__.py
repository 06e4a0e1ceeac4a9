"""Rapid profiling without a cluster: a roofline model of a dense LLM on a GPU SKU, a search over
tensor parallelism, batch size and replicas under the SLA, and the DGD for the picked config.

Public API: `profile`, `ProfileResult`, `ProfilingError`; `estimate`, `Estimate`, `EstimateError`
(one operating point of a dense, MoE or MLA model); the catalogs are `gpus()` and `models()`.
This package imports neither NATS, Kubernetes nor the event store.
"""

from ._catalog import Gpu, ModelArch, gpus, models
from ._errors import SUB_PHASES, EstimateError, ProfilingError
from ._estimate import BACKENDS, MODES, Estimate, estimate
from ._profile import ProfileResult, profile

__all__ = [
    "BACKENDS",
    "MODES",
    "SUB_PHASES",
    "Estimate",
    "EstimateError",
    "Gpu",
    "ModelArch",
    "ProfileResult",
    "ProfilingError",
    "estimate",
    "gpus",
    "models",
    "profile",
]
