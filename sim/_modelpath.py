"""Which `spec.model` is a local path, and where such a path may be read.

Owns the rule, in three steps, each done before the next touches anything:
1. `looks_like_path` (pure): a Hugging Face id is `name` or `org/name` (`Qwen/Qwen3-0.6B`), so a
   model is a path when it starts with `/`, `./`, `../` or `~`, is `.` or `..`, has more than one
   `/` or a `\\`, has an empty, `.` or `..` segment, or ends with `.json`. A relative path of one
   `/` (`models/llama`) reads as a hub id: write `./models/llama`.
2. `confine` (pure): the path made absolute (`~` expanded, against the working directory) and
   normalised (`..` removed) must lie under one of the model directories the operator configured
   (`dgdr up --model-dir`), compared as written and as resolved; anything else is refused here,
   never stat'ed or opened.
3. `_walk`: the path (for a directory, its config.json; for a repository folder of a Hugging Face
   cache, `models--org--name`, the config.json of the snapshot `refs/main` names, else of the
   newest snapshot holding one, `sim._hfcache.snapshot_order`) is followed one component at a
   time from its model directory, each symbolic link's target checked to stay under a model
   directory before it is looked at, so a link that leaves them is refused without its target
   being touched. What is read afterwards is the walked
   path (no symbolic links left in it), so what is read is what was checked (a model directory's
   writers are the operator's: a link swapped in between the check and the read is not guarded).

`model_dirs=None` lifts the rule: offline commands (`dgdr profile`, `dgdr simulate`) run as the
user on their own machine, so any path they name is theirs to read; given `--model-dir`, they judge
a spec as the service would. The default everywhere else is `()`: no local path at all.

Failure semantics: nothing raises; `local_model` returns the config.json to read, or the refusal
(naming `spec.model` in its fix), or neither (a path under a model directory with no
config.json: the caller falls back as for an unknown model).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ._hfcache import snapshot_order

# None: any path (offline commands, run as the user); a tuple: only under these directories.
ModelDirs = tuple[Path, ...] | None

_MAX_LINKS = 40  # as the kernel's limit of symbolic links followed in one lookup


def looks_like_path(model: str) -> bool:
    """Whether `model` names a local path rather than a Hugging Face id (see the module)."""
    if model.startswith(("/", "./", "../", "~")) or model in (".", "..") or "\\" in model:
        return True
    if model.endswith(".json"):
        return True
    parts = model.split("/")
    return len(parts) > 2 or (len(parts) == 2 and any(p in ("", ".", "..") for p in parts))


def absolute(model: str, cwd: str) -> str:
    """`model` as an absolute, normalised path: `~` expanded, `..` removed lexically; no file is
    looked at."""
    return os.path.normpath(os.path.join(cwd, os.path.expanduser(model)))


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def confine(path: str, dirs: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    """(real model directory, path relative to it) for an absolute normalised `path` under one of
    `dirs` ((as written, resolved) pairs, both absolute); None when under none. Pure."""
    for written, real in dirs:
        for form in (written, real):
            if _inside(path, form):
                return real, os.path.relpath(path, form)
    return None


def _parts(relative: str) -> list[str]:
    return [p for p in relative.split("/") if p not in ("", ".")]


def _walk(start: str, relative: str, dirs: Sequence[tuple[str, str]]) -> str | None:
    """The real path of `start`/`relative`, following symbolic links only while their targets stay
    under `dirs`; None when one leaves them (or links loop)."""
    current, pending, links = start, _parts(relative), 0
    while pending:
        step = os.path.join(current, pending.pop(0))
        try:
            mode = os.lstat(step).st_mode
        except OSError:  # nothing further exists: reading it fails, inside the directory
            return os.path.join(step, *pending)
        if not stat.S_ISLNK(mode):
            current = step
            continue
        links += 1
        if links > _MAX_LINKS:
            return None
        target = os.path.normpath(os.path.join(current, os.readlink(step), *pending))
        found = confine(target, dirs)
        if found is None:
            return None
        current, pending = found[0], _parts(found[1])
    return current


@dataclass(frozen=True)
class LocalModel:
    config: Path | None = None  # the config.json to read
    refusal: str | None = None  # why `spec.model` may not be read here


def _refused(model: str, why: str) -> LocalModel:
    return LocalModel(
        refusal=(
            f"{model!r} is a local path and {why}: set spec.model to a Hugging Face id (org/name), "
            "or put the config.json under a directory the operator gives with "
            "`dgdr up --model-dir DIR` (offline: `dgdr profile --model-dir DIR`)"
        )
    )


def _confined_config(start: str, relative: str, dirs: Sequence[tuple[str, str]]) -> str | None:
    """The walked path of the config.json at `start`/`relative` (or in it, when a directory, or
    in its snapshot when it is a repository folder of a Hugging Face cache); None when a symbolic
    link leaves `dirs`."""
    walked = _walk(start, relative, dirs)
    if walked is None or not os.path.isdir(walked):
        return walked
    # walked: no link left in it to follow out
    config = _walk(walked, "config.json", dirs)
    if config is None or os.path.isfile(config) or not _is_cache_repo(walked):
        return config
    if _walk(walked, "refs/main", dirs) is None:
        return None  # its ref is a link out of the model directories: not read
    for revision in snapshot_order(Path(walked)):
        found = _walk(walked, f"snapshots/{revision}/config.json", dirs)
        if found is None or os.path.isfile(found):
            return found  # the snapshot's config.json, or None: it links out
    return config


def _is_cache_repo(directory: str) -> bool:
    """A repository folder as `huggingface_hub` lays its cache out: `snapshots/` (a real
    directory), no config.json of its own."""
    try:
        return stat.S_ISDIR(os.lstat(os.path.join(directory, "snapshots")).st_mode)
    except OSError:
        return False


def local_model(model: str, model_dirs: ModelDirs) -> LocalModel | None:
    """None when `model` is not a path (a hub id or a catalog name); else the config.json it names
    (a file, or a directory holding one), or why it may not be read (see the module)."""
    if not looks_like_path(model):
        return None
    if model_dirs is None:
        path = Path(model).expanduser()
        if path.is_dir() and not (path / "config.json").exists() and _is_cache_repo(str(path)):
            snapshots = (path / "snapshots" / r / "config.json" for r in snapshot_order(path))
            path = next((c for c in snapshots if c.is_file()), path / "config.json")
        path = path / "config.json" if path.is_dir() else path
        return LocalModel(config=path if path.is_file() else None)
    if not model_dirs:
        return _refused(model, "this service reads no local model (no model directory is set)")
    dirs = [(os.path.abspath(d), os.path.realpath(d)) for d in model_dirs]
    found = confine(absolute(model, os.getcwd()), dirs)
    if found is None:
        return _refused(model, "it is outside the model directories this service reads")
    walked = _confined_config(*found, dirs)
    if walked is None:
        return _refused(model, "a symbolic link in it leaves the model directories")
    return LocalModel(config=Path(walked) if os.path.isfile(walked) else None)
