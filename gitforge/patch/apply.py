"""Apply parsed patches to a TreeView in memory: all hunks of all files, or nothing.

Each hunk is placed by `place_hunk`, which tries the strategies in `STRATEGIES` in
order. This version has one, exact placement; relocation by context and fuzz are
meant to be appended there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from gitforge.errors import PatchRefused
from gitforge.patch.parse import FilePatch, Hunk
from gitforge.patch.tree import TreeView

Mode = Literal["file", "exec"]
_ENC, _ERR = "utf-8", "surrogateescape"
_WINDOW_BEFORE, _WINDOW_AFTER, _WINDOW_MAX = 3, 3, 12


@dataclass(frozen=True)
class FileChange:
    path: str
    data: bytes | None  # None: delete the file
    mode: Mode
    old_path: str | None = None  # a rename: this old file disappears


@dataclass
class _Entry:
    data: bytes
    mode: Mode


# A strategy finds where `hunk` goes in `lines` (0-based index of its first old line),
# at or after index `lo` (the end of the previous hunk), or returns None.
Strategy = Callable[[Sequence[str], Hunk, int], int | None]


def expected_index(hunk: Hunk) -> int:
    """The 0-based index the header names (`@@ -0,0` and `@@ -N,0` insert after line N)."""
    return hunk.old_start if hunk.old_len == 0 else hunk.old_start - 1


def place_exact(lines: Sequence[str], hunk: Hunk, lo: int = 0) -> int | None:
    at = expected_index(hunk)
    old = hunk.old_lines
    if at < lo or at + len(old) > len(lines) or list(lines[at:at + len(old)]) != old:
        return None
    return at


STRATEGIES: tuple[Strategy, ...] = (place_exact,)


def place_hunk(lines: Sequence[str], hunk: Hunk, lo: int = 0) -> int | None:
    for strategy in STRATEGIES:
        at = strategy(lines, hunk, lo)
        if at is not None:
            return at
    return None


def apply_patches(patches: Sequence[FilePatch], tree: TreeView, *,
                  max_file_bytes: int | None = None) -> tuple[FileChange, ...]:
    """The changed files after applying every patch in order; raises PatchRefused listing all failures."""
    overlay: dict[str, _Entry | None] = {}  # path -> new state (None: deleted)
    origin: dict[str, str] = {}  # renamed path -> the original path it came from
    failed: set[str] = set()
    reasons: list[str] = []

    def state(path: str) -> _Entry | None:
        return overlay[path] if path in overlay else _read(tree, path)

    for fp in patches:
        touched = {p for p in (fp.old_path, fp.new_path) if p is not None}
        if touched & failed:
            reasons.append(f"{fp.path}: skipped, an earlier patch to this file did not apply")
            failed |= touched
            continue
        problems = _check_kinds(fp, tree, overlay, state)
        if not problems:
            result = _apply_one(fp, state(fp.old_path) if fp.old_path else None)
            if isinstance(result, list):
                problems = result
            else:
                if fp.op == "rename":
                    assert fp.old_path is not None
                    overlay[fp.old_path] = None
                    origin[fp.path] = origin.pop(fp.old_path, fp.old_path)
                elif fp.op == "delete":
                    origin.pop(fp.path, None)
                overlay[fp.path] = result
        if problems:
            reasons += problems
            failed |= touched

    changes = _changes(tree, overlay, origin)
    for c in changes:
        if c.data is None or max_file_bytes is None or len(c.data) <= max_file_bytes:
            continue
        if c.data != tree.read(c.old_path or c.path):  # a file moved or chmod-ed as it was is not refused
            reasons.append(f"{c.path}: the result is {len(c.data)} bytes, over the limit of "
                           f"{max_file_bytes} (max_file_bytes)")
            failed.add(c.path)
    if reasons:
        bad = len(failed)
        raise PatchRefused(f"patch does not apply ({len(reasons)} problem{'s' * (len(reasons) != 1)} "
                           f"in {bad} file{'s' * (bad != 1)}); nothing was changed", reasons=reasons,
                           hint="make the patch against the files' current content (shown above)")
    return changes


def _check_kinds(fp: FilePatch, tree: TreeView, overlay: dict[str, _Entry | None],
                 state: Callable[[str], _Entry | None]) -> list[str]:
    """Whether the files the patch expects exist (or do not), and its modes are ones we can write."""
    if fp.binary:
        return [f"{fp.path}: binary patches cannot be applied"]
    if fp.new_mode not in (None, "100644", "100755"):
        return [f"{fp.path}: cannot write file mode {fp.new_mode}"]
    problems = []
    if fp.old_path is not None and state(fp.old_path) is None:
        kind = None if fp.old_path in overlay else tree.kind(fp.old_path)
        what = {"dir": "it is a directory", "link": "it is a symlink"}.get(kind or "", "")
        if not what and fp.op == "modify" and all(h.old_start == h.old_len == 0 for h in fp.hunks):
            what = "a new file needs '--- /dev/null'"
        problems.append(f"{fp.old_path}: file does not exist{f' ({what})' if what else ''}")
    if fp.op in ("create", "rename"):
        new = fp.path
        if state(new) is not None:
            problems.append(f"{new}: file already exists")
        elif new not in overlay and tree.kind(new) in ("dir", "link"):
            what = "directory" if tree.kind(new) == "dir" else "symlink"
            problems.append(f"{new}: a {what} exists at this path")
        parts = new.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if state(prefix) is not None or (prefix not in overlay and tree.kind(prefix) == "link"):
                problems.append(f"{new}: '{prefix}' is not a directory")
                break
    return problems


def _apply_one(fp: FilePatch, old: _Entry | None) -> _Entry | None | list[str]:
    """The file's new state (None: deleted), or the reasons it failed."""
    data = old.data if old is not None else b""
    if fp.hunks:
        lines = _split(data.decode(_ENC, _ERR))
        new_lines, problems = _apply_hunks(fp, lines)
        if problems:
            return problems
        data = "".join(new_lines).encode(_ENC, _ERR)
    if fp.op == "delete":
        if data:
            return [f"{fp.path}: the file's content does not match the deletion "
                    f"({len(_split(data.decode(_ENC, _ERR)))} lines would remain)"]
        return None
    mode: Mode = old.mode if old is not None else "file"
    if fp.new_mode == "100755":
        mode = "exec"
    elif fp.new_mode == "100644":
        mode = "file"
    return _Entry(data, mode)


