"""The one view of a repository that the patch package is allowed: read-only, by path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol, runtime_checkable

Kind = Literal["file", "exec", "link", "dir", "submodule"]


@runtime_checkable
class TreeView(Protocol):
    """What the patch functions need to know about a tree; the git layer implements it."""

    def kind(self, path: str) -> Kind | None:
        """The kind of entry at `path` ("dir" for any prefix of a stored path; "submodule" for a
        gitlink, whose files are in another repository), None if absent."""

    def read(self, path: str) -> bytes | None:
        """The content of a file (a symlink's target); None if absent or a directory."""


class DictTree:
    """An in-memory TreeView over `{path: bytes}`, with optional `{path: "exec" | "link" | "submodule"}` modes."""

    def __init__(self, files: Mapping[str, bytes | str] | None = None,
                 modes: Mapping[str, Kind] | None = None) -> None:
        self.files = {p: d.encode() if isinstance(d, str) else d for p, d in (files or {}).items()}
        self.modes = dict(modes or {})
        unknown = set(self.modes) - set(self.files)
        if unknown:
            raise ValueError(f"modes given for paths that are not files: {sorted(unknown)}")
        self._dirs = {"/".join(p.split("/")[:i]) for p in self.files for i in range(1, p.count("/") + 1)}

    def kind(self, path: str) -> Kind | None:
        if path in self.files:
            return self.modes.get(path, "file")
        if path in self._dirs or path == "":
            return "dir"
        return None

    def read(self, path: str) -> bytes | None:
        return None if self.modes.get(path) == "submodule" else self.files.get(path)

    def __repr__(self) -> str:
        return f"DictTree({len(self.files)} files)"
