"""Write `sim/data/moe_kernels.json`: where AIC's measured MoE kernels run slower at a token count
than at a larger one, and by how much.

`sim.estimate` prices routed experts with a roofline (grouped GEMMs over the busiest EP rank's
tokens and touched experts), which grows smoothly with the tokens a step routes. AIConfigurator
0.12's SILICON MoE tables do not everywhere: some kernels, at some token counts, measured several
times slower than at a larger count. TRT-LLM 1.3.0rc20's bf16 CUTLASS MoE on H100 for Qwen3-30B-A3B's
shape (hidden 2048, 768 per expert, 128 experts, top 8) at EP 4 and AIC's power-law 1.2 workload:
0.14 ms per layer at 192 tokens, 0.51 at 256, 0.89 at 320, 0.75 at 384, 0.16 at 512. AIC prices a
TP 4 x EP 4 decode step at 256 sequences at 31.2 ms where ours said 13.7, and a pick sized there
kept half the throughput AIC's best reaches (2026-11-30, the held-out picks).

For every MoE kernel table AIC queries by default (per system and backend, the `current` version of
`systems/query_versions.yaml`, or the newest older one that has a MoE table: AIC's backward fill),
restricted to AIC's power-law workloads (alpha 1.01 for DeepSeek-style models, 1.2 for other MoE
models, `sim._routing.routing_alpha`) and the checkpoint dtypes the catalog maps to
(`sim._moe_kernels.KERNEL_DTYPES`), this computes per (dtype, hidden, expert intermediate, top-k,
experts, expert TP, EP, alpha) the excess of each measured latency over the least latency measured
at that or any larger token count (the table's monotone envelope): `excess(T) = lat(T) -
min(lat(T') for T' >= T)`. Where a table has several kernel sources for one shape, the excess is the
least over them (a regression only when every kernel shows it). Only excesses of at least
`MIN_RELATIVE` of the envelope and `MIN_EXCESS_MS` are kept, with their zero neighbours so that
linear interpolation in tokens (as AIC's) ramps up and down between measured counts.

`sim._moe_kernels` adds the excess, per MoE layer, to the roofline's step time; everything else of
the MoE kernel's curve stays the roofline's. The run-time path reads only the JSON; it never imports
AIC.

    UV_PROJECT_ENVIRONMENT=/tmp/aic-env uv run --group calibration python bench/moe_kernel_table.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from allreduce_table import aic_table_doc, version_key  # noqa: E402

from sim._aic import aic_system, silicon_gpus  # noqa: E402
from sim._moe_kernels import KERNEL_DTYPES, OUT_NAME  # noqa: E402

OUT = ROOT / "sim" / "data" / OUT_NAME
BACKENDS = ("trtllm", "sglang", "vllm")
DISTRIBUTIONS = {"power_law_1.01": 1.01, "power_law_1.2": 1.2}
MIN_RELATIVE = 0.15  # excess over the envelope below this is noise the fitted profile absorbs
MIN_EXCESS_MS = 0.01  # per layer; less is under 1 ms a step even for 61 MoE layers
SHAPE = ["moe_dtype", "hidden_size", "inter_size", "topk", "num_experts", "moe_tp_size"]
SHAPE += ["moe_ep_size", "distribution"]


def current_version(systems: Path, system: str, backend: str) -> str:
    """AIC's `current` queryable version for (system, backend), from `query_versions.yaml`."""
    import yaml

    doc = yaml.safe_load((systems / "query_versions.yaml").read_text())
    slot = (doc.get("overrides") or {}).get(system, {}).get(backend) or doc["defaults"][backend]
    return str(slot["current"])


def moe_table(systems: Path, system: str, backend: str) -> Path | None:
    """The MoE table AIC reads by default: the current version's, else the newest older one's."""
    current = version_key(current_version(systems, system, backend))
    files = [
        p
        for p in (systems / "data" / system / "moe" / backend).glob("*/moe_perf.parquet")
        if version_key(p.parent.name) <= current
    ]
    return max(files, key=lambda p: version_key(p.parent.name)) if files else None


