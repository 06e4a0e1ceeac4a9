"""Offline CLI commands (no NATS, no cluster): `dgdr estimate`, `dgdr profile`, `dgdr simulate`.

Both run the simulation engine (`sim`) in this process. A user mistake (a bad argument, a number
out of its range, an invalid spec, a model that cannot fit the budget) is one line on stderr naming
the option or field and exit code 2 (usage) or 1 (the spec cannot be served), never a traceback.
`profile` prints its table (the best aggregated against the best disaggregated config, as
AIConfigurator's summary does), JSON, YAML, or with `-o dgd` only what to deploy; its rendering is
`dgdr.cli.profile_report` and `dgdr.cli.profile_plot`, and every YAML goes through
`dgdr.cli.yamlout` (no anchors). `--gpu` takes a GPU as a person spells it
(`dgdr.domain.spec.gpu_sku_named`).

`spec.model` as a local path: these commands run as the user on their own machine, so by default
any config.json they name (or one next to the spec file) is read. With `--model-dir DIR`
(repeatable) they judge the spec as `dgdr up --model-dir DIR` would: a path is read only under those
directories, anything else is refused without being opened, and nothing next to the spec is read.
"""

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from dgdr.cli.console import err, fail, out

if TYPE_CHECKING:  # the spec models, rich's tables and `sim` are imported by the commands
    from dgdr.domain.spec import DGDRSpec, FieldError

ESTIMATE_OUTPUTS = ("table", "json", "yaml")


def within(option: str, low: int, high: int | None = None) -> Callable[[int | None], int | None]:
    """A typer callback refusing a number outside [low, high] in one line naming the option and
    its range (exit 2, as a usage error); None (an option not given) passes."""

    def check(value: int | None) -> int | None:
        if value is not None and (value < low or (high is not None and value > high)):
            valid = f"{low} to {high}" if high is not None else f"{low} or more"
            raise fail(f"{option} {value} is out of range: use {valid}", 2)
        return value

    return check


def estimate(
    model: Annotated[str, typer.Option(help="model id, e.g. Qwen/Qwen3-32B")],
    gpu: Annotated[
        str,
        typer.Option(
            "--gpu", help="GPU SKU or product name, e.g. h200_sxm, H200, NVIDIA-H100-80GB-HBM3"
        ),
    ],
    backend: Annotated[str, typer.Option(help="trtllm, vllm or sglang")] = "trtllm",
    tp: Annotated[int, typer.Option(help="tensor-parallel size")] = 1,
    pp: Annotated[int, typer.Option(help="pipeline-parallel size")] = 1,
    ep: Annotated[int, typer.Option(help="expert-parallel size (MoE)")] = 1,
    batch_size: Annotated[
        int,
        typer.Option(
            help="batch (static) or concurrency (agg) of the worker; with --pp, all its "
            "micro-batches (pp of batch/pp in flight)"
        ),
    ] = 1,
    isl: Annotated[int, typer.Option(help="input tokens")] = 4000,
    osl: Annotated[int, typer.Option(help="output tokens")] = 1000,
    mode: Annotated[str, typer.Option(help="static or agg")] = "static",
    output: Annotated[
        str, typer.Option("--output", "-o", help=", ".join(ESTIMATE_OUTPUTS))
    ] = "table",
    estimator: Annotated[
        str,
        typer.Option(
            help="builtin (calibrated, shipped) or aic (NVIDIA AIConfigurator; pip install "
            "'dgdr\\[aic]')"
        ),
    ] = "builtin",
) -> None:
    """Estimate TTFT, ITL, throughput and memory of one configuration (offline, no server)."""
    if output not in ESTIMATE_OUTPUTS:
        raise fail(f"--output {output!r} is not supported: use {', '.join(ESTIMATE_OUTPUTS)}", 2)
    import sim

    try:
        result = sim.estimate(
            model,
            gpu,
            backend=backend,
            tp=tp,
            pp=pp,
            ep=ep,
            batch_size=batch_size,
            isl=isl,
            osl=osl,
            mode=mode,
            estimator=estimator,
        )
    except sim.EstimateError as exc:
        option = "--gpu" if exc.argument == "gpu_sku" else "--" + exc.argument.replace("_", "-")
        raise fail(f"{option}: {str(exc).removeprefix(exc.argument + ': ')}", 2) from None
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    data = dataclasses.asdict(result)
    if output == "json":
        print(json.dumps(data, indent=2))
    elif output == "yaml":
        from dgdr.cli.yamlout import dump_yaml

        print(dump_yaml(data), end="")
    else:
        for key, value in data.items():
            shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
            out.print(f"{key:<24}{shown}", markup=False)


