"""The `dgdr` command line: the top layer, over the client, the application and the Kubernetes side.

- `main`      the entry point; registers every command module on the one typer app
- `base`      the typer apps, global options (NATS URL, credentials, namespace), running a command
- `requests`  apply, delete, get, describe, history, watch, wait (the public NATS contract)
- `serve`     up (the service with embedded NATS and a cluster) and demo
- `cluster`   list/degrade/recover/delete DGDs of the simulated cluster
- `offline`   profile, simulate and estimate, with no NATS (the `sim` engine directly)
- `render`    tables and `describe` output (rich), Dynamo's printer columns
- `console`   stdout/stderr and the one-line failure exit

Failure semantics: a user's mistake or an unreachable server is one line on stderr and exit code 1
(2 for usage errors), never a traceback.
"""

__all__ = ["base", "cluster", "console", "main", "offline", "render", "requests", "serve"]