def excess_curve(latency: np.ndarray) -> np.ndarray:
    """`lat(T) - min(lat(T') for T' >= T)` over latencies sorted by tokens."""
    envelope = np.minimum.accumulate(latency[::-1])[::-1]
    return np.asarray(latency - envelope, dtype=np.float64)


def significant_excess(tokens: np.ndarray, latency: np.ndarray) -> dict[float, float]:
    """{tokens: excess ms} of one kernel source, 0 where below `MIN_RELATIVE` of the envelope or
    below `MIN_EXCESS_MS`."""
    excess = excess_curve(latency)
    envelope = latency - excess
    big = (excess >= MIN_RELATIVE * envelope) & (excess >= MIN_EXCESS_MS)
    return dict(zip(tokens.tolist(), np.where(big, excess, 0.0).tolist(), strict=True))


def least_over_sources(per_source: list[dict[float, float]]) -> list[list[float]]:
    """[tokens, excess] at the token counts every source measured, the least excess of them, with
    only the nonzero points and their zero neighbours kept (rounded to 10 ns)."""
    common = sorted(set.intersection(*(set(s) for s in per_source))) if per_source else []
    points = [[t, round(min(s[t] for s in per_source), 5)] for t in common]
    big = [e > 0 for _, e in points]
    return [
        p
        for i, p in enumerate(points)
        if big[i] or (i > 0 and big[i - 1]) or (i + 1 < len(big) and big[i + 1])
    ]


def shape_excess(rows: Any) -> list[list[float]]:
    """Kept points of one shape's rows (a pandas frame of one or more kernel sources)."""
    per_source = []
    for _, source in rows.groupby("kernel_source"):
        med = source.groupby("num_tokens")["latency"].median().sort_index()
        per_source.append(
            significant_excess(med.index.to_numpy(np.float64), med.to_numpy(np.float64))
        )
    return least_over_sources(per_source)


def main() -> int:
    import aiconfigurator_core
    import pandas as pd  # type: ignore[import-untyped]

    systems = Path(aiconfigurator_core.__file__).parent / "systems"
    dtypes = {aic: ours for ours, aic in KERNEL_DTYPES.items()}
    tables: dict[str, list[dict[str, Any]]] = {}
    sources: dict[str, str] = {}
    for gpu in silicon_gpus():
        system = aic_system(gpu)
        for backend in BACKENDS:
            path = moe_table(systems, system, backend)
            if path is None:
                continue
            df = pd.read_parquet(path)
            df = df[df["distribution"].isin(DISTRIBUTIONS) & df["moe_dtype"].isin(dtypes)]
            df = df[df["op_name"] == "moe"]
            entries = []
            for key, rows in df.groupby(SHAPE):
                points = shape_excess(rows)
                if points:
                    dtype, hidden, inter, topk, experts, moe_tp, moe_ep, dist = key
                    entries.append(
                        {
                            "dtype": dtypes[dtype],
                            "shape": [int(hidden), int(inter), int(topk), int(experts)],
                            "moe_tp": int(moe_tp),
                            "moe_ep": int(moe_ep),
                            "alpha": DISTRIBUTIONS[dist],
                            "points": points,
                        }
                    )
            if entries:
                tables[f"{backend}/{gpu}"] = entries
                sources[f"{backend}/{gpu}"] = str(path.relative_to(systems.parent))
    rule = (
        "per shape, excess of each measured latency over the least latency at that or any larger "
        f"token count, least over kernel sources, kept where >= {MIN_RELATIVE} of it and >= "
        f"{MIN_EXCESS_MS} ms; points are [tokens, excess ms per MoE layer]"
    )
    doc = aic_table_doc(__doc__, "bench/moe_kernel_table.py", sources, tables, rule=rule)
    OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    n = sum(len(v) for v in tables.values())
    print(f"wrote {OUT} ({n} shapes over {len(tables)} backend/GPU tables)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
