"""The Pareto plot `dgdr profile --plot FILE` writes (PNG, or any format matplotlib infers).

Two panels over the same configs: tokens/s per GPU against tokens/s per user (the ITL target is
the vertical bound at 1000 / ITL tokens/s per user), and tokens/s per GPU against TTFT (the TTFT
target is the vertical bound at TTFT ms). Aggregated and disaggregated configs are told apart by
colour and marker (each mode's own Pareto front, from the report's `modes`), the deployed config is
a star on both panels, and the legend names all of it. An `e2eLatency` SLA, which replaces the two
targets in the pick, is written in the title instead of as a line.

Failure semantics: matplotlib's (an unwritable path raises `OSError`; the caller turns it into a
one-line error). Renders off-screen (the Agg backend), never opens a window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dgdr.domain.spec import SLA

STYLE = {
    "agg": {"color": "tab:blue", "marker": "o", "label": "aggregated"},
    "disagg": {"color": "tab:orange", "marker": "s", "label": "disaggregated"},
}


def pareto_figure(report: dict[str, Any], sla: SLA, model: str) -> Figure:
    """The figure for a `profile` report (`modes`, `pareto`, `selected`) and the spec's SLA."""
    fig = Figure(figsize=(11, 4.5), dpi=110)
    by_user, by_ttft = fig.subplots(1, 2, sharey=True)
    fronts = _fronts(report)
    for mode, points in fronts.items():
        if not points:
            continue
        style = STYLE[mode]
        for ax, x in ((by_user, "tokensPerSecondPerUser"), (by_ttft, "ttftMs")):
            ax.plot(
                [p[x] for p in points],
                [p["tokensPerSecondPerGpu"] for p in points],
                linestyle="-" if ax is by_user else "none",
                marker=style["marker"],
                color=style["color"],
                label=style["label"],
                alpha=0.85,
            )
    chosen = report.get("selected")
    if chosen:
        label = f"chosen ({chosen.get('mode', 'agg')})"
        for ax, x in ((by_user, "tokensPerSecondPerUser"), (by_ttft, "ttftMs")):
            ax.plot(
                [chosen[x]],
                [chosen["tokensPerSecondPerGpu"]],
                "*",
                markersize=17,
                color="tab:red",
                linestyle="none",
                label=label,
            )
    if sla.itl:
        by_user.axvline(
            1000.0 / sla.itl, color="tab:gray", linestyle="--", label=f"ITL SLA {sla.itl:g} ms"
        )
    if sla.ttft:
        by_ttft.axvline(
            sla.ttft, color="tab:gray", linestyle=":", label=f"TTFT SLA {sla.ttft:g} ms"
        )
    _label(by_user, "tokens/s per user (ITL bound: right of the line meets it)")
    _label(by_ttft, "TTFT ms (left of the line meets it)")
    by_user.set_ylabel("tokens/s per GPU")
    e2e = f"; SLA e2e latency {sla.e2e_latency:g} ms" if sla.e2e_latency else ""
    fig.suptitle(f"{model}: aggregated vs disaggregated{e2e}")
    fig.tight_layout()
    return fig


def _fronts(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each mode's front (none for the naive configuration, which has no estimate)."""
    modes = report.get("modes") or {}
    return {m: list(modes.get(m, {}).get("pareto", [])) for m in STYLE}


def _label(ax: Axes, xlabel: str) -> None:
    ax.set_xlabel(xlabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")


def write_plot(report: dict[str, Any], sla: SLA, model: str, path: Path) -> None:
    """Render the figure to `path` (format from its suffix)."""
    pareto_figure(report, sla, model).savefig(path)