def _read_spec(filename: str) -> tuple["DGDRSpec", str, str]:
    """(spec, name, namespace) from a manifest or a bare spec; FieldErrors end the command."""
    import yaml

    from dgdr.domain.errors import DgdrError
    from dgdr.domain.spec import parse_manifest, parse_spec
    from dgdr.manifests import load_documents

    try:
        docs = load_documents(filename)
    except (OSError, yaml.YAMLError, DgdrError) as exc:
        raise fail(f"cannot read {filename}: {exc}") from None
    if len(docs) != 1:
        raise fail(f"{filename} holds {len(docs)} documents: profile one spec at a time", 2)
    doc = docs[0]
    if "apiVersion" in doc or "kind" in doc or "spec" in doc:
        parsed = parse_manifest(doc)
        if isinstance(parsed, list):
            _report(filename, parsed)
        meta = parsed.metadata
        return parsed.spec, meta.name, meta.namespace or "default"
    spec = parse_spec(doc)
    if isinstance(spec, list):
        _report(filename, spec)
    return spec, Path(filename).stem.replace("_", "-").lower(), "default"


ModelDirOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--model-dir",
        help="read spec.model as a local path only under this directory (repeatable), as "
        "`dgdr up --model-dir` does; without it, any path you name is read",
        exists=True,
        file_okay=False,
        resolve_path=True,
    ),
]


def _model_dirs(given: list[Path] | None) -> tuple[Path, ...] | None:
    """None (any path: the user's own machine) unless `--model-dir` narrows it."""
    return tuple(given) if given else None


def _config_next_to(filename: str, model: str, model_dirs: tuple[Path, ...] | None) -> Path | None:
    """A Hugging Face config.json next to the spec file, for a model the catalog lacks and that
    is not itself a path (none with `--model-dir`: then only what the service would read)."""
    import sim

    known = {m.lower() for m in sim.models()}
    if model_dirs is not None or model.lower() in known or sim.looks_like_path(model):
        return None
    beside = Path(filename).resolve().parent / "config.json"
    return beside if beside.is_file() else None


def _report(filename: str, errors: list["FieldError"]) -> NoReturn:
    err.print(f"error: {filename} is not a valid DGDR spec:", markup=False)
    for e in errors:
        err.print(f"  {e}", markup=False)
    raise typer.Exit(1)


def profile(
    filename: Annotated[
        str, typer.Option("--filename", "-f", help="a DGDR manifest or a bare spec (YAML/JSON)")
    ],
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="table, json, yaml, or dgd (only the generated DGD, with the ConfigMaps it "
            "mounts, as YAML for `kubectl apply -f -`)",
        ),
    ] = "table",
    plot: Annotated[
        Path | None,
        typer.Option(
            help="write the Pareto plot (PNG) here: agg and disagg fronts, the chosen config, "
            "the ITL and TTFT targets"
        ),
    ] = None,
    top: Annotated[
        int,
        typer.Option(
            help="alternatives shown in the table (1 or more)", callback=within("--top", 1)
        ),
    ] = 5,
    dgd_api_version: Annotated[
        str,
        typer.Option(
            "--dgd-api-version",
            help="the DGD's apiVersion: nvidia.com/v1beta1 (default) or nvidia.com/v1alpha1",
        ),
    ] = "nvidia.com/v1beta1",
    model_dir: ModelDirOption = None,
) -> None:
    """Profile a spec offline: best aggregated vs best disaggregated, the chosen config, the
    alternatives, the SLA verdict and the DGD."""
    if output not in PROFILE_OUTPUTS:
        raise fail(f"--output {output!r} is not supported: use {', '.join(PROFILE_OUTPUTS)}", 2)
    import sim
    from dgdr.cli.profile_report import dgd_documents, print_table
    from dgdr.domain.hardware import resolve_hardware

    if dgd_api_version not in sim.DGD_API_VERSIONS:
        versions = " or ".join(sim.DGD_API_VERSIONS)
        raise fail(f"--dgd-api-version {dgd_api_version!r} is not supported: use {versions}", 2)

    spec, name, namespace = _read_spec(filename)
    hardware, errors = resolve_hardware(spec, {})
    if hardware is None:
        _report(filename, errors)
    steps: list[tuple[str, str]] = []
    try:
        result = sim.profile(
            spec,
            hardware,
            name=name,
            namespace=namespace,
            progress=lambda sub, text: steps.append((sub, text)),
            model_config=_config_next_to(filename, spec.model, _model_dirs(model_dir)),
            model_dirs=_model_dirs(model_dir),
        )
    except sim.ProfilingError as exc:
        raise fail(f"{exc.sub_phase}: {exc.message}") from None
    points = [p["config"] for p in result.pareto]
    dgd, lost = sim.convert_dgd(result.selected_config, dgd_api_version)
    for note in lost:  # the generated DGD has a place for everything in both versions
        err.print(f"warning: DGD {dgd_api_version}: {note}", markup=False)
    report = {
        "name": name,
        "namespace": namespace,
        "backend": result.backend,
        "slaVerdict": result.sla_verdict,
        "message": result.message,
        "selected": next((p for p in points if p.get("selected")), None),
        "modes": result.modes,
        "pareto": points,
        "steps": [{"subPhase": s, "message": m} for s, m in steps],
        "dgd": dgd,
        "configmaps": result.configmaps,
    }
    if plot is not None:
        _plot(report, spec, plot)
    if output == "json":
        print(json.dumps(report, indent=2))
    elif output == "yaml":
        from dgdr.cli.yamlout import dump_yaml

        print(dump_yaml(report), end="")
    elif output == "dgd":
        print(dgd_documents(report), end="")
    else:
        print_table(report, top)
        if plot is not None:
            out.print(f"Pareto plot written to {plot}", markup=False)


