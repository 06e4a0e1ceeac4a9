"""Who may do what on NATS: the three roles, the nats-server configuration that enforces them, and
the secrets and NATS CLI contexts `dgdr up` keeps in its data directory.

The roles (design §4). NATS authorization is a list of subjects a user may publish and subscribe
to, with deny lists that win over allow lists; JetStream's API is itself a set of subjects
(`$JS.API.STREAM.DELETE.<stream>`...), so "may not delete a stream" is a denied subject.

- `service` writes history and status: it publishes events (`dgdr.evt.>`), outcomes, jobs, dead
  letters, requests (the Kubernetes adapter submits what it sees in the cluster), the status bucket and
  the simulated cluster's bucket (`$KV.<bucket>.>`), acks its durable consumers (`$JS.ACK.>`) and
  answers flow control (`$JS.FC.>`); it may use the JetStream API to create and inspect streams,
  buckets and consumers, but never to delete or purge one, to delete a message, to purge the account,
  or to update `DGDR_EVENTS` (which could lift its deny-delete and deny-purge).
- `client` publishes requests (`dgdr.req.>`), receives outcomes (`dgdr.res.>`) and replies
  (`_INBOX.>`), and reads: stream info and message gets on `DGDR_EVENTS` (history), direct gets
  and ephemeral consumers on the status bucket's stream (get, list, watch), and gets and
  ephemeral consumers on the simulated cluster's bucket (`dgdr cluster list`, a bulk read;
  degrading it is admin's). It cannot create a
  durable consumer, nor publish an event or a status entry, nor delete, purge or update anything.
  Any client may subscribe to `dgdr.res.>`: outcomes are not secret from other clients.
- `admin` may do everything: the operators' tools (`nats stream rm`, backups, repairs).

Every user is in the server's global account (`authorization { users = [...] }`), so JetStream data
written before authorization was turned on stays readable. `server_config` renders the block; the
embedded server gets literal secrets, the shipped production file (`deploy/nats/nats-server.conf`)
environment variable references (`$DGDR_NATS_CLIENT_PASSWORD`), from the same lists.

Secrets: `provision(data_dir, url)` creates one random password per role (`secrets.token_urlsafe`)
the first time and reuses them after (`<data_dir>/auth/passwords.json`, mode 0600), writes the
server configuration (`<data_dir>/auth/nats-server.conf`, 0600) and one NATS CLI context per role
(`<data_dir>/contexts/<role>.json`, 0600, the JSON `nats context save` writes, so `nats --context
<file>` works too). An unreadable or damaged passwords file is a `ConfigurationError` naming it and
the fix (delete it: new passwords are made, and new contexts written).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dgdr.domain.errors import ConfigurationError
from events import subjects as s
from events.connection import ConnectOptions
from events.server import EmbeddedNatsServer

SIMULATED_CLUSTER_BUCKET = s.SIMULATED_CLUSTER_BUCKET
DEAD_LETTER_STREAM = s.DEAD_LETTER_STREAM
ROLES = ("service", "client", "admin")

# JetStream API calls that destroy data or could lift the events stream's protection.
DESTRUCTIVE_API = (
    "$JS.API.STREAM.DELETE.>",
    "$JS.API.STREAM.PURGE.>",
    "$JS.API.STREAM.MSG.DELETE.>",
    "$JS.API.CONSUMER.DELETE.>",
    "$JS.API.ACCOUNT.PURGE.>",
    "$JS.API.STREAM.PEER.REMOVE.>",
    "$JS.API.SERVER.REMOVE",
    f"$JS.API.STREAM.UPDATE.{s.EVENTS_STREAM}",
)
STATUS_STREAM = f"KV_{s.STATUS_BUCKET}"
SIMULATED_CLUSTER_STREAM = f"KV_{SIMULATED_CLUSTER_BUCKET}"


@dataclass(frozen=True)
class Permissions:
    publish_allow: tuple[str, ...]
    publish_deny: tuple[str, ...]
    subscribe_allow: tuple[str, ...]
    subscribe_deny: tuple[str, ...] = ()


SERVICE = Permissions(
    publish_allow=(
        f"{s.EVENTS_PREFIX}.>",
        f"{s.RESULTS_PREFIX}.>",
        f"{s.DEAD_LETTER_SUBJECT}.>",
        f"{s.JOBS_PREFIX}.>",
        f"{s.REQUESTS_PREFIX}.>",
        f"$KV.{s.STATUS_BUCKET}.>",
        f"$KV.{SIMULATED_CLUSTER_BUCKET}.>",
        "$JS.API.>",
        "$JS.ACK.>",
        "$JS.FC.>",
    ),
    publish_deny=DESTRUCTIVE_API,
    subscribe_allow=("_INBOX.>", f"{s.RESULTS_PREFIX}.>"),
)

CLIENT = Permissions(
    publish_allow=(
        f"{s.REQUESTS_PREFIX}.>",
        "$JS.API.INFO",
        "$JS.API.STREAM.NAMES",
        f"$JS.API.STREAM.INFO.{s.EVENTS_STREAM}",
        f"$JS.API.STREAM.MSG.GET.{s.EVENTS_STREAM}",
        f"$JS.API.DIRECT.GET.{s.EVENTS_STREAM}",
        f"$JS.API.DIRECT.GET.{s.EVENTS_STREAM}.>",
        f"$JS.API.STREAM.INFO.{STATUS_STREAM}",
        f"$JS.API.STREAM.MSG.GET.{STATUS_STREAM}",
        f"$JS.API.DIRECT.GET.{STATUS_STREAM}",
        f"$JS.API.DIRECT.GET.{STATUS_STREAM}.>",
        f"$JS.API.CONSUMER.CREATE.{STATUS_STREAM}",  # ephemeral: KV watch (get, list, wait)
        f"$JS.API.CONSUMER.CREATE.{STATUS_STREAM}.>",
        f"$JS.API.CONSUMER.INFO.{STATUS_STREAM}.>",  # a KV watch reads its consumer's info
        f"$JS.FC.{STATUS_STREAM}.>",
        f"$JS.API.STREAM.INFO.{SIMULATED_CLUSTER_STREAM}",  # `dgdr cluster list`
        f"$JS.API.STREAM.MSG.GET.{SIMULATED_CLUSTER_STREAM}",
        f"$JS.API.DIRECT.GET.{SIMULATED_CLUSTER_STREAM}",
        f"$JS.API.DIRECT.GET.{SIMULATED_CLUSTER_STREAM}.>",
        f"$JS.API.CONSUMER.CREATE.{SIMULATED_CLUSTER_STREAM}",  # ephemeral: its bulk list
        f"$JS.API.CONSUMER.CREATE.{SIMULATED_CLUSTER_STREAM}.>",
        f"$JS.FC.{SIMULATED_CLUSTER_STREAM}.>",
    ),
    publish_deny=(
        f"{s.EVENTS_PREFIX}.>",
        "$KV.>",
        "$JS.API.CONSUMER.DURABLE.CREATE.>",
        "$JS.API.STREAM.CREATE.>",
        "$JS.API.STREAM.UPDATE.>",
        *DESTRUCTIVE_API,
    ),
    subscribe_allow=("_INBOX.>", f"{s.RESULTS_PREFIX}.>"),
)

PERMISSIONS: Mapping[str, Permissions | None] = {
    "service": SERVICE,
    "client": CLIENT,
    "admin": None,  # everything
}


def _subject_list(key: str, items: tuple[str, ...], indent: str) -> list[str]:
    if not items:
        return []
    return [f"{indent}{key}: [", *(f"{indent}  {json.dumps(i)}" for i in items), f"{indent}]"]


def _permissions_block(p: Permissions) -> list[str]:
    lines = ["      permissions: {", "        publish: {"]
    lines += _subject_list("allow", p.publish_allow, "          ")
    lines += _subject_list("deny", p.publish_deny, "          ")
    lines += ["        }", "        subscribe: {"]
    lines += _subject_list("allow", p.subscribe_allow, "          ")
    lines += _subject_list("deny", p.subscribe_deny, "          ")
    lines += ["        }", "      }"]
    return lines


def server_config(password_of: Callable[[str], str], header: str = "") -> str:
    """The `authorization` block of a nats-server configuration with one user per role;
    `password_of(role)` is the configuration value of its password (a quoted literal, or `$VAR`)."""
    lines = [header + "authorization {", "  users = ["]
    for role in ROLES:
        perms = PERMISSIONS[role]
        lines += ["    {", f"      user: {role}", f"      password: {password_of(role)}"]
        if perms is not None:
            lines += _permissions_block(perms)
        lines.append("    }")
    return "\n".join([*lines, "  ]", "}", ""])


# ------------------------------------------------------------------------- secrets and contexts

CONTEXT_KEYS = (  # every key `nats context save` writes (ADR-21), so the file reads as its own
    "description", "url", "token", "user", "password", "creds", "nkey", "cert", "key", "ca",
    "nsc", "jetstream_domain", "jetstream_api_prefix", "jetstream_event_prefix", "inbox_prefix",
    "user_jwt",
)  # fmt: skip


@dataclass(frozen=True)
class Provisioned:
    """What `provision` wrote: the server's configuration file, each role's password and context."""

    config_file: Path
    passwords: Mapping[str, str]
    contexts: Mapping[str, Path]


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT


def load_passwords(path: Path) -> dict[str, str]:
    """The stored passwords, new ones for missing roles; written back when anything was added."""
    fix = f"delete {path} and start `dgdr up` again (new passwords and contexts are written)"
    stored: dict[str, str] = {}
    if path.exists():
        try:
            raw = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigurationError(
                f"cannot read the NATS passwords in {path} ({exc}): {fix}"
            ) from None
        if not isinstance(raw, dict) or not all(isinstance(v, str) and v for v in raw.values()):
            raise ConfigurationError(f"{path} is not a JSON object of role passwords: {fix}")
        stored = dict(raw)
    missing = [role for role in ROLES if role not in stored]
    for role in missing:
        stored[role] = secrets.token_urlsafe(32)
    if missing:
        _write_private(path, json.dumps(stored, indent=2) + "\n")
    else:
        os.chmod(path, 0o600)  # copied or restored with a wider mode: private again
    return stored


def context(url: str, user: str | None = None, password: str | None = None) -> dict[str, object]:
    """A NATS CLI context (the JSON of `nats context save`)."""
    body: dict[str, object] = dict.fromkeys(CONTEXT_KEYS, "")
    body.update(description=f"dgdr {user or 'unauthenticated'} at {url}", url=url)
    if user:
        body.update(user=user, password=password or "")
    return body


def provision(data_dir: Path, url: str) -> Provisioned:
    """Passwords (made once, reused), the server configuration and every role's context."""
    passwords = load_passwords(data_dir / "auth" / "passwords.json")
    config_file = data_dir / "auth" / "nats-server.conf"
    header = "# Written by `dgdr up` at every start from auth/passwords.json: edits are lost.\n"
    _write_private(config_file, server_config(lambda role: json.dumps(passwords[role]), header))
    contexts = {}
    for role in ROLES:
        contexts[role] = data_dir / "contexts" / f"{role}.json"
        body = context(url, role, passwords[role])
        _write_private(contexts[role], json.dumps(body, indent=2) + "\n")
    return Provisioned(config_file, passwords, contexts)


