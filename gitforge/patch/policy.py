"""Validate parsed patches against the repository policy, before anything is applied."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from fnmatch import fnmatchcase

from gitforge.patch.gitpath import path_problem
from gitforge.patch.parse import FilePatch
from gitforge.patch.tree import TreeView

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
_WRITABLE_MODES = (None, "100644", "100755")


def check_policy(patches: Sequence[FilePatch], tree: TreeView, *, max_files: int, max_lines: int,
                 max_file_bytes: int, protected: Sequence[str], forbid_binary: bool,
                 scope: Collection[str] | None = None) -> list[str]:
    """Human-readable reasons to refuse the patches; an empty list means they are allowed.

    `max_file_bytes` is enforced on the result by `apply_patches`; it is accepted here so
    that callers can pass the whole policy in one place.
    """
    del max_file_bytes
    reasons: list[str] = []
    for fp in patches:
        for path in _paths(fp):
            reasons += _path_reasons(path, tree, protected, scope, symlink="120000" in (fp.old_mode, fp.new_mode))
        reasons += _mode_reasons(fp, tree)
        if fp.binary and forbid_binary:
            reasons.append(f"{fp.path}: binary patch refused (forbid_binary)")
    files = {p for fp in patches for p in _paths(fp)}
    if len(files) > max_files:
        reasons.append(f"the patch touches {len(files)} files, over the limit of {max_files} (max_files)")
    lines = sum(fp.added + fp.removed for fp in patches)
    if lines > max_lines:
        reasons.append(f"the patch changes {lines} lines, over the limit of {max_lines} (max_lines)")
    return list(dict.fromkeys(reasons))


def _paths(fp: FilePatch) -> list[str]:
    return list(dict.fromkeys(p for p in (fp.old_path, fp.new_path) if p is not None))


def _path_reasons(path: str, tree: TreeView, protected: Sequence[str],
                  scope: Collection[str] | None, symlink: bool = False) -> list[str]:
    """Why `path` may not be written: its shape, git's own rules (gitpath), gitforge's state,
    the protected patterns, a symlink or submodule on the way, the plan's scope."""
    shape = _shape_reason(path)
    parts = path.split("/")
    if not shape:
        existing = next((i for i in range(len(parts)) if tree.kind("/".join(parts[:i + 1])) is None), len(parts))
        shape = path_problem(path, symlink=symlink, existing=existing)
    if shape:
        return [f"{path!r}: {shape}" if not path or not path.isprintable() else f"{path}: {shape}"]
    reasons = []
    if parts[0].casefold() == ".forge":
        reasons.append(f"{path}: gitforge's own state ('.forge/') is never patched")
    pattern = next((p for p in protected if matches_protected(path, p)), None)
    if pattern is not None and not reasons:  # .forge is already refused above
        reasons.append(f"{path}: protected path (matches '{pattern}')")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        kind = tree.kind(prefix)
        if kind == "link" and i < len(parts):
            reasons.append(f"{path}: writes through symlink '{prefix}'")
            break
        if kind == "submodule":
            reasons.append(f"{path}: inside submodule '{prefix}' (a gitlink: its files live in another "
                           "repository); gitforge does not change submodules" if i < len(parts) else
                           f"{path}: is a submodule (a gitlink); gitforge does not change submodules")
            break
    if scope is not None and not in_scope(path, scope):
        reasons.append(f"{path}: outside the plan's scope")
    return reasons


def _shape_reason(path: str) -> str | None:
    """Why a path string cannot name a file inside the repository, or None."""
    if path == "":
        return "empty path"
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in path):
        return "path contains a NUL or control character"
    if path.startswith("/") or _WINDOWS_DRIVE.match(path):
        return "absolute path"
    if "\\" in path:
        return "path contains a backslash" + (" (absolute path)" if path.startswith("\\\\") else "")
    parts = path.split("/")
    if ".." in parts:
        return "path leaves the repository ('..')"
    if any(part in ("", ".") for part in parts):
        return "path has an empty or '.' component"
    return None


def _mode_reasons(fp: FilePatch, tree: TreeView) -> list[str]:
    modes = {fp.old_mode, fp.new_mode}
    if "120000" in modes:
        return [f"{fp.path}: symlinks cannot be created or changed (mode 120000)"]
    if "160000" in modes:
        return [f"{fp.path}: submodules cannot be changed (mode 160000)"]
    odd = [m for m in (fp.old_mode, fp.new_mode) if m not in _WRITABLE_MODES]
    if odd:
        return [f"{fp.path}: unsupported file mode {odd[0]}"]
    return [f"{path}: symlinks cannot be created or changed ('{path}' is a symlink)"
            for path in _paths(fp) if tree.kind(path) == "link"]


def in_scope(path: str, scope: Iterable[str]) -> bool:
    """Inside the plan: the path itself, or under a planned folder ("src/")."""
    return any(path == s or (s.endswith("/") and path.startswith(s)) for s in scope)


def matches_protected(path: str, pattern: str) -> bool:
    """gitignore-like matching, case-insensitive, one fnmatch per path component.

    `dir/` protects everything under `dir`; a pattern with no `/` matches a file or
    directory name at any depth (`.env*`); `**` matches any number of components.
    """
    pattern = pattern.strip()
    if not pattern or pattern.startswith("#"):
        return False
    dir_only = pattern.endswith("/")
    pat = [p.casefold() for p in pattern.strip("/").split("/") if p]
    parts = [p.casefold() for p in path.split("/")]
    if not pat:
        return False
    # a directory pattern matches only proper prefixes (directories) of the path
    limit = len(parts) - 1 if dir_only else len(parts)
    if "/" not in pattern.rstrip("/"):  # no slash but a trailing one: a name at any depth
        return any(fnmatchcase(part, pat[0]) for part in parts[:limit])
    return any(_match(pat, parts[:k]) for k in range(1, limit + 1))


def _match(pat: list[str], parts: list[str]) -> bool:
    if not pat:
        return not parts
    if pat[0] == "**":
        return any(_match(pat[1:], parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], pat[0]) and _match(pat[1:], parts[1:])