PROFILE_OUTPUTS = ("table", "json", "yaml", "dgd")


def _plot(report: dict[str, Any], spec: "DGDRSpec", path: Path) -> None:
    from dgdr.cli.profile_plot import write_plot

    try:
        write_plot(report, spec.effective_sla, spec.model, path)
    except (OSError, ValueError) as exc:
        raise fail(f"--plot {path}: cannot write the plot: {exc}") from None


# 20,000 requests took about 20 s of simulation here (a loaded 2-core machine), so the cap is
# a minute or two; more is a typo.
MAX_SIMULATED_REQUESTS = 100_000
MAX_SEED = 2**32 - 1  # numpy's seeds are unsigned 32-bit


def simulate(
    filename: Annotated[
        str, typer.Option("--filename", "-f", help="a DGDR manifest or a bare spec (YAML/JSON)")
    ],
    requests: Annotated[
        int | None,
        typer.Option(
            help=f"requests to simulate, 1 to {MAX_SIMULATED_REQUESTS} (default: 500, or 3x "
            "concurrency)",
            callback=within("--requests", 1, MAX_SIMULATED_REQUESTS),
        ),
    ] = None,
    seed: Annotated[
        int,
        typer.Option(
            help=f"random seed of the arrivals, 0 to {MAX_SEED}",
            callback=within("--seed", 0, MAX_SEED),
        ),
    ] = 0,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
    model_dir: ModelDirOption = None,
) -> None:
    """Check the rapid pick with a request-level simulation under the spec's workload.

    The load is the spec's workload.requestRate (Poisson arrivals) or workload.concurrency (a
    closed loop: each user sends its next request when its last one finishes). With neither, it
    is the load the pick is sized for: a closed loop of (decode) workers x batch users. Closed-loop
    users join over a warm-up of one request's duration, which is not measured. The pick's
    figures are the roofline's steady-state estimate; the simulation measures p50/p90/p99 with
    queueing, so its p90 can miss an SLA the estimate meets: the output says which."""
    if output not in ("table", "json"):
        raise fail(f"--output {output!r} is not supported: use table or json", 2)
    import sim
    from dgdr.domain.hardware import resolve_hardware

    spec, name, namespace = _read_spec(filename)
    hardware, errors = resolve_hardware(spec, {})
    if hardware is None:
        _report(filename, errors)
    try:
        result = sim.profile(
            spec, hardware, name=name, namespace=namespace, model_dirs=_model_dirs(model_dir)
        )
    except sim.ProfilingError as exc:
        raise fail(f"{exc.sub_phase}: {exc.message}") from None
    if result.sla_verdict == "unverified":
        raise fail(f"cannot simulate {spec.model}: no estimate (the naive configuration)")
    chosen = next(p["config"] for p in result.pareto if p["config"].get("selected"))
    load = spec.effective_workload
    concurrency = None
    if load.request_rate is None:
        concurrency = int(load.concurrency or sim.slots(chosen))
    if requests is None:
        requests = max(500, 3 * (concurrency or 0))
    measured = sim.simulate_config(
        spec.model,
        hardware.gpu_sku.value,
        chosen,
        isl=load.isl,
        osl=load.osl,
        request_rate=load.request_rate,
        concurrency=concurrency,
        requests=requests,
        seed=seed,
    )
    sla = spec.effective_sla
    verdicts = {
        "ttft": _verdict(measured.ttft_ms["p90"], sla.ttft),
        "itl": _verdict(measured.itl_ms["p90"], sla.itl),
    }
    sized_for = load.request_rate is None and load.concurrency is None
    if output == "json":
        print(
            json.dumps(
                {
                    "selected": chosen,
                    "simulation": dataclasses.asdict(measured),
                    "slaAtP90": verdicts,
                    "concurrency": concurrency,
                    "requestRate": load.request_rate,
                    "loadIsWhatThePickIsSizedFor": sized_for,
                },
                indent=2,
            )
        )
        return
    _print_simulation(chosen, measured, sla, verdicts, load.request_rate, concurrency, sized_for)


