"""How every part (service, client, CLI, tests) connects to NATS: URL, credentials, token, TLS.

`ConnectOptions.from_env()` reads `DGDR_NATS_URL`, `DGDR_NATS_CREDS`, `DGDR_NATS_USER`,
`DGDR_NATS_PASSWORD`, `DGDR_NATS_TOKEN`, `DGDR_NATS_TLS_CA`, `DGDR_NATS_TLS_CERT`, `DGDR_NATS_TLS_KEY`.
`connect()` fails fast with `ServerUnavailable` (one line, the URL in it) when nothing answers, instead
of nats-py's default of retrying for minutes. Once connected, every error nats-py reports
asynchronously (a lost connection, a permissions violation, a slow consumer, a failed reconnect) is
logged at warning by `events.connection`, with the URL's password or token replaced by `***` (in
the URL and in the error's text), so neither a log nor `ServerUnavailable` ever shows a secret.

`ConnectOptions.from_context(path)` reads a NATS CLI context (the JSON `nats context save` writes
and `dgdr up` writes to `<data-dir>/contexts/<role>.json`): `url`, `user`, `password`, `token`,
`creds`, `nkey` (a seed file), `cert`, `key`, `ca`. A missing, unreadable or malformed file, or a key
this client cannot honour (`nsc`, `jetstream_domain`...), is one `ConfigurationError` naming the
file and the fix.

Refusals are reported as such, in one line, never as "cannot reach NATS": credentials the server
refuses raise a `ConfigurationError` at once (no reconnect loop); a permissions violation, which the
server reports asynchronously while the refused request simply gets no answer, raises
a `ConfigurationError` (naming the user and the subject) from `refusing(nc, call)` as soon as the
server's error arrives, instead of the request's timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from dgdr.domain.errors import ConfigurationError, ServerUnavailable

if TYPE_CHECKING:  # nats-py is imported by `connect`: reading options (the CLI's --help) needs none
    import asyncio  # (nor asyncio and ssl: imported where used)
    import ssl

    from nats.aio.client import Client

T = TypeVar("T")


DEFAULT_URL = "nats://127.0.0.1:4222"
HIDDEN = "***"


def redact_url(url: str) -> str:
    """`url` without its secret: the password of `user:password@`, or the token of `token@`
    (each URL of a comma-separated list)."""
    if "," in url:
        return ",".join(redact_url(part.strip()) for part in url.split(","))
    try:
        parts = urlsplit(url)
    except ValueError:
        return HIDDEN
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, has_password, _ = userinfo.partition(":")
    hidden = f"{user}:{HIDDEN}" if has_password else HIDDEN
    return urlunsplit(parts._replace(netloc=f"{hidden}@{host}"))


@dataclass(frozen=True, repr=False)
class ConnectOptions:
    url: str = DEFAULT_URL
    creds_file: str | None = None
    user: str | None = None
    password: str | None = None
    token: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    name: str = "dgdr"
    nkey_seed: str | None = None

    @classmethod
    def from_context(cls, path: str | Path) -> ConnectOptions:
        """The options of a NATS CLI context file (`nats context save`'s JSON)."""
        return cls(**_read_context(Path(path)))

    @classmethod
    def from_env(cls, **overrides: Any) -> ConnectOptions:
        env = os.environ.get
        base = cls(
            url=env("DGDR_NATS_URL", DEFAULT_URL),
            creds_file=env("DGDR_NATS_CREDS"),
            user=env("DGDR_NATS_USER"),
            password=env("DGDR_NATS_PASSWORD"),
            token=env("DGDR_NATS_TOKEN"),
            tls_ca=env("DGDR_NATS_TLS_CA"),
            tls_cert=env("DGDR_NATS_TLS_CERT"),
            tls_key=env("DGDR_NATS_TLS_KEY"),
        )
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})

    def __repr__(self) -> str:  # a logged or printed ConnectOptions shows no secret
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown.update(
            url=self.safe_url, password=self.password and HIDDEN, token=self.token and HIDDEN
        )
        return "ConnectOptions(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    @property
    def safe_url(self) -> str:
        """The URL as it may be logged or shown."""
        return redact_url(self.url)

    @property
    def servers(self) -> list[str]:
        return [part.strip() for part in self.url.split(",") if part.strip()]

    @property
    def identity(self) -> str:
        """Who connects, as a message may name it (never a secret)."""
        if self.user:
            return f"user {self.user!r}"
        for server in self.servers:
            userinfo = urlsplit(server).netloc.rpartition("@")[0]
            if ":" in userinfo:
                return f"user {userinfo.partition(':')[0]!r}"
        if self.creds_file:
            return f"the credentials in {self.creds_file}"
        if self.nkey_seed:
            return f"the nkey in {self.nkey_seed}"
        if self.token or any("@" in urlsplit(u).netloc for u in self.servers):
            return "the token"
        return "an anonymous connection"

    def secrets(self) -> list[str]:
        """Every secret a message about this connection could echo: the URL's, and the options'."""
        found = [self.password, self.token]
        for server in self.servers:
            if "@" in server:
                userinfo = urlsplit(server).netloc.rsplit("@", 1)[0]
                found.append(userinfo.partition(":")[2] or userinfo)
        return [secret for secret in found if secret]

    def scrub(self, text: str) -> str:
        """`text` with the URL redacted and every secret replaced by `***`."""
        text = text.replace(self.url, self.safe_url)
        for secret in self.secrets():
            text = text.replace(secret, HIDDEN)
        return text

    def tls_context(self) -> ssl.SSLContext | None:
        if not (self.tls_ca or self.tls_cert):
            return None
        import ssl

        ctx = ssl.create_default_context(cafile=self.tls_ca)
        if self.tls_cert:
            if not self.tls_key:
                raise ConfigurationError(
                    "a TLS client certificate needs its key: set DGDR_NATS_TLS_KEY / --tls-key"
                )
            ctx.load_cert_chain(self.tls_cert, self.tls_key)
        return ctx

    def nats_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"servers": self.servers, "name": self.name}
        if self.creds_file:
            kw["user_credentials"] = self.creds_file
        if self.nkey_seed:
            kw["nkeys_seed"] = self.nkey_seed
        if self.user:
            kw["user"], kw["password"] = self.user, self.password
        if self.token:
            kw["token"] = self.token
        tls = self.tls_context()
        if tls:
            kw["tls"] = tls
        return kw