def write_insecure_contexts(data_dir: Path, url: str) -> None:
    """With authorization off, contexts that carry only the URL (so the default context of this
    data dir still reaches this server and holds no stale password)."""
    for role in ROLES:
        path = data_dir / "contexts" / f"{role}.json"
        if path.exists() or role == "client":
            _write_private(path, json.dumps(context(url), indent=2) + "\n")


@dataclass(frozen=True)
class EmbeddedServer:
    """A started embedded server and the connect options of each role (all the bare URL when
    authorization is off)."""

    server: EmbeddedNatsServer
    roles: Mapping[str, ConnectOptions]
    secure: bool
    contexts_dir: Path


async def start_embedded(
    data_dir: Path, port: int, *, secure: bool = True, jetstream_sync: str | None = None
) -> EmbeddedServer:
    """Start nats-server on `port` with the roles' authorization (or none when not `secure`),
    after writing the passwords, its configuration and the contexts into `data_dir`."""
    url = f"nats://127.0.0.1:{port}"
    if not secure:
        write_insecure_contexts(data_dir, url)
        server = await EmbeddedNatsServer(data_dir, port, jetstream_sync=jetstream_sync).start()
        return EmbeddedServer(
            server, dict.fromkeys(ROLES, ConnectOptions(url=url)), False, data_dir / "contexts"
        )
    provisioned = provision(data_dir, url)
    server = await EmbeddedNatsServer(
        data_dir, port, provisioned.config_file, jetstream_sync=jetstream_sync
    ).start()
    roles = {
        role: ConnectOptions(url=url, user=role, password=provisioned.passwords[role])
        for role in ROLES
    }
    return EmbeddedServer(server, roles, True, data_dir / "contexts")


