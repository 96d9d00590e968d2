"""Carry a worktree's change onto a newer commit, the way `git rebase` would leave it for a
person: applied where it merges cleanly, with conflict markers where it does not."""

from __future__ import annotations

from pathlib import Path

from gitforge.git.repo import Git
from gitforge.git.run import run_git


def onto(git: Git, path: Path, branch: str, old_base: str, new_base: str, patch: Path) -> list[str] | None:
    """Put the worktree at `path` on `branch` at `new_base` with `patch` (a diff against
    `old_base`) applied three-way and uncommitted. Returns the paths left with conflict
    markers, or None when the patch could not be carried over at all; the worktree is then
    back at `old_base` with the patch applied, as the agent left it."""
    git.worktree_reset(path, branch, new_base)
    proc = run_git(["apply", "--3way", "--whitespace=nowarn", str(patch)], path, check=False)
    conflicted = run_git(["diff", "--name-only", "--diff-filter=U"], path).stdout.split()
    run_git(["reset", "--quiet"], path)  # markers stay in the files; the index is the new base
    if proc.returncode == 0 or conflicted:
        return conflicted
    git.worktree_reset(path, branch, old_base)
    run_git(["apply", "--whitespace=nowarn", str(patch)], path)
    return None
