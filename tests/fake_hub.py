"""A stand-in for the Hugging Face Hub on a loopback port: the two requests `hf_hub_download` makes
for a file (HEAD for its metadata, then GET), answered as the Hub answers them, for the repositories
a test gives. Nothing in the tests reaches the network; this is what `--hf-fetch` talks to in them.

A repository maps to its config dict, to GATED (401, as the Hub answers a gated repository without
a token) or to NO_CONFIG (the repository exists but has no config.json); any other repository is
404 RepoNotFound. `requests` records every path asked for."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

GATED = "gated"
NO_CONFIG = "no-config"
REVISION = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class FakeHub:
    url: str
    requests: list[str] = field(default_factory=list)


@contextmanager
def fake_hub(repos: dict[str, dict[str, Any] | str]) -> Iterator[FakeHub]:
    hub = FakeHub(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, body: bool) -> None:
            hub.requests.append(self.path)
            repo, sep, rest = self.path.lstrip("/").partition("/resolve/")
            found = repos.get(repo) if sep else None
            if found is None or found in (GATED, NO_CONFIG) or not rest.endswith("/config.json"):
                status, code = {GATED: (401, "GatedRepo"), NO_CONFIG: (404, "EntryNotFound")}.get(
                    str(found), (404, "RepoNotFound")
                )
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = json.dumps(found).encode()
            self.send_response(200)
            self.send_header("X-Repo-Commit", REVISION)
            self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hub.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