def _shape(chosen: dict[str, Any]) -> str:
    if chosen["mode"] == "disagg":
        return (
            f"prefill TP {chosen['prefillTensorParallelSize']} x {chosen['prefillWorkers']} + "
            f"decode TP {chosen['decodeTensorParallelSize']} x {chosen['decodeWorkers']}"
        )
    return f"TP {chosen['tensorParallelSize']} x {chosen['replicas']} replica(s)"


def _print_simulation(
    chosen: dict[str, Any],
    measured: Any,
    sla: Any,
    verdicts: dict[str, str],
    request_rate: float | None,
    concurrency: int | None,
    sized_for: bool,
) -> None:
    """`dgdr simulate`'s table: the load, p50/p90/p99 against the SLA, throughput, and how the
    measured figures compare with the pick's estimate."""
    from rich.table import Table

    arrivals = (
        f"{request_rate:g} req/s (Poisson)"
        if request_rate is not None
        else f"{concurrency} concurrent users (closed loop)"
    )
    out.print(
        f"selected: {_shape(chosen)}, "
        f"batch {chosen['batchSize']}; {measured.requests} requests at {arrivals}"
    )
    out.print(_load_line(chosen, measured, sized_for, concurrency), markup=False, soft_wrap=True)
    t = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for c in ("METRIC", "P50", "P90", "P99", "SLA", "AT P90"):
        t.add_column(c, no_wrap=True)
    for label, stats, target, key in (
        ("TTFT ms", measured.ttft_ms, sla.ttft, "ttft"),
        ("ITL ms", measured.itl_ms, sla.itl, "itl"),
    ):
        t.add_row(
            label,
            *(f"{stats[q]:.2f}" for q in ("p50", "p90", "p99")),
            f"{target:g}" if target else "-",
            verdicts[key],
        )
    out.print(t)
    out.print(
        f"throughput {measured.output_tokens_per_s:,.0f} tok/s, "
        f"{measured.requests_per_s:.2f} req/s; mean running batch "
        f"{measured.mean_running:.1f} (peak {measured.peak_running})"
    )
    out.print(_estimate_vs_measured(chosen, measured, sla), markup=False, soft_wrap=True)


def _load_line(
    chosen: dict[str, Any], measured: Any, sized_for: bool, concurrency: int | None
) -> str:
    """Where the load comes from, and what of the run is measured."""
    if concurrency is None:
        return f"load: the spec's workload.requestRate; all {measured.measured} requests measured"
    if sized_for:
        workers = "decode workers" if chosen["mode"] == "disagg" else "replicas"
        source = (
            "load: no workload.requestRate or concurrency in the spec, so the load the pick is "
            f"sized for: {concurrency // chosen['batchSize']} {workers} x batch "
            f"{chosen['batchSize']} = {concurrency} users"
        )
    else:
        source = f"load: the spec's workload.concurrency, {concurrency} users"
    return (
        f"{source}, each sending its next request when its last one finishes; they join over "
        f"the first {measured.warmup_s:.1f} s, not measured ({measured.measured} of "
        f"{measured.requests} requests measured)"
    )


def _estimate_vs_measured(chosen: dict[str, Any], measured: Any, sla: Any) -> str:
    """The pick as estimated next to the p90 measured here, and why they may differ."""
    estimated = "met" if chosen["meetsSla"] else "missed"
    targets = [t for t in (sla.ttft, sla.itl) if t]
    at_p90 = (
        "met"
        if measured.ttft_ms["p90"] <= (sla.ttft or float("inf"))
        and measured.itl_ms["p90"] <= (sla.itl or float("inf"))
        else "missed"
    )
    line = (
        f"the pick as estimated (roofline, steady state at batch {chosen['batchSize']} per "
        f"worker, no queueing tail): TTFT {chosen['ttftMs']:.1f} ms, ITL {chosen['itlMs']:.2f} ms, "
        f"SLA {estimated}"
    )
    if not targets:
        return line
    line += (
        f"; measured here at p90 (queueing, prefills stalling decodes): TTFT "
        f"{measured.ttft_ms['p90']:.1f} ms, ITL {measured.itl_ms['p90']:.2f} ms, SLA {at_p90}"
    )
    if at_p90 != estimated:
        line += (
            " - they disagree: the profile ranks by the estimate; `searchStrategy: thorough` "
            "ranks by this measurement"
        )
    return line


def _verdict(value: float, target: float | None) -> str:
    if not target:
        return "-"
    return "met" if value <= target else f"missed by {100 * (value / target - 1):.0f}%"


def register(app: typer.Typer) -> None:
    app.command()(estimate)
    app.command()(profile)
    app.command()(simulate)
