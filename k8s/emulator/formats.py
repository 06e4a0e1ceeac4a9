"""String formats of CRD schemas (`format:`) as kube-apiserver checks them.

Owns `check(fmt, value) -> bool` for the formats kube-openapi's default registry validates on
strings: `date-time`, `date`, `duration`, `byte`, `uuid`/`uuid3`/`uuid4`/`uuid5`, `hostname`,
`ipv4`, `ipv6`, `cidr`, `mac`, `email`, `uri`. Formats of other types (`int32`, `int64`, `float`,
`double` on numbers) are not checked, as in a real cluster (kube-apiserver applies `format` to
strings only and does not range-check int32); unknown formats (`password`, anything else) accept
every string.

Failure semantics: pure; `check` never raises.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import ipaddress
import re
from collections.abc import Callable
from urllib.parse import urlparse

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d|w)\s*)+$")
_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I)
_HOSTNAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})?(\.[a-zA-Z0-9-]{1,63})*\.?$")
_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$|^([0-9A-Fa-f]{4}\.){2}[0-9A-Fa-f]{4}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _date_time(value: str) -> bool:
    if not _DATE_TIME.match(value):
        return False
    try:
        datetime.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _date(value: str) -> bool:
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def _byte(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _ip(version: int) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            return ipaddress.ip_address(value).version == version
        except ValueError:
            return False

    return check


def _cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "/" in value


def _uri(value: str) -> bool:
    parsed = urlparse(value)
    return bool(parsed.scheme) and " " not in value


_CHECKS: dict[str, Callable[[str], bool]] = {
    "date-time": _date_time,
    "datetime": _date_time,
    "date": _date,
    "duration": lambda v: bool(_DURATION.match(v)),
    "byte": _byte,
    "uuid": lambda v: bool(_UUID.match(v)),
    "uuid3": lambda v: bool(_UUID.match(v)),
    "uuid4": lambda v: bool(_UUID.match(v)),
    "uuid5": lambda v: bool(_UUID.match(v)),
    "hostname": lambda v: len(v) <= 255 and bool(_HOSTNAME.match(v)),
    "ipv4": _ip(4),
    "ipv6": _ip(6),
    "cidr": _cidr,
    "mac": lambda v: bool(_MAC.match(v)),
    "email": lambda v: bool(_EMAIL.match(v)),
    "uri": _uri,
}


def checked(fmt: str) -> bool:
    """Whether kube-apiserver checks string values of this format."""
    return fmt in _CHECKS


def check(fmt: str, value: str) -> bool:
    """True if `value` is a valid `fmt` string (always true for formats kube does not check)."""
    test = _CHECKS.get(fmt)
    return test is None or test(value)
