"""Paths git itself refuses to check out, refused on every platform.

git's `verify_path` (read-cache.c), with `core.protectHFS` and `core.protectNTFS` on, refuses
names that HFS+ or NTFS would read as `.git` (path.c `is_ntfs_dotgit`, utf8.c `is_hfs_dotgit`),
a symlinked `.gitmodules`, and on Windows names Windows cannot hold (compat/mingw.c
`is_valid_win32_path`). A patch is made on one machine and checked out on others, so all of
these rules hold here whatever the platform; so do the file systems' limits on a name's length.
Each function returns why a path is refused (a phrase to follow "path: "), or None.
"""

from __future__ import annotations

import re

# Code points HFS+ ignores in file names (utf8.c next_hfs_char): ".g\u200cit" is ".git" there.
HFS_IGNORED = frozenset({0x200C, 0x200D, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E,
                         0x206A, 0x206B, 0x206C, 0x206D, 0x206E, 0x206F, 0xFEFF})
# The dot-files git reads from the work tree, with the hash part of their NTFS fallback short names.
DOTFILES = {"gitmodules": "gi7eba", "gitignore": "gi250a", "gitattributes": "gi7d29", "mailmap": "maba30"}
NAME_MAX, PATH_MAX = 255, 4096  # bytes: what Linux, macOS and Windows file systems hold
_NTFS_DOTGIT = re.compile(r"(\.git|git~1)([. ]*)(:.*)?", re.IGNORECASE | re.DOTALL)
_RESERVED = re.compile(r"(aux|nul|prn|con|conin\$|conout\$|com[1-9]|lpt[0-9])( *)([.:].*)?", re.IGNORECASE | re.DOTALL)
_WIN_FORBIDDEN = set(':<>"|?*')
_HFS, _NTFS, _WINDOWS = ("git refuses it (core.protectHFS)", "git refuses it (core.protectNTFS)",
                         "git refuses it on Windows (core.protectNTFS)")


def path_problem(path: str, *, symlink: bool = False, existing: int = 0) -> str | None:
    """Why git (or a file system) would refuse `path`, a `/`-separated repository path. Its
    first `existing` components are already in the tree: what only Windows cannot hold is
    refused in new names alone (a patch may still edit the `aux.py` a repository has)."""
    bad = sorted({ord(c) - 0xDC00 for c in path if 0xDC80 <= ord(c) <= 0xDCFF})
    if bad or any(0xD800 <= ord(c) <= 0xDFFF for c in path):
        shown = ", ".join(f"0x{b:02x}" for b in bad) or "a lone surrogate"
        return f"the path is not valid UTF-8 ({shown}); name files in UTF-8"
    size = len(path.encode("utf-8"))
    if size > PATH_MAX:
        return f"the path is {size} bytes long, over the {PATH_MAX} bytes a file system allows"
    return next((why for i, name in enumerate(path.split("/"))
                 if (why := component_problem(name, symlink=symlink, new=i >= existing))), None)


def component_problem(name: str, *, symlink: bool = False, new: bool = True) -> str | None:
    """Why one path component is refused (`symlink`: the entry itself is a symlink; `new`: the
    name is not in the tree yet)."""
    size = len(name.encode("utf-8"))
    if size > NAME_MAX:
        return f"the name '{name[:24]}...' is {size} bytes long, over the {NAME_MAX} bytes a file system allows"
    dotgit = dotgit_alias(name)
    if dotgit is not None:
        return f"inside a git directory ('.git'){dotgit}"
    for dotfile in DOTFILES:
        alias = dotfile_alias(name, dotfile)
        if alias is None:
            continue
        if symlink:
            return f"'.{dotfile}' cannot be a symlink{alias}: git refuses a symlinked .{dotfile}"
        if alias:
            return f"'.{dotfile}' in disguise{alias}: git would read it as '.{dotfile}' there; use the plain name"
    return windows_problem(name) if new else None


