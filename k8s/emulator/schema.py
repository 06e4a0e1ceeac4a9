"""Structural-schema handling for custom resources: pruning, defaulting and validation.

Owns what the real server does with a CRD's `openAPIV3Schema` on every write, in its order:
1. prune: drop fields the schema does not declare (unless `x-kubernetes-preserve-unknown-fields`),
   and `null` values of non-nullable fields; inside an `x-kubernetes-embedded-resource` object keep
   `apiVersion`, `kind` and `metadata` (metadata pruned to ObjectMeta's fields); report the dropped
   paths (they become `Warning: unknown field "spec.foo"` headers, or an error under
   `fieldValidation=Strict`);
2. default: fill `default:` values wherever the parent object is present (from `properties` only:
   a default inside `allOf`/`anyOf`/`oneOf`/`not` is never applied, as in kube);
3. validate, collecting every problem:
   - the OpenAPI value validations: type (integer accepts JSON integers only), `nullable`, enum,
     required, min/maxLength, pattern, `format` on strings (see `formats`), minimum/maximum with
     boolean exclusiveMinimum/Maximum, multipleOf, min/maxItems, min/maxProperties, items,
     properties, additionalProperties, `x-kubernetes-int-or-string`, and the logical junctors
     `allOf` (every branch's value validations, e.g. an enum), `anyOf`, `oneOf` and `not`;
   - embedded resources (`x-kubernetes-embedded-resource`): apiVersion and kind required and
     well-formed, metadata.name a valid path segment;
   - list types: no duplicate items in `x-kubernetes-list-type: set`, no duplicate keys in `map`;
   - CEL rules (`x-kubernetes-validations`, see `cel`), with `oldSelf` from the stored object on an
     update; skipped, with kube's "some validation rules were not checked" error, when the object
     already has a type or unsupported-value error.
   `uniqueItems: true` is not checked: kube-apiserver refuses a CRD that sets it.

Failure semantics: the functions mutate the object passed in (the caller passes a private copy) and
never raise; `validate` returns `FieldError`s worded like the real server (duplicates removed, as
kube-apiserver's aggregate message does), which the store turns into one 422 Invalid with a cause
per field.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from k8s.emulator import cel, errors, formats
from k8s.emulator.errors import FieldError

_ROOT_KEEP = ("apiVersion", "kind", "metadata")
OBJECT_META_FIELDS = frozenset(
    {
        "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
        "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
        "annotations", "ownerReferences", "finalizers", "managedFields",
    }
)  # fmt: skip
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
BLOCKED = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)


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
        embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        for key in list(obj):
            child_path = _join(path, key)
            if root and key in _ROOT_KEEP and (key == "metadata" or key not in props):
                continue
            if embedded and key in _ROOT_KEEP and key not in props:
                if key == "metadata":
                    _prune_object_meta(obj, child_path, out)
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


def _prune_object_meta(obj: dict[str, Any], path: str, out: list[str]) -> None:
    """An embedded resource's metadata keeps ObjectMeta's fields only (kube drops the rest)."""
    md = obj["metadata"]
    if not isinstance(md, dict):
        return
    for key in list(md):
        if key not in OBJECT_META_FIELDS:
            del md[key]
            out.append(_join(path, key))


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


def validate(schema: dict[str, Any], obj: Any, path: str = "", old: Any = None) -> list[FieldError]:
    """Check `obj` against `schema` (and its CEL rules, with `old` the stored object on an update);
    one FieldError per violation."""
    out: list[FieldError] = []
    _validate(schema, obj, path, out)
    if any(e.reason in ("FieldValueTypeInvalid", "FieldValueNotSupported") for e in out):
        if cel.has_rules(schema):
            out.append(errors.invalid_value("<nil>", "null", BLOCKED))  # Go prints nil so
    else:
        out += cel.validate(schema, obj, old, path)
    unique: list[FieldError] = []
    for problem in out:
        if problem not in unique:
            unique.append(problem)
    return unique


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
    _validate_junctors(schema, value, path, out)


def _errors_of(schema: dict[str, Any], value: Any, path: str) -> list[FieldError]:
    found: list[FieldError] = []
    _validate(schema, value, path, found)
    return found


def _fewest(results: list[list[FieldError]]) -> list[FieldError]:
    """The branch that came closest (fewest errors): kube reports its errors too."""
    return sorted(results, key=len)[0]


def _validate_junctors(
    schema: dict[str, Any], value: Any, path: str, out: list[FieldError]
) -> None:
    """`allOf`, `anyOf`, `oneOf`, `not`: value validations applied at the same node."""
    for branch in schema.get("allOf") or ():
        _validate(branch, value, path, out)
    any_of = schema.get("anyOf")
    if any_of:
        results = [_errors_of(branch, value, path) for branch in any_of]
        if all(results):
            out.append(
                errors.invalid_value(path, "", f"{path} must validate at least one schema (anyOf)")
            )
            out.extend(_fewest(results))
    one_of = schema.get("oneOf")
    if one_of:
        results = [_errors_of(branch, value, path) for branch in one_of]
        valid = sum(1 for r in results if not r)
        if valid != 1:
            found = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
            out.append(
                errors.invalid_value(
                    path, "", f"{path} must validate one and only one schema (oneOf). {found}"
                )
            )
            if valid == 0:
                out.extend(_fewest(results))
    negated = schema.get("not")
    if isinstance(negated, dict) and not _errors_of(negated, value, path):
        out.append(errors.invalid_value(path, "", f"{path} must not validate the schema (not)"))


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
    fmt = schema.get("format")
    if isinstance(fmt, str) and not formats.check(fmt, value):
        out.append(
            errors.type_invalid(
                path, value, f"{label} in body must be of type {fmt}: {errors.go_value(value)}"
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
    if schema.get("x-kubernetes-embedded-resource"):
        _validate_embedded(value, path, out)
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
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set":
        _no_duplicates(value, path, lambda item: item, out)
    elif list_type == "map":
        keys = list(schema.get("x-kubernetes-list-map-keys") or ())
        key_schemas = (items or {}).get("properties") or {} if isinstance(items, dict) else {}

        def key_of(item: Any) -> Any:
            if not isinstance(item, dict):
                return item
            return {
                k: item.get(k, (key_schemas.get(k) or {}).get("default"))
                for k in keys
                if k in item or "default" in (key_schemas.get(k) or {})
            }

        _no_duplicates(value, path, key_of, out)


def _no_duplicates(value: list[Any], path: str, key_of: Any, out: list[FieldError]) -> None:
    """kube's list-type check: each repeated item (set) or key (map) is a Duplicate value."""
    seen: set[str] = set()
    for i, item in enumerate(value):
        key = key_of(item)
        text = json.dumps(key, sort_keys=True)
        if text in seen:
            out.append(
                FieldError(
                    "FieldValueDuplicate",
                    f"{path}[{i}]",
                    f"Duplicate value: {errors.go_value(key)}",
                )
            )
        seen.add(text)


