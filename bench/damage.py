"""The ways language models damage a unified diff, as pure functions for bench_patch.py.

Each damage is `(diff_text, preimage, rng) -> (damaged_diff, preimage)`, registered in `KINDS`
under its name, or returns None when it does not apply to that diff (no `\\ No newline` marker
to drop, no added line to lose its `+`, ...). Some also change the preimage (the file drifted
since the model read it, or it has CRLF endings); `expected_postimage` then says what the
intended result is, from the clean diff. The input is always a clean per-file `git diff`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

Damage = Callable[[str, "bytes | None", random.Random], "tuple[str, bytes | None] | None"]
KINDS: dict[str, Damage] = {}
HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)", re.S)
Hunk = list[str]  # [header, body lines...], every line with its ending


def damage(name: str) -> Callable[[Damage], Damage]:
    def register(fn: Damage) -> Damage:
        KINDS[name] = fn
        return fn
    return register


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split on "\\n" only."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def parse(diff: str) -> tuple[list[str], list[Hunk]]:
    """The header lines (up to the first @@) and the hunks of a one-file diff."""
    head: list[str] = []
    hunks: list[Hunk] = []
    for line in split_lines(diff):
        if line.startswith("@@"):
            hunks.append([line])
        elif hunks:
            hunks[-1].append(line)
        else:
            head.append(line)
    return head, hunks


def join(head: list[str], hunks: list[Hunk]) -> str:
    return "".join(head) + "".join(line for hunk in hunks for line in hunk)


def numbers(header: str) -> tuple[int, int, int, int, str]:
    """old start, old length, new start, new length, and the rest of the line (section, ending)."""
    m = HUNK.match(header)
    assert m, header
    return int(m[1]), int(m[2] or 1), int(m[3]), int(m[4] or 1), m[5]


def header(old: int, old_len: int, new: int, new_len: int, rest: str) -> str:
    return f"@@ -{old},{old_len} +{new},{new_len} @@{rest}"


def content(line: str) -> tuple[str, str]:
    """A body line without its marker, split into text and line ending."""
    body = line[1:]
    ending = "\r\n" if body.endswith("\r\n") else "\n" if body.endswith("\n") else ""
    return body[:len(body) - len(ending)], ending


@damage("line numbers off by 1-10")
def numbers_off(diff, pre, rng):
    head, hunks = parse(diff)
    if pre is None or not hunks:
        return None
    for hunk in hunks:
        old, old_len, new, new_len, rest = numbers(hunk[0])
        d = rng.choice((-1, 1)) * rng.randint(1, 10)
        d = abs(d) if min(old, new) + d < 1 else d
        hunk[0] = header(old + d, old_len, new + d, new_len, rest)
    return join(head, hunks), pre


@damage("wrong hunk counts")
def counts_wrong(diff, pre, rng):
    head, hunks = parse(diff)
    if not hunks:
        return None

    def miscount(n: int) -> int:
        d = rng.choice((-3, -2, -1, 1, 2, 3))
        return n + d if n + d >= 0 else n - d

    for hunk in hunks:
        old, old_len, new, new_len, rest = numbers(hunk[0])
        side = rng.choice(("old", "new", "both"))
        old_len = old_len if side == "new" else miscount(old_len)
        new_len = new_len if side == "old" else miscount(new_len)
        hunk[0] = header(old, old_len, new, new_len, rest)
    return join(head, hunks), pre


@damage("`@@ @@` headers without numbers")
def no_numbers(diff, pre, rng):
    head, hunks = parse(diff)
    if pre is None or not hunks:
        return None
    for hunk in hunks:
        hunk[0] = "@@ @@\n"
    return join(head, hunks), pre


@damage("trailing whitespace on context lines")
def trailing_ws(diff, pre, rng):
    head, hunks = parse(diff)
    lines = [(h, i) for h in hunks for i in range(1, len(h)) if h[i].startswith(" ") and h[i].strip()]
    if not lines:
        return None
    for hunk, i in rng.sample(lines, max(1, len(lines) // 2)):
        text, ending = content(hunk[i])
        text = text.rstrip() if text != text.rstrip() else text + rng.choice((" ", "  ", "\t"))
        hunk[i] = " " + text + ending
    return join(head, hunks), pre


@damage("indentation of a hunk shifted")
def indent_shifted(diff, pre, rng):
    head, hunks = parse(diff)
    hunks_ok = [h for h in hunks if pre is not None and any(line[0] in " -+" and line[1:].strip() for line in h[1:])]
    if not hunks_ok:
        return None
    hunk = rng.choice(hunks_ok)
    body = [i for i in range(1, len(hunk)) if hunk[i][0] in " -+" and hunk[i][1:].strip()]
    indents = [re.match(r"[ \t]*", hunk[i][1:])[0] for i in body]
    common = min(indents, key=len)
    common = common if all(ind.startswith(common) for ind in indents) else ""
    dedent = bool(common) and rng.random() < 0.5
    for i in body:
        hunk[i] = hunk[i][0] + (hunk[i][1 + len(common):] if dedent else "    " + hunk[i][1:])
    return join(head, hunks), pre


@damage("missing `\\ No newline at end of file`")
def marker_missing(diff, pre, rng):
    """Only where the file lacks the final newline before and after, so the marker is redundant."""
    lines = split_lines(diff)
    after = {lines[i - 1][0] for i, line in enumerate(lines) if line.startswith("\\") and i}
    if not ({" "} <= after or {"-", "+"} <= after):
        return None
    return "".join(line for line in lines if not line.startswith("\\")), pre


@damage("`+` marker lost on an added line")
def plus_lost(diff, pre, rng):
    head, hunks = parse(diff)
    added = [(h, i) for h in hunks for i in range(1, len(h)) if h[i].startswith("+") and h[i][1:].strip()]
    if pre is None or not added:
        return None
    hunk, i = rng.choice(added)
    hunk[i] = hunk[i][1:]
    return join(head, hunks), pre


def _eol(pre: bytes) -> str:
    return "\r\n" if b"\r\n" in pre else "\n"


def _pre_lines(pre: bytes) -> list[str]:
    return split_lines(pre.decode("utf-8", "surrogateescape"))


def _encode(lines: list[str]) -> bytes:
    return "".join(lines).encode("utf-8", "surrogateescape")


@damage("file drifted: lines inserted above a hunk")
def drift_above(diff, pre, rng):
    _, hunks = parse(diff)
    spans = [numbers(h[0])[:2] for h in hunks]
    if pre is None or not hunks or any(n == 0 for _, n in spans):
        return None
    j = rng.randrange(len(hunks))
    lo = spans[j - 1][0] - 1 + spans[j - 1][1] if j else 0
    at = rng.randint(lo, spans[j][0] - 1)
    lines = _pre_lines(pre)
    new = [f"drift {k}: a line added since the diff was made{_eol(pre)}" for k in range(rng.randint(1, 5))]
    return diff, _encode(lines[:at] + new + lines[at:])


@damage("file drifted: an outer context line edited")
def drift_context(diff, pre, rng):
    _, hunks = parse(diff)
    spots = []
    for hunk in hunks:
        old, _, _, _, _ = numbers(hunk[0])
        body = [line for line in hunk[1:] if line[0] in " -"]
        for k in (0, len(body) - 1):
            if body and body[k].startswith(" ") and body[k][1:].strip() and body[k].endswith("\n"):
                spots.append(old - 1 + k)
    if pre is None or not spots:
        return None
    at = rng.choice(spots)
    lines = _pre_lines(pre)
    text, ending = content(" " + lines[at])
    lines[at] = text + " (edited)" + ending
    return diff, _encode(lines)


@damage("CRLF file, LF diff")
def crlf_file(diff, pre, rng):
    if pre is None or b"\r" in pre or b"\n" not in pre or "\r" in diff:
        return None
    return diff, pre.replace(b"\n", b"\r\n")


@damage("CRLF diff, LF file")
def crlf_diff(diff, pre, rng):
    if pre is None or (pre and b"\r" in pre) or "\r" in diff:
        return None
    return diff.replace("\n", "\r\n"), pre


@damage("new file written as an edit")
def new_as_edit(diff, pre, rng):
    head, hunks = parse(diff)
    if pre is not None or "--- /dev/null\n" not in head:
        return None
    plus = next(line for line in head if line.startswith("+++ b/"))
    return join(["--- a/" + plus[6:], plus], hunks), pre


def line_map(diff: str, old_count: int) -> dict[int, tuple[int, bool]]:
    """For each line of the preimage: the index in the postimage at its place, and whether the diff keeps it."""
    where: dict[int, tuple[int, bool]] = {}
    p = q = 0
    for hunk in parse(diff)[1]:
        old, old_len, _, _, _ = numbers(hunk[0])
        while p < (old - 1 if old_len else old):
            where[p] = (q, True)
            p, q = p + 1, q + 1
        for line in hunk[1:]:
            if line[0] in " -":
                where[p] = (q, line[0] == " ")
            p, q = p + (line[0] in " -"), q + (line[0] in " +")
    while p < old_count:
        where[p] = (q, True)
        p, q = p + 1, q + 1
    return where


def expected_postimage(diff: str, pre: bytes | None, new_pre: bytes | None, post: bytes | None) -> bytes | None:
    """What applying the clean diff's intent to `new_pre` gives: `post`, with the same CRLF
    conversion, or with the same lines inserted or edited outside the diff's changes."""
    if new_pre == pre or post is None:
        return post
    assert pre is not None and new_pre is not None
    if new_pre == pre.replace(b"\n", b"\r\n"):
        return post.replace(b"\n", b"\r\n")
    a, b, out = _pre_lines(pre), _pre_lines(new_pre), _pre_lines(post)
    n, p, s = min(len(a), len(b)), 0, 0  # the one changed region: a[p:-s] became b[p:-s]
    while p < n and a[p] == b[p]:
        p += 1
    while s < n - p and a[-1 - s] == b[-1 - s]:
        s += 1
    where = line_map(diff, len(a))
    assert all(where[i][1] for i in range(p, len(a) - s)), "the edit overlaps the diff's changes"
    at = where[p][0] if p < len(a) else len(out)
    return _encode(out[:at] + b[p:len(b) - s] + out[at + len(a) - s - p:])
