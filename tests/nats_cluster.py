"""A JetStream cluster of `nats-server` processes on loopback, for the cluster test and bench/chaos.py.

`LocalCluster(base_dir, size=3)` writes one config file per node (`server_name`, client port,
`cluster { name, listen, routes }` to every other node, `jetstream { store_dir }` of its own) and
starts them; `start()` returns once every node answers and JetStream has a meta leader. `kill(i)`
sends SIGKILL (no flush, no goodbye to the routes), `restart(i)` starts the node again on the same
store and ports (`start()` also waits until a stream can be placed on every node).
`stream_leader(nc, stream)` names the server leading a stream's Raft group, and
`node_named(name)` maps it back to a node. Ports are chosen free once and kept across restarts.
`secure(authorization, user, password)` (before `start`) adds an `authorization { ... }` block to
every node's configuration (events.auth.server_config) and makes the cluster's own probes connect
as that user.

Failure semantics: a node that exits during start-up, or a cluster with no meta leader by the
deadline, raises `RuntimeError` with the tail of that node's log. `stop()` kills whatever is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from nats.aio.client import Client
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import APIError

from events.server import find_nats_server, free_port


@dataclass
class Node:
    name: str
    port: int
    cluster_port: int
    directory: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = (self.directory / "server.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])


def node_config(
    node: Node, peers: list[Node], cluster_name: str, sync: str | None, authorization: str = ""
) -> str:
    routes = ", ".join(f'"nats-route://127.0.0.1:{p.cluster_port}"' for p in peers)
    store = json.dumps(str(node.directory / "jetstream"))
    sync_line = f"  sync_interval: {sync}\n" if sync else ""
    return (
        f'server_name: "{node.name}"\n'
        f"listen: 127.0.0.1:{node.port}\n"
        f"jetstream {{\n  store_dir: {store}\n{sync_line}}}\n"
        f'cluster {{\n  name: "{cluster_name}"\n  listen: 127.0.0.1:{node.cluster_port}\n'
        f"  routes: [{routes}]\n}}\n"
        f"{authorization}"
    )


class LocalCluster:
    def __init__(
        self, base_dir: Path, size: int = 3, name: str = "dgdr-test", sync: str | None = None
    ) -> None:
        self.base_dir = Path(base_dir)
        self.name = name
        self.sync = sync
        self.nodes = [
            Node(f"n{i + 1}", free_port(), free_port(), self.base_dir / f"n{i + 1}")
            for i in range(size)
        ]
        self.authorization = ""
        self.credentials: dict[str, str] = {}

    def secure(self, authorization: str, user: str, password: str) -> None:
        self.authorization = authorization
        self.credentials = {"user": user, "password": password}

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    @property
    def url(self) -> str:
        """Every node's URL, comma-separated (what `--server` and ConnectOptions.url accept)."""
        return ",".join(self.urls)

    def _spawn(self, node: Node) -> None:
        node.directory.mkdir(parents=True, exist_ok=True)
        config = node.directory / "server.conf"
        peers = [p for p in self.nodes if p is not node]
        config.write_text(node_config(node, peers, self.name, self.sync, self.authorization))
        with (node.directory / "server.log").open("ab") as log:
            node.proc = subprocess.Popen(
                [find_nats_server(), "-c", str(config)],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    async def _answers(self, node: Node, deadline: float) -> None:
        while True:
            if node.proc is not None and node.proc.poll() is not None:
                raise RuntimeError(
                    f"nats-server {node.name} exited with {node.proc.returncode}: {node.log_tail()}"
                )
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", node.port)
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"nats-server {node.name} did not listen: {node.log_tail()}"
                    ) from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return

    async def start(self, timeout: float = 30.0) -> LocalCluster:
        for node in self.nodes:
            self._spawn(node)
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            await self._answers(node, deadline)
        await self.wait_meta_leader(deadline - time.monotonic())
        await self.wait_all_peers(deadline - time.monotonic())
        return self

    async def wait_all_peers(self, timeout: float) -> None:
        """Return once a stream can be placed on every node (the meta leader knows them all):
        a file stream with one replica per node is created, then deleted. File storage, as the
        streams under test use: the meta leader learns each peer's file-storage capacity later
        than its memory capacity, and a memory probe passed while file placement still failed
        with "no suitable peers for placement"."""
        import nats

        probe = StreamConfig(
            name="LOCALCLUSTER_PROBE",
            subjects=["localcluster.probe"],
            storage=StorageType.FILE,
            num_replicas=len(self.nodes),
        )
        nc = await nats.connect(self.urls, **self.credentials)
        try:
            js = nc.jetstream()
            deadline = time.monotonic() + timeout
            while True:
                try:
                    await js.add_stream(probe)
                    await js.delete_stream(str(probe.name))
                    return
                except (APIError, TimeoutError) as exc:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"the cluster did not form: {exc}") from exc
                    await asyncio.sleep(0.2)
        finally:
            await nc.close()

    async def wait_meta_leader(self, timeout: float = 30.0) -> None:
        """Return once JetStream answers a meta-leader request (listing streams) on a live node."""
        import nats

        deadline = time.monotonic() + timeout
        last_error = "no answer"
        while time.monotonic() < deadline:
            for node in self.nodes:
                if not node.alive:
                    continue
                try:
                    nc = await nats.connect(
                        node.url, connect_timeout=1, allow_reconnect=False, **self.credentials
                    )
                except Exception as exc:  # nats-py raises several types for "not up yet"
                    last_error = str(exc)
                    continue
                try:
                    reply = await nc.request("$JS.API.STREAM.NAMES", b"{}", timeout=1)
                    answer = json.loads(reply.data)
                    if "error" not in answer:
                        return
                    last_error = str(answer["error"])
                except Exception as exc:
                    last_error = str(exc) or type(exc).__name__
                finally:
                    await nc.close()
            await asyncio.sleep(0.1)
        raise RuntimeError(
            f"JetStream cluster has no meta leader after {timeout:.0f} s: {last_error}"
        )

    def kill(self, index: int) -> None:
        node = self.nodes[index]
        if node.proc is not None and node.proc.poll() is None:
            os.killpg(node.proc.pid, signal.SIGKILL)
            node.proc.wait()

    async def restart(self, index: int, timeout: float = 30.0) -> None:
        node = self.nodes[index]
        self.kill(index)
        self._spawn(node)
        await self._answers(node, time.monotonic() + timeout)

    def node_named(self, name: str) -> int:
        return next(i for i, n in enumerate(self.nodes) if n.name == name)

    async def stop(self) -> None:
        for i in range(len(self.nodes)):
            with contextlib.suppress(ProcessLookupError):
                self.kill(i)

    async def __aenter__(self) -> LocalCluster:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def stream_leader(nc: Client, stream: str, timeout: float = 20.0) -> str:
    """The server name leading `stream`'s Raft group, once it has a leader."""
    js = nc.jetstream()
    deadline = time.monotonic() + timeout
    while True:
        try:
            info = await js.stream_info(stream)
            if info.cluster is not None and info.cluster.leader:
                return str(info.cluster.leader)
        except (APIError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"stream {stream} has no leader after {timeout:.0f} s")
        await asyncio.sleep(0.1)
