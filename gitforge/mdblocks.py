"""Markdown at the line level, the CommonMark subset BACKLOG.md needs: physical lines with
their endings, ATX headings, fenced code blocks and code spans. Pure; no phase semantics."""

from __future__ import annotations

import re
from dataclasses import dataclass

LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_ATX = re.compile(r" {0,3}(#{1,6})(?=[ \t]|\Z)(.*)\Z")
_FENCE = re.compile(r"( {0,3})(`{3,}|~{3,})(.*)\Z")
_BACKTICKS = re.compile(r"`+")


def split_ending(line: str) -> tuple[str, str]:
    body = line.rstrip("\r\n")
    return body, line[len(body):]


def atx_heading(body: str) -> tuple[int, str] | None:
    """(level, text) when `body` (a line without its ending) is an ATX heading."""
    m = _ATX.match(body)
    if not m:
        return None
    text = m.group(2).strip(" \t")
    bare = text.rstrip("#")  # an optional closing run of #s, after a space or tab
    if bare != text and (not bare or bare[-1] in " \t"):
        text = bare.rstrip(" \t")
    return len(m.group(1)), text


@dataclass(frozen=True)
class Fence:
    start: int       # index of the opening line
    end: int | None  # index of the closing line; None when nothing closes it
    info: str
    indent: int
    marker: str

    def inner(self, count: int) -> range:
        """Indices of the lines inside the block (to the last of `count` lines when unclosed)."""
        return range(self.start + 1, count if self.end is None else self.end)


def find_fences(body: list[str]) -> list[Fence]:
    """The fenced blocks of a document, CommonMark style: a block opened by 3+ backticks or
    tildes is closed by a line of at least as many of the same character and nothing else."""
    fences: list[Fence] = []
    i = 0
    while i < len(body):
        m = _FENCE.match(body[i])
        if not m or (m.group(2)[0] == "`" and "`" in m.group(3)):
            i += 1
            continue
        marker = m.group(2)
        closer = re.compile(r" {0,3}" + re.escape(marker[0]) + "{%d,}[ \t]*\\Z" % len(marker))
        end = next((j for j in range(i + 1, len(body)) if closer.match(body[j])), None)
        fences.append(Fence(i, end, m.group(3).strip(), len(m.group(1)), marker))
        if end is None:
            break
        i = end + 1
    return fences


def first_code_span(text: str) -> str | None:
    """The content of the first CommonMark code span in text, or None."""
    pos = 0
    while (opener := _BACKTICKS.search(text, pos)) is not None:
        width = len(opener.group())
        closer = _BACKTICKS.search(text, opener.end())
        while closer is not None and len(closer.group()) != width:
            closer = _BACKTICKS.search(text, closer.end())
        if closer is None:
            pos = opener.end()  # no closer: these backticks are literal text
            continue
        content = text[opener.end():closer.start()].replace("\n", " ")
        if len(content) > 2 and content[0] == content[-1] == " " and content.strip(" "):
            content = content[1:-1]
        return content
    return None
