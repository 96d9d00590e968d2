"""git config: read what git itself would see (every level), write the repository's own."""

from __future__ import annotations

from pathlib import Path

from gitforge.git.run import run_git


def get(cwd: Path, key: str) -> str | None:
    """The effective value of `key` (system, global, local, worktree), or None when unset."""
    proc = run_git(["config", "--get", key], cwd, check=False, hooks_off=False)
    return proc.stdout.rstrip("\n") if proc.returncode == 0 else None


def get_all(cwd: Path, key: str) -> list[str]:
    proc = run_git(["config", "--get-all", key], cwd, check=False, hooks_off=False)
    return proc.stdout.splitlines() if proc.returncode == 0 else []


def set_local(cwd: Path, key: str, value: str) -> bool:
    """Set `key` in the repository's config; False when it already had that value."""
    if run_git(["config", "--local", "--get", key], cwd, check=False).stdout.rstrip("\n") == value:
        return False
    run_git(["config", "--local", key, value], cwd)
    return True


def add_local(cwd: Path, key: str, value: str) -> bool:
    """Add `value` to the multi-valued `key` unless it is there; False when it was."""
    if value in run_git(["config", "--local", "--get-all", key], cwd, check=False).stdout.splitlines():
        return False
    run_git(["config", "--local", "--add", key, value], cwd)
    return True


def remotes(cwd: Path) -> list[str]:
    """The configured remotes' names."""
    return run_git(["remote"], cwd, hooks_off=False).stdout.split()
