"""Running the git CLI: a clean environment, the user's hooks off, errors in git's words."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from gitforge.errors import GitFailed

# Variables git sets for hooks; inherited, they would point our commands at the wrong repo.
_GIT_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_PREFIX",
            "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_QUARANTINE_PATH")


_OWN_SECRETS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV}
    env.update(extra or {})
    return env


def run_git(args: Sequence[str], cwd: Path, *, check: bool = True, env: dict[str, str] | None = None,
            hooks_off: bool = True) -> subprocess.CompletedProcess[str]:
    """Run git (the user's hooks off unless `hooks_off` is False); GitFailed with git's words."""
    pre = ["-c", "core.hooksPath=/dev/null"] if hooks_off else []
    # git never needs gitforge's model credentials: they stay out of its environment
    git_env = {k: v for k, v in clean_env(env).items() if k not in _OWN_SECRETS}
    proc = subprocess.run(["git", *pre, *args], cwd=cwd, env=git_env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise GitFailed(f"git {' '.join(args)} (in {cwd}) failed: {proc.stderr.strip() or proc.stdout.strip()}",
                        hint="if another git command was running there, try again; otherwise please report it")
    return proc
