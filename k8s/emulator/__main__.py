"""`python -m k8s.emulator`: run the emulated Kubernetes API server until SIGINT or SIGTERM.

Owns the command line (host, port, kubeconfig, GPU nodes, DGD ready delay) and the process
lifecycle: it prints the URL (and the kubeconfig path when written), serves, and on SIGINT/SIGTERM
stops cleanly and exits 0.

Failure semantics: a port already in use or an unwritable kubeconfig path ends the process with
a message on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import signal
import sys

import structlog

from k8s.emulator.controllers import JobRunner
from k8s.emulator.emulator import Emulator
from k8s.emulator.nodes import (
    DEFAULT_GPU_MEMORY_MB,
    DEFAULT_GPU_PRODUCT,
    DEFAULT_GPUS_PER_NODE,
    gpu_nodes,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m k8s.emulator",
        description="Emulated Kubernetes API server for development and tests (not for production).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6443, help="0 picks a free port")
    parser.add_argument("--kubeconfig", help="write a kubeconfig for the emulator to this path")
    parser.add_argument("--nodes", type=int, default=0, help="pre-create N GPU nodes")
    parser.add_argument("--gpu-product", default=DEFAULT_GPU_PRODUCT)
    parser.add_argument("--gpus-per-node", type=int, default=DEFAULT_GPUS_PER_NODE)
    parser.add_argument("--gpu-memory-mb", type=int, default=DEFAULT_GPU_MEMORY_MB)
    parser.add_argument("--dgd-ready-delay", type=float, default=1.0)
    parser.add_argument(
        "--job-runner",
        metavar="MODULE:FUNCTION",
        help="what runs a Job (default: it completes after 1 s); "
        "k8s.emulated_jobs:run_profiling_job runs dgdr's profiler for profiling Jobs",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser.parse_args(argv)


def load_runner(spec: str | None) -> JobRunner | None:
    """The Job runner named `module:function` (imported by name, so the emulator itself depends
    on nothing outside its package)."""
    if not spec:
        return None
    module, _, function = spec.partition(":")
    runner: JobRunner = getattr(importlib.import_module(module), function)
    return runner


async def serve(args: argparse.Namespace) -> int:
    try:
        runner = load_runner(args.job_runner)
    except (ImportError, AttributeError, ValueError) as exc:
        print(f"error: --job-runner {args.job_runner}: {exc}", file=sys.stderr)
        return 1
    emulator = Emulator(
        nodes=gpu_nodes(args.nodes, args.gpu_product, args.gpus_per_node, args.gpu_memory_mb),
        dgd_ready_delay=args.dgd_ready_delay,
        job_runner=runner,
    )
    try:
        url = await emulator.start(args.host, args.port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        print(f"Kubernetes API emulator listening on {url}", flush=True)
        if args.kubeconfig:
            try:
                path = emulator.write_kubeconfig(args.kubeconfig)
            except OSError as exc:
                print(f"error: cannot write kubeconfig: {exc}", file=sys.stderr)
                return 1
            print(f"kubeconfig: {path}", flush=True)
            print(f"  export KUBECONFIG={path}", flush=True)
        await stop.wait()
        return 0
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.DEBUG if args.verbose else logging.INFO
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
