"""The ways language models damage a unified diff, as pure functions for bench_patch.py.

Each damage is `(diff_text, preimage, rng) -> (damaged_diff, preimage)`, registered in `KINDS`
under its name; it returns None where it does not apply (no `\\ No newline` marker to drop, no
added line to lose its `+`, ...). Its input is a clean one-file `git diff`. A damage that also
changes the preimage (the file drifted since the model read it, or has CRLF endings) changes it
outside the diff's changes, so `expected_postimage` can say what the intended result is.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

Damage = Callable[[str, "bytes | None", random.Random], "tuple[str, bytes | None] | None"]
KINDS: dict[str, Damage] = {}
HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)", re.S)


def damage(name: str) -> Callable[[Damage], Damage]:
    return lambda fn: KINDS.setdefault(name, fn)


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split on "\\n" only."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def decode(data: bytes) -> list[str]:
    return split_lines(data.decode("utf-8", "surrogateescape"))


def encode(lines: list[str]) -> bytes:
    return "".join(lines).encode("utf-8", "surrogateescape")


def parse(diff: str) -> tuple[list[str], list[list[str]]]:
    """The header lines (up to the first @@) and the hunks, each `[header, body lines...]`."""
    head: list[str] = []
    hunks: list[list[str]] = []
    for line in split_lines(diff):
        if line.startswith("@@"):
            hunks.append([line])
        else:
            (hunks[-1] if hunks else head).append(line)
    return head, hunks


def join(head: list[str], hunks: list[list[str]]) -> str:
    return "".join(head + [line for hunk in hunks for line in hunk])


def numbers(header: str) -> tuple[int, int, int, int, str]:
    """Old start and length, new start and length, and the rest of the line."""
    m = HUNK.match(header)
    assert m, header
    return int(m[1]), int(m[2] or 1), int(m[3]), int(m[4] or 1), m[5]


def header(old: int, old_len: int, new: int, new_len: int, rest: str) -> str:
    return f"@@ -{old},{old_len} +{new},{new_len} @@{rest}"


def content(line: str) -> tuple[str, str]:
    """A body line without its marker: its text and its ending."""
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
    for hunk in hunks:
        counts = list(numbers(hunk[0]))
        for k in {"old": [1], "new": [3], "both": [1, 3]}[rng.choice(("old", "new", "both"))]:
            d = rng.choice((-3, -2, -1, 1, 2, 3))
            counts[k] += d if counts[k] + d >= 0 else -d
        hunk[0] = header(*counts)
    return (join(head, hunks), pre) if hunks else None


@damage("`@@ @@` headers without numbers")
def no_numbers(diff, pre, rng):
    head, hunks = parse(diff)
    for hunk in hunks:
        hunk[0] = "@@ @@\n"
    return (join(head, hunks), pre) if hunks and pre is not None else None


@damage("trailing whitespace on context lines")
def trailing_ws(diff, pre, rng):
    """Stripped where a context line has some, added where it has none, on half of them."""
    head, hunks = parse(diff)
    lines = [(h, i) for h in hunks for i in range(1, len(h)) if h[i].startswith(" ") and h[i].strip()]
    for hunk, i in rng.sample(lines, (len(lines) + 1) // 2):
        text, ending = content(hunk[i])
        hunk[i] = " " + (text.rstrip() if text != text.rstrip() else text + rng.choice((" ", "  ", "\t"))) + ending
    return (join(head, hunks), pre) if lines else None


@damage("indentation of a hunk shifted")
def indent_shifted(diff, pre, rng):
    """One hunk's lines (all kinds) indented by 4 spaces more, or by its common indentation less."""
    head, hunks = parse(diff)
    shiftable = [h for h in hunks if any(line[0] in " -+" and line[1:].strip() for line in h[1:])]
    if pre is None or not shiftable:
        return None
    hunk = rng.choice(shiftable)
    body = [i for i in range(1, len(hunk)) if hunk[i][0] in " -+" and hunk[i][1:].strip()]
    indents = [re.match(r"[ \t]*", hunk[i][1:])[0] for i in body]
    common = min(indents, key=len, default="")
    dedent = bool(common) and all(ind.startswith(common) for ind in indents) and rng.random() < 0.5
    for i in body:
        hunk[i] = hunk[i][0] + (hunk[i][1 + len(common):] if dedent else "    " + hunk[i][1:])
    return join(head, hunks), pre


@damage("missing `\\ No newline at end of file`")
def marker_missing(diff, pre, rng):
    """Only where the file lacks the final newline before and after: the marker changes nothing."""
    lines = split_lines(diff)
    after = {lines[i - 1][0] for i, line in enumerate(lines) if line.startswith("\\") and i}
    if not (" " in after or {"-", "+"} <= after):
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


@damage("file drifted: lines inserted above a hunk")
def drift_above(diff, pre, rng):
    """1-5 lines anywhere between a hunk and the previous one (or the top of the file). Only above
    a hunk that starts with context: next to its changes, where they belong would be ambiguous."""
    _, hunks = parse(diff)
    spans = [numbers(h[0])[:2] for h in hunks]
    starts = [j for j, h in enumerate(hunks) if h[1].startswith(" ")]
    if pre is None or not starts:
        return None
    j = rng.choice(starts)
    at = rng.randint(spans[j - 1][0] - 1 + spans[j - 1][1] if j else 0, spans[j][0] - 1)
    eol = "\r\n" if b"\r\n" in pre else "\n"
    new = [f"drift {k}: a line added since the diff was made{eol}" for k in range(rng.randint(1, 5))]
    lines = decode(pre)
    return diff, encode(lines[:at] + new + lines[at:])


