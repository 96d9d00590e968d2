"""Where a hunk goes: a cascade from exact to tolerant, refusing whatever is ambiguous.

For each hunk, in order, the first rule that finds a place wins:

1. exact: the hunk's old lines, byte for byte — at the line its header names, or (relocated)
   at the one place in the file where they occur;
2. eol, whitespace, indent: the same search comparing lines without their endings, without
   trailing whitespace, then with all whitespace folded (the hunk re-indented to the file);
3. fuzz1, fuzz2: up to one, then two, context lines dropped at each end of the hunk;
4. slip: body lines that had no marker tried as added lines instead of context, and so are
   marked lines the header's counts suspect of a lost "+" (context or "-" lines) — unless the
   hunk as written fits byte for byte at the line its header names: then the counts are wrong.

Only an exact match at the very line the header names is taken on the header's word (that
is what the diff literally says, and what `git apply` does); every other placement must be
the one place in the file the hunk fits, or the hunk is refused as ambiguous with the
candidate line numbers — a wrong line number never picks between look-alikes. Lines the
hunk keeps are taken from the file, and added lines get the file's line endings and
indentation, so a tolerant match never rewrites what the patch did not mean to change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

from gitforge.patch.parse import Hunk

Lines = Sequence[str]
HunkLines = tuple[tuple[str, str], ...]

MAX_FUZZ = 2
MAX_SLIP_VARIANTS = 16


def bare(line: str) -> str:
    line = line[:-1] if line.endswith("\n") else line
    return line[:-1] if line.endswith("\r") else line


LEVELS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("exact", lambda s: s),
    ("eol", bare),
    ("whitespace", lambda s: s.rstrip()),
    ("indent", lambda s: " ".join(s.split())),
)


@dataclass(frozen=True)
class Placement:
    at: int  # index in the file of the first line the hunk replaces
    count: int  # how many file lines it replaces
    new: tuple[str, ...]  # the lines that replace them
    strategy: str
    offset: int | None  # at - the header's line (None: the header had no numbers)


@dataclass(frozen=True)
class Miss:
    why: str
    candidates: tuple[int, ...] = ()  # 0-based starts of the places an ambiguous hunk fits


class FileIndex:
    """A file's lines keyed for each comparison level, with positions of each keyed line."""

    def __init__(self, lines: Lines) -> None:
        self.lines = lines
        self._keyed: dict[str, tuple[list[str], dict[str, list[int]]]] = {}

    def keyed(self, level: str, key: Callable[[str], str]) -> tuple[list[str], dict[str, list[int]]]:
        if level not in self._keyed:
            keyed = [key(line) for line in self.lines]
            where: dict[str, list[int]] = {}
            for i, k in enumerate(keyed):
                where.setdefault(k, []).append(i)
            self._keyed[level] = (keyed, where)
        return self._keyed[level]

    def loose_fits(self, old: Sequence[str], lo: int) -> set[int]:
        """Every start >= lo where `old` matches at some tolerant level (endings, whitespace)."""
        return {s for level, key in LEVELS[1:] for s in self.find(level, key, old, lo)}

    def rivals(self, old: Sequence[str], start: int, lo: int) -> tuple[int, ...]:
        """Other starts where the hunk's old lines (from line `lo` of the file on) line up nearly
        as well as at `start` (whitespace folded). A placement that is not what the diff
        literally says must win clearly: where the hunk's true place has drifted, a look-alike
        block elsewhere may otherwise fit it better than the place that was meant. A start
        before `lo` counts too (clamped to `lo`): the hunk's first lines may be the ones that
        drifted away."""
        _, where = self.keyed("indent", LEVELS[3][1])
        votes: dict[int, int] = {}
        for j, line in enumerate(old):  # blank lines count too: they are part of the shape
            for i in where.get(LEVELS[3][1](line), ()):
                if i >= lo:
                    votes[i - j] = votes.get(i - j, 0) + 1
        mine = votes.get(start, 0)
        bar = max(mine - 1, 1) if mine >= 3 else mine
        return tuple(sorted({max(s, lo) for s, n in votes.items() if s != start and n >= bar} - {start}))

    def find(self, level: str, key: Callable[[str], str], old: Sequence[str], lo: int) -> list[int]:
        """Every start >= lo where `old` (keyed) occurs."""
        keyed, where = self.keyed(level, key)
        want = [key(x) for x in old]
        anchor = min(range(len(want)), key=lambda j: len(where.get(want[j], ())))
        starts = []
        for pos in where.get(want[anchor], ()):
            p = pos - anchor
            if p >= lo and p + len(want) <= len(keyed) and keyed[p:p + len(want)] == want:
                starts.append(p)
        return starts


