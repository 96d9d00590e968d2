"""Read-only tools the API builder's model may call over the base tree before it submits a patch.

Everything goes through the base commit's TreeView and tracked file list, never the filesystem,
so the model sees exactly what its diff applies to. Paths are checked (no escapes, nothing under
`.git/` or `.forge/`, no protected file's content) and every answer is bounded, so a careless call
can neither leak a secret nor flood the conversation or stall the run.
"""

from __future__ import annotations

import bisect
import difflib
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence

from gitforge.infra.clip import around, middle
from gitforge.patch.policy import matches_protected
from gitforge.patch.tree import TreeView
from gitforge.repomap import human_size, is_binary, plural

READ_LINES = 400
READ_CHARS = 40_000
LIST_ENTRIES = 500
SEARCH_MATCHES = 50
SEARCH_MAX_FILE = 1_000_000
SEARCH_BYTES = 64_000_000     # read in one search, at most
SEARCH_SECONDS = 2.0
MATCH_CHARS = 200

_PATH = {"type": "string", "description": "Path relative to the repository root, e.g. src/app/main.py"}
READ_TOOLS: list[dict] = [
    {"name": "read_file",
     "description": "Read a text file as it is at the base commit, numbered like `cat -n` (the numbers are not "
                    "part of the file). At most 400 lines per call; use start_line/end_line for other parts.",
     "input_schema": {"type": "object", "properties": {
         "path": _PATH,
         "start_line": {"type": "integer", "minimum": 1, "description": "First line to show, 1-based (default 1)"},
         "end_line": {"type": "integer", "minimum": 1, "description": "Last line to show, inclusive"}},
         "required": ["path"], "additionalProperties": False}},
    {"name": "list_dir",
     "description": "List a folder's immediate children: folders end in '/' with their file counts, files "
                    "have sizes. Defaults to the repository root.",
     "input_schema": {"type": "object", "properties": {
         "path": {"type": "string", "description": "Folder relative to the repository root (default: the root)"}},
         "additionalProperties": False}},
    {"name": "search_text",
     "description": "Search the repository's text files for a case-sensitive string (or a Python regular "
                    "expression with regex=true), line by line. Returns `path:line: text`, at most 50 matches.",
     "input_schema": {"type": "object", "properties": {
         "pattern": {"type": "string", "description": "Text to find (a regular expression if regex is true)"},
         "regex": {"type": "boolean", "description": "Treat pattern as a regular expression (default false)"},
         "path_glob": {"type": "string", "description": "Only files matching this gitignore-style glob, "
                                                        "e.g. src/**/*.py or *.md or docs/"}},
         "required": ["pattern"], "additionalProperties": False}},
]
_SCHEMAS = {t["name"]: t["input_schema"] for t in READ_TOOLS}
_SUBMODULE = "'{}' is a submodule (a gitlink): its files are in another repository, and a patch may not change them"
_TYPES = {"string": str, "integer": int, "boolean": bool}
_DRIVE = re.compile(r"^[A-Za-z]:")


class _Refused(Exception):
    """A call the model can correct: the message is its answer."""


