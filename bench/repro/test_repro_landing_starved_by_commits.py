"""A person committing in the main checkout every ~0.1 s (bench/torture_commits.py's pace) keeps a
landing from ever happening: each time main moves, land.land() re-verifies the change on the new
tip (gates and all, ~1-2 s) and then finds main moved again; after CAS_ATTEMPTS (8) it gives up
with "main kept moving during the landing (8 tries)", and after max_attempts runs the phase is
Failed for good although every gate passed."""

from __future__ import annotations

import subprocess
import sys

from gitforge_tests_conftest import git, make_diff, phase_md, run_cli

BASE = {"app.py": "x = 1\n", "user.txt": "start\n"}

USER_LOOP = """
import os, subprocess, sys, time
root, stop = sys.argv[1], sys.argv[2]
i = 0
while not os.path.exists(stop):
    i += 1
    with open(f"{root}/user.txt", "w") as f:
        f.write(f"edit {i}\\n")
    subprocess.run(["git", "commit", "-q", "-a", "-m", f"user {i}"], cwd=root, capture_output=True)
    time.sleep(0.1)
"""


def test_a_landing_is_not_starved_by_a_person_committing_often(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path),
                                     checks=("sleep 0.3",))])
    stop = tmp_path / "stop"
    user = subprocess.Popen([sys.executable, "-c", USER_LOOP, str(root), str(stop)])
    try:
        proc = run_cli("next", cwd=root, timeout=300)
    finally:
        stop.write_text("")
        user.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr[-600:]
    assert "Phase 1: One" in git("log", "--format=%s", "main", cwd=root)