def expected_index(hunk: Hunk) -> int | None:
    """The 0-based index the header names (`@@ -N,0` inserts after line N); None: no numbers."""
    if hunk.unnumbered:
        return None
    return hunk.old_start if hunk.old_len == 0 else hunk.old_start - 1


_RANK = {"exact": 0, "relocated": 1, "eol": 2, "whitespace": 3, "indent": 4, "fuzz1": 5, "fuzz2": 6}


def place(index: FileIndex, hunk: Hunk, lo: int) -> Placement | Miss:
    """Place one hunk at or after `lo` (where the previous hunk of the file ended)."""
    expected = expected_index(hunk)
    slips = frozenset(hunk.slips)
    first = _cascade(index, hunk.lines, lo, expected, slips)
    if not hunk.slips or (isinstance(first, Miss) and first.candidates) or \
            (isinstance(first, Placement) and first.strategy == "exact" and _agrees(hunk.lines, hunk)):
        return first  # nothing can beat an exact fit that also agrees with the header's counts
    as_written = isinstance(first, Placement) and first.strategy in ("exact", "relocated") and slips <= hunk.marked
    if as_written and first.strategy == "exact":
        # Every line has its marker, and the hunk as written fits byte for byte at the very line
        # its header names: the header's counts are what is wrong, not the markers.
        return first
    # Lines that may have lost their "+": each reading (context, or added) is placed on its
    # own. Of the strictest placements, the one that both reads the fewest lines as added and
    # agrees with the header's line counts wins; when no single reading is best on both, the
    # header and the body tell different stories, and the hunk is refused.
    readings = [(first, hunk.lines)] + [(_cascade(index, v, lo, expected, slips), v)
                                        for v in _slip_variants(hunk, _absent(index, hunk))]
    placed = [(p, v) for p, v in readings if isinstance(p, Placement)]
    if not placed:
        return first
    if as_written:  # it fits as written, moved: unless a reading of the counts fits, byte for byte, elsewhere
        assert isinstance(first, Placement)
        rival = sorted({p.at for p, v in placed if p.strategy in ("exact", "relocated") and p.at != first.at})
        if not rival:
            return first
        return Miss("read as written it fits one place, read as its header counts it another", (first.at, *rival))
    rank = min(_RANK[p.strategy] for p, _ in placed)
    top = {(p.at, p.count, p.new): (p, v) for p, v in placed if _RANK[p.strategy] == rank}
    fewest = min(_flipped(v, hunk) for p, v in top.values())
    best = [(p, v) for p, v in top.values()
            if _flipped(v, hunk) == fewest and (_agrees(v, hunk) or not any(_agrees(w, hunk) for _, w in top.values()))]
    if len(best) != 1:
        return Miss("lines without a +/-/space marker can be read more than one way",
                    tuple(sorted({p.at for p, _ in top.values()})))
    ((p, v),) = best
    return p if v is hunk.lines else Placement(p.at, p.count, p.new, f"slip+{p.strategy}", p.offset)


def _flipped(lines: HunkLines, hunk: Hunk) -> int:
    return sum(1 for (k, _), (k0, _) in zip(lines, hunk.lines) if k != k0)


def _agrees(lines: HunkLines, hunk: Hunk) -> bool:
    """Whether a reading's line counts are the ones the header declared (no header: yes)."""
    counts = (sum(k != "+" for k, _ in lines), sum(k != "-" for k, _ in lines))
    return hunk.declared is None or hunk.unnumbered or counts == hunk.declared


def _absent(index: FileIndex, hunk: Hunk) -> frozenset[int]:
    """Slips whose text, read as written, is nowhere in the file (not even with whitespace
    folded): no placement can match them as old lines, so every reading that fits has them added."""
    _, where = index.keyed("indent", LEVELS[3][1])
    return frozenset(i for i in hunk.slips if LEVELS[3][1](hunk.lines[i][1]) not in where)


def _slip_variants(hunk: Hunk, forced: frozenset[int] = frozenset()):
    """The hunk with some of its slips read as added lines: the `forced` ones always, then the
    fewest others first, marker-less lines before the ones only the header's counts suspect."""
    plus = dict(zip(hunk.slips, hunk.slip_text))
    rest = [i for i in hunk.slips if i not in forced]
    for k in range(0 if forced else 1, len(rest) + 1):
        for n, chosen in enumerate(combinations(rest, k)):
            if n >= MAX_SLIP_VARIANTS:
                return
            flip = forced.union(chosen)
            yield tuple(("+", plus[i]) if i in flip else (kind, text) for i, (kind, text) in enumerate(hunk.lines))