@damage("file drifted: an outer context line edited")
def drift_context(diff, pre, rng):
    """The first or last context line of a hunk (what fuzz ignores) gets ` (edited)` in the file."""
    spots = []
    for hunk in parse(diff)[1]:
        old = [line for line in hunk[1:] if line[0] in " -"]
        spots += [numbers(hunk[0])[0] - 1 + k for k in {0, len(old) - 1} if old and old[k].startswith(" ")
                  and old[k].strip() and old[k].endswith("\n")]
    if pre is None or not spots:
        return None
    at = rng.choice(spots)
    lines = decode(pre)
    text, ending = content(" " + lines[at])
    lines[at] = text + " (edited)" + ending
    return diff, encode(lines)


@damage("CRLF file, LF diff")
def crlf_file(diff, pre, rng):
    if pre is None or b"\r" in pre or b"\n" not in pre or "\r" in diff:
        return None
    return diff, pre.replace(b"\n", b"\r\n")


@damage("CRLF diff, LF file")
def crlf_diff(diff, pre, rng):
    if pre is None or b"\r" in pre or "\r" in diff:
        return None
    return diff.replace("\n", "\r\n"), pre


@damage("new file written as an edit")
def new_as_edit(diff, pre, rng):
    """`--- a/x` `+++ b/x` and `@@ -0,0 +1,N @@`, without `diff --git`, `new file mode` or /dev/null."""
    head, hunks = parse(diff)
    if pre is not None or "--- /dev/null\n" not in head:
        return None
    plus = next(line for line in head if line.startswith("+++ b/"))
    return join(["--- a/" + plus[6:], plus], hunks), pre


def creation(diff: str, pre: bytes | None) -> tuple[list[str], list[list[str]]] | None:
    """The header lines and hunks of a diff that creates a file (`--- /dev/null`); None otherwise."""
    head, hunks = parse(diff)
    return (head, hunks) if pre is None and "--- /dev/null\n" in head and hunks else None


@damage("new file: `@@ @@` header")
def new_no_numbers(diff, pre, rng):
    made = creation(diff, pre)
    if made is None:
        return None
    head, hunks = made
    for hunk in hunks:
        hunk[0] = "@@ @@\n"
    return join(head, hunks), pre


@damage("new file: hunk header numbers shifted")
def new_numbers_shifted(diff, pre, rng):
    """`@@ -0,0 +1,N @@` written as `-1,0 +1,N`, as `-1 +1,N` (an edit's header), or as `-0,0 +K,N`."""
    made = creation(diff, pre)
    if made is None:
        return None
    head, hunks = made
    for hunk in hunks:
        _, _, _, new_len, rest = numbers(hunk[0])
        hunk[0] = rng.choice((header(1, 0, 1, new_len, rest), f"@@ -1 +1,{new_len} @@{rest}",
                              header(0, 0, rng.randint(2, 10), new_len, rest)))
    return join(head, hunks), pre


@damage("new file: `diff --git` line missing")
def new_git_line_lost(diff, pre, rng):
    """`new file mode`, `index`, `--- /dev/null` and `+++ b/x` kept, the `diff --git` line dropped."""
    made = creation(diff, pre)
    if made is None:
        return None
    head, hunks = made
    return join([line for line in head if not line.startswith("diff --git ")], hunks), pre


def line_map(diff: str, old_count: int) -> dict[int, tuple[int, bool]]:
    """For each preimage line: the postimage index at its place, and whether the diff keeps it."""
    where: dict[int, tuple[int, bool]] = {}
    p = q = 0
    for hunk in parse(diff)[1]:
        old, old_len, _, _, _ = numbers(hunk[0])
        for line in [" "] * ((old - 1 if old_len else old) - p) + hunk[1:]:
            if line[0] in " -":
                where[p] = (q, line[0] == " ")
            p, q = p + (line[0] in " -"), q + (line[0] in " +")
    where.update((p + k, (q + k, True)) for k in range(old_count - p))
    return where


def expected_postimage(diff: str, pre: bytes | None, new_pre: bytes | None, post: bytes | None) -> bytes | None:
    """The clean diff's intent applied to `new_pre`: `post`, with the same CRLF conversion, or with
    the same lines inserted or edited (one region, outside the diff's changes)."""
    if new_pre == pre or post is None:
        return post
    assert pre is not None and new_pre is not None
    if new_pre == pre.replace(b"\n", b"\r\n"):
        return post.replace(b"\n", b"\r\n")
    a, b, out = decode(pre), decode(new_pre), decode(post)
    n, p, s = min(len(a), len(b)), 0, 0  # a[p:len(a)-s] became b[p:len(b)-s]
    while p < n and a[p] == b[p]:
        p += 1
    while s < n - p and a[-1 - s] == b[-1 - s]:
        s += 1
    where = line_map(diff, len(a))
    assert all(where[i][1] for i in range(p, len(a) - s)), "the edit overlaps the diff's changes"
    at = where[p][0] if p < len(a) else len(out)
    return encode(out[:at] + b[p:len(b) - s] + out[at + len(a) - s - p:])
