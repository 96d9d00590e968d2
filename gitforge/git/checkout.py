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
from pathlib import Path

from gitforge.git.locks import IndexLock
from gitforge.git.repo import Git, run_git


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


def update_locked(checkout: Path, lock: IndexLock, old: str, new: str) -> str | None:
    """`git read-tree -m -u old new` on a copy of the checkout's index while `lock` is held, then
    the new index installed through the lock. None on success, else git's refusal (nothing of
    the checkout changed: git checks every path before it writes one)."""
    index = lock.git_dir / "index"
    tmp = lock.git_dir / f"index.gitforge-{os.getpid()}"
    if index.exists():
        shutil.copyfile(index, tmp)  # with its stat cache: git compares the files cheaply
    proc = run_git(["read-tree", "-m", "-u", old, new], checkout, check=False, env={"GIT_INDEX_FILE": str(tmp)})
    if proc.returncode != 0:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        return proc.stderr.strip() or proc.stdout.strip()
    lock.commit(tmp)
    return None


def index_tree(checkout: Path, private: Path) -> str | None:
    """The tree a checkout's index holds (what `git commit` would commit), or None when the
    index has unmerged entries or cannot be read. Computed on a copy: `git write-tree` takes
    index.lock, and a user's `git commit` must never find it taken by a look."""
    index = private / "index"
    if not index.exists():
        return None
    tmp = private / f"index.gitforge-look-{os.getpid()}"
    try:
        shutil.copyfile(index, tmp)
        proc = run_git(["write-tree"], checkout, check=False, env={"GIT_INDEX_FILE": str(tmp)})
    except OSError:
        return None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return proc.stdout.strip() if proc.returncode == 0 else None