def dotgit_alias(name: str) -> str | None:
    """None if `name` is not `.git` on any file system; "" if it is `.git` in any case; else
    how HFS+ or NTFS make it `.git` (": ..." to follow a reason)."""
    if name.lower() == ".git" and name.isascii():
        return ""
    folded = _hfs_fold(name)
    if folded != name and folded.lower() == ".git" and folded.isascii():
        return f": '{_shown(name)}' is '.git' on HFS+ (which ignores {_ignored(name)}); {_HFS}"
    m = _NTFS_DOTGIT.fullmatch(name)
    if m is None:
        return None
    how = ("an alternate data stream" if m[3] else "its 8.3 short name" if m[1].lower() == "git~1"
           else "which drops trailing dots and spaces")
    return f": '{_shown(name)}' is '.git' on NTFS ({how}); {_NTFS}"


def dotfile_alias(name: str, dotfile: str) -> str | None:
    """None if `name` is not `.<dotfile>` anywhere; "" if it is exactly that; else how it is one."""
    if name == "." + dotfile:
        return ""
    folded = _hfs_fold(name)
    if folded.isascii() and folded.lower() == "." + dotfile:
        ignored = f", which ignores {_ignored(name)}" if folded != name else ""
        return f" ('{_shown(name)}' is '.{dotfile}' on HFS+{ignored})"
    if _ntfs_dotfile(name, dotfile, DOTFILES[dotfile]):
        return f" ('{_shown(name)}' is '.{dotfile}' on NTFS)"
    return None


def windows_problem(name: str) -> str | None:
    """What Windows cannot hold (compat/mingw.c is_valid_win32_path, on with core.protectNTFS)."""
    if name in (".", ".."):
        return None
    m = _RESERVED.fullmatch(name)
    if m is not None:
        return f"'{_shown(name)}' is a reserved device name on Windows ({m[1].upper()}); {_WINDOWS}"
    bad = next((c for c in name if c in _WIN_FORBIDDEN or ord(c) < 32), None)
    if bad is not None:
        return f"'{_shown(name)}' has {bad!r}, which Windows does not allow in a name; {_WINDOWS}"
    if name.endswith((".", " ")):
        return f"'{_shown(name)}' ends in a dot or a space, which Windows drops; {_WINDOWS}"
    return None


def _ntfs_dotfile(name: str, dotname: str, short: str) -> bool:
    """path.c is_ntfs_dot_generic: `.gitmodules` with trailing dots/spaces or a stream, its
    short name (`GITMOD~1`..`~4`) or the fallback short name (`GI7EBA~1`, `GI7EB~10`, ...)."""
    if name[:1] == "." and name[1:1 + len(dotname)].lower() == dotname and name[1:1 + len(dotname)].isascii():
        return _only_spaces_and_periods(name[1 + len(dotname):])
    if name[:6].lower() == dotname[:6] and name[:6].isascii() and name[6:7] == "~" and name[7:8] in "1234" \
            and name[7:8]:
        return _only_spaces_and_periods(name[8:])
    i, tilde = 0, False
    while i < 8:
        if i >= len(name):
            return False
        c = name[i]
        if tilde:
            if not "0" <= c <= "9":
                return False
        elif c == "~":
            i += 1
            if i >= len(name) or not "1" <= name[i] <= "9":
                return False
            tilde = True
        elif i >= 6 or not c.isascii() or c.lower() != short[i]:
            return False
        i += 1
    return _only_spaces_and_periods(name[8:])


def _only_spaces_and_periods(rest: str) -> bool:
    for c in rest:
        if c == ":":
            return True
        if c not in " .":
            return False
    return True


def _hfs_fold(name: str) -> str:
    return "".join(c for c in name if ord(c) not in HFS_IGNORED)


def _ignored(name: str) -> str:
    return ", ".join(dict.fromkeys(f"U+{ord(c):04X}" for c in name if ord(c) in HFS_IGNORED))


def _shown(name: str) -> str:
    """A name with invisible characters made visible (U+200C as \\u200c)."""
    return name if name.isprintable() else repr(name)[1:-1]
