"""Unified diff text -> typed FilePatch values (unidiff does the tokenising)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from gitforge.errors import PatchRefused
from gitforge.patch.binary import BinaryPatch, extract

if TYPE_CHECKING:
    import unidiff

Op = Literal["create", "delete", "modify", "rename"]
LineType = Literal[" ", "-", "+"]

DEV_NULL = "/dev/null"
_HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")  # with numbers; others are repaired
_HINT = "send a unified diff (as `git diff` writes it) whose hunk headers count their lines exactly"
_C_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    lines: tuple[tuple[LineType, str], ...]
    header: str  # as the diff wrote it
    unnumbered: bool = False  # `@@ @@`: the place is found by context alone
    recounted: bool = False  # the header's line counts were wrong and were recounted
    slips: tuple[int, ...] = ()  # indexes in `lines` of body lines that may have lost a "+" (marker-less first)
    slip_text: tuple[str, ...] = ()  # each such line's text when read as an added line
    marked: frozenset[int] = frozenset()  # slips written with a marker (suspected from the counts alone)
    declared: tuple[int, int] | None = field(default=None, compare=False)  # counts the header gave

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
    binary_patch: BinaryPatch | None = None  # the data of a `GIT binary patch`, when it has one

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
    if "file mode " in text:
        raw = _restore_git_headers(raw)
    text, repairs = _normalize(raw)
    try:
        patch_set = unidiff.PatchSet(text)
    except unidiff.UnidiffParseError as exc:
        raise PatchRefused("malformed patch", reasons=[f"malformed diff: {exc}".rstrip()], hint=_HINT) from exc
    if not patch_set:
        raise PatchRefused("not a diff", reasons=[
            "no file changes found: expected '--- a/<path>' / '+++ b/<path>' headers and '@@' hunks"])
    queue = iter(repairs)
    binaries = extract(raw)
    patches = tuple(_file_patch(pf, queue, binaries) for pf in patch_set)
    problems = [p for fp in patches for p in _check_file(fp)]
    if problems:
        raise PatchRefused("malformed patch", reasons=problems, hint=_HINT)
    return patches


_EXTENDED = ("old mode ", "new mode ", "new file mode ", "deleted file mode ", "index ", "similarity index ",
             "dissimilarity index ", "rename from ", "rename to ", "copy from ", "copy to ")


def _restore_git_headers(raw: list[str]) -> list[str]:
    """A `new file mode` or `deleted file mode` line whose `diff --git` line was lost (unidiff
    refuses the block): the `---`/`+++` lines right after it still say which file is created
    or deleted, so the `diff --git` line is put back, named after them."""
    found = [i for i, line in enumerate(raw) if line.startswith(("new file mode ", "deleted file mode "))]
    out = list(raw) if found else raw
    for i in reversed(found):  # from the end, so that an insertion moves no line still to visit
        if _after_git_header(raw, i):
            continue
        j = i
        while j < len(raw) and raw[j].startswith(_EXTENDED):
            j += 1
        if j + 1 < len(raw) and raw[j].startswith("--- ") and raw[j + 1].startswith("+++ "):
            header = _git_header(raw[j], raw[j + 1])
            if header is not None:
                out.insert(i, header + raw[i][len(raw[i].rstrip("\r\n")):])
    return out


def _after_git_header(raw: list[str], i: int) -> bool:
    """Whether the lines before `i` end in a `diff --git` line and its extended header lines."""
    for line in reversed(raw[max(0, i - len(_EXTENDED)):i]):
        if line.startswith("diff --git "):
            return True
        if not line.startswith(_EXTENDED):
            return False
    return False


def _git_header(minus: str, plus: str) -> str | None:
    """`diff --git a/P b/P` for a `--- /dev/null` + `+++ b/P` pair (or the reverse)."""
    old, new = (line[4:].rstrip("\r\n").split("\t")[0] for line in (minus, plus))
    if old == DEV_NULL and new != DEV_NULL:
        old = re.sub(r'^("?)b/', r"\1a/", new)
    elif new == DEV_NULL and old != DEV_NULL:
        new = re.sub(r'^("?)a/', r"\1b/", old)
    else:
        return None  # both or neither /dev/null: not a creation or deletion
    return f"diff --git {old} {new}" if old and new else None


@dataclass(frozen=True)
class _Repair:
    """What normalising one hunk found: kept on the Hunk for placement and provenance."""

    header: str
    unnumbered: bool
    recounted: bool
    slips: tuple[int, ...]  # marker-less lines first, then lines suspected from the header's counts
    prefix: tuple[tuple[int, str], ...]  # slips whose marker is content when read as added (" ", "-")
    declared: tuple[int, int] | None
    starts: tuple[int, int]  # (old, new) start lines
    body: tuple[str, ...]  # the normalised body lines, markers included


def _normalize(raw: list[str]) -> tuple[str, list[_Repair]]:
    """Make what language models write parseable, and remember what was repaired: hunk
    headers are recounted from their bodies (or given placeholder numbers when they have
    none), an empty body line is an empty context line whose space was trimmed, and a body
    line with no marker at all (a "slip") is taken as context — placement may later try it
    as an added line."""
    out: list[str] = []
    repairs: list[_Repair] = []
    # A diff whose own header lines end in CRLF travelled through something that rewrote its
    # line endings: the CRs of its body are that journey's, not the files' (git writes
    # headers with LF even for CRLF files).
    transported = any(line.endswith("\r\n") and (line.startswith("diff --git ") or _is_file_header(raw, i))
                      for i, line in enumerate(raw) if line.startswith(("diff --git ", "--- ")))
    if transported:
        raw = [line[:-2] + "\n" if line.endswith("\r\n") else line for line in raw]
    i = 0
    while i < len(raw):
        if not raw[i].startswith("@@"):  # a header line: a CRLF diff's "\r" is not part of a path
            out.append(raw[i].rstrip("\r\n") + "\n" if raw[i].endswith("\n") else raw[i])
            i += 1
            continue
        header = raw[i].rstrip("\r\n")
        m = _HUNK_RE.match(header)
        want = None if m is None else (int(m[2]) if m[2] is not None else 1, int(m[4]) if m[4] is not None else 1)
        j = _counted_end(raw, i + 1, want) if want is not None else None
        if j is not None:  # the header's counts fit the body: read it exactly as git would
            body = raw[i + 1:j]
        else:
            j = i + 1
            while j < len(raw) and not raw[j].startswith("@@") and not _is_file_header(raw, j) \
                    and not _is_signature(raw, j):
                j += 1
            body = _drop_trailing_blanks(raw[i + 1:j], want)
        lines: list[str] = []
        slips: dict[int, str] = {}  # lines that may be added lines that lost their "+"
        context: dict[int, str] = {}
        removed: dict[int, str] = {}
        old = new = index = 0  # index: position among the hunk's lines ("\\" markers aside)
        for line in body:
            if line[:1] == "\\":
                lines.append(line)
                continue
            fixed = line if line[:1] in (" ", "-", "+") else " " + line
            if fixed is not line and line not in ("\n", "\r\n"):
                slips[index] = line
            elif fixed[0] == " " and line not in ("\n", "\r\n"):
                context[index] = line
            elif fixed[0] == "-":
                removed[index] = line
            old += fixed[0] in " -"
            new += fixed[0] in " +"
            lines.append(fixed)
            index += 1
        prefix: dict[int, str] = {}
        if want is not None and new == want[1] and old > want[0]:
            # The header counts fewer old lines but as many new ones: some "context" lines are
            # added lines whose "+" was lost, leaving an indented line. Any may be one.
            prefix = {i: " " for i in context}
        elif want is not None and old - want[0] == want[1] - new > 0:
            # As many more old lines as fewer new ones: some "-" lines are added lines that began
            # with "-" (a list item, an underline) and lost their "+".
            prefix = {i: "-" for i in removed}
        order = sorted(slips) + sorted(set(prefix) - set(slips))
        start_old = int(m[1]) if m else (1 if old else 0)
        start_new = int(m[3]) if m else (1 if new else 0)
        # unidiff reads the file structure only: each hunk goes to it as one placeholder line,
        # and is built here from the normalised body (which is also much faster)
        out.append(f"@@ -{start_old},1 +{start_new},1 @@\n \n")
        repairs.append(_Repair(header, m is None, m is not None and want != (old, new), tuple(order),
                               tuple(sorted(prefix.items())), want, (start_old, start_new), tuple(lines)))
        i = j
    return "".join(out), repairs


def _drop_trailing_blanks(body: list[str], want: tuple[int, int] | None) -> list[str]:
    """Blank lines after a hunk are separators, unless the header counts them as context."""
    end = len(body)
    while end and body[end - 1] in ("\n", "\r\n"):
        end -= 1
    if want is None or end == len(body):
        return body[:end]
    kept = body[:end]
    counted = (sum(x[:1] in " -" or x in ("\n", "\r\n") for x in body if x[:1] != "\\"),
               sum(x[:1] in " +" or x in ("\n", "\r\n") for x in body if x[:1] != "\\"))
    return body if counted == want else kept


def _counted_end(raw: list[str], start: int, want: tuple[int, int]) -> int | None:
    """Where a hunk body ends if its header's counts are right; None when they are not (the
    body runs short, over, into something that is not a hunk line, or on into more hunk lines)."""
    old = new = 0
    j = start
    while (old, new) != want:
        if j >= len(raw) or old > want[0] or new > want[1]:
            return None
        kind = " " if raw[j] in ("\n", "\r\n") else raw[j][:1]
        if kind not in (" ", "-", "+", "\\") or _is_file_header(raw, j, strict=True):
            return None
        old += kind in " -"
        new += kind in " +"
        j += 1
    while j < len(raw) and raw[j].startswith("\\"):
        j += 1
    if j < len(raw) and raw[j][:1] in (" ", "+", "-") and not _is_file_header(raw, j) \
            and not _is_signature(raw, j) and raw[j].rstrip("\r\n") not in ("--", "---"):
        return None  # more hunk lines follow: the counts are wrong
    return j


def _is_signature(raw: list[str], i: int) -> bool:
    """`git format-patch` ends with '-- ' and the git version: not part of the last hunk."""
    return (raw[i].rstrip("\r\n") == "-- " and i + 1 < len(raw) and re.match(r"\d+\.\d", raw[i + 1]) is not None
            and all(not line.strip() for line in raw[i + 2:]))


def _is_file_header(raw: list[str], i: int, strict: bool = False) -> bool:
    """`diff --git`, or a `---`/`+++` pair that a hunk header follows (a removed line "-- x"
    and an added line "++ y" in a hunk look the same, but are not followed by "@@"). Inside a
    hunk whose counts are right (`strict`), a pair at the very end is hunk lines."""
    return raw[i].startswith("diff --git ") or (
        raw[i].startswith("--- ") and i + 1 < len(raw) and raw[i + 1].startswith("+++ ")
        and ((i + 2 == len(raw) and not strict)
             or (i + 2 < len(raw) and (raw[i + 2].startswith(("@@", "diff ", "Binary files", "GIT binary patch"))
                                       or (not raw[i + 2].strip() and not strict)))))


def _file_patch(pf: unidiff.PatchedFile, repairs, binaries: dict[str, BinaryPatch]) -> FilePatch:
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
    hunks = tuple(_hunk(next(repairs)) for _ in pf)
    data = binaries.get(new or old or "") if pf.is_binary_file else None
    return FilePatch(op, old, new, pf.source_mode, pf.target_mode, bool(pf.is_binary_file), hunks, data)


def _hunk(repair: _Repair) -> Hunk:
    lines: list[tuple[LineType, str]] = []
    for line in repair.body:
        if line[:1] == "\\":
            if not lines:
                raise PatchRefused("malformed patch", reasons=["'\\ No newline at end of file' opens a hunk"])
            kind, text = lines[-1]
            # A diff that travelled with CRLF line endings (the marker's own line says so)
            # loses the whole "\r\n"; git's own diffs mark a missing "\n" only.
            ending = "\r\n" if line.endswith("\r\n") and text.endswith("\r\n") else "\n"
            lines[-1] = (kind, text[:-len(ending)] if text.endswith(ending) else text)
        else:
            lines.append((line[0], line[1:]))  # type: ignore[arg-type]
    prefix = dict(repair.prefix)
    plus = tuple(prefix.get(i, "") + lines[i][1] for i in repair.slips)
    old_len = sum(1 for kind, _ in lines if kind != "+")
    new_len = sum(1 for kind, _ in lines if kind != "-")
    return Hunk(repair.starts[0], old_len, repair.starts[1], new_len, tuple(lines), repair.header,
                repair.unnumbered, repair.recounted, repair.slips, plus, frozenset(prefix), repair.declared)


def _check_file(fp: FilePatch) -> list[str]:
    problems = []
    if fp.op == "modify" and not fp.hunks and not fp.binary and fp.old_mode == fp.new_mode:
        problems.append(f"{fp.path}: the patch names the file but changes nothing")
    for h in fp.hunks:  # the order of hunks is checked where they are placed
        # (unless the marker falls on a last line once the lines that may have lost their "+"
        # are read as added: then placement decides which reading fits)
        if _joins_lines(h.lines) and (not h.slips or _joins_lines(_all_added(h))):
            problems.append(f"{fp.path}: hunk '{h.header}' has '\\ No newline at end of file' "
                            "before its last line")
    if fp.op == "create" and any(h.old_len for h in fp.hunks):
        problems.append(f"{fp.path}: a new file's hunks cannot remove lines")
    if fp.op == "delete" and any(h.new_len for h in fp.hunks):
        problems.append(f"{fp.path}: a deleted file's hunks cannot add lines")
    return problems


def _joins_lines(lines: tuple[tuple[LineType, str], ...]) -> bool:
    """Whether a line without a newline comes before the last line of the old or new side."""
    return any(any(not text.endswith("\n") for text in side[:-1])
               for side in ([t for k, t in lines if k != "+"], [t for k, t in lines if k != "-"]))


def _all_added(h: Hunk) -> tuple[tuple[LineType, str], ...]:
    plus = dict(zip(h.slips, h.slip_text))
    return tuple(("+", plus[i]) if i in plus else line for i, line in enumerate(h.lines))


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