def _apply_hunks(fp: FilePatch, lines: list[str]) -> tuple[list[str], list[str]]:
    """The file's new lines, or the reasons some hunks do not fit (every hunk is tried)."""
    placed: list[tuple[int, Hunk]] = []
    problems: list[str] = []
    lo = 0
    for hunk in fp.hunks:
        at = place_hunk(lines, hunk, lo)
        if at is None:
            problems.append(describe_miss(fp.path, hunk, lines))
            at = expected_index(hunk)
        elif _joins_lines(lines, at, hunk):
            problems.append(f"{fp.path}: hunk '{hunk.header}': would join two lines at line {at + 1}: "
                            "'\\ No newline at end of file' belongs only to the file's last line")
        else:
            placed.append((at, hunk))
        lo = max(lo, at + hunk.old_len)
    if problems:
        return [], problems
    out: list[str] = []
    pos = 0
    for at, hunk in placed:
        out += lines[pos:at] + hunk.new_lines
        pos = at + len(hunk.old_lines)
    return out + lines[pos:], []


def _joins_lines(lines: Sequence[str], at: int, hunk: Hunk) -> bool:
    """Whether a line without a newline would end up before another line."""
    new, end = hunk.new_lines, at + hunk.old_len
    if new and not new[-1].endswith("\n") and end < len(lines):
        return True
    return bool(new) and hunk.old_len == 0 and at == len(lines) > 0 and not lines[-1].endswith("\n")


def describe_miss(path: str, hunk: Hunk, lines: Sequence[str]) -> str:
    """Why `hunk` does not fit at its line, with the file's actual lines around that place."""
    at = expected_index(hunk)
    line_no = hunk.old_start
    if at > len(lines) or (hunk.old_len and at >= len(lines)):
        head = f"{path}: hunk '{hunk.header}': no match at line {line_no} (the file has {len(lines)} lines)"
        detail = ""
    else:
        head = f"{path}: hunk '{hunk.header}': no match at line {line_no}"
        detail = _first_difference(hunk.old_lines, lines, at)
    first = max(0, min(at, len(lines)) - _WINDOW_BEFORE)
    last = min(len(lines), max(at + hunk.old_len, at + 1) + _WINDOW_AFTER, first + _WINDOW_MAX)
    width = len(str(max(last, 1)))
    body = [f"  {'>' if at <= i < at + hunk.old_len else ' '} {i + 1:>{width}} | {_bare(lines[i])}"
            for i in range(first, last)]
    if not body:
        shown = f"  {path} is empty"
    else:
        marks = " ('>' marks where the hunk expected its lines)" if hunk.old_len else ""
        shown = f"  actual lines {first + 1}-{last} of {path}{marks}:"
    return "\n".join([head] + ([detail] if detail else []) + [shown] + body)


def _first_difference(old: Sequence[str], lines: Sequence[str], at: int) -> str:
    for i, want in enumerate(old):
        if at + i >= len(lines):
            return f"  line {at + i + 1}: expected {_show(want, want)}, found the end of the file"
        got = lines[at + i]
        if got != want:
            return f"  line {at + i + 1}: expected {_show(want, got)}, found {_show(got, want)}"
    return ""


def _show(text: str, other: str) -> str:
    """repr() of a line, keeping its ending only when that is what differs."""
    return repr(text) if _bare(text) == _bare(other) else repr(_bare(text))


def _bare(line: str) -> str:
    """A line without its ending ("\\n" or "\\r\\n")."""
    line = line[:-1] if line.endswith("\n") else line
    return line[:-1] if line.endswith("\r") else line


def _split(text: str) -> list[str]:
    """Lines with their endings, split on "\\n" only (a lone "\\r" is not a line break)."""
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    return out + [lines[-1]] if lines[-1] else out


def _read(tree: TreeView, path: str) -> _Entry | None:
    """A regular file of the tree (a symlink or directory is not one)."""
    kind = tree.kind(path)
    if kind not in ("file", "exec"):
        return None
    return _Entry(tree.read(path) or b"", "exec" if kind == "exec" else "file")


def _changes(tree: TreeView, overlay: dict[str, _Entry | None],
             origin: dict[str, str]) -> tuple[FileChange, ...]:
    """The net effect of the overlay against the tree, a rename kept as one change."""
    moved = {old: new for new, old in origin.items()
             if overlay.get(new) is not None and overlay.get(old, "kept") is None and _read(tree, old)}
    changes = []
    for path, entry in overlay.items():
        orig = _read(tree, path)
        if path in moved:
            continue
        if entry is None:
            if orig is not None:
                changes.append(FileChange(path, None, orig.mode))
        elif path in moved.values():
            old = origin[path]
            changes.append(FileChange(path, entry.data, entry.mode, old_path=old))
        elif orig is None or orig.data != entry.data or orig.mode != entry.mode:
            changes.append(FileChange(path, entry.data, entry.mode))
    return tuple(changes)
