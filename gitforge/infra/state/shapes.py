"""The shapes of the JSON files under `.forge/`, checked when they are read.

Each shape lists the keys its writers write and the types every reader relies on; a key
not listed is allowed (newer writers may add some). `problem` says what is wrong with a
value, or None: the state layer sets a file of the wrong shape aside instead of letting a
reader trip over it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NoneType = type(None)


@dataclass(frozen=True)
class Obj:
    """A JSON object: `required` keys, `optional` ones; `exact`: no other key either."""

    required: dict[str, Any] = field(default_factory=dict)
    optional: dict[str, Any] = field(default_factory=dict)
    exact: bool = False


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class MapOf:
    value: Any


@dataclass(frozen=True)
class OneOf:
    values: tuple[str, ...]


STR_OR_NONE = (str, NoneType)
NUMBER = (int, float)

GATE = Obj(required={"name": str, "run": str, "source": str, "exit_code": (int, NoneType), "duration": NUMBER,
                     "timed_out": bool, "log": str, "tail": str}, exact=True)
TRANSITION = Obj(required={"state": str, "at": str}, optional={"reason": STR_OR_NONE})
DECISION = Obj(required={"action": str, "source": str, "confidence": NUMBER, "reason": str},
               optional={"hint": STR_OR_NONE, "commands": ListOf(str)})
ATTEMPT = Obj(required={"number": int, "ok": bool, "stage": str},
              optional={"reason": STR_OR_NONE, "details": list, "gates": ListOf(GATE), "stats": (dict, NoneType),
                        "files": ListOf(str), "tree": STR_OR_NONE, "commit": STR_OR_NONE, "base": STR_OR_NONE,
                        "ledger": (Obj(optional={"transitions": ListOf(TRANSITION)}), NoneType),
                        "summary": STR_OR_NONE, "notices": (ListOf(str), NoneType), "decision": (DECISION, NoneType)})
PLAN = Obj(required={"files": ListOf(str), "approach": str}, optional={"risks": list, "checks": list})
ROLE_COST = Obj(required={"calls": int, "models": ListOf(str), "input_tokens": int, "output_tokens": int,
                          "cache_write_tokens": int, "cache_read_tokens": int, "usd": NUMBER})
COST = Obj(required={"total_usd": NUMBER, "calls": int, "by_role": MapOf(ROLE_COST)})

RUN = Obj(
    required={"run_id": str, "phase": str, "status": str},
    optional={"schema_version": int, "updated": str, "title": str, "step": str, "mode": str, "target": STR_OR_NONE,
              "base": STR_OR_NONE, "branch": STR_OR_NONE, "builder": dict, "pid": (int, NoneType),
              "host": STR_OR_NONE, "started": STR_OR_NONE, "ended": STR_OR_NONE, "attempts": ListOf(ATTEMPT),
              "run_dir": str, "worktree": STR_OR_NONE, "worktree_name": STR_OR_NONE, "reason": STR_OR_NONE,
              "commit": STR_OR_NONE, "landing_commit": STR_OR_NONE, "retryable": bool, "recovered": bool,
              "reverified": (bool, NoneType), "plan": (PLAN, NoneType), "llm": (COST, NoneType),
              "note": (dict, NoneType), "decisions": list, "version": int, "batch": STR_OR_NONE})
LEASE = Obj(required={"phase": str, "run_id": str, "pid": int, "host": str, "started": str},
            optional={"kind": OneOf(("process", "session"))}, exact=True)
QUEUE_ENTRY = Obj(required={"id": str, "run_id": str, "phase": str, "base": str, "tree": str},
                  optional={"pid": int, "host": str, "joined": str, "target": str})
QUEUE = Obj(required={"entries": ListOf(QUEUE_ENTRY)}, optional={"schema_version": int})
BATCH = Obj(required={"batch_id": str, "status": str},
            optional={"pid": int, "host": str, "started": str, "ended": STR_OR_NONE, "parallel": int,
                      "max_phases": (int, NoneType), "target": str, "workers": list, "updated": str,
                      "schema_version": int, "resumed": list, "reason": STR_OR_NONE})
WORKTREE = Obj(optional={"name": str, "path": str, "branch": STR_OR_NONE, "run_id": STR_OR_NONE,
                         "state": OneOf(("busy", "kept", "idle")), "since": str, "reason": STR_OR_NONE})


def _name(spec: Any) -> str:
    if isinstance(spec, tuple):
        return " or ".join(_name(s) for s in spec)
    if isinstance(spec, (Obj, MapOf)):
        return "an object"
    if isinstance(spec, ListOf):
        return "a list"
    if isinstance(spec, OneOf):
        return " or ".join(repr(v) for v in spec.values)
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false", NoneType: "null",
            dict: "an object", list: "a list"}.get(spec, getattr(spec, "__name__", str(spec)))


def _matches(value: Any, spec: Any, where: str) -> str | None:
    if isinstance(spec, tuple):
        whys = [_matches(value, option, where) for option in spec]
        if None in whys:
            return None
        for option, why in zip(spec, whys):  # the right kind of container, with something wrong inside
            if isinstance(value, dict) and isinstance(option, (Obj, MapOf)) or \
                    isinstance(value, list) and isinstance(option, ListOf):
                return why
        return f"{where} is {_brief(value)}, not {_name(spec)}"
    if isinstance(spec, Obj):
        if not isinstance(value, dict):
            return f"{where} is {_brief(value)}, not an object"
        for key, sub in spec.required.items():
            if key not in value:
                return f"{where} has no {key!r}"
            if (why := _matches(value[key], sub, f"{where}.{key}" if where != "it" else key)) is not None:
                return why
        for key, sub in spec.optional.items():
            if key in value and (why := _matches(value[key], sub, f"{where}.{key}" if where != "it" else key)):
                return why
        if spec.exact and (extra := sorted(set(value) - set(spec.required) - set(spec.optional))):
            return f"{where} has unknown key(s) {', '.join(map(repr, extra))}"
        return None
    if isinstance(spec, ListOf):
        if not isinstance(value, list):
            return f"{where} is {_brief(value)}, not a list"
        for i, item in enumerate(value):
            if (why := _matches(item, spec.item, f"{where}[{i}]")) is not None:
                return why
        return None
    if isinstance(spec, MapOf):
        if not isinstance(value, dict):
            return f"{where} is {_brief(value)}, not an object"
        for key, item in value.items():
            if (why := _matches(item, spec.value, f"{where}.{key}")) is not None:
                return why
        return None
    if isinstance(spec, OneOf):
        return None if value in spec.values else f"{where} is {_brief(value)}, not {_name(spec)}"
    ok = isinstance(value, spec) and not (isinstance(value, bool) and spec in (int, float))
    return None if ok else f"{where} is {_brief(value)}, not {_name(spec)}"


def _brief(value: Any) -> str:
    text = "null" if value is None else repr(value)
    return text if len(text) <= 40 else text[:20] + "…" + text[-12:]


def problem(value: Any, spec: Any, where: str = "it") -> str | None:
    """What is wrong with `value` as a `spec`, or None when nothing is."""
    return _matches(value, spec, where)
