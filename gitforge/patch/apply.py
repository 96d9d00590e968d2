"""Apply parsed patches to a TreeView in memory: all hunks of all files, or nothing.

File operations (create, delete, rename, mode) are handled here; each hunk is placed by
`place.place` (the exact-to-tolerant cascade) and a refused hunk is described by
`feedback.describe`. Nothing is ever written: the result is the changed files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from gitforge.errors import PatchRefused
from gitforge.patch.binary import apply_binary
from gitforge.patch.feedback import describe
from gitforge.patch.parse import FilePatch
from gitforge.patch.place import FileIndex, Miss, Placement, place
from gitforge.patch.tree import TreeView

Mode = Literal["file", "exec"]
_ENC, _ERR = "utf-8", "surrogateescape"


@dataclass(frozen=True)
class FileChange:
    path: str
    data: bytes | None  # None: delete the file
    mode: Mode
    old_path: str | None = None  # a rename: this old file disappears
    hunks: tuple[Placement, ...] = field(default=(), compare=False)  # how each hunk was placed


@dataclass
class _Entry:
    data: bytes
    mode: Mode
    hunks: tuple[Placement, ...] = ()


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
    if fp.binary and fp.binary_patch is None:
        return [f"{fp.path}: the diff says this binary file changed but carries no data "
                "(make it with `git diff --binary`)"]
    if fp.new_mode not in (None, "100644", "100755"):
        return [f"{fp.path}: cannot write file mode {fp.new_mode}"]
    problems = []
    if fp.old_path is not None and state(fp.old_path) is None:
        kind = None if fp.old_path in overlay else tree.kind(fp.old_path)
        what = {"dir": "it is a directory", "link": "it is a symlink", "submodule": "it is a submodule"}.get(kind or "", "")
        if not what and _creates(fp):
            return []  # an "edit" of a missing file that only adds lines: the author meant a create
        problems.append(f"{fp.old_path}: file does not exist{f' ({what})' if what else ''}")
    if fp.op in ("create", "rename"):
        new = fp.path
        if state(new) is not None:
            problems.append(f"{new}: file already exists")
        elif new not in overlay and tree.kind(new) in ("dir", "link", "submodule"):
            what = {"dir": "directory", "link": "symlink", "submodule": "submodule"}[tree.kind(new) or ""]
            problems.append(f"{new}: a {what} exists at this path")
        parts = new.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if state(prefix) is not None or (prefix not in overlay and tree.kind(prefix) in ("link", "submodule")):
                problems.append(f"{new}: '{prefix}' is not a directory"
                                + (" (it is a submodule)" if tree.kind(prefix) == "submodule" else ""))
                break
    return problems


def _creates(fp: FilePatch) -> bool:
    """Only added lines, for a new file (or an "edit" of a missing one): the new file's content
    is exactly those lines, whatever the hunk headers say (`@@ @@`, shifted or miscounted)."""
    return fp.op in ("create", "modify") and bool(fp.hunks) and \
        all(k == "+" for h in fp.hunks for k, _ in h.lines)


def _new_file(fp: FilePatch) -> tuple[bytes, tuple[Placement, ...]] | list[str]:
    """A new file from its added lines, hunk after hunk; each hunk "exact" where its header is
    the one git writes, "create" where it was repaired. Refused where the hunks contradict
    their order, or a hunk without a final newline would be joined to the next."""
    placements, starts, line = [], [], 1
    for number, h in enumerate(fp.hunks, 1):
        clean = fp.op == "create" and not (h.unnumbered or h.recounted) and h.old_start == h.old_len == 0
        placements.append(Placement(0, 0, (), "exact", 0) if clean and h.new_start == line
                          else Placement(0, 0, (), "create", None))
        if not h.unnumbered:
            starts.append((h.new_start, number))
        line += len(h.lines)
        if number < len(fp.hunks) and h.lines and not h.lines[-1][1].endswith("\n"):
            return [f"{fp.path}: hunk {number} '{h.header}' ends without a newline but another hunk "
                    "follows it: '\\ No newline at end of file' belongs only to the file's last line"]
    for (a_start, a), (b_start, b) in zip(starts, starts[1:]):
        if b_start < a_start:
            return [f"{fp.path}: the hunks of this new file are out of order (hunk {b} starts at line "
                    f"{b_start}, before hunk {a} at line {a_start}); send the new file as one hunk"]
    return "".join(t for h in fp.hunks for _, t in h.lines).encode(_ENC, _ERR), tuple(placements)


def _apply_one(fp: FilePatch, old: _Entry | None) -> _Entry | None | list[str]:
    """The file's new state (None: deleted), or the reasons it failed."""
    data = old.data if old is not None else b""
    placements: tuple[Placement, ...] = ()
    if fp.binary_patch is not None:
        try:
            data = apply_binary(fp.binary_patch, data)
        except ValueError as e:
            return [f"{fp.path}: the binary patch does not fit this file: {e}"]
    elif fp.hunks:
        if old is None and _creates(fp):
            made = _new_file(fp)
            if isinstance(made, list):
                return made
            data, placements = made
        else:
            lines = _split(data.decode(_ENC, _ERR))
            new_lines, placements, problems = _apply_hunks(fp, lines)
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
    return _Entry(data, mode, ((old.hunks if old is not None else ()) + placements))


def _apply_hunks(fp: FilePatch, lines: list[str]) -> tuple[list[str], tuple[Placement, ...], list[str]]:
    """The file's new lines and how each hunk was placed, or the reasons some hunks do not
    fit (every hunk is tried, so one refusal reports them all)."""
    index = FileIndex(lines)
    placed: list[Placement] = []
    problems: list[str] = []
    lo = 0
    for number, hunk in enumerate(fp.hunks, 1):
        result = place(index, hunk, lo)
        if isinstance(result, Miss):
            problems.append(describe(fp.path, number, hunk, result, lines))
            continue
        placed.append(result)
        lo = result.at + result.count
    if problems:
        return [], (), problems
    out: list[str] = []
    pos = 0
    for p in placed:
        out += lines[pos:p.at] + list(p.new)
        pos = p.at + p.count
    return out + lines[pos:], tuple(placed), []


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
            changes.append(FileChange(path, entry.data, entry.mode, old_path=old, hunks=entry.hunks))
        elif orig is None or orig.data != entry.data or orig.mode != entry.mode:
            changes.append(FileChange(path, entry.data, entry.mode, hunks=entry.hunks))
    return tuple(changes)
