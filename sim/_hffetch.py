"""Fetching a model's `config.json` from the Hugging Face Hub into the local cache, when the operator
allows the service to reach the Hub (`dgdr up --hf-fetch`); never otherwise.

Owns: whether a model needs fetching (`needs_fetch`: a well-formed hub id that is not in the
catalog and has no config.json in the local cache, `sim._hfcache`) and the fetch itself
(`fetch_config`): only `config.json`, through `huggingface_hub.hf_hub_download` into the cache
directory `sim._hfcache.hub_cache_dir` names, so the cache lookup that follows finds it exactly as
it finds one an operator put there. `huggingface_hub` honours `HF_ENDPOINT` (a mirror) and
`HF_TOKEN` (gated repositories); `endpoint` overrides the first. `huggingface_hub` is imported only
when a fetch runs.

Failure semantics: `fetch_config` never raises for what the Hub or the network answers; it returns
a `Fetched` with the path, or with the reason in one line (no such repository, gated without a
token, no config.json in it, one larger than `MAX_CONFIG_BYTES` (not downloaded), the Hub
unreachable within `timeout` seconds, the cache not writable). The caller then profiles as if there had been no fetch (the naive fallback, or the
refusal that names the model) and adds the reason to what it reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ._catalog import catalog_model
from ._hfcache import MAX_CONFIG_BYTES, cached_config, hub_cache_dir, is_hub_id

DEFAULT_TIMEOUT = 10.0  # seconds for the Hub to answer the metadata request


@dataclass(frozen=True)
class Fetched:
    """What a fetch gave: the config.json's path in the cache, or why there is none."""

    path: Path | None = None
    reason: str = ""


def needs_fetch(model: str) -> bool:
    """Whether `model` is a hub id that only the Hub could tell us about: well-formed, not in the
    catalog (any case) and without a config.json in the local cache."""
    if not is_hub_id(model):
        return False
    if catalog_model(model) is not None:
        return False
    return cached_config(model) is None


def fetch_config(
    model: str, *, endpoint: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> Fetched:
    """Download hub id `model`'s config.json (and nothing else) into the local cache."""
    if not is_hub_id(model):
        return Fetched(reason=f"{model!r} is not a Hugging Face repository id")
    try:
        from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        return Fetched(reason=f"huggingface_hub is not installed ({exc})")
    where = endpoint or "the Hugging Face Hub"
    try:
        # one metadata request first: hf_hub_download retries an unreachable Hub for ~20 s
        meta = get_hf_file_metadata(
            hf_hub_url(model, "config.json", endpoint=endpoint), timeout=timeout
        )
        if meta.size is not None and meta.size > MAX_CONFIG_BYTES:
            return Fetched(
                reason=f"{model}'s config.json on {where} is {meta.size:,} bytes, more than any "
                f"config.json ({MAX_CONFIG_BYTES:,}): not fetched"
            )
        path = hf_hub_download(
            model,
            "config.json",
            cache_dir=hub_cache_dir(),
            endpoint=endpoint,
            etag_timeout=timeout,
        )
    except GatedRepoError:
        return Fetched(
            reason=f"{model} is gated on {where}: give the service a token with access (HF_TOKEN)"
        )
    except RepositoryNotFoundError:
        return Fetched(reason=f"{where} has no repository {model} (or it is private: HF_TOKEN)")
    except LocalEntryNotFoundError as exc:  # (an EntryNotFoundError) the Hub did not answer
        return Fetched(reason=f"{where} could not be reached: {_first_line(exc)}")
    except EntryNotFoundError:
        return Fetched(reason=f"{model} on {where} has no config.json")
    except HfHubHTTPError as exc:
        return Fetched(reason=f"{where} answered an error: {_first_line(exc)}")
    except OSError as exc:  # the cache directory is not writable
        return Fetched(reason=f"fetching {model}'s config.json failed: {_first_line(exc)}")
    except Exception as exc:  # the HTTP client's own errors (refused, timed out, TLS): no retry
        return Fetched(
            reason=f"{where} could not be reached: {type(exc).__name__}: {_first_line(exc)}"
        )
    if not isinstance(path, str):  # a dry run's info; never asked for here
        return Fetched(reason=f"{model}: the Hub gave no file")
    return Fetched(path=Path(path))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
