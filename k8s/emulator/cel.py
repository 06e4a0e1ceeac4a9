"""CEL validation rules of CRD schemas (`x-kubernetes-validations`), evaluated with cel-python.

Owns what kube-apiserver's CEL validator does with a custom resource on every write:
- compiling each rule (and `messageExpression`) once: programs are cached by their source text, so
  a schema's rules compile on first use and every later write reuses them;
- the Kubernetes CEL libraries the rules of real CRDs use, registered as cel-python functions: the
  extended strings library (`lowerAscii`, `upperAscii`, `split`, `join`, `replace`, `substring`,
  `trim`, `indexOf`, `lastIndexOf`, `charAt`), the lists library (`isSorted`, `sum`, `min`, `max`),
  the regex library (`find`, `findAll`), the quantity library (`quantity`, `isQuantity`,
  `isGreaterThan`, `isLessThan`, `compareTo`, `add`, `sub`, `asInteger`, `asApproximateFloat`,
  `sign`, `isInteger`) and optional values for `optionalOldSelf` (`hasValue`, `value`, `orValue`);
- typing JSON values as the schema types them (`integer` -> int, `number` -> double, strings of
  format `byte`/`date-time`/`date`/`duration` -> bytes/timestamp/duration, int-or-string and
  unknown fields -> dynamic);
- walking schema, object and old object together as kube does: `self` is the value at the rule's
  node, `allOf` branches' rules apply at the same node, `oldSelf` is the correlated old value (through
  properties, through `additionalProperties` unless the map is atomic, and through list items of
  `x-kubernetes-list-type: map` by their keys); a rule that uses `oldSelf` (a transition rule) runs
  only where an old value correlates, unless `optionalOldSelf: true`, in which case it always runs
  with `oldSelf` an optional; null values are not validated;
- the failure message: `messageExpression` if it evaluates to a one-line non-empty string, else
  `message`, else `failed rule: <rule>`; `fieldPath` appended to the node's path; `reason`
  (FieldValueInvalid, the default, FieldValueForbidden, FieldValueRequired, FieldValueDuplicate).

Failure semantics: `validate` never raises. A false rule yields the FieldError kube-apiserver
words (`spec.x: Invalid value: "object": <message>`); a rule that does not compile or fails to
evaluate (a missing key, no such overload) yields an Invalid error naming the rule, as the real
server does. There is no cost budget: rules always run to completion.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from k8s.emulator import errors
from k8s.emulator.errors import FieldError

_ENV = celpy.Environment()


# ---------------------------------------------------------------- Kubernetes CEL libraries


@dataclass(frozen=True)
class Optional:
    """A CEL optional value (what `oldSelf` is under `optionalOldSelf: true`)."""

    value: Any = None
    present: bool = False


_QUANTITY = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


@dataclass(frozen=True)
class Quantity:
    """A Kubernetes resource quantity (`quantity('1Gi')`), exact."""

    amount: Fraction


def _parse_quantity(text: str) -> Quantity | None:
    m = _QUANTITY.match(text.strip())
    if not m:
        return None
    number = Fraction(m.group(1))
    if m.group(2):
        number *= Fraction(10) ** int(m.group(2)[1:])
    elif m.group(3) in _BINARY:
        number *= 1024 ** _BINARY[m.group(3)]
    elif m.group(3):
        number *= Fraction(10) ** _DECIMAL[m.group(3)]
    return Quantity(number)


def _quantity(text: Any) -> Quantity:
    q = _parse_quantity(str(text))
    if q is None:
        raise ValueError(f"quantities must match the regular expression: {text!r}")
    return q


def _compare(a: Quantity, b: Quantity) -> int:
    return (a.amount > b.amount) - (a.amount < b.amount)


def _index_of(target: Any, item: Any, start: Any = 0) -> celtypes.IntType:
    if isinstance(target, str):
        return celtypes.IntType(str(target).find(str(item), int(start)))
    for i, value in enumerate(target):
        if value == item:
            return celtypes.IntType(i)
    return celtypes.IntType(-1)


def _last_index_of(target: Any, item: Any) -> celtypes.IntType:
    if isinstance(target, str):
        return celtypes.IntType(str(target).rfind(str(item)))
    for i in range(len(target) - 1, -1, -1):
        if target[i] == item:
            return celtypes.IntType(i)
    return celtypes.IntType(-1)


def _split(s: Any, sep: Any, limit: Any = -1) -> celtypes.ListType:
    n = int(limit)
    if n == 0:
        return celtypes.ListType([])
    parts = str(s).split(str(sep), n - 1) if n > 0 else str(s).split(str(sep))
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _replace(s: Any, old: Any, new: Any, limit: Any = -1) -> celtypes.StringType:
    return celtypes.StringType(str(s).replace(str(old), str(new), int(limit)))


def _substring(s: Any, start: Any, end: Any = None) -> celtypes.StringType:
    text = str(s)
    stop = len(text) if end is None else int(end)
    if not 0 <= int(start) <= stop <= len(text):
        raise IndexError(f"index out of range: {start}")
    return celtypes.StringType(text[int(start) : stop])


def _find(s: Any, pattern: Any) -> celtypes.StringType:
    m = re.search(str(pattern), str(s))
    return celtypes.StringType(m.group(0) if m else "")


def _find_all(s: Any, pattern: Any, limit: Any = -1) -> celtypes.ListType:
    found = [m.group(0) for m in re.finditer(str(pattern), str(s))]
    if int(limit) >= 0:
        found = found[: int(limit)]
    return celtypes.ListType([celtypes.StringType(f) for f in found])


def _optional_value(o: Optional) -> Any:
    if not o.present:
        raise ValueError("optional.none() dereference")
    return o.value


def _sum(values: Any) -> Any:
    total: Any = celtypes.IntType(0)
    for i, v in enumerate(values):
        total = v if i == 0 else total + v
    return total


def _extreme(values: Any, pick: Callable[..., Any]) -> Any:
    if len(values) == 0:
        raise ValueError("min/max of an empty list")
    return pick(values)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    # strings
    "lowerAscii": lambda s: celtypes.StringType(str(s).lower()),
    "upperAscii": lambda s: celtypes.StringType(str(s).upper()),
    "trim": lambda s: celtypes.StringType(str(s).strip()),
    "charAt": lambda s, i: celtypes.StringType(str(s)[int(i) : int(i) + 1]),
    "split": _split,
    "replace": _replace,
    "substring": _substring,
    "join": lambda items, sep="": celtypes.StringType(str(sep).join(str(x) for x in items)),
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    # lists
    "isSorted": lambda xs: celtypes.BoolType(
        all(a <= b for a, b in zip(xs, list(xs)[1:], strict=False))
    ),
    "sum": _sum,
    "min": lambda xs: _extreme(xs, min),
    "max": lambda xs: _extreme(xs, max),
    # regex
    "find": _find,
    "findAll": _find_all,
    # quantity
    "quantity": _quantity,
    "isQuantity": lambda s: celtypes.BoolType(_parse_quantity(str(s)) is not None),
    "isGreaterThan": lambda a, b: celtypes.BoolType(_compare(a, b) > 0),
    "isLessThan": lambda a, b: celtypes.BoolType(_compare(a, b) < 0),
    "compareTo": lambda a, b: celtypes.IntType(_compare(a, b)),
    "add": lambda a, b: Quantity(a.amount + (b.amount if isinstance(b, Quantity) else int(b))),
    "sub": lambda a, b: Quantity(a.amount - (b.amount if isinstance(b, Quantity) else int(b))),
    "sign": lambda q: celtypes.IntType((q.amount > 0) - (q.amount < 0)),
    "isInteger": lambda q: celtypes.BoolType(q.amount.denominator == 1),
    "asInteger": lambda q: celtypes.IntType(int(q.amount)),
    "asApproximateFloat": lambda q: celtypes.DoubleType(float(q.amount)),
    # optionals
    "hasValue": lambda o: celtypes.BoolType(o.present),
    "value": _optional_value,
    "orValue": lambda o, default: o.value if o.present else default,
}


# ---------------------------------------------------------------- compiling, cached


@dataclass(frozen=True)
class Program:
    """One compiled expression: `runner` is None when it did not compile (`error` says why)."""

    source: str
    runner: Any
    error: str
    uses_old_self: bool


@functools.lru_cache(maxsize=4096)
def compile_expression(source: str) -> Program:
    """Compile `source` once; later calls with the same text return the cached program."""
    try:
        ast = _ENV.compile(source)
    except CELParseError as exc:
        return Program(source, None, str(exc).strip().splitlines()[0], False)
    uses_old = any(
        getattr(tok, "type", "") == "IDENT" and str(tok) == "oldSelf"
        for tok in ast.scan_values(lambda v: hasattr(v, "type"))
    )
    return Program(source, _ENV.program(ast, functions=FUNCTIONS), "", uses_old)


def _run(program: Program, activation: dict[str, Any]) -> tuple[Any, str]:
    """(result, "") or (None, error text)."""
    try:
        result = program.runner.evaluate(activation)
    except CELEvalError as exc:
        return None, _eval_error_text(exc)
    except Exception as exc:  # a library function refused its arguments
        return None, str(exc) or type(exc).__name__
    if isinstance(result, CELEvalError):
        return None, _eval_error_text(result)
    return result, ""


def _eval_error_text(exc: CELEvalError) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    missing = re.match(r"no such member in mapping: '(.*)'", text)
    if missing:
        return f"no such key: {missing.group(1)}"
    if "no matching overload" in text or "no such overload" in text:
        return "no such overload"
    return text


# ---------------------------------------------------------------- typing values


def to_cel(schema: dict[str, Any] | None, value: Any) -> Any:
    """`value` (decoded JSON) as a CEL value typed by `schema`."""
    if value is None:
        return None
    if schema is None or schema.get("x-kubernetes-int-or-string"):
        return json_to_cel(value)
    kind = schema.get("type")
    if isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        return celtypes.MapType(
            {
                celtypes.StringType(k): to_cel(
                    props.get(k) or (extra if isinstance(extra, dict) else None), v
                )
                for k, v in value.items()
            }
        )
    if isinstance(value, list):
        items = schema.get("items")
        return celtypes.ListType(
            [to_cel(items if isinstance(items, dict) else None, v) for v in value]
        )
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return celtypes.DoubleType(float(value))
    if kind == "string" and isinstance(value, str):
        return _typed_string(schema.get("format"), value)
    return json_to_cel(value)


def _typed_string(fmt: str | None, value: str) -> Any:
    try:
        if fmt == "byte":
            return celtypes.BytesType(base64.b64decode(value, validate=True))
        if fmt == "date-time":
            return celtypes.TimestampType(value)
        if fmt == "date":
            return celtypes.TimestampType(
                datetime.datetime.fromisoformat(value).replace(tzinfo=datetime.UTC)
            )
        if fmt == "duration":
            return celtypes.DurationType(value)
    except (ValueError, TypeError):
        pass
    return celtypes.StringType(value)


# ---------------------------------------------------------------- walking schema and object


_RULES_BELOW: dict[int, tuple[dict[str, Any], bool]] = {}


def has_rules(schema: Any) -> bool:
    """Whether `schema` or anything below it carries `x-kubernetes-validations` (memoised)."""
    if not isinstance(schema, dict):
        return False
    cached = _RULES_BELOW.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    found = bool(schema.get("x-kubernetes-validations"))
    children: list[Any] = list((schema.get("properties") or {}).values())
    children += [schema.get("items"), schema.get("additionalProperties")]
    children += list(schema.get("allOf") or ())
    found = found or any(has_rules(c) for c in children)
    _RULES_BELOW[id(schema)] = (schema, found)
    return found


def validate(schema: dict[str, Any], obj: Any, old: Any = None, path: str = "") -> list[FieldError]:
    """Evaluate every rule of `schema` against `obj` (and `old`, the stored object on an update)."""
    out: list[FieldError] = []
    if has_rules(schema):
        _walk(schema, schema, obj, old, path, out)
    return out


def _walk(
    rules: dict[str, Any],
    node: dict[str, Any],
    value: Any,
    old: Any,
    path: str,
    out: list[FieldError],
) -> None:
    """`rules` carries the validations, `node` the types (they differ inside `allOf` branches)."""
    if value is None:
        return
    for rule in rules.get("x-kubernetes-validations") or ():
        _check(rule, node, value, old, path, out)
    for branch in rules.get("allOf") or ():
        if has_rules(branch):
            _walk(branch, node, value, old, path, out)
    if isinstance(value, dict):
        _walk_object(rules, node, value, old, path, out)
    elif isinstance(value, list):
        _walk_list(rules, node, value, old, path, out)


def _walk_object(
    rules: dict[str, Any],
    node: dict[str, Any],
    value: dict[str, Any],
    old: Any,
    path: str,
    out: list[FieldError],
) -> None:
    old_map = old if isinstance(old, dict) and node.get("x-kubernetes-map-type") != "atomic" else {}
    rule_props: dict[str, Any] = rules.get("properties") or {}
    node_props: dict[str, Any] = node.get("properties") or {}
    rule_extra, node_extra = rules.get("additionalProperties"), node.get("additionalProperties")
    for key, child in value.items():
        child_path = f"{path}.{key}" if path else key
        if key in rule_props and key in node_props:
            if has_rules(rule_props[key]):
                _walk(rule_props[key], node_props[key], child, old_map.get(key), child_path, out)
        elif (
            isinstance(rule_extra, dict) and isinstance(node_extra, dict) and has_rules(rule_extra)
        ):
            _walk(rule_extra, node_extra, child, old_map.get(key), f"{path}[{key}]", out)


def _walk_list(
    rules: dict[str, Any],
    node: dict[str, Any],
    value: list[Any],
    old: Any,
    path: str,
    out: list[FieldError],
) -> None:
    items, node_items = rules.get("items"), node.get("items")
    if not (isinstance(items, dict) and isinstance(node_items, dict) and has_rules(items)):
        return
    keys = node.get("x-kubernetes-list-map-keys") or []
    by_key: dict[str, Any] = {}
    if node.get("x-kubernetes-list-type") == "map" and keys and isinstance(old, list):
        by_key = {_key_of(item, keys): item for item in old if isinstance(item, dict)}
    for i, item in enumerate(value):
        previous = by_key.get(_key_of(item, keys)) if by_key and isinstance(item, dict) else None
        _walk(items, node_items, item, previous, f"{path}[{i}]", out)


def _key_of(item: dict[str, Any], keys: list[str]) -> str:
    return json.dumps([item.get(k) for k in keys], sort_keys=True)


# ---------------------------------------------------------------- one rule


def _check(
    rule: dict[str, Any],
    node: dict[str, Any],
    value: Any,
    old: Any,
    path: str,
    out: list[FieldError],
) -> None:
    source = str(rule.get("rule") or "").strip()
    if not source:
        return
    kind = str(node.get("type") or "")
    where = path or "<nil>"
    program = compile_expression(source)
    if program.runner is None:
        out.append(errors.invalid_value(where, kind, f"rule compile error: {program.error}"))
        return
    optional = bool(rule.get("optionalOldSelf"))
    if program.uses_old_self and old is None and not optional:
        return  # a transition rule: nothing to compare with
    activation: dict[str, Any] = {"self": to_cel(node, value)}
    if program.uses_old_self:
        previous = to_cel(node, old)
        activation["oldSelf"] = Optional(previous, old is not None) if optional else previous
    result, error = _run(program, activation)
    if error:
        detail = (
            f"'{error}': call arguments did not match a supported operator, function or macro "
            f"signature for rule: {_rule_text(rule)}"
            if error == "no such overload"
            else f"{error} evaluating rule: {_rule_text(rule)}"
        )
        out.append(errors.invalid_value(where, kind, detail))
        return
    if result is True or (isinstance(result, celtypes.BoolType) and bool(result)):
        return
    field_path = str(rule.get("fieldPath") or "")
    if field_path:
        where = _join_field_path(path, field_path)
    out.append(_failure(rule, where, kind, _message(rule, activation)))


def _message(rule: dict[str, Any], activation: dict[str, Any]) -> str:
    expression = str(rule.get("messageExpression") or "").strip()
    if expression:
        program = compile_expression(expression)
        if program.runner is not None:
            result, error = _run(program, activation)
            text = str(result).strip() if not error and isinstance(result, str) else ""
            if text and "\n" not in text:
                return text
    message = str(rule.get("message") or "").strip()
    return message or f"failed rule: {_rule_text(rule)}"


def _rule_text(rule: dict[str, Any]) -> str:
    return str(rule.get("message") or "").strip() or str(rule.get("rule") or "").strip()


def _join_field_path(path: str, field_path: str) -> str:
    relative = re.sub(r"\['([^']*)'\]", r".\1", field_path).lstrip(".")
    return f"{path}.{relative}" if path else relative


def _failure(rule: dict[str, Any], path: str, kind: str, detail: str) -> FieldError:
    reason = rule.get("reason") or "FieldValueInvalid"
    if reason == "FieldValueForbidden":
        return errors.forbidden(path, detail)
    if reason == "FieldValueRequired":
        return errors.required(path, detail)
    if reason == "FieldValueDuplicate":
        return FieldError("FieldValueDuplicate", path, f"Duplicate value: {errors.go_value(kind)}")
    return errors.invalid_value(path, kind, detail)
