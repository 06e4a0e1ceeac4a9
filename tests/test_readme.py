"""The README's commands, run as a reader runs them, so the README cannot drift from the CLI.

Every line of every fenced `sh` block is executed in order, block by block, each block in a fresh
working directory that holds the repository's `examples/` and `k8s/` (as a clone's root does).
What the test changes, and only this: `uv run X` runs X from this virtualenv (uv has already
installed it); `dgdr up` gets a free `--port` (4222 may be taken on a shared machine) and runs in the
background until "dgdr is up"; a watch (`-w`) runs until a row reaches a settled phase
(Deployed, Ready or Failed), as a reader watches it before going on; the next line may need what
that phase brings (the DGD). An
`export` line sets the variable for the block's later lines.

A line that cannot run here is listed in `CANNOT_RUN` with the reason; an entry that no longer
matches any README line fails the test, so the list cannot go stale.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from events.server import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COMMAND_TIMEOUT = 120.0

CANNOT_RUN = {
    "uv run pytest": "the test suite itself",
    "kubectl apply -k k8s/manifests": "needs a real cluster (the image, cert-manager); "
    "tests/k8s/test_manifests.py applies it to the emulator",
    "dgdr up --kubeconfig ~/.kube/config": "needs a real cluster",
}


@dataclass
class Line:
    block: int
    words: list[str]  # as the README has it, without the comment

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def cannot_run(self) -> str | None:
        return next((why for key, why in CANNOT_RUN.items() if key in self.text), None)


def sh_blocks(readme: str) -> list[list[list[str]]]:
    """The command lines of each ```sh block as words, comments and blank lines dropped."""
    blocks = []
    for body in re.findall(r"^```sh\n(.*?)^```", readme, re.S | re.M):
        lines = [shlex.split(raw, comments=True) for raw in body.splitlines()]
        blocks.append([words for words in lines if words])
    return blocks


def commands(line: list[str]) -> list[list[str]]:
    """`pip install uv && uv run dgdr demo` → [["dgdr", "demo"]]: the `&&` parts, `uv run` dropped,
    installing uv dropped (it is installed)."""
    parts: list[list[str]] = [[]]
    for word in line:
        if word == "&&":
            parts.append([])
        else:
            parts[-1].append(word)
    runnable = []
    for words in parts:
        if words[:3] == ["pip", "install", "uv"]:
            continue
        if words[:2] == ["uv", "run"]:
            words = words[2:]
        runnable.append(words)
    return runnable


@dataclass
class Block:
    cwd: Path
    env: dict[str, str]
    background: list[subprocess.Popen[str]] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)

    def run(self, words: list[str]) -> None:
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            self.env[name] = os.path.expandvars(value.replace("$PWD", str(self.cwd)))
            return
        words = [os.path.expanduser(w) for w in words]
        shown = shlex.join(words)
        if words[:2] == ["dgdr", "up"]:
            self.start_up([*words, "--port", str(free_port())])
        elif "-w" in words or "--watch" in words:
            self.watch(words)
        else:
            proc = subprocess.run(
                words,
                cwd=self.cwd,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
            assert proc.returncode == 0, f"{shown} exited {proc.returncode}:\n{proc.stderr}"
            assert "Traceback" not in proc.stderr, f"{shown}:\n{proc.stderr}"
            if words == ["dgdr", "demo"]:
                printed = " ".join(proc.stdout.split())
                for line in demo_summary():
                    assert line in printed, (
                        f"the README says the demo prints\n{line}\nit printed:\n{proc.stdout}"
                    )
        self.ran.append(shown)

    def start_up(self, words: list[str]) -> None:
        proc = subprocess.Popen(
            words,
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.background.append(proc)
        seen = read_until(proc, lambda lines: any("dgdr is up" in ln for ln in lines))
        assert any("dgdr is up" in ln for ln in seen), f"{shlex.join(words)}:\n{''.join(seen)}"

    def watch(self, words: list[str]) -> None:
        proc = subprocess.Popen(
            words,
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            seen = read_until(proc, lambda lines: any(settled(line) for line in lines[1:]))
        finally:
            proc.terminate()
            proc.wait(10)
        shown = f"{shlex.join(words)}:\n{''.join(seen)}"
        assert seen and "NAME" in seen[0], shown
        assert any(settled(line) for line in seen[1:]), f"no row reached a settled phase: {shown}"

    def stop(self) -> None:
        for proc in self.background:
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
        for proc in self.background:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()


SETTLED = {"Deployed", "Ready", "Failed"}


def settled(row: str) -> bool:
    """A watched table row whose phase is one a DGDR rests in."""
    return bool(SETTLED & set(row.split()))


def read_until(proc: subprocess.Popen[str], done: Callable[[list[str]], bool]) -> list[str]:
    """Lines of the process's first pipe until `done(lines)` holds, it exits, or the deadline.
    A thread reads the pipe (to its end, so the process never blocks on a full pipe)."""
    stream = proc.stdout if proc.stdout is not None else proc.stderr
    assert stream is not None
    lines: list[str] = []
    changed = threading.Condition()

    def pump() -> None:
        for line in stream:
            with changed:
                lines.append(line)
                changed.notify_all()
        with changed:
            changed.notify_all()

    threading.Thread(target=pump, daemon=True).start()
    with changed:
        changed.wait_for(lambda: done(lines) or proc.poll() is not None, timeout=COMMAND_TIMEOUT)
        return list(lines)


def demo_summary() -> list[str]:
    """The closing lines of "What the demo prints" (`Deployed: ...`, `selected: ...` with its
    continuation), whitespace-normalised: the exact figures a reader is promised."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"What the demo prints.*?\n```\n(.*?)^```", readme, re.S | re.M)
    assert block is not None, "the README lost its demo output block"
    lines: list[str] = []
    for raw in block.group(1).splitlines():
        if raw.startswith(("Deployed:", "selected:")):
            lines.append(raw)
        elif raw.startswith(" ") and lines and lines[-1].startswith("selected:"):
            lines[-1] += " " + raw
    assert len(lines) == 2, lines
    return [" ".join(line.split()) for line in lines]


def readme_lines() -> list[Line]:
    blocks = sh_blocks((ROOT / "README.md").read_text())
    return [Line(i, words) for i, block in enumerate(blocks) for words in block]


def workdir(tmp: Path) -> Path:
    for name in ("examples", "k8s"):
        (tmp / name).symlink_to(ROOT / name)
    return tmp


def block_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DGDR_", "KUBECONFIG"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(home)  # nothing of the developer's ~/.kube or ~/.config is read
    return env


def test_the_readme_has_commands_and_every_exception_is_still_in_it() -> None:
    lines = readme_lines()
    assert len(lines) >= 10
    for key in CANNOT_RUN:
        assert any(key in line.text for line in lines), f"CANNOT_RUN entry {key!r} is stale"


def blocks_to_run() -> Iterator[tuple[int, list[Line]]]:
    by_block: dict[int, list[Line]] = {}
    for line in readme_lines():
        by_block.setdefault(line.block, []).append(line)
    yield from by_block.items()


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("index", "lines"), list(blocks_to_run()), ids=[f"block{i}" for i, _ in blocks_to_run()]
)
def test_readme_block_runs(index: int, lines: list[Line], tmp_path: Path) -> None:
    runnable = [line for line in lines if line.cannot_run() is None]
    if not runnable:
        pytest.skip(f"block {index}: " + "; ".join({str(ln.cannot_run()) for ln in lines}))
    block = Block(workdir(tmp_path), block_env(tmp_path))
    try:
        for line in runnable:
            for words in commands(line.words):
                block.run(words)
    finally:
        block.stop()
    assert block.ran