class RepoTools:
    """Runs READ_TOOLS calls against one tree; `run` never raises."""

    def __init__(self, view: TreeView, files: Sequence[tuple[str, int]], protected: Sequence[str] = ()) -> None:
        self.view = view
        self.files = sorted(files)
        self.paths = [p for p, _ in self.files]
        self.protected = tuple(protected)
        self._hidden: set[str] | None = None

    def run(self, name: str, input: object) -> tuple[str, bool]:
        """(answer, is_error) for one tool call."""
        if not isinstance(name, str) or name not in _SCHEMAS:
            return f"unknown tool {name!r}; the tools are: {', '.join(_SCHEMAS)}", True
        try:
            args = _arguments(name, input)
            return getattr(self, "_" + name)(**args)
        except _Refused as e:
            return str(e), True
        except Exception as e:  # a bug here must not end the build: the model gets the reason
            return f"{name} failed: {type(e).__name__}: {e}", True

    # --- the tools

    def _read_file(self, path: str, start_line: int = 1, end_line: int | None = None) -> tuple[str, bool]:
        p = self._check(path)
        kind = self.view.kind(p)
        if kind == "dir":
            raise _Refused(f"'{p}' is a folder, not a file; call list_dir with path='{p}'")
        if kind == "submodule":
            raise _Refused(_SUBMODULE.format(p))
        data = self.view.read(p) if kind is not None else None
        if data is None:
            raise _Refused(self._missing(p, self.paths))
        if kind == "link":
            return self._link(p, data), False
        if is_binary(data):
            return f"'{p}' is a binary file ({len(data):,} bytes); its content cannot be shown", False
        if not data:
            return f"'{p}' is empty (0 bytes)", False
        return _numbered(p, data.decode("utf-8", "replace"), start_line, end_line), False

    def _list_dir(self, path: str = "") -> tuple[str, bool]:
        p = self._check(path, root_ok=True)
        kind = self.view.kind(p) if p else "dir"
        if kind is None:
            known = {q.rsplit("/", i)[0] for q in self.paths for i in range(1, q.count("/") + 1)}
            raise _Refused(self._missing(p, sorted(known)))
        if kind == "link":
            return self._link(p, self.view.read(p) or b""), False
        if kind == "submodule":
            raise _Refused(_SUBMODULE.format(p))
        if kind != "dir":
            raise _Refused(f"'{p}' is a file, not a folder; call read_file with path='{p}'")
        prefix = p + "/" if p else ""
        folders: dict[str, list[int]] = {}   # name: [files, protected files]
        files: list[tuple[str, int]] = []
        for q, size in self.files[bisect.bisect_left(self.paths, prefix):]:
            if not q.startswith(prefix):
                break
            name, sep, _ = q[len(prefix):].partition("/")
            if sep:
                counts = folders.setdefault(name, [0, 0])
                counts[0] += 1
                counts[1] += q in self._hidden_paths()
            else:
                files.append((q, size))
        lines = [f"{name}/  ({plural(count, 'file')}" + (", protected" if hidden == count else
                                                         f", {hidden:,} protected" if hidden else "") + ")"
                 for name, (count, hidden) in sorted(folders.items())]
        lines += [self._file_entry(q, size) for q, size in files[:max(0, LIST_ENTRIES - len(lines))]]
        head = f"{prefix or 'the repository root'}: {plural(len(folders), 'folder')}, {plural(len(files), 'file')}"
        more = len(folders) + len(files) - len(lines[:LIST_ENTRIES])
        tail = [f"… {more:,} more entries not listed; search_text with a path_glob narrows"] if more else []
        return "\n".join([head, *lines[:LIST_ENTRIES], *tail]), False

    def _search_text(self, pattern: str, regex: bool = False, path_glob: str = "") -> tuple[str, bool]:
        if not pattern:
            raise _Refused("pattern is empty; give the text to search for")
        if regex and _may_backtrack(pattern):
            raise _Refused(f"the regular expression {pattern!r} repeats a group that itself repeats or "
                           "alternates (e.g. (a+)+ or (a|b)*), which can take exponential time; use a simpler "
                           "pattern, or regex=false")
        try:
            rx = re.compile(pattern, re.MULTILINE) if regex else None
        except re.error as e:
            raise _Refused(f"invalid regular expression {pattern!r}: {e}; pass regex=false to search for "
                           "the text as it is") from None
        whole = rx is None or not re.search(r"\\[AZ]|\(\?<", pattern)   # a whole-file pre-check is safe
        glob = path_glob.strip()
        matches: list[str] = []
        skipped: Counter[str] = Counter()
        stopped = ""
        for path, text in self._texts(glob, skipped):
            if whole and not (rx.search(text) if rx else pattern in text):
                continue
            for i, line in enumerate(text.split("\n"), 1):
                span = _span(rx, pattern, line)
                if span is not None:
                    line = line.removesuffix("\r")
                    matches.append(f"{path}:{i}: {around(line, *span, MATCH_CHARS)}")
                    if len(matches) > SEARCH_MATCHES:
                        break
            if len(matches) > SEARCH_MATCHES:
                stopped = f"stopped at {SEARCH_MATCHES} matches; there are more: narrow the pattern or use path_glob"
                break
        searched = skipped.pop("searched", 0)
        if skipped["stopped"]:
            stopped = f"stopped early after {plural(searched, 'file')} (time or size limit); narrow with path_glob"
        del skipped["stopped"]
        if glob and not searched and not skipped:
            return f"no tracked file matches path_glob '{glob}'", False
        skips = ", ".join(plural(n, why) if why == "symlink" else f"{n:,} {why}" for why, n in sorted(skipped.items()))
        head = (f"{plural(len(matches[:SEARCH_MATCHES]), 'match')} for {pattern!r}"
                + (f" in files matching '{glob}'" if glob else "")
                + f" ({plural(searched, 'file')} searched" + (f"; skipped {skips})" if skips else ")"))
        return "\n".join([head, *matches[:SEARCH_MATCHES], *[f"[{stopped}]"] * bool(stopped)]), False

    def _texts(self, glob: str, tally: Counter[str]) -> Iterator[tuple[str, str]]:
        """The searchable files' texts, read lazily; skips and stops are counted in `tally`."""
        budget, deadline = SEARCH_BYTES, time.monotonic() + SEARCH_SECONDS
        for path, size in self.files:
            if glob and not matches_protected(path, glob):
                continue
            why = "protected" if path in self._hidden_paths() else "over 1 MB" if size > SEARCH_MAX_FILE else ""
            if not why and (budget <= 0 or time.monotonic() > deadline):
                tally["stopped"] += 1
                return
            data = b"" if why else self.view.read(path) or b""
            budget -= len(data)
            link = len(data) < 4096 and self.view.kind(path) == "link"   # a target is short: skip the lookup
            why = why or ("binary" if is_binary(data) else "symlink" if link else "")
            tally[why or "searched"] += 1
            if not why:
                yield path, data.decode("utf-8", "replace")

    # --- helpers

    def _check(self, raw: str, root_ok: bool = False) -> str:
        """The path normalized to `a/b`, or _Refused saying why the model may not have it."""
        path = raw.strip()
        parts = [part for part in path.split("/") if part not in ("", ".")]
        p = "/".join(parts)
        pattern = next((pat for pat in self.protected if p and matches_protected(p, pat)), None)
        why = _shape_problem(path, parts, root_ok) or (
            f"'{p}' is protected (matches '{pattern}'); its content is not available" if pattern else "")
        if why:
            raise _Refused(f"refused {raw!r}: {why}")
        return p

    def hidden(self) -> set[str]:
        """Tracked files the model may not see (protected, .git/, .forge/)."""
        return set(self._hidden_paths())

    def _hidden_paths(self) -> set[str]:
        """Tracked files the model may not read: protected, or under .git/ or .forge/."""
        if self._hidden is None:
            self._hidden = {p for p in self.paths if any(matches_protected(p, pat) for pat in
                                                         (*self.protected, ".git/", ".forge/"))}
        return self._hidden

    def _file_entry(self, path: str, size: int) -> str:
        """`name  (1.2 KB)`; protected files are named but nothing else about them is said."""
        name = path.rsplit("/", 1)[-1]
        if path in self._hidden_paths():
            return f"{name}  (protected)"
        kind = self.view.kind(path)
        if kind == "link":
            return f"{name}  (symlink -> {(self.view.read(path) or b'').decode('utf-8', 'replace')})"
        return f"{name}  ({human_size(size)}{', executable' if kind == 'exec' else ''})"

    def _link(self, path: str, target: bytes) -> str:
        return (f"'{path}' is a symlink to '{target.decode('utf-8', 'replace')}'; symlinks are not followed "
                "(read the target's path if it is in the repository)")

    def _missing(self, path: str, candidates: list[str]) -> str:
        """Not found: say so, and name the likeliest paths (same name elsewhere, else similar)."""
        for i in range(1, path.count("/") + 1):
            prefix = "/".join(path.split("/")[:i])
            if self.view.kind(prefix) == "link":
                return self._link(prefix, self.view.read(prefix) or b"") + f", so '{path}' cannot be read"
        name = path.rsplit("/", 1)[-1]
        hidden = self._hidden_paths()
        close = [c for c in candidates if c.rsplit("/", 1)[-1] == name and c not in hidden][:5]
        close = close or [c for c in difflib.get_close_matches(path, candidates, n=8, cutoff=0.6) if c not in hidden]
        hint = f"; did you mean: {', '.join(close[:5])}?" if close else "; call list_dir to see what exists"
        return f"'{path}' does not exist at the base commit{hint}"


