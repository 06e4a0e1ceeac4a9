"""Rapid profiling without a cluster: a calibrated roofline model of an LLM (dense, MoE, MLA) on a
GPU SKU, a search over aggregated (TP, batch, replicas) and disaggregated (prefill/decode workers)
configurations, and backend for `backend: auto`, under the SLA, and the DGD for the picked config
(with the planner's curves and ConfigMaps, or Dynamo's mocker, when the spec asks).

Public API: `profile` (a DGDRSpec, a spec dict or a whole manifest dict; hardware from the spec
unless given), `ProfileResult`, `ProfilingError`; `estimate`, `Estimate`, `EstimateError`
(one operating point of a dense, MoE or MLA model, calibrated against AIConfigurator),
`calibration_source`; `profile_async` runs `profile` in a thread and reports each step on the
event loop as it happens (`StepReport`); `simulate`, `simulate_disagg`, `SimulationResult` (request-level
discrete-event simulation of an aggregated or a disaggregated deployment; `simulate_config` for a
config as `profile` reports it); the catalogs are `gpus()` and `models()`, and `model_from_config` /
`local_config_path` read a local Hugging Face config.json for a model the catalog lacks (a path, or
a hub id in the local Hugging Face cache); where the operator allows the Hub, `needs_fetch` and
`fetch_config` bring a hub id's config.json into that cache first (`Fetched`).
`spec.model` as a local path is read only under the operator's model directories (`model_dirs`
of `profile`, `can_estimate`, `model_refusal`, `local_config_path`: a tuple of directories, `()`
by default, so no path; None for offline commands, any path): `ModelDirs`, `looks_like_path`.
A model with neither (`can_estimate` is False) takes Dynamo's naive fallback: `profile` returns
the smallest TP that holds its weights as its name states them, aggregated, with
`ProfileResult.sla_verdict` "unverified" (`SlaVerdict`); `model_refusal` says why a spec's model
cannot be profiled at all (None when it can), for validation before a profile starts.
The DGD is generated as `nvidia.com/v1beta1` (`DGD_API_VERSIONS`, the default first);
`convert_dgd(dgd, api_version)` converts any DGD dict between v1beta1 and v1alpha1, returning
the converted copy and a note per field the target version has no place for.
This package imports neither NATS, Kubernetes nor the event store.
"""

from dgdr.domain.errors import EstimateError, ProfilingError
from dgdr.domain.phases import SUB_PHASES

from ._catalog import Gpu, ModelArch, gpus, models
from ._des import SimulationResult, simulate
from ._des_disagg import simulate_disagg
from ._dgd import DEFAULT_DGD_API_VERSION, DGD_API_VERSIONS
from ._dgd_convert import convert_dgd
from ._estimate import BACKENDS, MODES, Estimate, calibration_source, estimate
from ._hfconfig import local_config_path, model_from_config
from ._hffetch import Fetched, fetch_config, needs_fetch
from ._modelpath import ModelDirs, looks_like_path
from ._naive import can_estimate, model_refusal
from ._profile import ProfileResult, SlaVerdict, profile
from ._runner import StepReport, profile_async
from ._thorough import simulate_config, slots

__all__ = [
    "BACKENDS",
    "DEFAULT_DGD_API_VERSION",
    "DGD_API_VERSIONS",
    "MODES",
    "SUB_PHASES",
    "Estimate",
    "EstimateError",
    "Fetched",
    "Gpu",
    "ModelArch",
    "ModelDirs",
    "ProfileResult",
    "ProfilingError",
    "SimulationResult",
    "SlaVerdict",
    "StepReport",
    "calibration_source",
    "can_estimate",
    "convert_dgd",
    "estimate",
    "fetch_config",
    "gpus",
    "local_config_path",
    "looks_like_path",
    "model_from_config",
    "model_refusal",
    "models",
    "needs_fetch",
    "profile",
    "profile_async",
    "simulate",
    "simulate_config",
    "simulate_disagg",
    "slots",
]
