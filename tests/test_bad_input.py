"""Bad input: the right exit code, a message that says what to do, and nothing changed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import git, make_diff, phase_md, run_cli, write

BASE = {"app.py": "x = 1\n"}


def snapshot(root):
    """Everything a user could lose: refs, HEAD, index and the tracked files' contents."""
    refs = git("for-each-ref", "--format=%(refname) %(objectname)", "refs/heads", cwd=root)
    files = {p: (root / p).read_bytes() for p in git("ls-files", cwd=root).split()
             if (root / p).is_file() and not (root / p).is_symlink()}
    return refs, git("rev-parse", "HEAD", cwd=root), git("diff", "HEAD", cwd=root), files


def test_not_a_git_repo(tmp_path):
    proc = run_cli("next", cwd=tmp_path)
    assert proc.returncode == 2
    assert "is not inside a git repository" in proc.stderr and "git init" in proc.stderr


def test_repo_with_no_commits(tmp_path):
    git("init", "-q", cwd=tmp_path)
    proc = run_cli("next", cwd=tmp_path)
    assert proc.returncode == 2 and "no commits yet" in proc.stderr and "first commit" in proc.stderr


def test_detached_head_without_target(make_repo):
    root = make_repo(BASE, [phase_md("1", "One")])
    git("checkout", "-q", "--detach", cwd=root)
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 2 and "HEAD is detached" in proc.stderr and "target_branch" in proc.stderr
    # with a target it works from a detached HEAD too: the board is readable
    assert run_cli("status", "--target", "main", cwd=root).returncode == 0


def test_target_branch_missing(make_repo):
    root = make_repo(BASE, [phase_md("1", "One")], otto="target_branch: release\n")
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 2
    assert "target branch 'release' does not exist (branches: main)" in proc.stderr
    assert "name an existing branch" in proc.stderr and "git branch release" in proc.stderr


def test_malformed_backlog_names_the_line(make_repo):
    root = make_repo(BASE, [phase_md("1", "One"), "## Phase two: words are not ids\n"])
    before = snapshot(root)
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 2
    line = next(i for i, t in enumerate((root / "BACKLOG.md").read_text().splitlines(), 1) if "Phase two" in t)
    assert f"BACKLOG.md:{line}:" in proc.stderr
    assert snapshot(root) == before


def test_patch_missing_its_closing_fence_does_not_swallow_the_next_phase(make_repo, tmp_path):
    one = phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path))
    one = one.replace("\n````\n", "\n", 1)  # the patch block's closing fence is missing
    root = make_repo(BASE, [one, phase_md("2", "Two", patch=make_diff(BASE, {"b.txt": "b\n"}, tmp_path))])
    lines = (root / "BACKLOG.md").read_text().splitlines()
    heading = lines.index("## Phase 2: Two") + 1
    opened = lines.index("````diff") + 1
    before = snapshot(root)
    check = run_cli("check", cwd=root)
    assert check.returncode == 2
    assert f"BACKLOG.md:{heading}: '## Phase 2: Two' is inside the ### Patch block opened on line {opened}" \
        in check.stderr
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 2 and f"BACKLOG.md:{heading}:" in proc.stderr
    assert snapshot(root) == before and not (root / "a.txt").exists()


def test_unknown_config_key_names_the_nearest(make_repo):
    root = make_repo(BASE, [phase_md("1", "One")], otto="max_attempt: 2\n")
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 2
    assert "otto.yaml:1: unknown key 'max_attempt'" in proc.stderr and "'max_attempts'" in proc.stderr


def test_mistyped_config_value(make_repo):
    root = make_repo(BASE, [phase_md("1", "One")], otto="policy:\n  max_files: many\n")
    proc = run_cli("status", cwd=root)
    assert proc.returncode == 2 and "'policy.max_files' must be an integer" in proc.stderr


def test_phase_without_patch_or_builder(make_repo):
    root = make_repo(BASE, [phase_md("1", "Needs a builder")])
    before = snapshot(root)
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 2
    assert "phase 1 (Needs a builder) has no ### Patch block" in proc.stderr
    for option in ("### Patch", "builder.kind: anthropic", "ANTHROPIC_API_KEY", "kind: command"):
        assert option in proc.stderr
    # builder.kind is 'patch': a key alone would change nothing, so that is not offered as a way out
    assert "and run again" not in proc.stderr
    assert snapshot(root) == before


