"""Cutting a line to fit without losing its end, where a message's last words usually are
("... exited with code 2", a path, a count): the start and the end are kept, the middle goes."""

from __future__ import annotations


def middle(text: str, limit: int) -> str:
    """`text` when it has at most `limit` characters; else its first and last characters
    (`limit` of them in all) with " … [N chars] … " between, N being how many were cut."""
    if len(text) <= limit:
        return text
    head = (limit + 1) // 2
    tail = limit - head
    return f"{text[:head]} … [{len(text) - limit} chars] … {text[len(text) - tail:] if tail else ''}".rstrip()


def around(text: str, start: int, end: int, limit: int) -> str:
    """`text` cut to `limit` characters kept around `text[start:end]` (what a search found,
    whole even when longer), with "[N chars] … " / " … [N chars]" where each side was cut."""
    if len(text) <= limit:
        return text
    room = max(0, limit - (end - start))
    left = max(0, start - room // 2)
    right = min(len(text), left + max(limit, end - start))
    left = max(0, min(left, right - limit))
    return ((f"[{left} chars] … " if left else "") + text[left:right]
            + (f" … [{len(text) - right} chars]" if right < len(text) else ""))
