"""Structural-schema handling for custom resources: pruning, defaulting and validation.

Owns what the real server does with a CRD's `openAPIV3Schema` on every write, in its order:
1. prune: drop fields the schema does not declare (unless `x-kubernetes-preserve-unknown-fields`),
   and `null` values of non-nullable fields; report the dropped paths (they become
   `Warning: unknown field "spec.foo"` headers, or an error under `fieldValidation=Strict`);
2. default: fill `default:` values wherever the parent object is present;
3. validate: type (integer accepts JSON integers only), enum, required, min/maxLength, pattern,
   format date-time, minimum/maximum with boolean exclusiveMinimum/Maximum (OpenAPI v3.0),
   min/maxItems, min/maxProperties, items, properties, additionalProperties, int-or-string.

Failure semantics: the functions mutate the object passed in (the caller passes a private copy) and
never raise; `validate` returns `FieldError`s worded like the real server, which the store turns into
one 422 Invalid with a cause per field.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from k8s.emulator import errors
from k8s.emulator.errors import FieldError

_ROOT_KEEP = ("apiVersion", "kind", "metadata")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _preserves(schema: dict[str, Any]) -> bool:
    return bool(schema.get("x-kubernetes-preserve-unknown-fields"))


def prune(schema: dict[str, Any], obj: Any, path: str = "") -> list[str]:
    """Remove undeclared fields in place; return their paths (e.g. `spec.foo`)."""
    pruned: list[str] = []
    _prune(schema, obj, path, pruned, root=(path == ""))
    return pruned


def _prune(schema: dict[str, Any], obj: Any, path: str, out: list[str], *, root: bool) -> None:
    if isinstance(obj, dict):
        props: dict[str, Any] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key in list(obj):
            child_path = _join(path, key)
            if root and key in _ROOT_KEEP and (key == "metadata" or key not in props):
                continue
            sub = props.get(key)
            if sub is None and isinstance(additional, dict):
                sub = additional
            if sub is None:
                if not _preserves(schema) and additional is not True:
                    del obj[key]
                    out.append(child_path)
                continue
            if obj[key] is None and not sub.get("nullable"):
                del obj[key]  # non-nullable null: dropped (a default may fill it next)
                continue
            _prune(sub, obj[key], child_path, out, root=False)
    elif isinstance(obj, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(obj):
                _prune(items, item, f"{path}[{i}]", out, root=False)


def apply_defaults(schema: dict[str, Any], obj: Any) -> None:
    """Fill `default:` values in place wherever the parent object exists."""
    if isinstance(obj, dict):
        props: dict[str, Any] = schema.get("properties") or {}
        for key, sub in props.items():
            if key not in obj and "default" in sub:
                obj[key] = copy.deepcopy(sub["default"])
            if key in obj:
                apply_defaults(sub, obj[key])
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for key, value in obj.items():
                if key not in props:
                    apply_defaults(additional, value)
    elif isinstance(obj, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for item in obj:
                apply_defaults(items, item)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_ok(expected: str, value: Any) -> bool:
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True


def validate(schema: dict[str, Any], obj: Any, path: str = "") -> list[FieldError]:
    """Check `obj` against `schema`; one FieldError per violation."""
    out: list[FieldError] = []
    _validate(schema, obj, path, out)
    return out


def _validate(schema: dict[str, Any], value: Any, path: str, out: list[FieldError]) -> None:
    label = path or "body"
    if value is None:
        if not schema.get("nullable") and schema.get("type"):
            out.append(
                errors.type_invalid(
                    path, "null", f'{label} in body must be of type {schema["type"]}: "null"'
                )
            )
        return
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _type_ok("integer", value)):
            out.append(
                errors.type_invalid(
                    path,
                    _type_name(value),
                    f"{label} in body must be of type integer-or-string: {errors.go_value(_type_name(value))}",
                )
            )
            return
    elif schema.get("type") and not _type_ok(schema["type"], value):
        actual = _type_name(value)
        out.append(
            errors.type_invalid(
                path, actual, f'{label} in body must be of type {schema["type"]}: "{actual}"'
            )
        )
        return
    enum = schema.get("enum")
    if enum is not None and not any(_same(value, e) for e in enum):
        out.append(errors.not_supported(path, value, list(enum)))
    if isinstance(value, str):
        _validate_string(schema, value, path, label, out)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _validate_number(schema, value, path, label, out)
    elif isinstance(value, dict):
        _validate_object(schema, value, path, label, out)
    elif isinstance(value, list):
        _validate_array(schema, value, path, label, out)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _validate_string(
    schema: dict[str, Any], value: str, path: str, label: str, out: list[FieldError]
) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        out.append(
            errors.invalid_value(
                path, value, f"{label} in body should be at least {schema['minLength']} chars long"
            )
        )
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        out.append(
            errors.FieldError(
                "FieldValueTooLong",
                path,
                f"Too long: may not be more than {schema['maxLength']} bytes",
            )
        )
    pattern = schema.get("pattern")
    if pattern and not re.search(pattern, value):
        out.append(errors.invalid_value(path, value, f"{label} in body should match '{pattern}'"))
    if schema.get("format") == "date-time" and not _DATE_TIME.match(value):
        out.append(
            errors.invalid_value(
                path, value, f"{label} in body must be of type date-time: {errors.go_value(value)}"
            )
        )


def _validate_number(
    schema: dict[str, Any], value: float, path: str, label: str, out: list[FieldError]
) -> None:
    if "minimum" in schema:
        low = schema["minimum"]
        if schema.get("exclusiveMinimum") is True:
            if value <= low:
                out.append(
                    errors.invalid_value(
                        path, value, f"{label} in body should be greater than {_num(low)}"
                    )
                )
        elif value < low:
            out.append(
                errors.invalid_value(
                    path, value, f"{label} in body should be greater than or equal to {_num(low)}"
                )
            )
    if "maximum" in schema:
        high = schema["maximum"]
        if schema.get("exclusiveMaximum") is True:
            if value >= high:
                out.append(
                    errors.invalid_value(
                        path, value, f"{label} in body should be less than {_num(high)}"
                    )
                )
        elif value > high:
            out.append(
                errors.invalid_value(
                    path, value, f"{label} in body should be less than or equal to {_num(high)}"
                )
            )
    multiple = schema.get("multipleOf")
    if multiple and (value / multiple) != int(value / multiple):
        out.append(
            errors.invalid_value(
                path, value, f"{label} in body should be a multiple of {_num(multiple)}"
            )
        )


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _validate_object(
    schema: dict[str, Any], value: dict[str, Any], path: str, label: str, out: list[FieldError]
) -> None:
    for key in schema.get("required") or ():
        if key not in value:
            out.append(errors.required(_join(path, key)))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        out.append(errors.too_many(path, len(value), schema["maxProperties"]))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        out.append(
            errors.invalid_value(
                path,
                len(value),
                f"{label} in body should have at least {schema['minProperties']} properties",
            )
        )
    props: dict[str, Any] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    for key, child in value.items():
        if not path and key == "metadata":
            continue  # ObjectMeta is checked by the store, not the CRD schema
        sub = props.get(key)
        if sub is None and isinstance(additional, dict):
            sub = additional
        if sub is not None:
            _validate(sub, child, _join(path, key), out)


def _validate_array(
    schema: dict[str, Any], value: list[Any], path: str, label: str, out: list[FieldError]
) -> None:
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        out.append(errors.too_many(path, len(value), schema["maxItems"]))
    if "minItems" in schema and len(value) < schema["minItems"]:
        out.append(
            errors.invalid_value(
                path, len(value), f"{label} in body should have at least {schema['minItems']} items"
            )
        )
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            _validate(items, item, f"{path}[{i}]", out)
