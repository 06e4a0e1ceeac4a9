"""dgdr: a deploy-by-intent control plane for LLM inference, compatible with NVIDIA Dynamo's
DynamoGraphDeploymentRequest (DGDR).

The public Python API is importable from here:

    from dgdr import DgdrClient, ConnectOptions
    async with DgdrClient(ConnectOptions(url="nats://127.0.0.1:4222")) as client:
        outcome = await client.apply(manifest)      # a RequestOutcome (typed dict)
        obj = await client.wait("my-dgdr", phase="Deployed", timeout=60)   # a DgdrObject

Every exception dgdr raises on purpose derives from `DgdrError`; the whole tree is drawn once, in
`dgdr.domain.errors`.

The package is layered (import-linter's `layers` contract in pyproject.toml enforces it; arrows
point down only):

    dgdr.cli                     the `dgdr` command: typer commands and rich rendering
    dgdr.app | k8s               the service (command handler, reactors, profiling, simulated cluster)
                                 and the Kubernetes adapter; neither imports the other
    dgdr.client                  the public client over the NATS contract
    projections | sim            the status projection; the rapid-profiling engine
    events                       the event store on JetStream: envelope, codec, consumers, server
    dgdr.domain                  pure rules: spec, phases, machine, events and commands, decider,
                                 hardware resolution, event descriptions, the deployment-target port,
                                 the exception tree

Names are resolved lazily, so `import dgdr` costs nothing until a name is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dgdr.client import (
        DgdrClient,
        DgdrObject,
        FieldErrorEntry,
        HistoryEntry,
        RequestOutcome,
        load_documents,
        raise_for_outcome,
    )
    from dgdr.domain.errors import (
        ClusterUnreachable,
        CommitTooLarge,
        ConcurrencyConflict,
        ConfigurationError,
        DgdrError,
        EstimateError,
        IncompatibleConsumer,
        IncompatibleStream,
        InvalidHistory,
        NatsServerNotFound,
        NoJetStream,
        NotARequest,
        NotFound,
        ProfilingError,
        ProjectionAheadOfStore,
        RequestRejected,
        ServerUnavailable,
        ServiceNotSetUp,
        StoreError,
        SubjectTooLong,
        UnknownEvent,
        WaitTimeout,
    )
    from dgdr.domain.spec import DGDRSpec, FieldError, parse_manifest, parse_spec
    from events.connection import ConnectOptions

_EXPORTS = {
    "DgdrClient": "dgdr.client",
    "DgdrObject": "dgdr.client",
    "FieldErrorEntry": "dgdr.client",
    "HistoryEntry": "dgdr.client",
    "RequestOutcome": "dgdr.client",
    "load_documents": "dgdr.client",
    "raise_for_outcome": "dgdr.client",
    "ConnectOptions": "events.connection",
    "DGDRSpec": "dgdr.domain.spec",
    "FieldError": "dgdr.domain.spec",
    "parse_manifest": "dgdr.domain.spec",
    "parse_spec": "dgdr.domain.spec",
    **{
        name: "dgdr.domain.errors"
        for name in (
            "DgdrError",
            "ConfigurationError",
            "NatsServerNotFound",
            "ClusterUnreachable",
            "NoJetStream",
            "ServiceNotSetUp",
            "ServerUnavailable",
            "StoreError",
            "ConcurrencyConflict",
            "IncompatibleStream",
            "IncompatibleConsumer",
            "ProjectionAheadOfStore",
            "UnknownEvent",
            "InvalidHistory",
            "CommitTooLarge",
            "SubjectTooLong",
            "NotARequest",
            "RequestRejected",
            "WaitTimeout",
            "NotFound",
            "ProfilingError",
            "EstimateError",
        )
    },
}

__all__ = [
    "ClusterUnreachable",
    "CommitTooLarge",
    "ConcurrencyConflict",
    "ConfigurationError",
    "ConnectOptions",
    "DGDRSpec",
    "DgdrClient",
    "DgdrError",
    "DgdrObject",
    "EstimateError",
    "FieldError",
    "FieldErrorEntry",
    "HistoryEntry",
    "IncompatibleConsumer",
    "IncompatibleStream",
    "InvalidHistory",
    "NatsServerNotFound",
    "NoJetStream",
    "NotARequest",
    "NotFound",
    "ProfilingError",
    "ProjectionAheadOfStore",
    "RequestOutcome",
    "RequestRejected",
    "ServerUnavailable",
    "ServiceNotSetUp",
    "StoreError",
    "SubjectTooLong",
    "UnknownEvent",
    "WaitTimeout",
    "load_documents",
    "parse_manifest",
    "parse_spec",
    "raise_for_outcome",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dgdr' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return list(__all__)