def _validate_embedded(value: dict[str, Any], path: str, out: list[FieldError]) -> None:
    """An `x-kubernetes-embedded-resource` object: apiVersion and kind required, metadata sane."""
    for key in ("apiVersion", "kind"):
        if not value.get(key) and not (key in value and not isinstance(value[key], str)):
            out.append(errors.required(_join(path, key)))
    api_version, kind = value.get("apiVersion"), value.get("kind")
    if isinstance(api_version, str) and api_version.count("/") > 1:
        out.append(
            errors.invalid_value(
                _join(path, "apiVersion"),
                api_version,
                f"unexpected GroupVersion string: {api_version}",
            )
        )
    for key in ("apiVersion", "kind"):
        if key in value and not isinstance(value[key], str):
            out.append(errors.invalid_value(_join(path, key), value[key], "must be a string"))
    if isinstance(kind, str) and kind and not _DNS1035.match(kind.lower()):
        out.append(
            errors.invalid_value(
                _join(path, "kind"),
                kind,
                "may have mixed case, but should otherwise match: a DNS-1035 label must consist "
                "of lower case alphanumeric characters or '-', start with an alphabetic character, "
                "and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used "
                "for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
            )
        )
    md = value.get("metadata")
    if md is not None and not isinstance(md, dict):
        out.append(errors.invalid_value(_join(path, "metadata"), md, "must be an object"))
    elif isinstance(md, dict) and isinstance(md.get("name"), str):
        name = md["name"]
        for bad in ("/", "%"):
            if bad in name:
                out.append(
                    errors.invalid_value(
                        _join(path, "metadata.name"), name, f"may not contain '{bad}'"
                    )
                )
        if name in (".", ".."):
            out.append(
                errors.invalid_value(_join(path, "metadata.name"), name, f"may not be '{name}'")
            )
