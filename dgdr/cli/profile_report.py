"""What `dgdr profile` prints: the table report (steps, the best aggregated against the best
disaggregated config, the alternatives, the DGD line) and the `-o dgd` document stream.

Pure formatting over the report dict `dgdr.cli.offline.profile` builds (its `modes` from
`sim._modes`); the only I/O is printing on the CLI's stdout console. The comparison follows
AIConfigurator's summary: both modes' best configs side by side (tokens/s/GPU, tokens/s/user, TTFT,
ITL, GPUs; tokens/s/GPU as the profile ranked it, `dgdr.domain.pareto.ranked_throughput`: per GPU
of the budget when there was no load to match, and a config that leaves GPUs idle says so), which
mode the profile chose and by how much; a mode with no SLA-meeting config shows
its closest miss and says so, a mode that does not fit the budget says that.

Failure semantics: none for a report `profile` built; the naive configuration (SLA unverified, no
estimate) prints no comparison and no alternatives.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from dgdr.cli import pareto_rows
from dgdr.cli.console import out
from dgdr.cli.yamlout import dump_yaml_all
from dgdr.domain.pareto import PER_GPU_USED, idle_gpus, ranked_throughput

MODE_NAMES = {"agg": "aggregated", "disagg": "disaggregated"}


def print_table(report: dict[str, Any], top: int) -> None:
    for step in report["steps"]:
        out.print(f"[cyan]{step['subPhase']:<16}[/] {step['message']}")
    out.print(f"[bold]{report['message']}[/]")
    if report["slaVerdict"] == "unverified":  # the naive configuration: nothing was estimated
        out.print("SLA unverified: no estimate, no alternatives")
        out.print(dgd_line(report))
        return
    if report.get("modes"):
        table, lines = mode_comparison(report["modes"], report["selected"])
        out.print()
        out.print(table)
        for line in lines:
            out.print(line, markup=False)
        out.print()
    out.print(_alternatives(report["pareto"], top))
    out.print(dgd_line(report), markup=False)


def mode_comparison(
    modes: dict[str, dict[str, Any]], selected: dict[str, Any] | None
) -> tuple[Table, list[str]]:
    """The best aggregated and the best disaggregated config side by side, and the lines that
    say which mode was chosen, by how much, and what a mode lacks."""
    best = {mode: modes.get(mode, {}).get("best") for mode in MODE_NAMES}
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("", no_wrap=True)
    for mode in MODE_NAMES:
        table.add_column(f"BEST {mode.upper()}", no_wrap=True, justify="right")
    rows: list[tuple[str, Any]] = [
        ("backend", lambda p: str(p.get("backend", ""))),
        ("shape", shape_of),
        ("GPUs", lambda p: str(p["totalGpus"])),
        ("batch/worker", lambda p: str(p["batchSize"])),
        ("tokens/s/GPU", lambda p: f"{ranked_throughput(p) or 0:.0f}"),
        ("tokens/s/user", lambda p: f"{p['tokensPerSecondPerUser']:.1f}"),
        ("TTFT ms", lambda p: f"{p['ttftMs']:.1f}"),
        ("ITL ms", lambda p: f"{p['itlMs']:.2f}"),
        ("SLA", lambda p: "met" if p.get("meetsSla") else "missed"),
    ]
    for label, cell in rows:
        table.add_row(label, *("-" if best[m] is None else cell(best[m]) for m in MODE_NAMES))
    lines = [_lacking(mode, best[mode]) for mode in MODE_NAMES if not _meets(best[mode])]
    for mode in MODE_NAMES:
        config = best[mode]
        if config is not None and idle_gpus(config):
            lines.append(_idle(mode, config))
    if selected is not None:
        lines.append(_chosen(selected, best))
    return table, lines


def _meets(config: dict[str, Any] | None) -> bool:
    return config is not None and bool(config.get("meetsSla"))


def _lacking(mode: str, best: dict[str, Any] | None) -> str:
    if best is None:
        return f"No {MODE_NAMES[mode]} config fits the GPU budget."
    return f"No {MODE_NAMES[mode]} config meets the SLA: the closest is shown."


def _chosen(selected: dict[str, Any], best: dict[str, dict[str, Any] | None]) -> str:
    mode = str(selected.get("mode", "agg"))
    other = "disagg" if mode == "agg" else "agg"
    rival = best[other]
    speed = ranked_throughput(selected) or 0.0
    head = f"Chosen: {mode} at {speed:.0f} tokens/s/GPU"
    if rival is None:
        return f"{head} (no {MODE_NAMES[other]} config fits the GPU budget)"
    if _meets(selected) and not _meets(rival):
        return f"{head} (no {MODE_NAMES[other]} config meets the SLA)"
    rival_speed = ranked_throughput(rival) or 0.0
    if rival_speed <= 0:
        return head
    return f"{head} ({speed / rival_speed:.2f}x the best {other}'s {rival_speed:.0f})"


def _idle(mode: str, best: dict[str, Any]) -> str:
    per_gpu_used = float(best.get(PER_GPU_USED) or 0.0)
    return (
        f"The best {MODE_NAMES[mode]} config leaves {idle_gpus(best)} of the {best['budgetGpus']} "
        f"GPUs idle; its tokens/s/GPU counts them ({per_gpu_used:.0f} per GPU it uses)."
    )


def shape_of(p: dict[str, Any]) -> str:
    """`TP 2 x 4` (agg), `P TP1 x2 + D TP2 x3` (prefill + decode workers)."""
    if p.get("mode") == "disagg":
        return (
            f"P TP{p['prefillTensorParallelSize']} x{p['prefillWorkers']} + "
            f"D TP{p['decodeTensorParallelSize']} x{p['decodeWorkers']}"
        )
    return f"TP{p['tensorParallelSize']} x{p['replicas']}"


def _alternatives(pareto: list[dict[str, Any]], top: int) -> Table:
    t = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for c in pareto_rows.COLUMNS:
        t.add_column(c, no_wrap=True, justify="left" if c in pareto_rows.LEFT_ALIGNED else "right")
    ranked = sorted(pareto, key=lambda p: -(ranked_throughput(p) or 0.0))[:top]
    ranked += [p for p in pareto if p.get("selected") and p not in ranked]
    for p in ranked:
        t.add_row(*pareto_rows.cells(p))
    return t


def dgd_line(report: dict[str, Any]) -> str:
    spec = report["dgd"].get("spec", {})
    replicas = [(c.get("name"), c.get("replicas", 1)) for c in spec.get("components", [])]
    replicas += [(n, s.get("replicas", 1)) for n, s in spec.get("services", {}).items()]
    return f"DGD {report['dgd']['metadata']['name']} ({report['dgd']['apiVersion']}): " + ", ".join(
        f"{n} x{r}" for n, r in replicas
    )


def dgd_documents(report: dict[str, Any]) -> str:
    """`-o dgd`: what to deploy, for `kubectl apply -f -`: the ConfigMaps the DGD mounts (the
    planner's, when it has any), then the DGD; nothing else."""
    return dump_yaml_all([*report["configmaps"], report["dgd"]])