def _cascade(index: FileIndex, lines: HunkLines, lo: int, expected: int | None,
             slips: frozenset[int] = frozenset()) -> Placement | Miss:
    old = [text for kind, text in lines if kind != "+"]
    if not old:  # a pure insertion has nothing to match: only its line number can place it
        if expected is None:
            return Miss("it has neither context lines nor line numbers, so it could go anywhere")
        if not lo <= expected <= len(index.lines):
            return Miss(f"it inserts after line {expected}, beyond the end of the file")
        new = tuple(t for _, t in lines)
        joins = (expected == len(index.lines) and index.lines and not index.lines[-1].endswith("\n")) or \
            (expected < len(index.lines) and new and not new[-1].endswith("\n"))
        if joins:
            return Miss("it would join two lines: '\\ No newline at end of file' belongs only to the "
                        "file's last line")
        return Placement(expected, 0, new, "exact", 0)
    if expected is not None and expected >= lo and list(index.lines[expected:expected + len(old)]) == old:
        built = _build(index.lines, lines, expected, "exact")  # the common case: no index needed
        if isinstance(built, Placement):
            return _named(built, "exact", 0, expected, 0)
    for fuzz, head, tail in _trims():
        trimmed = _trim(lines, head, tail, slips)
        if trimmed is None:
            continue
        for level, key in LEVELS if not fuzz else LEVELS[:3]:
            core = [t for k, t in trimmed if k != "+"]
            # the dropped context lines must still lie inside the file (they drifted, not vanished)
            starts = [st for st in index.find(level, key, core, lo)
                      if st - head >= 0 and st + len(core) + tail <= len(index.lines)]
            built = {s: _build(index.lines, trimmed, s, level) for s in starts}
            good = {s: p for s, p in built.items() if isinstance(p, Placement)}
            if built and not good:  # it does fit there, but not usably: a looser rule must not
                return Miss(next(p for p in built.values() if isinstance(p, str)))  # move it elsewhere
            if level == "exact" and not fuzz and expected in good:  # what the diff literally says
                return _named(good[expected], level, fuzz, expected, head)
            if len(good) > 1:
                return Miss("it matches in more than one place", tuple(s - head for s in sorted(good)))
            if good:
                (start,) = good
                # An exact match of every line is the diff's own text, just moved (as `git apply`
                # takes it); anything looser must also beat every look-alike clearly.
                if level == "exact" and not fuzz:
                    loose = index.loose_fits(old, lo) - {start}
                    if loose:  # the model may have changed whitespace at the place it meant
                        where = "the line its header names" if expected in loose else "other places"
                        return Miss(f"it fits exactly at one place, and but for whitespace or line "
                                    f"endings at {where}", tuple(sorted(loose | {start})))
                rivals = () if level == "exact" and not fuzz else index.rivals(old, start - head, lo)
                if rivals:
                    return Miss("it fits one place only loosely, and other places nearly as well",
                                (start - head, *rivals))
                return _named(good[start], level, fuzz, expected, head)
    return Miss("no place in the file has these lines")


def _named(p: Placement, level: str, fuzz: int, expected: int | None, head: int) -> Placement:
    offset = None if expected is None else p.at - head - expected
    if fuzz:
        name = f"fuzz{fuzz}"
    elif level == "exact":
        name = "exact" if offset == 0 else "relocated"
    else:
        name = level
    return Placement(p.at, p.count, p.new, name, offset)


def _trims():
    """(fuzz, context lines dropped at the head, at the tail): none first, then the fewest."""
    yield 0, 0, 0
    for fuzz in range(1, MAX_FUZZ + 1):
        for head, tail in sorted({(h, t) for h in range(fuzz + 1) for t in range(fuzz + 1) if max(h, t) == fuzz},
                                 key=lambda ht: (ht[0] + ht[1], ht)):
            yield fuzz, head, tail


def _trim(lines: HunkLines, head: int, tail: int, slips: frozenset[int]) -> HunkLines | None:
    """The hunk without `head` and `tail` context lines at its ends — never a line that lost its
    marker (it may not be context at all); None when those lines are not all context, or too
    little is left to anchor the hunk (fewer than two non-blank old lines)."""
    if not head and not tail:
        return lines
    ends = list(range(head)) + list(range(len(lines) - tail, len(lines)))
    if head + tail >= len(lines) or any(lines[i][0] != " " or i in slips for i in ends):
        return None
    core = lines[head:len(lines) - tail]
    if sum(1 for kind, text in core if kind != "+" and text.strip()) < 2:
        return None
    return core


