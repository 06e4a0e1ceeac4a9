"""The `dgdr` command line: the top layer, over the client, the application and the Kubernetes side.

- `main`      the entry point; registers every command module on the one typer app
- `base`      the typer apps, global options (NATS URL, credentials, namespace), running a command
- `requests`  get, describe, history, watch (reading over the public NATS contract)
- `writing`   apply, delete, wait
- `serve`     up (the service with embedded NATS and a cluster) and demo
- `cluster`   list/degrade/recover/delete DGDs of the simulated cluster
- `offline`   profile, simulate and estimate, with no NATS (the `sim` engine directly)
- `render`    tables and `describe` output (rich), Dynamo's printer columns
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
    "main",
    "offline",
    "render",
    "requests",
    "serve",
    "writing",
]
