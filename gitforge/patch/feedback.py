"""What a refused hunk tells its author: the file, the hunk, why, and the closest region of the
actual file with line numbers — compact, because the fix loop sends it back to a model."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from gitforge.patch.parse import Hunk
from gitforge.patch.place import LEVELS, Miss, bare, expected_index

MAX_SHOWN = 12
CONTEXT = 2


_key = LEVELS[3][1]  # whitespace folded: the comparison the closest region is found by


def closest_region(lines: Sequence[str], hunk: Hunk) -> int | None:
    """The start where most of the hunk's old lines line up with the file (whitespace
    ignored); ties go to the place the header names. None: no old line occurs at all."""
    old = [_key(t) for k, t in hunk.lines if k != "+"]
    where: dict[str, list[int]] = {}
    for i, line in enumerate(lines):
        where.setdefault(_key(line), []).append(i)
    votes: Counter[int] = Counter()
    for j, k in enumerate(old):
        if k:  # blank lines say little about where a hunk belongs
            for i in where.get(k, ()):
                votes[i - j] += 1
    if not votes:
        return None
    expected = expected_index(hunk) or 0
    return max(votes, key=lambda s: (votes[s], -abs(s - expected)))


def _visible(line: str) -> str:
    """A line without its ending, trailing whitespace shown (· for a space, → for a tab), so
    look-alikes that differ only there can be told apart."""
    text = bare(line)
    body = text.rstrip(" \t")
    return body + text[len(body):].replace(" ", "·").replace("\t", "→")


def _numbered(lines: Sequence[str], first: int, last: int, mark: set[int]) -> list[str]:
    width = len(str(max(last, 1)))
    return [f"  {'>' if i in mark else ' '} {i + 1:>{width}} | {_visible(lines[i])}" for i in range(first, last)]


def describe(path: str, number: int, hunk: Hunk, miss: Miss, lines: Sequence[str]) -> str:
    """One refused hunk, for a person or a model to act on."""
    head = f"{path}: hunk {number} '{hunk.header}': {miss.why}"
    old_len = sum(1 for k, _ in hunk.lines if k != "+")
    if miss.candidates:
        shown = ", ".join(str(c + 1) for c in miss.candidates[:6]) + (" ..." if len(miss.candidates) > 6 else "")
        if hunk.slips and "marker" in miss.why:
            named = ", ".join(f"{i + 1} ({bare(hunk.lines[i][1])!r})" for i in hunk.slips[:4])
            advice = f"  give each line of the hunk its marker ('+', '-' or ' '); lines of the hunk to check: {named}"
        else:
            advice = "  add context lines (or correct line numbers) that single out the place you mean"
        out = [f"{head}: at lines {shown}", advice]
        for c in miss.candidates[:2]:
            out.append(f"  lines {c + 1}-{c + old_len}:")
            out += _numbered(lines, c, min(len(lines), c + old_len, c + MAX_SHOWN // 2), set())
        return "\n".join(out)
    if old_len == 0:  # a pure insertion: its line number was the only way to place it
        return f"{head}\n  {path} has {len(lines)} lines"
    if not lines:
        return f"{head}\n  {path} is empty"
    start = closest_region(lines, hunk)
    found = start is not None
    if start is None:  # nothing lines up anywhere: show where the header pointed
        start = min(expected_index(hunk) or 0, max(0, len(lines) - 1))
    first = max(0, start - CONTEXT)
    last = min(len(lines), max(start + old_len, start + 1) + CONTEXT, first + MAX_SHOWN)
    old = [line for kind, line in hunk.lines if kind != "+"]
    mark = {start + j for j, line in enumerate(old)
            if found and 0 <= start + j < len(lines) and _key(lines[start + j]) != _key(line)}
    if found:
        where = (f"  closest region, lines {first + 1}-{last} of {path}"
                 + (" ('>' marks lines that differ from the hunk)" if mark else "") + ":")
    else:
        where = f"  none of its context or removed lines occurs in {path}; lines {first + 1}-{last}:"
    out = [head, _first_difference(hunk, lines, start) if found else "", where]
    return "\n".join(x for x in out if x) + "\n" + "\n".join(_numbered(lines, first, last, mark))


def _first_difference(hunk: Hunk, lines: Sequence[str], start: int) -> str:
    old = [t for k, t in hunk.lines if k != "+"]
    for j, want in enumerate(old):
        i = start + j
        if i < 0:
            continue
        if i >= len(lines):
            return f"  line {i + 1}: the hunk expects {bare(want)!r}, the file has ended"
        if lines[i] != want:
            got = lines[i]
            if bare(got) == bare(want):
                return f"  line {i + 1}: the hunk expects {want!r}, the file has {got!r} (line ending)"
            return f"  line {i + 1}: the hunk expects {bare(want)!r}, the file has {bare(got)!r}"
    return ""
