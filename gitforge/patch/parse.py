"""Unified diff text -> typed FilePatch values (unidiff does the tokenising)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from gitforge.errors import PatchRefused

if TYPE_CHECKING:
    import unidiff

Op = Literal["create", "delete", "modify", "rename"]
LineType = Literal[" ", "-", "+"]

DEV_NULL = "/dev/null"
_HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_HINT = "send a unified diff (as `git diff` writes it) whose hunk headers count their lines exactly"
_C_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    lines: tuple[tuple[LineType, str], ...]
    header: str

    @property
    def old_lines(self) -> list[str]:
        return [text for kind, text in self.lines if kind != "+"]

    @property
    def new_lines(self) -> list[str]:
        return [text for kind, text in self.lines if kind != "-"]


@dataclass(frozen=True)
class FilePatch:
    op: Op
    old_path: str | None
    new_path: str | None
    old_mode: str | None
    new_mode: str | None
    binary: bool
    hunks: tuple[Hunk, ...]

    @property
    def path(self) -> str:
        path = self.new_path if self.new_path is not None else self.old_path
        assert path is not None
        return path

    @property
    def added(self) -> int:
        return sum(1 for h in self.hunks for kind, _ in h.lines if kind == "+")

    @property
    def removed(self) -> int:
        return sum(1 for h in self.hunks for kind, _ in h.lines if kind == "-")


def parse_patch(text: str | bytes) -> tuple[FilePatch, ...]:
    """Parse a unified diff (git or plain); bytes are decoded as UTF-8 with surrogateescape."""
    import unidiff

    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    if not text.strip():
        raise PatchRefused("empty patch", reasons=["the patch is empty: expected a unified diff"])
    raw = io.StringIO(text).readlines()  # the same line split unidiff uses: on "\n" only
    problems = _check_hunk_counts(raw)
    if problems:
        raise PatchRefused("malformed patch", reasons=problems, hint=_HINT)
    try:
        patch_set = unidiff.PatchSet(text)
    except unidiff.UnidiffParseError as exc:
        raise PatchRefused("malformed patch", reasons=[f"malformed diff: {exc}".rstrip()], hint=_HINT) from exc
    if not patch_set:
        raise PatchRefused("not a diff", reasons=[
            "no file changes found: expected '--- a/<path>' / '+++ b/<path>' headers and '@@' hunks"])
    patches = tuple(_file_patch(pf, raw) for pf in patch_set)
    problems = [p for fp in patches for p in _check_file(fp)]
    if problems:
        raise PatchRefused("malformed patch", reasons=problems, hint=_HINT)
    return patches


def _check_hunk_counts(raw: list[str]) -> list[str]:
    """Each hunk body must hold exactly the lines its header declares (unidiff skips extras)."""
    problems: list[str] = []
    i = 0
    while i < len(raw):
        m = _HUNK_RE.match(raw[i])
        if not m:
            if raw[i].startswith("@@"):
                problems.append(f"diff line {i + 1}: {raw[i].rstrip()!r} is not a hunk header; "
                                "expected '@@ -<start>,<count> +<start>,<count> @@'")
            i += 1
            continue
        header, at = raw[i].rstrip("\r\n"), i + 1
        want_old = int(m[2]) if m[2] is not None else 1
        want_new = int(m[4]) if m[4] is not None else 1
        old = new = 0
        i += 1
        while (old < want_old or new < want_new) and i < len(raw):
            line = raw[i]
            if _is_file_header(raw, i):
                break
            kind = "" if line in ("\n", "\r\n") else line[0]
            if kind in ("", " "):
                old, new = old + 1, new + 1
            elif kind == "-":
                old += 1
            elif kind == "+":
                new += 1
            elif kind != "\\":
                break
            i += 1
        while i < len(raw) and raw[i].startswith("\\"):
            i += 1
        extra = i < len(raw) and raw[i][:1] in ("+", "-") and not _is_file_header(raw, i) \
            and raw[i].rstrip("\r\n") not in ("--", "-- ", "---")  # e-mail signature, separator
        if (old, new) != (want_old, want_new) or extra:
            what = (f"line {i + 1} ({raw[i].rstrip()!r}) follows it but is not counted"
                    if extra and (old, new) == (want_old, want_new)
                    else f"its body has {old} old and {new} new lines")
            problems.append(f"hunk '{header}' at diff line {at}: the header declares {want_old} old "
                            f"and {want_new} new lines, but {what}")
    return problems


def _is_file_header(raw: list[str], i: int) -> bool:
    return raw[i].startswith("diff --git ") or (
        raw[i].startswith("--- ") and i + 1 < len(raw) and raw[i + 1].startswith("+++ "))


def _file_patch(pf: unidiff.PatchedFile, raw: list[str]) -> FilePatch:
    info = [line.rstrip("\r\n") for line in (pf.patch_info or [])]
    is_git = bool(info) and info[0].startswith("diff --git ")
    if any(line.startswith(("copy from ", "copy to ")) for line in info):
        raise PatchRefused("unsupported patch", reasons=[
            f"{_unquote(pf.target_file)}: copy patches are not supported; send the new file in full"])
    old = None if pf.source_file == DEV_NULL else _unquote(pf.source_file)
    new = None if pf.target_file == DEV_NULL else _unquote(pf.target_file)
    if old is None and new is None:
        raise PatchRefused("malformed patch", reasons=["a file patch has /dev/null on both sides"])
    if (old is None or old.startswith("a/")) and (new is None or new.startswith("b/")):
        old, new = old and old[2:], new and new[2:]
    renames = dict(line.split(" ", 2)[1:] for line in info if line.startswith(("rename from ", "rename to ")))
    if is_git and "from" in renames and "to" in renames:
        old, new = _unquote(renames["from"]), _unquote(renames["to"])
    if old is None:
        op: Op = "create"
    elif new is None:
        op = "delete"
    elif old != new and is_git:
        op = "rename"
    else:  # a plain diff naming two files (`--- app.py.orig` `+++ app.py`) modifies the new one
        op, old = "modify", new
    hunks = tuple(_hunk(h, raw) for h in pf)
    return FilePatch(op, old, new, pf.source_mode, pf.target_mode, bool(pf.is_binary_file), hunks)


def _hunk(h: unidiff.Hunk, raw: list[str]) -> Hunk:
    lines: list[tuple[LineType, str]] = []
    for line in h:
        if line.line_type == "\\":
            if not lines:
                raise PatchRefused("malformed patch", reasons=["'\\ No newline at end of file' opens a hunk"])
            kind, text = lines[-1]
            lines[-1] = (kind, text[:-1] if text.endswith("\n") else text)
        elif line.line_type in (" ", "-", "+"):
            lines.append((line.line_type, line.value))
    header = f"@@ -{h.source_start},{h.source_length} +{h.target_start},{h.target_length} @@"
    first = next(iter(h), None)
    if first is not None and first.diff_line_no and first.diff_line_no >= 2:
        header = raw[first.diff_line_no - 2].rstrip("\r\n")
    return Hunk(h.source_start, h.source_length, h.target_start, h.target_length, tuple(lines), header)


def _check_file(fp: FilePatch) -> list[str]:
    problems = []
    if fp.op == "modify" and not fp.hunks and not fp.binary and fp.old_mode == fp.new_mode:
        problems.append(f"{fp.path}: the patch names the file but changes nothing")
    end = 0
    for h in fp.hunks:
        start = h.old_start if h.old_len == 0 else h.old_start - 1
        if (h.old_len and h.old_start < 1) or start < end:
            problems.append(f"{fp.path}: hunk '{h.header}' overlaps or precedes the hunk before it")
        end = max(end, start + h.old_len)
        for side in (h.old_lines, h.new_lines):
            if any(not text.endswith("\n") for text in side[:-1]):
                problems.append(f"{fp.path}: hunk '{h.header}' has '\\ No newline at end of file' "
                                "before its last line")
                break
    if fp.op == "create" and any(h.old_len for h in fp.hunks):
        problems.append(f"{fp.path}: a new file's hunks cannot remove lines")
    if fp.op == "delete" and any(h.new_len for h in fp.hunks):
        problems.append(f"{fp.path}: a deleted file's hunks cannot add lines")
    return problems


def _unquote(name: str) -> str:
    """Undo git's C-style quoting of unusual path names ("a/t\\303\\251.txt")."""
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        return name
    out, body, i = bytearray(), name[1:-1], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "01234567" and re.fullmatch(r"[0-7]{3}", body[i + 1:i + 4]):
                out.append(int(body[i + 1:i + 4], 8) & 0xFF)
                i += 4
                continue
            if nxt in _C_ESCAPES:
                out.append(_C_ESCAPES[nxt])
                i += 2
                continue
        out += ch.encode("utf-8", "surrogateescape")
        i += 1
    return out.decode("utf-8", "surrogateescape")
