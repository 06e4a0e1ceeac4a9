"""What `dgdr up` checks before it starts anything: the data dir is a directory it can write, no
other `dgdr up` uses it, and the ports it will listen on are free.

Failure semantics: each check fails with one line on stderr naming the option to change (via
`dgdr.cli.console.fail`): an unusable `--data-dir` exits 2 (a bad option value), a data dir in use
or a taken port exits 1 (the environment, not the command, is in the way).

The data-dir lock is an advisory `flock` on DATA_DIR/dgdr-up.lock, held for the life of the
process and released by the kernel when it ends however it ends (a `kill -9` included), so a stale
lock file never blocks the next `dgdr up`. The file holds the holder's pid and URL, which the
refusal names. nats-server does not inherit the lock (the launcher closes inherited descriptors).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import tempfile
from pathlib import Path
from typing import IO

from dgdr.cli.console import fail

LOCK_FILE = "dgdr-up.lock"


def usable_dir(data_dir: Path, option: str = "--data-dir") -> Path:
    """`data_dir`, created if needed; exit 2 with one line naming `option` when it is not a
    writable directory."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=data_dir):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if data_dir.exists() and not data_dir.is_dir():
            reason = "it is a file, not a directory"
        raise fail(
            f"{option}: cannot use the directory {data_dir} ({reason}); give a directory "
            "dgdr up can create and write",
            2,
        ) from None
    return data_dir


class DataDirLock:
    """The one `dgdr up` of a data dir; `acquire` exits 1, naming the holder, when another has it."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._file: IO[str] | None = None

    def acquire(self, url: str) -> None:
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.seek(0)
            holder = handle.read()
            handle.close()
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise fail(
                    f"--data-dir {self.path.parent}: cannot lock {self.path}: {exc}", 1
                ) from None
            raise fail(
                f"--data-dir {self.path.parent} is in use by another dgdr up ({describe(holder)}): "
                "stop it, or give this one another --data-dir",
                1,
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "url": url}) + "\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None


def describe(holder: str) -> str:
    """`pid 123, NATS at nats://...` from the lock file's text (whatever of it can be read)."""
    try:
        facts = json.loads(holder)
        return f"pid {int(facts['pid'])}, NATS at {facts['url']}"
    except (ValueError, KeyError, TypeError):
        return "its pid is not recorded yet"


def check_ports_free(ports: list[tuple[str, str, int]]) -> None:
    """Exit 1 with one line for the first (option, host, port) that another process listens on."""
    for option, host, port in ports:
        with socket.socket() as probe:
            # As nats-server and aiohttp listen (SO_REUSEADDR): a port in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise fail(
                    f"port {port} on {host} is taken ({exc.strerror or exc}): another process "
                    f"listens there; stop it, or choose another port with {option}",
                    1,
                ) from None