def _shape_problem(path: str, parts: list[str], root_ok: bool) -> str:
    """Why a path string cannot name something the model may read inside the repository ("" if it can)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "the path contains a control character"
    if "\\" in path:
        return "backslashes are not allowed; separate folders with '/'"
    if path.startswith("/") or _DRIVE.match(path):
        return "absolute paths are not allowed; give a path relative to the repository root"
    if ".." in parts:
        return "'..' is not allowed: paths stay inside the repository"
    if not parts and not root_ok:
        return "the path is empty; give a file path relative to the repository root"
    if any(part.casefold().rstrip(". ") in (".git", "git~1") for part in parts):
        return "nothing under .git/ can be read"
    if any(part.casefold() == ".forge" for part in parts):
        return "nothing under .forge/ (gitforge's own state) can be read"
    return ""


def _numbered(path: str, text: str, start: int, end: int | None) -> str:
    """Lines `start`..`end` like `cat -n`, at most READ_LINES lines / READ_CHARS characters, saying how to go on."""
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    n = len(lines)
    if start > n:
        raise _Refused(f"start_line={start} is past the end of '{path}', which has {plural(n, 'line')}")
    if end is not None and end < start:
        raise _Refused(f"end_line={end} is before start_line={start}")
    last, out, size = min(n, end or n, start + READ_LINES - 1), [], 0
    for i in range(start, last + 1):
        line = lines[i - 1].removesuffix("\r")
        if len(line) > READ_CHARS // 2:
            line = middle(line, READ_CHARS // 2)
        if out and size + len(line) > READ_CHARS:
            last = i - 1
            break
        out.append(f"{i:>6}\t{line}")
        size += len(line) + 8
    shown = plural(n, "line") if (start, last) == (1, n) else f"lines {start:,}-{last:,} of {n:,}"
    crlf = ", CRLF line endings" if "\r\n" in text else ""
    if last < n:
        out.append(f"[lines {start:,}-{last:,} of {n:,}; call read_file with start_line={last + 1} for more]")
    elif not text.endswith("\n"):
        out.append("\\ No newline at end of file")
    return "\n".join([f"{path} ({shown}{crlf})", *out])


def _arguments(name: str, given: object) -> dict:
    """The call's input checked against its schema; _Refused names what was expected."""
    schema = _SCHEMAS[name]
    props: dict[str, dict] = schema["properties"]
    usage = f"{name} takes an object with " + ", ".join(
        f"{k} ({v['type']}{'' if k in schema.get('required', ()) else ', optional'})" for k, v in props.items())
    if not isinstance(given, dict):
        raise _Refused(f"bad input {given!r}: {usage}")
    given = {k: v for k, v in given.items() if v is not None or k in schema.get("required", ())}
    for key, value in given.items():
        kind = props.get(key, {}).get("type")
        if kind is None:
            raise _Refused(f"unexpected field {key!r}: {usage}")
        if not isinstance(value, _TYPES[kind]) or (kind == "integer" and isinstance(value, bool)):
            raise _Refused(f"{key} must be a {kind}, not {type(value).__name__} {value!r}: {usage}")
        if kind == "integer" and value < props[key].get("minimum", value):
            raise _Refused(f"{key} must be at least {props[key]['minimum']}, not {value}")
    missing = [k for k in schema.get("required", ()) if k not in given]
    if missing:
        raise _Refused(f"missing {', '.join(missing)}: {usage}")
    return given


