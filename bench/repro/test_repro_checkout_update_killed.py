"""A gitforge killed (SIGKILL of its pid alone) while `git read-tree -m -u` brings the main checkout
up to the landed commit: git finishes writing the files, gitforge never installs the new index.
The next `gitforge next` must leave the checkout clean (its files already are the landed ones)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from gitforge_tests_conftest import git, make_diff, phase_md, run_cli

BASE = {"app.py": "x = 1\n"}
REAL_GIT = subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip()


def killing_git(bin_dir: Path) -> dict[str, str]:
    """A `git` first on PATH that SIGKILLs its caller (gitforge) when asked for `read-tree -m -u`,
    then runs the real git: what `kill -9 <gitforge pid>` does while that git runs."""
    bin_dir.mkdir()
    shim = bin_dir / "git"
    shim.write_text(f'#!/bin/sh\ncase "$*" in *"read-tree -m -u"*) kill -9 $PPID;; esac\nexec {REAL_GIT} "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def test_checkout_update_killed_midway_is_repaired(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path)),
                            phase_md("2", "Two", patch=make_diff(BASE, {"b.txt": "b\n"}, tmp_path))])
    killed = run_cli("next", cwd=root, env=killing_git(tmp_path / "bin"))
    assert killed.returncode == -9, killed.stderr          # gitforge died after moving main
    assert "Phase 1: One" in git("log", "-1", "--format=%s", "main", cwd=root)
    assert git("status", "--porcelain", cwd=root) != ""  # the state the kill left
    again = run_cli("next", cwd=root)
    assert again.returncode == 0, again.stderr
    assert "Landed phase 2" in again.stdout
    assert git("status", "--porcelain", cwd=root) == "", again.stderr
