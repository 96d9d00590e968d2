"""Cheap checks of the files a patch produces: syntax, data formats, conflict markers."""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase

from gitforge.patch.apply import FileChange

# Files named .json that are JSON-with-comments by convention: not audited as JSON.
_JSONC_NAMES = ("tsconfig*.json", "jsconfig*.json", ".eslintrc.json", "devcontainer.json",
                ".devcontainer.json", "*.jsonc")
_JSONC_DIRS = (".vscode", ".devcontainer")


def audit(changes: Sequence[FileChange]) -> list[str]:
    """Reasons the changed files look broken; deleted files are not audited."""
    reasons: list[str] = []
    for change in changes:
        if change.data is None:
            continue
        name = change.path.rsplit("/", 1)[-1].lower()
        ext = name.rsplit(".", 1)[-1] if "." in name else ""
        check = _CHECKS.get(ext)
        if check is not None:
            try:
                reason = check(change.path, change.data)
            except (RecursionError, MemoryError):  # a parser's own limits: thousands of nested levels
                reason = f"{change.path}: nested too deeply to check; flatten it"
            if reason:
                reasons.append(reason)
        if b"\0" not in change.data:
            reason = _conflict_markers(change.path, change.data)
            if reason:
                reasons.append(reason)
    return reasons


def _python(path: str, data: bytes) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning (e.g. invalid escapes) is not an error
            compile(data, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return f"{path}:{exc.lineno or '?'}: Python syntax error: {exc.msg}"
    except ValueError as exc:  # e.g. "source code string cannot contain null bytes"
        return f"{path}: Python syntax error: {exc}"
    return None


def _json(path: str, data: bytes) -> str | None:
    parts = path.lower().split("/")
    if any(fnmatchcase(parts[-1], n) for n in _JSONC_NAMES) or any(d in parts[:-1] for d in _JSONC_DIRS):
        return None
    try:
        json.loads(data)
    except json.JSONDecodeError as exc:
        return f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})"
    except UnicodeDecodeError as exc:
        return f"{path}: invalid JSON: not UTF-8 ({exc.reason})"
    return None


def _yaml(path: str, data: bytes) -> str | None:
    import yaml

    if "templates" in path.split("/")[:-1] and b"{{" in data:
        return None  # a Helm-style template is not YAML until it is rendered
    try:
        for _ in yaml.load_all(data, Loader=_any_tag_loader()):  # noqa: S506 - a SafeLoader subclass
            pass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        return f"{where}: invalid YAML: {exc.problem or exc.context}"
    except yaml.YAMLError as exc:
        return f"{path}: invalid YAML: {exc}"
    except RecursionError:  # PyYAML composes recursively: thousands of nested levels
        return f"{path}: YAML nested too deeply to check (Python's recursion limit); flatten it"
    return None


@functools.cache
def _any_tag_loader() -> type:
    """yaml.SafeLoader that reads application tags (`!Ref`, `!include`) as null, building nothing."""
    import yaml

    class AnyTagLoader(yaml.SafeLoader):
        pass

    AnyTagLoader.add_multi_constructor("", lambda loader, suffix, node: None)
    return AnyTagLoader


def _toml(path: str, data: bytes) -> str | None:
    import tomllib

    try:
        tomllib.loads(data.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        return f"{path}: invalid TOML: {exc}"
    except UnicodeDecodeError as exc:
        return f"{path}: invalid TOML: not UTF-8 ({exc.reason})"
    return None


def _conflict_markers(path: str, data: bytes) -> str | None:
    """Only a `<<<<<<<` together with a `>>>>>>>` counts (an rst underline of `=` alone does not)."""
    found: dict[str, list[int]] = {"<": [], "=": [], ">": []}
    for number, line in enumerate(data.split(b"\n"), 1):
        line = line.rstrip(b"\r")
        if line.startswith(b"<<<<<<< ") or line == b"<<<<<<<":
            found["<"].append(number)
        elif line == b"=======":
            found["="].append(number)
        elif line.startswith(b">>>>>>> ") or line == b">>>>>>>":
            found[">"].append(number)
    if not (found["<"] and found[">"]):
        return None
    numbers = sorted(found["<"] + found["="] + found[">"])
    shown = ", ".join(map(str, numbers[:6])) + (", ..." if len(numbers) > 6 else "")
    return f"{path}:{numbers[0]}: unresolved conflict markers (lines {shown})"


_CHECKS: dict[str, Callable[[str, bytes], str | None]] = {
    "py": _python, "json": _json, "yaml": _yaml, "yml": _yaml, "toml": _toml,
}
