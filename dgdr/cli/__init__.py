"""The `dgdr` command line: the top layer, over the client, the application and the Kubernetes side.

- `main`      the entry point; registers every command module on the one typer app
- `base`      the typer apps, global options (NATS URL, credentials, namespace), running a command
- `group`     the root command group: global options anywhere on the line, plain metavars
- `writing`   apply, delete, wait (changing and waiting over the public NATS contract)
- `reading`   get (-w, -l, -o), describe, history, watch, version
- `output`, `template`, `printer`  kubectl's -o formats, its jsonpath templates, its plain tables
- `preflight` `dgdr up`'s data-dir lock and port checks
- `profile_report`, `profile_plot`  `dgdr profile`'s comparison table, -o dgd, and its PNG
- `yamlout`   YAML without anchors, for everything the CLI prints
- `serve`     up (the service with embedded NATS and a cluster) and demo
- `cluster`   list/degrade/recover/delete DGDs of the simulated cluster
- `offline`   profile, simulate and estimate, with no NATS (the `sim` engine directly)
- `render`    Dynamo's printer columns and `describe` output
- `console`   stdout/stderr and the one-line failure exit

Failure semantics: a user's mistake or an unreachable server is one line on stderr and exit code 1
(2 for usage errors), never a traceback.
"""

import time

# When the command started (before its imports, which take seconds on a busy machine): `dgdr wait
# --timeout` counts from here, so the whole command keeps to the timeout the user gave.
STARTED = time.monotonic()

__all__ = [
    "STARTED",
    "base",
    "cluster",
    "console",
    "group",
    "main",
    "offline",
    "output",
    "preflight",
    "printer",
    "profile_plot",
    "profile_report",
    "reading",
    "render",
    "serve",
    "template",
    "writing",
    "yamlout",
]
