"""The estimator's error band, and the SLA check at its pessimistic edge.

Owns `sim/data/error_band.json` (written by `bench/error_band.py` from the calibration table
`bench/results/fidelity.csv`): per backend, model family (`family`: dense, moe, mla-moe) and estimator mode
(agg: in-flight batching, the aggregated configs; static: batch prefill and pure decode, the
disaggregated workers) a quantile (`BAND_QUANTILE`, the file's `provenance.quantile`: 75 since
2026-11-30) of log(AIC / sim) for TTFT and ITL, as a fraction: how much the estimate may be
optimistic. A config meets the SLA "with margin" when its TTFT x (1 + band) and
ITL x (1 + band) meet it (`ErrorBand.edge`, checked by `sim._search`). A band wider than
`WIDEST_USABLE` (a family the estimator does not yet follow, e.g. MLA-MoE on some backends) is not
picked by: paying for it would cut throughput several-fold on a guess; the pick is then made on the
estimate itself and its message says how wide the band is (`ErrorBand.usable`). No config such a
band covers claims a margin, so next to configs of a usable band (SGLang's DEP workers of an
MLA-MoE model beside its TP workers) those with a measured margin rank first.

DEP workers (attention DP x wide EP, `sim._dep`) are priced by a model of their own, so they
have bands of their own, keyed "backend/dep-family": in aggregated serving from the points of
`bench/results/dep_fidelity.jsonl` that `bench/calibrate_dep.py` held out (DEP workers against
AIC's estimate at the same point); as disaggregated decode workers (mode static), ITL from
`bench/results/dep_disagg_fidelity.jsonl` (DEP decode workers against AIC's disaggregated
estimate; the quarter of those points `bench/calibrate_dep.py` held out), TTFT as in agg. `error_band(..., dep=True)` takes the most
specific DEP band the file has, else the family's TP band.

Failure semantics: a missing file means no band (zero: every nominal pick has margin); a backend or
family the file does not list takes the file's pooled "*" one; a malformed file is a packaging bug and
raises ValueError at import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from ._catalog import ModelArch

BAND_FILE = "error_band.json"
WIDEST_USABLE = 0.5  # a band beyond +50% on TTFT or ITL is reported, not picked by
MODES = ("agg", "static")
DEP_PREFIX = "dep-"  # a DEP band's family key: "trtllm/dep-mla-moe"


@dataclass(frozen=True)
class ErrorBand:
    """How optimistic the estimate may be, as fractions (the `BAND_QUANTILE` of AIC/sim - 1,
    never below 0)."""

    ttft: float = 0.0
    itl: float = 0.0
    family: str = "*"
    dep: bool = False  # measured on DEP workers (`sim._dep`)

    @property
    def subject(self) -> str:
        """What the band was measured on, in words: "mla-moe models", "moe models' DEP workers"."""
        return f"{self.family} models' DEP workers" if self.dep else f"{self.family} models"

    @property
    def usable(self) -> bool:
        """Narrow enough to pick by (`WIDEST_USABLE`)."""
        return max(self.ttft, self.itl) <= WIDEST_USABLE

    def edge(self, ttft: Any, itl: Any) -> tuple[Any, Any]:
        """(TTFT, ITL) at the band's pessimistic edge (scalars or arrays); the estimate itself
        when the band is too wide to pick by."""
        ttft_factor, itl_factor = self.factors
        return ttft * ttft_factor, itl * itl_factor

    @property
    def factors(self) -> tuple[float, float]:
        """What `edge` multiplies TTFT and ITL by."""
        return (1.0 + self.ttft, 1.0 + self.itl) if self.usable else (1.0, 1.0)


@dataclass(frozen=True)
class EdgeFactors:
    """Per worker (arrays): what its TTFT and ITL are multiplied by at the pessimistic edge of
    its band, and whether that band is too wide to pick by (`unmeasured`: no margin claimed)."""

    ttft: Any
    itl: Any
    unmeasured: Any


def edge_factors(band: ErrorBand, dep_band: ErrorBand | None, dep: Any) -> EdgeFactors:
    """The factors of `dep_band` (`band` when None) where `dep` (a bool array: DEP workers), of
    `band` elsewhere."""
    dep_band = dep_band or band
    (t, i), (dt, di) = band.factors, dep_band.factors
    return EdgeFactors(
        np.where(dep, dt, t),
        np.where(dep, di, i),
        np.where(dep, not dep_band.usable, not band.usable),
    )


def family(model: ModelArch) -> str:
    """The band's model family: attention and expert structure, what the estimator's error
    follows (not the vendor)."""
    if model.is_mla:
        return "mla-moe" if model.is_moe else "mla"
    return "moe" if model.is_moe else "dense"


def _load() -> tuple[dict[tuple[str, str], ErrorBand], str, int | None]:
    path = resources.files("sim") / "data" / BAND_FILE
    if not path.is_file():
        return {}, "no error band (sim/data/error_band.json missing)", None
    data = json.loads(path.read_text())
    out: dict[tuple[str, str], ErrorBand] = {}
    for key, modes in data["bands"].items():
        _, _, fam = key.partition("/")
        dep = fam.startswith(DEP_PREFIX)
        fam = fam.removeprefix(DEP_PREFIX)
        for mode, figs in modes.items():
            if not fam or mode not in MODES or not {"ttft", "itl"} <= set(figs):
                raise ValueError(f"{BAND_FILE}: bad band {key}/{mode}: {figs}")
            out[(key, mode)] = ErrorBand(float(figs["ttft"]), float(figs["itl"]), fam, dep)
    prov = data.get("provenance", {})
    quantile = prov.get("quantile")
    if not isinstance(quantile, int) or not 0 < quantile < 100:
        raise ValueError(f"{BAND_FILE}: provenance.quantile must be a percentile, not {quantile!r}")
    return out, f"p{quantile} of log(AIC/sim), {prov.get('date', '?')}", quantile


# BAND_QUANTILE: the percentile of the estimator's optimism the bands cover (None: no file)
BANDS, BAND_SOURCE, BAND_QUANTILE = _load()


def error_band(model: ModelArch, backend: str, mode: str, *, dep: bool = False) -> ErrorBand:
    """The band for this model's family on this backend in this estimator mode ("agg" or
    "static"), of its DEP workers when `dep`: the most specific the file has."""
    fam = family(model)
    keys = (f"{backend}/{fam}", f"*/{fam}", f"{backend}/*", "*/*")
    dep_keys = tuple(k.replace("/", f"/{DEP_PREFIX}") for k in keys) if dep else ()
    for key in (*dep_keys, *keys):
        if (key, mode) in BANDS:
            return BANDS[(key, mode)]
    return ErrorBand(family=fam)