def _span(rx: re.Pattern | None, pattern: str, line: str) -> tuple[int, int] | None:
    """Where the search finds something in `line` (None: nowhere)."""
    if rx is not None:
        m = rx.search(line)
        return m.span() if m else None
    at = line.find(pattern)
    return (at, at + len(pattern)) if at >= 0 else None


def _may_backtrack(pattern: str) -> bool:
    """True for a group that is repeated (*, + or {n,}) and holds a repetition or an alternation:
    the shapes that make Python's backtracking `re` take exponential time, which no timeout can
    interrupt (the match runs in C)."""
    stack: list[bool] = []  # per open group: does it hold a quantifier or an alternation?
    i, closed_risky = 0, False
    while i < len(pattern):
        c = pattern[i]
        repeat = c in "*+" or (c == "{" and re.match(r"\{\d*,?\d*\}", pattern[i:]) is not None)
        if closed_risky and repeat:
            return True
        closed_risky = False
        if c == "\\":
            i += 2
            continue
        if c == "[":  # a character class: skip to its end
            end = re.match(r"\[\^?\]?(?:\\.|[^\]])*\]", pattern[i:])
            i += end.end() if end else 1
            continue
        if c == "(":
            stack.append(False)
        elif c == ")" and stack:
            closed_risky = stack.pop()
            if stack:
                stack[-1] = stack[-1] or closed_risky
        elif (repeat or c == "|") and stack:
            stack[-1] = True
        i += 1
    return False
