"""A model's `config.json` from a local Hugging Face cache, for a hub id the catalog lacks.

Owns where the cache is and how a hub id maps into it, as `huggingface_hub` lays it out:
- the cache directory: `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE` (its older name), else
  `HF_HOME/hub`, else `XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`;
- a repository `org/name` is the folder `models--org--name` (`models--name` without an org), found
  as written or, since hub ids are case-insensitive, by the one folder whose name matches ignoring
  case;
- the revision read is the one `refs/main` names when its snapshot holds a config.json, else the
  most recently modified snapshot that holds one.

Only a well-formed hub id is looked up (letters, digits, `.`, `_`, `-`, at most one `/`, no `--`
or `..`, as the Hub itself requires), so the folder name built from it cannot leave the cache; the
file read must resolve (snapshot links point into the repository's `blobs/`) to a path inside the
cache directory, or it is ignored.

Failure semantics: nothing raises; `cached_config` returns the config.json to read (its path in
the snapshot, which names the revision) or None (no
cache, no such repository, no snapshot with a config.json, a link leaving the cache). No network.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

# The largest config.json read or fetched: real ones are a few kilobytes (tens with a multimodal
# model's vision config).
MAX_CONFIG_BYTES = 1 << 20

_HUB_ID = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:/[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)?$"
)


def hub_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The Hugging Face hub cache directory `huggingface_hub` would use with `env`."""
    env = os.environ if env is None else env
    for key in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(key):
            return Path(env[key]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    cache = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path("~/.cache")
    return cache.expanduser() / "huggingface" / "hub"


def is_hub_id(model: str) -> bool:
    """Whether `model` is a well-formed Hugging Face repository id (`name` or `org/name`)."""
    return bool(_HUB_ID.match(model)) and "--" not in model and ".." not in model


def _repo_folder(cache: Path, model: str) -> Path | None:
    wanted = "models--" + model.replace("/", "--")
    exact = cache / wanted
    if exact.is_dir():
        return exact
    try:
        matches = [p for p in cache.iterdir() if p.name.lower() == wanted.lower() and p.is_dir()]
    except OSError:
        return None
    return matches[0] if len(matches) == 1 else None


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def snapshot_order(repo: Path) -> list[str]:
    """The revisions of repository folder `repo` (`models--org--name`) to read config.json from, in
    order: the one `refs/main` names, then every snapshot directory, the most recently modified
    first. Snapshots are looked at without following links (`lstat`): one that is a link is
    listed by name only, and whoever reads from it checks where it leads."""
    order: list[str] = []
    try:
        main = (repo / "refs" / "main").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        main = ""
    if main and "/" not in main and main not in (".", ".."):
        order.append(main)
    try:
        entries = [(p.name, p.lstat().st_mtime) for p in (repo / "snapshots").iterdir()]
    except OSError:
        entries = []
    order.extend(name for name, _ in sorted(entries, key=lambda e: e[1], reverse=True))
    return order


def cached_config(model: str, env: Mapping[str, str] | None = None) -> Path | None:
    """The config.json of hub id `model` in the local Hugging Face cache, or None (see the
    module)."""
    if not is_hub_id(model):
        return None
    cache = hub_cache_dir(env)
    repo = _repo_folder(cache, model)
    if repo is None:
        return None
    real_cache = cache.resolve()
    for revision in snapshot_order(repo):
        config = repo / "snapshots" / revision / "config.json"
        real = config.resolve()
        if real.is_file() and _inside(real, real_cache):
            return config
    return None