# context key -> ConnectOptions field; the other keys `nats context save` writes are honoured only
# when empty (or, for the descriptive ones, ignored).
_CONTEXT_FIELDS = {
    "url": "url", "user": "user", "password": "password", "token": "token",
    "creds": "creds_file", "nkey": "nkey_seed", "cert": "tls_cert", "key": "tls_key", "ca": "tls_ca",
}  # fmt: skip
_CONTEXT_IGNORED = {"description", "color_scheme", "jetstream_event_prefix", "tls_first"}
CONTEXT_FIX = (
    "use a context `dgdr up` wrote (<data-dir>/contexts/client.json) or `nats context save`"
)


def _read_context(path: Path) -> dict[str, str]:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigurationError(f"context {path}: no such file: {CONTEXT_FIX}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"context {path}: cannot read it ({exc}): {CONTEXT_FIX}") from None
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"context {path} is not a NATS context (invalid JSON: {exc}): {CONTEXT_FIX}"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigurationError(f"context {path} is not a JSON object: {CONTEXT_FIX}")
    fields: dict[str, str] = {}
    for key, value in raw.items():
        if key in _CONTEXT_IGNORED or value in ("", None, False):
            continue
        if key not in _CONTEXT_FIELDS:
            raise ConfigurationError(
                f"context {path}: {key!r} is not supported by dgdr: remove it, or connect with "
                "--server and the credential options"
            )
        if not isinstance(value, str):
            raise ConfigurationError(f"context {path}: {key!r} must be a string")
        fields[_CONTEXT_FIELDS[key]] = value
    if "url" not in fields:
        raise ConfigurationError(f"context {path} has no url: {CONTEXT_FIX}")
    return fields


# ------------------------------------------------------------------------------- refusals

_PERMISSION = re.compile(r"permissions violation for (publish|subscription) to \"?([^\"\s]+)")
# nats-py lowercases the server's error text; JetStream's API tokens and dgdr's stream names are
# upper case, and escaped characters in dgdr's subject tokens are `_XX` in upper-case hex.
_UPPER_TOKENS = {
    "$js", "$kv", "api", "ack", "fc", "stream", "consumer", "durable", "direct", "msg", "get",
    "info", "names", "list", "create", "update", "delete", "purge", "account", "next", "peer",
    "remove", "server", "leader", "stepdown", "snapshot", "restore", "pause", "unpin", "reset",
}  # fmt: skip
_HEX_ESCAPE = re.compile(r"_[0-9a-f]{2}")


def reported_subject(subject: str) -> str:
    """A subject from nats-py's lowercased error text, with the case NATS and dgdr give it."""

    def token(part: str) -> str:
        if part in _UPPER_TOKENS or part.startswith(("dgdr_", "kv_dgdr_")):
            return part.upper()
        return _HEX_ESCAPE.sub(lambda m: m.group(0).upper(), part)

    return ".".join(token(part) for part in subject.split("."))


def permission_message(options: ConnectOptions, error_text: str) -> str:
    found = _PERMISSION.search(error_text.lower())
    if found is None:
        return f"NATS at {options.safe_url} refused {options.identity}: {error_text}"
    action, subject = found.groups()
    verb = "publish to" if action == "publish" else "subscribe to"
    return (
        f"NATS at {options.safe_url} refused {options.identity}: it may not {verb} "
        f'"{reported_subject(subject)}" (a role that may: use its context, e.g. '
        "<data-dir>/contexts/admin.json)"
    )


class _Refusals:
    """The permission violations of one connection, delivered to whoever is waiting in `refusing`."""

    def __init__(self, options: ConnectOptions) -> None:
        self.options = options
        self.waiters: set[asyncio.Future[str]] = set()

    def report(self, error_text: str) -> None:
        message = self.options.scrub(permission_message(self.options, error_text))
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(message)


_REFUSALS: weakref.WeakKeyDictionary[Client, _Refusals] = weakref.WeakKeyDictionary()


async def refusing(nc: Client, call: Awaitable[T]) -> T:
    """`await call`, or `ConfigurationError` as soon as the server reports a permissions violation
    on `nc` while it runs (the refused request would otherwise wait for its timeout)."""
    import asyncio

    refusals = _REFUSALS.get(nc)
    if refusals is None:
        return await call
    refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    refusals.waiters.add(refused)
    task = asyncio.ensure_future(call)
    try:
        pending: set[asyncio.Future[Any]] = {task, refused}
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if refused.done():
            raise ConfigurationError(refused.result())
        return task.result()
    finally:
        refusals.waiters.discard(refused)
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


def _credentials_message(options: ConnectOptions) -> str:
    fix = "check --context, or --user/--password (--token, --creds)"
    if options.identity == "an anonymous connection":
        return (
            f"NATS at {options.safe_url} wants credentials and none were given: use --context "
            "<data-dir>/contexts/client.json (written by `dgdr up`), or --user/--password"
        )
    return f"NATS at {options.safe_url} refused the credentials of {options.identity}: {fix}"


async def connect(
    options: ConnectOptions,
    *,
    reconnect: bool = True,
    timeout: float = 10.0,
    closed_cb: Callable[[], Awaitable[None]] | None = None,
) -> Client:
    """Connect, or raise `ServerUnavailable` within `timeout` seconds. With `reconnect` (services)
    a dropped connection is retried forever; without it (the CLI) a lost server is an error.
    `closed_cb` runs once the client is closed for good (nats-py closes it, not reconnecting, on
    most `-ERR`s from the server): a long-lived owner reconnects from there."""
    import asyncio

    import nats

    connected = False
    credentials_refused = asyncio.Event()
    refusals = _Refusals(options)

    async def on_closed() -> None:
        if connected and closed_cb is not None:  # not an attempt abandoned before it connected
            await closed_cb()

    async def report(error: Exception) -> None:
        text = str(error)
        if "authorization violation" in text.lower():
            credentials_refused.set()
        if not connected:
            return  # a failed first connect is raised below, with its cause
        if "permissions violation" in text.lower():
            refusals.report(text)
        import structlog  # here: a command that meets no error does without it (and rich)

        structlog.get_logger("events.connection").warning(
            "nats error",
            url=options.safe_url,
            error_type=type(error).__name__,
            error=options.scrub(text),
        )

    # nats-py loops forever on a refused initial connect unless reconnects are bounded, and
    # retries refused credentials like an unreachable server: stop at the first refusal.
    attempt = asyncio.ensure_future(
        nats.connect(
            **options.nats_kwargs(),
            connect_timeout=2,
            allow_reconnect=True,
            max_reconnect_attempts=-1 if reconnect else 1,
            reconnect_time_wait=0.2,
            error_cb=report,
            closed_cb=on_closed,
        )
    )
    refused = asyncio.ensure_future(credentials_refused.wait())
    try:
        await asyncio.wait({attempt, refused}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        attempt.cancel()
        raise
    finally:
        refused.cancel()
    if credentials_refused.is_set():
        await _abandon(attempt)
        raise ConfigurationError(options.scrub(_credentials_message(options)))
    if not attempt.done():
        await _abandon(attempt)
        raise ServerUnavailable(options.scrub(f"cannot reach NATS at {options.url}: no answer"))
    try:
        nc = attempt.result()
    except Exception as exc:  # nats-py raises several unrelated types for "nothing answers"
        message = f"cannot reach NATS at {options.url}: {exc.__class__.__name__} {exc}".strip()
        raise ServerUnavailable(options.scrub(message)) from exc
    connected = True
    _REFUSALS[nc] = refusals
    return nc


async def _abandon(attempt: asyncio.Future[Client]) -> None:
    attempt.cancel()
    with contextlib.suppress(BaseException):
        nc = await attempt
        await nc.close()