def _build(file: Lines, lines: HunkLines, at: int, level: str) -> Placement | str:
    """The replacement for a match at `at`: kept lines from the file, added lines adapted to
    the file's line endings and indentation; or why this match cannot be used."""
    if level != "exact" and _eof_ambiguous(file, lines, at):
        return ("the file has no newline at its end and the hunk does not say whether the result "
                "should (mark it with '\\ No newline at end of file')")
    last = next((t for k, t in reversed(lines) if k != "+"), "\n")
    if not last.endswith("\n") and at + sum(k != "+" for k, _ in lines) != len(file):
        return "'\\ No newline at end of file' marks the file's last line, and these lines are not at its end"
    eol = _file_eol(file, at) if level != "exact" else None
    if eol is None and level != "exact" and any(k == "+" and t.endswith("\n") for k, t in lines):
        return "the file mixes CRLF and LF line endings here: send added lines with the endings you mean"
    reindent = _reindent(file, lines, at) if level == "indent" else (lambda s: s)
    if reindent is None:
        return "its lines match only with indentation that changes from line to line"
    out: list[str] = []
    i = at
    for kind, text in lines:
        if kind == " ":
            out.append(file[i])
            i += 1
        elif kind == "-":
            i += 1
        else:
            added = text if level == "exact" else reindent(_with_eol(text, eol))
            if added is None:
                return "an added line is indented less than the shift the match needs"
            out.append(added)
    if any(not line.endswith("\n") for line in out[:-1]) or (out and i < len(file) and not out[-1].endswith("\n")):
        return "'\\ No newline at end of file' belongs only to the file's last line"
    return Placement(at, i - at, tuple(out), level, None)


def _eof_ambiguous(file: Lines, lines: HunkLines, at: int) -> bool:
    """A tolerant match that reaches a last line without a newline, from a hunk that says
    nothing about it, and whose new last line is added text: keep the file's missing newline,
    or add one as the diff's line has? Either could be meant."""
    old_count = sum(1 for kind, _ in lines if kind != "+")
    if not file or at + old_count != len(file) or file[-1].endswith("\n"):
        return False
    old_last = next((t for k, t in reversed(lines) if k != "+"), None)
    if old_last is None or not old_last.endswith("\n"):
        return False  # the diff marks the missing newline itself: an exact question
    new_side = [k for k, _ in lines if k != "-"]
    return bool(new_side) and new_side[-1] == "+"


def _file_eol(file: Lines, at: int) -> str | None:
    """The line ending the file uses around `at` (CRLF files keep CRLF); None where it mixes
    CRLF and LF, so an added line's ending cannot be inferred; "" where no line has one."""
    window = file[max(0, at - 20):at + 20] or file
    crlf = sum(1 for line in window if line.endswith("\r\n"))
    lf = sum(1 for line in window if line.endswith("\n") and not line.endswith("\r\n"))
    if crlf and lf:
        return None
    return "\r\n" if crlf else "\n" if lf else ""  # "": no line ends here, keep the diff's own


def _with_eol(text: str, eol: str | None) -> str:
    return bare(text) + eol if eol and text.endswith("\n") else text


def _indent(s: str) -> str:
    return s[:len(s) - len(s.lstrip(" \t"))]


def _reindent(file: Lines, lines: HunkLines, at: int) -> Callable[[str], str | None] | None:
    """For an indent-level match: the one consistent shift from the hunk's indentation to the
    file's, as a function for added lines; None when the matched lines disagree."""
    shifts = set()
    unit = " "
    i = at
    for kind, text in lines:
        if kind == "+":
            continue
        mine, theirs = _indent(text), _indent(file[i])
        if text.strip():
            shifts.add(len(theirs) - len(mine))
            if theirs:
                unit = theirs[0]
        i += 1
    if len(shifts) > 1:
        return None
    shift = shifts.pop() if shifts else 0

    def apply(s: str) -> str | None:
        if shift >= 0 or not s.strip():
            return (unit * shift + s) if s.strip() else s
        if len(_indent(s)) < -shift:
            return None
        return s[-shift:]

    return apply


def summarize(placements: Sequence[Placement]) -> str:
    """Provenance for notes and ledgers: '3 exact, 1 relocated +2, 1 whitespace'."""
    counts: dict[str, int] = {}
    for p in placements:
        label = p.strategy
        if p.strategy != "exact" and p.offset:
            label += f" {p.offset:+d}"
        counts[label] = counts.get(label, 0) + 1
    return ", ".join(f"{n} {label}" for label, n in counts.items()) or "no hunks"
