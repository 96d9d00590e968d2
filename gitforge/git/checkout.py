"""Checkouts of the target branch: bring one up to date under its own index.lock, as git does.

Moving a branch that is checked out leaves that checkout looking as if the change had been
reverted (index and files still old); a `git commit -a` made from it in that state would undo
the landing. So a landing holds every such checkout's `index.lock` from before the ref moves
until its index and files are updated (`locks.IndexLock`): a concurrent `git commit` fails
with git's usual "index.lock exists" instead of reverting work.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from gitforge.git.locks import IndexLock, pid_alive
from gitforge.git.repo import Git
from gitforge.git.run import run_git


def git_dir(git: Git, checkout: Path) -> Path:
    """The private git dir of a checkout: the common dir for the main one, else
    `<common>/worktrees/<name>` (named by the `.git` file of a linked worktree)."""
    dot_git = checkout / ".git"
    if dot_git.is_file():
        text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
        if text.startswith("gitdir:"):
            found = Path(text[len("gitdir:"):].strip())
            return (found if found.is_absolute() else checkout / found).resolve()
    return git.common_dir


@contextlib.contextmanager
def _scratch_index(private: Path, tag: str = "") -> Iterator[dict[str, str]]:
    """A copy of a checkout's index to work on (with its stat cache: git compares files cheaply),
    as the environment that points git at it. Removed on exit unless it was installed through
    the index lock meanwhile (`IndexLock.commit` moves it away)."""
    tmp = private / f"index.gitforge-{tag}{os.getpid()}"
    index = private / "index"
    if index.exists():
        shutil.copyfile(index, tmp)
    try:
        yield {"GIT_INDEX_FILE": str(tmp)}
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def update_locked(checkout: Path, lock: IndexLock, old: str, new: str) -> str | None:
    """`git read-tree -m -u old new` on a copy of the checkout's index while `lock` is held, then
    the new index installed through the lock. None on success, else git's refusal (nothing of
    the checkout changed: git checks every path before it writes one)."""
    with _scratch_index(lock.git_dir) as env:
        proc = run_git(["read-tree", "-m", "-u", old, new], checkout, check=False, env=env)
        if proc.returncode != 0:
            return proc.stderr.strip() or proc.stdout.strip()
        lock.commit(Path(env["GIT_INDEX_FILE"]))
    return None


def index_tree(checkout: Path, private: Path) -> str | None:
    """The tree a checkout's index holds (what `git commit` would commit), or None when the
    index has unmerged entries or cannot be read. Computed on a copy: `git write-tree` takes
    index.lock, and a user's `git commit` must never find it taken by a look."""
    if not (private / "index").exists():
        return None
    try:
        with _scratch_index(private, "look-") as env:
            proc = run_git(["write-tree"], checkout, check=False, env=env)
    except OSError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def finish_update(git: Git, checkout: Path, lock: IndexLock, old: str, new: str) -> list[str] | None:
    """Complete an update of a checkout from `old` to `new` that a killed landing left undone or
    half done (git had written some files when gitforge died; the index still holds `old`).
    Files already at `new` are taken into the index as they are; the others are written as
    `git checkout` would. Returns None when done, else the paths holding changes of the user's
    own (neither `old` nor `new`), and nothing is touched."""
    before, after = git.view(old), git.view(new)
    written, users = [], []
    for path in git.changed_paths(git.tree_of(old), git.tree_of(new)):
        disk = _on_disk(checkout / path)
        if disk == after.read(path):
            written.append(path)
        elif disk != before.read(path):
            users.append(path)
    if users:
        return users
    with _scratch_index(lock.git_dir) as env:
        for path in written:
            entry = git.entry(new, path)
            args = ["--force-remove", "--", path] if entry is None else \
                ["--add", "--cacheinfo", f"{entry[0]:o},{entry[1]},{path}"]
            run_git(["update-index", *args], checkout, env=env)
        # --cacheinfo entries carry no stat data: refresh them, as git would, from the files
        run_git(["update-index", "-q", "--refresh"], checkout, env=env, check=False)
        middle = run_git(["write-tree"], checkout, env=env).stdout.strip()
        run_git(["read-tree", "-m", "-u", middle, new], checkout, env=env)
        lock.commit(Path(env["GIT_INDEX_FILE"]))
    return None


def _on_disk(path: Path) -> bytes | None:
    """A file's content as git would store it (a symlink's target), or None when absent."""
    try:
        if path.is_symlink():
            return os.readlink(path).encode()
        return path.read_bytes() if path.is_file() else None
    except OSError:
        return None


def clear_litter(private: Path) -> None:
    """Temporary indexes a killed gitforge left in a git dir (index.gitforge-<pid>)."""
    for tmp in private.glob("index.gitforge-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

