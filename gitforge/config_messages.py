"""What a configuration error says: a pydantic error turned into 'otto.yaml:7: 'max_attempts'
must be an integer, got 'three' (a string)', with the nearest valid key for a typo."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, get_args, get_origin

from pydantic import BaseModel

KeyPath = tuple[str | int, ...]  # a key path: ("verify", 0, "timeout")

_EXPECTED = {
    "int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
    "string_type": "a string", "list_type": "a list", "model_type": "a mapping",
    "dict_type": "a mapping",
}


def describe(error: Mapping[str, Any], origins: Mapping[KeyPath, str], schema: type[BaseModel],
             file: str) -> str:
    """One pydantic error -> 'otto.yaml:7: 'max_attempts' must be an integer, got ...'."""
    loc: KeyPath = tuple(error["loc"])
    kind, value, ctx = error["type"], error["input"], error.get("ctx") or {}
    where = next((origins[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in origins), file)
    key = dotted(loc)
    if kind == "extra_forbidden":
        siblings = [dotted((*loc[:-1], name)) for name in annotation_at(loc[:-1], schema).model_fields]
        return f"{where}: unknown key '{key}' — {suggest(key, siblings)}"
    if kind == "missing":
        return f"{where}: '{dotted(loc[:-1])}' is missing the required key '{loc[-1]}'"
    if kind == "literal_error":
        choices = [str(c) for c in get_args(annotation_at(loc, schema))]
        close = difflib.get_close_matches(str(value), choices, n=1)
        tail = f" — did you mean '{close[0]}'?" if close else ""
        return f"{where}: '{key}' must be one of {', '.join(choices)}; got {show(value)}{tail}"
    if kind in _EXPECTED:
        return f"{where}: '{key}' must be {_EXPECTED[kind]}, got {show(value)}"
    if kind in ("greater_than", "greater_than_equal"):
        bound = f"greater than {ctx['gt']:g}" if "gt" in ctx else f"at least {ctx['ge']:g}"
        return f"{where}: '{key}' must be {bound}, got {show(value)}"
    if kind == "less_than_equal":
        return f"{where}: '{key}' must be at most {int(ctx['le']):,}, got {show(value)}"
    if kind == "finite_number":
        tail = "; for no practical limit, write a large number" if value == value else ""  # not for NaN
        return f"{where}: '{key}' must be a finite number, got {show(value)}{tail}"
    if kind == "string_too_short":
        return f"{where}: '{key}' must not be empty"
    if kind == "value_error" and "error" in ctx:
        return f"{where}: '{key}': {ctx['error']}"
    return f"{where}: '{key}': {error['msg']}"


def annotation_at(loc: KeyPath, schema: type[BaseModel]) -> Any:
    """The schema type at a key path: () -> Config, ("verify", 0) -> Gate."""
    annotation: Any = schema
    for part in loc:
        if isinstance(part, int):
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            annotation = annotation.model_fields[part].annotation
    return annotation


def dotted(loc: KeyPath) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def suggest(wrong: str, valid: Iterable[str]) -> str:
    """'did you mean X?' for a close valid name, else the valid names (or the nearest one)."""
    valid = list(valid)
    if close := difflib.get_close_matches(wrong, valid, n=1):
        return f"did you mean '{close[0]}'?"
    if len(valid) <= 16:
        return "valid keys: " + ", ".join(valid)
    return f"the nearest is '{difflib.get_close_matches(wrong, valid, n=1, cutoff=0)[0]}'"


def show(value: object) -> str:
    """A value as written, with its YAML type: 'three' (a string), true (a boolean), a list."""
    if value is None or isinstance(value, (list, dict)):
        return {list: "a list", dict: "a mapping"}.get(type(value), "null")
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    kind = {str: "a string", int: "an integer", float: "a number"}.get(type(value), "a value")
    shown = repr(value)
    return f"{shown if len(shown) <= 80 else shown[:76] + '…'} ({kind})"
