"""`GIT binary patch` blocks (as `git diff --binary` writes them): decode and apply.

A block is `literal N` (the whole new file) or `delta N` (git's copy/insert delta against the
old file), zlib-compressed and base85-encoded, one line per ≤52 bytes with a length letter.
Whether binary patches are allowed at all is the policy's call (`forbid_binary`).
"""

from __future__ import annotations

import base64
import re
import zlib
from dataclasses import dataclass

from gitforge.errors import PatchRefused

_GIT_HEADER = re.compile(r'^diff --git (?:"?a/)?(.*?)"? (?:"?b/)?(.*?)"?$')


@dataclass(frozen=True)
class BinaryPatch:
    kind: str  # "literal" | "delta"
    size: int  # size of the decoded payload (the new file, or the delta)
    payload: bytes


def extract(raw: list[str]) -> dict[str, BinaryPatch]:
    """The forward binary patch of each file in a diff, keyed by the `b/` path of its header."""
    out: dict[str, BinaryPatch] = {}
    path = None
    i = 0
    while i < len(raw):
        line = raw[i].rstrip("\r\n")
        m = _GIT_HEADER.match(line)
        if m:
            path = m[2]
        elif line == "GIT binary patch" and path is not None:
            i += 1
            out[path] = _block(raw, i, path)
        i += 1
    return out


def _block(raw: list[str], i: int, path: str) -> BinaryPatch:
    m = re.match(r"^(literal|delta) (\d+)$", raw[i].rstrip("\r\n")) if i < len(raw) else None
    if m is None:
        raise PatchRefused("malformed patch", reasons=[f"{path}: 'GIT binary patch' without literal/delta"])
    data = bytearray()
    i += 1
    while i < len(raw) and raw[i].strip():
        data += _line(raw[i].rstrip("\r\n"), path)
        i += 1
    try:
        payload = zlib.decompress(bytes(data))
    except zlib.error as e:
        raise PatchRefused("malformed patch", reasons=[f"{path}: binary patch data is corrupt ({e})"]) from None
    if len(payload) != int(m[2]):
        raise PatchRefused("malformed patch", reasons=[f"{path}: binary patch says {m[2]} bytes, has {len(payload)}"])
    return BinaryPatch(m[1], int(m[2]), payload)


def _line(line: str, path: str) -> bytes:
    """One base85 line: a length letter (A-Z = 1-26, a-z = 27-52), then the data."""
    if not line or not line[0].isalpha():
        raise PatchRefused("malformed patch", reasons=[f"{path}: bad binary patch line {line[:20]!r}"])
    size = ord(line[0]) - (ord("A") - 1 if line[0].isupper() else ord("a") - 27)
    try:
        return base64.b85decode(line[1:])[:size]
    except ValueError:
        raise PatchRefused("malformed patch", reasons=[f"{path}: bad base85 in binary patch"]) from None


def apply_binary(patch: BinaryPatch, old: bytes) -> bytes:
    """The new content: the literal, or the delta applied to `old` (raises ValueError)."""
    if patch.kind == "literal":
        return patch.payload
    delta = patch.payload
    pos, src_size = _varint(delta, 0)
    pos, dst_size = _varint(delta, pos)
    if src_size != len(old):
        raise ValueError(f"the delta is for a {src_size}-byte file, this one has {len(old)} bytes")
    out = bytearray()
    while pos < len(delta):
        op = delta[pos]
        pos += 1
        if op & 0x80:  # copy from the old file
            offset = size = 0
            for bit in range(4):
                if op & (1 << bit):
                    offset |= delta[pos] << (8 * bit)
                    pos += 1
            for bit in range(3):
                if op & (1 << (4 + bit)):
                    size |= delta[pos] << (8 * bit)
                    pos += 1
            size = size or 0x10000
            if offset + size > len(old):
                raise ValueError("the delta copies beyond the end of the file")
            out += old[offset:offset + size]
        elif op:  # insert the next `op` bytes
            out += delta[pos:pos + op]
            pos += op
        else:
            raise ValueError("the delta has a reserved opcode")
    if len(out) != dst_size:
        raise ValueError(f"the delta made {len(out)} bytes, it promised {dst_size}")
    return bytes(out)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return pos, value
