"""Write `sim/data/allreduce.json`: AIC's measured-silicon all-reduce latency per (backend, GPU, TP).

`sim.estimate` charges two all-reduces per layer over the TP group. A latency + bytes/bandwidth
model with one fitted `comm_scale` cannot follow the measured curve: NCCL / TRT-LLM's custom
all-reduce reach a fraction of the link bandwidth at the 0.1-10 MB messages of large-batch decode
(H100 TP8 at 2 MB: 52 us measured, 22 us by the link model), so decode ITL at TP8 and batch >= 32
came out 15-30% optimistic. This copies AIConfigurator 0.12's SILICON tables
(`systems/data/<gpu>/comm/<backend>/<newest version>/custom_allreduce_perf.parquet`, bf16, the
implementation AIC itself queries first) as (message bytes, latency ms) per TP size;
`sim._estimate` interpolates them log-log and falls back to the link model for a GPU, backend or
TP size the table lacks. The run-time path reads only the JSON; it never imports AIC.

    UV_PROJECT_ENVIRONMENT=/tmp/aic-env uv run --group calibration python bench/allreduce_table.py
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim._aic import AIC_VERSION, aic_system  # noqa: E402

OUT = ROOT / "sim" / "data" / "allreduce.json"
GPUS = ("h100_sxm", "h200_sxm", "b200_sxm", "gb200_sxm")
# trtllm only: with vLLM's and SGLang's tables the refit scored worse on held-out ITL (SGLang on
# B200 p90 13% -> 49%), so those backends keep the link model and their earlier fit.
BACKENDS = ("trtllm",)
BYTES_PER_ELEMENT = 2  # bf16: AIC's message_size counts elements (tokens x hidden)


def version_key(name: str) -> tuple[int, ...]:
    return tuple(int("".join(c for c in part if c.isdigit()) or 0) for part in name.split("."))


def table(data_root: Path, gpu: str, backend: str) -> tuple[str, dict[str, list[list[float]]]]:
    """(source file, {tp: [[bytes, ms], ...]}) from the newest version's parquet, or ("", {})."""
    import pandas as pd  # type: ignore[import-untyped]

    base = data_root / aic_system(gpu) / "comm" / backend
    files = sorted(
        base.glob("*/custom_allreduce_perf.parquet"), key=lambda p: version_key(p.parent.name)
    )
    if not files:
        return "", {}
    df = pd.read_parquet(files[-1])
    df = df[df["allreduce_dtype"].isin(["bfloat16", "half", "float16"])]
    impl = df["implementation"].value_counts().index[0] if "implementation" in df else None
    if impl is not None:
        df = df[df["implementation"] == impl]
    out: dict[str, list[list[float]]] = {}
    for tp, sub in df.groupby("num_gpus"):
        med = sub.groupby("message_size")["latency"].median().sort_index()
        out[str(int(tp))] = [
            [float(size) * BYTES_PER_ELEMENT, round(float(ms), 6)] for size, ms in med.items()
        ]
    return str(files[-1].relative_to(data_root.parent.parent)), out


def aic_table_doc(
    module_doc: str | None, script: str, sources: dict[str, str], tables: Any, **provenance: str
) -> dict[str, Any]:
    """A `sim/data` table copied from AIC's SILICON data: its summary line, provenance (AIC's
    version, the date, the script, the source file per backend/GPU, and `provenance`) and tables."""
    return {
        "_doc": (module_doc or "").split("\n\n")[0],
        "provenance": {
            "aic_version": f"aiconfigurator-core {AIC_VERSION}",
            "date": dt.date.today().isoformat(),
            "script": script,
            **provenance,
            "sources": sources,
        },
        "tables": tables,
    }


def main() -> int:
    import aiconfigurator_core

    data_root = Path(aiconfigurator_core.__file__).parent / "systems" / "data"
    tables: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for backend in BACKENDS:
        for gpu in GPUS:
            src, t = table(data_root, gpu, backend)
            if t:
                tables[f"{backend}/{gpu}"] = t
                sources[f"{backend}/{gpu}"] = src
    doc = aic_table_doc(__doc__, "bench/allreduce_table.py", sources, tables)
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT} ({len(tables)} backend/GPU tables)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
