"""`gitforge hooks install|uninstall` on real repositories, and the installed script as git runs it."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
from pathlib import Path

from conftest import PY, commit_all, git, run_cli, write

MARKER = "gitforge-pre-push-v1"
RECORDER = """#!/bin/sh
# the user's own hook: records what git gave it
printf '%s\\n' "$@" > "{out}.args"
cat > "{out}.stdin"
exit {code}
"""


def repo_with_remote(make_repo, tmp_path) -> tuple[Path, Path]:
    root = make_repo({"a.txt": "a\n"})
    bare = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(bare), cwd=tmp_path)
    git("remote", "add", "origin", str(bare), cwd=root)
    return root, bare


def push(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "push", *args], cwd=root, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=180)


def sha(repo: Path, ref: str = "main") -> str:
    return git("rev-parse", "--verify", "-q", ref, cwd=repo, check=False).strip()


def foreign_hook(path: Path, out: Path, code: int = 0) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(RECORDER.format(out=out, code=code))
    path.chmod(0o750)
    return path.read_bytes()


def test_install_writes_an_executable_hook_for_this_interpreter(make_repo, tmp_path):
    root, bare = repo_with_remote(make_repo, tmp_path)
    proc = run_cli("hooks", "install", "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    hook = root / ".git" / "hooks" / "pre-push"
    assert report["path"] == str(hook) and report["action"] == "installed"
    assert report["legacy"] is None and report["legacy_kept"] is False and report["schema_version"] == 1
    text = hook.read_text()
    assert MARKER in text and "__GITFORGE_PYTHON__" not in text
    assert f"INSTALL_PYTHON={shlex.quote(os.path.abspath(PY))}\n" in text
    assert stat.S_IMODE(hook.stat().st_mode) == 0o755
    proc = push(root, "origin", "main")  # git runs it
    assert proc.returncode == 0, proc.stderr
    assert "main -> main: 1 new commit(s)" in proc.stderr and sha(bare) == sha(root)


def test_reinstall_is_idempotent_and_keeps_the_legacy_hook(make_repo, tmp_path):
    root, _ = repo_with_remote(make_repo, tmp_path)
    hooks = root / ".git" / "hooks"
    original = foreign_hook(hooks / "pre-push", tmp_path / "rec")
    first = run_cli("hooks", "install", cwd=root)
    assert first.returncode == 0, first.stderr
    assert "installed the gitforge pre-push hook" in first.stdout
    assert "kept as" in first.stderr and "pre-push.legacy" in first.stderr
    assert (hooks / "pre-push.legacy").read_bytes() == original
    installed = (hooks / "pre-push").read_bytes()
    again = run_cli("hooks", "install", "--json", cwd=root)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["action"] == "unchanged" and report["legacy_kept"] is True
    assert report["moved_foreign_hook"] is False
    assert (hooks / "pre-push").read_bytes() == installed
    assert (hooks / "pre-push.legacy").read_bytes() == original
    # an older copy of our hook (same marker) is rewritten in place; the legacy stays as it is
    (hooks / "pre-push").write_text(installed.decode().replace("skips", "skipped"))
    updated = run_cli("hooks", "install", cwd=root)
    assert "updated the gitforge pre-push hook" in updated.stdout
    assert (hooks / "pre-push").read_bytes() == installed
    assert (hooks / "pre-push.legacy").read_bytes() == original
    names = {p.name for p in hooks.iterdir()} - {p.name for p in hooks.glob("*.sample")}
    assert names == {"pre-push", "pre-push.legacy"}  # no temporary files left behind


def test_legacy_hook_runs_first_with_the_same_args_and_stdin(make_repo, tmp_path):
    root, bare = repo_with_remote(make_repo, tmp_path)
    rec = tmp_path / "rec"
    foreign_hook(root / ".git" / "hooks" / "pre-push", rec)
    assert run_cli("hooks", "install", cwd=root).returncode == 0
    git("branch", "second", cwd=root)
    proc = push(root, "origin", "main", "second")
    assert proc.returncode == 0, proc.stderr
    assert rec.with_suffix(".args").read_text() == f"origin\n{bare}\n"
    head = sha(root)
    zero = "0" * 40
    assert rec.with_suffix(".stdin").read_text() == (f"refs/heads/main {head} refs/heads/main {zero}\n"
                                                     f"refs/heads/second {head} refs/heads/second {zero}\n")
    # gitforge read the same two lines after it
    assert "main -> main:" in proc.stderr and "second -> second:" in proc.stderr


def test_failing_legacy_hook_stops_the_push(make_repo, tmp_path):
    root, bare = repo_with_remote(make_repo, tmp_path)
    foreign_hook(root / ".git" / "hooks" / "pre-push", tmp_path / "rec", code=1)
    assert run_cli("hooks", "install", cwd=root).returncode == 0
    proc = push(root, "origin", "main")
    assert proc.returncode != 0 and sha(bare) == ""
    assert (tmp_path / "rec.stdin").exists()  # it ran
    assert "main -> main" not in proc.stderr  # and gitforge did not, after it failed
    # GITFORGE=0 skips gitforge's check, not the user's own hook
    skipped = push(root, "origin", "main", env={"GITFORGE": "0"})
    assert skipped.returncode != 0 and sha(bare) == ""


def test_uninstall_restores_the_legacy_hook_byte_for_byte(make_repo, tmp_path):
    root, _ = repo_with_remote(make_repo, tmp_path)
    hook = root / ".git" / "hooks" / "pre-push"
    original = foreign_hook(hook, tmp_path / "rec")
    mode = stat.S_IMODE(hook.stat().st_mode)
    assert run_cli("hooks", "install", cwd=root).returncode == 0
    assert MARKER in hook.read_text()
    proc = run_cli("hooks", "uninstall", "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report == {"schema_version": 1, "command": "hooks uninstall", "path": str(hook), "removed": True,
                      "legacy_restored": True}
    assert hook.read_bytes() == original and stat.S_IMODE(hook.stat().st_mode) == mode
    assert not (hook.parent / "pre-push.legacy").exists()
    again = run_cli("hooks", "uninstall", cwd=root)
    assert again.returncode == 2  # the hook there now is the user's: refused, untouched
    assert "is not gitforge's pre-push hook" in again.stderr
    assert hook.read_bytes() == original


def test_uninstall_without_legacy_removes_the_hook(make_repo, tmp_path):
    root, _ = repo_with_remote(make_repo, tmp_path)
    hook = root / ".git" / "hooks" / "pre-push"
    assert run_cli("hooks", "install", cwd=root).returncode == 0
    proc = run_cli("hooks", "uninstall", cwd=root)
    assert proc.returncode == 0 and "removed the gitforge pre-push hook" in proc.stdout
    assert not hook.exists()
    nothing = run_cli("hooks", "uninstall", cwd=root)
    assert nothing.returncode == 0 and "no gitforge pre-push hook was installed" in nothing.stdout


def test_foreign_hook_and_existing_legacy_refuse_install(make_repo, tmp_path):
    root, _ = repo_with_remote(make_repo, tmp_path)
    hooks = root / ".git" / "hooks"
    current = foreign_hook(hooks / "pre-push", tmp_path / "one")
    older = foreign_hook(hooks / "pre-push.legacy", tmp_path / "two")
    proc = run_cli("hooks", "install", cwd=root)
    assert proc.returncode == 2
    assert "not gitforge's" in proc.stderr and "pre-push.legacy" in proc.stderr and "exists too" in proc.stderr
    assert (hooks / "pre-push").read_bytes() == current
    assert (hooks / "pre-push.legacy").read_bytes() == older


def test_hooks_path_set_locally_refuses_then_force_installs_there(make_repo, tmp_path):
    root, bare = repo_with_remote(make_repo, tmp_path)
    git("config", "core.hooksPath", ".githooks", cwd=root)
    rec = tmp_path / "rec"
    original = foreign_hook(root / ".githooks" / "pre-push", rec)
    proc = run_cli("hooks", "install", cwd=root)
    assert proc.returncode == 2
    assert "core.hooksPath is set to .githooks" in proc.stderr and "would never run" in proc.stderr
    assert "git config --unset core.hooksPath" in proc.stderr and "--force" in proc.stderr
    assert not (root / ".git" / "hooks" / "pre-push").exists()
    forced = run_cli("hooks", "install", "--force", "--json", cwd=root)
    assert forced.returncode == 0, forced.stderr
    report = json.loads(forced.stdout)
    assert report["path"] == str(root / ".githooks" / "pre-push") and report["hooks_path"] == ".githooks"
    assert report["moved_foreign_hook"] is True
    assert (root / ".githooks" / "pre-push.legacy").read_bytes() == original
    out = push(root, "origin", "main")  # git runs it from core.hooksPath: both hooks ran
    assert out.returncode == 0, out.stderr
    assert rec.with_suffix(".args").exists() and "main -> main:" in out.stderr
    removed = run_cli("hooks", "uninstall", cwd=root)
    assert removed.returncode == 0, removed.stderr
    assert (root / ".githooks" / "pre-push").read_bytes() == original


def test_hooks_path_in_global_config_refuses_then_force_installs_there(make_repo, tmp_path, sealed_env):
    root, bare = repo_with_remote(make_repo, tmp_path)
    shared = tmp_path / "shared-hooks"
    with open(sealed_env / ".gitconfig", "a") as f:
        f.write(f"[core]\n\thooksPath = {shared}\n")
    proc = run_cli("hooks", "install", cwd=root)
    assert proc.returncode == 2 and f"core.hooksPath is set to {shared}" in proc.stderr
    assert not shared.exists()
    forced = run_cli("hooks", "install", "--force", cwd=root)
    assert forced.returncode == 0, forced.stderr
    assert MARKER in (shared / "pre-push").read_text()
    assert not (root / ".git" / "hooks" / "pre-push").exists()
    out = push(root, "origin", "main")
    assert out.returncode == 0 and "main -> main:" in out.stderr


def test_linked_worktree_shares_the_hook(make_repo, tmp_path):
    root, bare = repo_with_remote(make_repo, tmp_path)
    linked = tmp_path / "linked"
    git("worktree", "add", "-q", "-b", "side", str(linked), cwd=root)
    proc = run_cli("hooks", "install", "--json", cwd=linked)  # installed from the linked worktree
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["path"] == str(root / ".git" / "hooks" / "pre-push")
    write(linked, {"b.txt": "b\n"})
    commit_all(linked, "side work")
    out = push(linked, "origin", "side")
    assert out.returncode == 0, out.stderr
    assert "side -> side: 2 new commit(s)" in out.stderr and sha(bare, "side") == sha(linked, "side")


def test_hook_without_its_interpreter_falls_back_to_path_or_says_why(make_repo, tmp_path):
    root, bare = repo_with_remote(make_repo, tmp_path)
    assert run_cli("hooks", "install", cwd=root).returncode == 0
    text = (root / ".git" / "hooks" / "pre-push").read_text()
    lines = [line for line in text.splitlines() if line.startswith("INSTALL_PYTHON=")]
    assert len(lines) == 1
    gone = tmp_path / "copy" / "pre-push"
    gone.parent.mkdir()
    gone.write_text(text.replace(lines[0], "INSTALL_PYTHON=/nonexistent/venv/bin/python"))
    gone.chmod(0o755)
    line = f"refs/heads/main {sha(root)} refs/heads/main {'0' * 40}\n"
    bare_env = {**os.environ, "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([str(gone), "origin", str(bare)], cwd=root, input=line, capture_output=True, text=True,
                          env=bare_env, timeout=120)
    assert proc.returncode == 1
    assert "cannot run gitforge" in proc.stderr and "/nonexistent/venv/bin/python" in proc.stderr
    assert "no gitforge is on PATH" in proc.stderr and "git push --no-verify" in proc.stderr
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir()
    shim = shim_dir / "gitforge"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(PY)} -m gitforge "$@"\n')
    shim.chmod(0o755)
    found = subprocess.run([str(gone), "origin", str(bare)], cwd=root, input=line, capture_output=True, text=True,
                           env={**bare_env, "PATH": f"{shim_dir}:/usr/bin:/bin"}, timeout=120)
    assert found.returncode == 0, found.stderr
    assert "main -> main: 1 new commit(s)" in found.stderr


def test_install_outside_a_repository_is_a_usage_error(tmp_path):
    proc = run_cli("hooks", "install", cwd=tmp_path)
    assert proc.returncode == 2 and "not inside a git repository" in proc.stderr
