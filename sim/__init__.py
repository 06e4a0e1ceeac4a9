"""Rapid profiling without a cluster: a roofline model of a dense LLM on a GPU SKU, a search over
tensor parallelism, batch size and replicas under the SLA, and the DGD for the picked config.

Public API: `profile`, `ProfileResult`, `ProfilingError`; the catalogs are `gpus()` and `models()`.
This package imports neither NATS, Kubernetes nor the event store.
"""

from ._catalog import Gpu, ModelArch, gpus, models
from ._errors import SUB_PHASES, ProfilingError
from ._profile import ProfileResult, profile

__all__ = [
    "SUB_PHASES",
    "Gpu",
    "ModelArch",
    "ProfileResult",
    "ProfilingError",
    "gpus",
    "models",
    "profile",
]