def test_patch_that_does_not_apply(make_repo, tmp_path):
    patch = make_diff({"app.py": "x = 2\n"}, {"app.py": "x = 3\n"}, tmp_path)
    root = make_repo(BASE, [phase_md("1", "Stale patch", patch=patch)])
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 1
    assert "app.py" in proc.stderr and "x = 1" in proc.stderr  # the feedback shows the real file
    assert git("show", "HEAD:app.py", cwd=root) == "x = 1\n"
    assert (root / "app.py").read_text() == "x = 1\n"


HOSTILE = {
    "dotdot": ("--- a/../evil.py\n+++ b/../evil.py\n@@ -0,0 +1 @@\n+x\n", "'..'"),
    "absolute": ("--- /dev/null\n+++ /etc/evil\n@@ -0,0 +1 @@\n+x\n", "absolute"),
    "git_dir": ("--- /dev/null\n+++ b/.git/hooks/pre-commit\n@@ -0,0 +1 @@\n+x\n", ".git"),
    "forge_dir": ("--- /dev/null\n+++ b/.forge/runs/x.json\n@@ -0,0 +1 @@\n+x\n", ".forge"),
    "protected": ("--- /dev/null\n+++ b/.env.local\n@@ -0,0 +1 @@\n+SECRET=1\n", "protected"),
    "otto": ("--- a/otto.yaml\n+++ b/otto.yaml\n@@ -1 +1 @@\n-verify: []\n+verify: [x]\n", "protected"),
    "symlink_escape": ("--- /dev/null\n+++ b/link/pwned.txt\n@@ -0,0 +1 @@\n+x\n", "symlink"),
    "binary": ("diff --git a/logo.png b/logo.png\nnew file mode 100644\nindex 0000000..1111111\n"
               "Binary files /dev/null and b/logo.png differ\n", "binary"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_patch_is_refused_before_anything_is_written(make_repo, tmp_path, name):
    diff, why = HOSTILE[name]
    root = make_repo(BASE, [])
    os.symlink(str(tmp_path), root / "link")
    git("add", "link", cwd=root)
    git("commit", "-qm", "a link that leaves the repo", cwd=root)
    before = snapshot(root)
    (tmp_path / "hostile.diff").write_text(diff)
    listing = sorted(p.name for p in tmp_path.iterdir())
    proc = run_cli("apply", str(tmp_path / "hostile.diff"), cwd=root)
    assert proc.returncode == 1, proc.stderr
    assert why in proc.stderr.lower() or why in proc.stderr
    assert "nothing was written" in proc.stderr
    assert snapshot(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing
    assert not (root / ".git/hooks/pre-commit").exists()


def test_oversized_patch_is_refused(make_repo, tmp_path):
    root = make_repo(BASE, [], otto="policy: {max_lines: 10}\n")
    diff = make_diff({}, {"big.txt": "".join(f"{i}\n" for i in range(50))}, tmp_path)
    (tmp_path / "big.diff").write_text(diff)
    proc = run_cli("apply", str(tmp_path / "big.diff"), cwd=root)
    assert proc.returncode == 1 and "10" in proc.stderr
    assert not (root / "big.txt").exists()


def test_hostile_phase_patch_through_next_is_quarantined(make_repo):
    root = make_repo(BASE, [phase_md("1", "Sneaky", patch=HOSTILE["git_dir"][0])])
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 1
    record = json.loads(next((root / ".forge/runs").glob("*.json")).read_text())
    assert record["attempts"][0]["ledger"]["state"] == "quarantined"
    assert not (root / ".forge/worktrees/wt-1/.git/hooks").exists() or not any(
        (root / ".forge/worktrees/wt-1/.git/hooks").iterdir())
    assert not (root / ".git/hooks/pre-commit").exists()


def test_apply_on_the_working_tree_keeps_uncommitted_work(make_repo, tmp_path):
    root = make_repo({"app.py": "x = 1\ny = 2\n", "notes.txt": "mine\n"}, [])
    write(root, {"notes.txt": "mine, uncommitted\n"})
    diff = make_diff({"app.py": "x = 1\ny = 2\n"}, {"app.py": "x = 1\ny = 3\n"}, tmp_path)
    (tmp_path / "p.diff").write_text(diff)
    proc = run_cli("apply", str(tmp_path / "p.diff"), cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert (root / "app.py").read_text() == "x = 1\ny = 3\n"
    assert (root / "notes.txt").read_text() == "mine, uncommitted\n"
    assert git("rev-list", "--count", "HEAD", cwd=root).strip() == "1"  # no commit
    bad = make_diff({"app.py": "x = 1\ny = 3\n"}, {"app.py": "x = (\n"}, tmp_path)
    (tmp_path / "bad.diff").write_text(bad)
    audit = run_cli("apply", str(tmp_path / "bad.diff"), cwd=root)
    assert audit.returncode == 1 and "app.py" in audit.stderr
    assert (root / "app.py").read_text() == "x = 1\ny = 3\n"


def test_gate_that_hangs_is_killed_with_its_children(make_repo, tmp_path):
    pidfile = tmp_path / "child.pid"
    hang = f"sh -c 'sleep 300 & echo $! > {pidfile}; wait'"
    otto = f"verify:\n  - {{name: hang, run: {json.dumps(hang)}, timeout: 1}}\n"
    root = make_repo(BASE, [phase_md("1", "Hangs", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path))], otto=otto)
    start = time.monotonic()
    proc = run_cli("next", cwd=root, timeout=60)
    assert time.monotonic() - start < 30
    assert proc.returncode == 1 and "timed out" in proc.stdout
    child = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the gate's child process outlived the timeout")
    assert "killed after 1s timeout" in (root / ".forge/runs").joinpath(
        json.loads(next((root / ".forge/runs").glob("*.json")).read_text())["run_id"],
        "attempt-1", "hang.log").read_text()


def test_dirty_target_checkout_keeps_the_users_changes(make_repo, tmp_path):
    """Uncommitted work elsewhere: the landing's files are updated, the user's are untouched."""
    root = make_repo({**BASE, "notes.txt": "v1\n"}, [phase_md(
        "1", "Add a", patch=make_diff(BASE, {"app.py": "x = 1\nz = 9\n"}, tmp_path))])
    write(root, {"notes.txt": "my unsaved work\n"})
    git("add", "notes.txt", cwd=root)
    write(root, {"notes.txt": "my unsaved work, more\n"})
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert (root / "notes.txt").read_text() == "my unsaved work, more\n"
    assert (root / "app.py").read_text() == "x = 1\nz = 9\n"
    # the index holds the landing and the user's staged change; nothing looks reverted
    assert git("status", "--porcelain", cwd=root) == "MM notes.txt\n"
    assert git("diff", "--cached", "--name-only", cwd=root) == "notes.txt\n"


def test_dirty_file_that_the_landing_changes_is_never_touched(make_repo, tmp_path):
    base = {"app.py": "a = 1\nb = 2\nc = 3\nd = 4\ne = 5\n"}
    root = make_repo(base, [phase_md("1", "Edit e", patch=make_diff(
        base, {"app.py": "a = 1\nb = 2\nc = 3\nd = 4\ne = 50\n"}, tmp_path))])
    old_head = git("rev-parse", "HEAD", cwd=root).strip()
    mine = "a = 10\nb = 2\nc = 3\nd = 4\ne = 5\n"
    write(root, {"app.py": mine})
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0, proc.stderr
    new_head = git("rev-parse", "main", cwd=root).strip()
    assert new_head != old_head
    assert (root / "app.py").read_text() == mine  # never written
    assert "uncommitted changes in files the landing changed (app.py)" in proc.stderr
    # the printed recipe brings the user's change onto the new tip
    recipe = proc.stderr[proc.stderr.index("run: git -C") + 5:].split("\n")[0]
    for command in recipe.split(" && "):
        git(*command.split()[3:], cwd=root)
    assert (root / "app.py").read_text() == "a = 10\nb = 2\nc = 3\nd = 4\ne = 50\n"
    assert git("rev-parse", "HEAD", cwd=root).strip() == new_head
    assert git("status", "--porcelain", cwd=root) == " M app.py\n"


def test_a_repository_owned_by_someone_else_is_a_clear_error(make_repo):
    import os
    import shutil

    if os.geteuid() != 0 or shutil.which("chown") is None:
        pytest.skip("needs root to hand the repository to another user")
    root = make_repo({}, [])
    subprocess.run(["chown", "-R", "nobody", str(root)], check=True)
    proc = run_cli("status", cwd=root)
    assert proc.returncode == 2, proc.stderr
    assert "safe.directory" in proc.stderr and "internal error" not in proc.stderr
