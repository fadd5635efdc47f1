"""Field declarations with validation rules, for the deck dataclasses."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

_MISSING = dataclasses.MISSING
_INT_LIMIT = 2**63


def opt(
    default: Any = _MISSING,
    doc: str = "",
    *,
    kind: type | tuple | None = None,
    choices: tuple | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    length: int | tuple | None = None,
    item: type | None = None,
    hint: str = "",
) -> Any:
    """A deck option: default, documentation and the rules a value must obey.

    Args:
        default: value when the deck omits the key (_MISSING: required).
        doc: one line with meaning and units.
        kind: expected Python type (float accepts int).
        choices: allowed values.
        ge: lower bound (inclusive), applied to each item of a list.
        gt: lower bound (exclusive).
        le: upper bound (inclusive).
        lt: upper bound (exclusive).
        length: exact length (int) or (min, max) for list values.
        item: type of list items.
        hint: extra hint printed with a violation.
    """
    meta = dict(
        doc=doc,
        kind=kind,
        choices=choices,
        ge=ge,
        gt=gt,
        le=le,
        lt=lt,
        length=length,
        item=item,
        hint=hint,
    )
    if isinstance(default, list):
        value = tuple(default)
        return dataclasses.field(default_factory=lambda: value, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _type_ok(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _type_name(kind) -> str:
    return {
        float: "a number",
        int: "an integer",
        str: "a string",
        bool: "true or false",
        tuple: "a list",
    }.get(kind, getattr(kind, "__name__", str(kind)))


def check_value(value: Any, meta: dict) -> tuple[Any, str | None]:
    """Coerce ``value`` to the option's type and check its rules.

    Returns:
        (coerced value, None) or (value, "rule that is violated (hint)").
    """
    kind = meta.get("kind")
    if kind is tuple:
        if not isinstance(value, list | tuple):
            return value, "must be a list"
        n = meta.get("length")
        if isinstance(n, int) and len(value) != n:
            return value, f"must be a list of {n} items"
        if isinstance(n, tuple) and not n[0] <= len(value) <= n[1]:
            return value, f"must be a list of {n[0]} to {n[1]} items"
        item = meta.get("item")
        out = []
        for v in value:
            if item is not None and not _type_ok(v, item):
                return value, f"items must be {_type_name(item)}"
            err = _check_scalar(v, meta)
            if err:
                return value, f"items {err}"
            out.append(float(v) if item is float else v)
        return tuple(out), None
    if kind is not None and not _type_ok(value, kind):
        return value, f"must be {_type_name(kind)}"
    err = _check_scalar(value, meta)
    if err:
        return value, err
    return (float(value) if kind is float else value), None


def _check_scalar(v: Any, meta: dict) -> str | None:
    choices = meta.get("choices")
    if choices is not None and v not in choices:
        return "must be one of " + ", ".join(repr(c) for c in choices)
    if isinstance(v, str) and "\0" in v:
        return "must not contain a NUL character"
    if isinstance(v, int | float) and not isinstance(v, bool):
        # inf and NaN pass the bounds (inf > 0) and fail at run time: refused here
        if isinstance(v, float) and not math.isfinite(v):
            return "must be a finite number"
        if isinstance(v, int) and abs(v) >= _INT_LIMIT:
            return "must be a 64-bit integer (|value| < 2**63)"
        for key, op, word in (
            ("ge", float.__ge__, ">="),
            ("gt", float.__gt__, ">"),
            ("le", float.__le__, "<="),
            ("lt", float.__lt__, "<"),
        ):
            b = meta.get(key)
            if b is not None and not op(float(v), float(b)):
                return f"must be {word} {b}"
    return None
