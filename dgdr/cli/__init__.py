"""The `dgdr` command line: the top layer, over the client, the application and the Kubernetes side.

- `commands`  the typer app: apply, get, describe, history, watch, wait, delete, up, demo, cluster
- `offline`   profile, simulate and estimate, with no NATS (the `sim` engine directly)
- `render`    tables and `describe` output (rich), Dynamo's printer columns
- `console`   stdout/stderr and the one-line failure exit

Failure semantics: a user's mistake or an unreachable server is one line on stderr and exit code 1
(2 for usage errors), never a traceback.
"""

__all__ = ["commands", "console", "offline", "render"]