PRODUCTION_HEADER = """\
# nats-server configuration for a dgdr deployment: JetStream and the roles service, client and
# admin (events/auth.py says what each may do). Regenerate with `python -m events.auth`.
# No secret is in this file: each role's password comes from the server's environment,
# DGDR_NATS_SERVICE_PASSWORD, DGDR_NATS_CLIENT_PASSWORD and DGDR_NATS_ADMIN_PASSWORD
# (nats-server refuses to start when one is unset). Give the service, clients and operators a NATS
# CLI context each (`nats context save ... --user client --password ...`; `dgdr --context FILE`).
listen: 0.0.0.0:4222
http: 8222  # monitoring (/healthz, /jsz); keep it off the public network
jetstream {
  store_dir: "/data"
  # sync_interval: always  # fsync every write: no acknowledged write lost on power loss, slower
}
# Clients that connect over a network should use TLS:
# tls { cert_file: "/etc/nats/tls/tls.crt", key_file: "/etc/nats/tls/tls.key" }

"""


def production_config() -> str:
    """`deploy/nats/nats-server.conf`: the same roles, passwords from the environment
    (`DGDR_NATS_SERVICE_PASSWORD`, `..._CLIENT_...`, `..._ADMIN_...`)."""
    return server_config(lambda role: f"${password_variable(role)}", PRODUCTION_HEADER)


def password_variable(role: str) -> str:
    return f"DGDR_NATS_{role.upper()}_PASSWORD"


if __name__ == "__main__":
    print(production_config(), end="")
