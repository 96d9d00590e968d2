"""Kills at bad moments, locks left behind, a person committing during landings: proved by
doing them to real repositories and real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import git, make_diff, phase_md, run_cli, write

from gitforge.context import Context
from gitforge.git import Git
from gitforge.git.locks import inspect
from gitforge.infra.proc import MARK_VAR, read_pid_file
from gitforge.run.recover import clear_locks

BASE = {"app.py": "x = 1\n"}


def start_cli(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gitforge", *args], cwd=cwd, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(cond, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def marked(token: str) -> list[int]:
    """Live processes that carry a command's token."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if f"{MARK_VAR}={token}".encode() in env.split(b"\0"):
            found.append(int(pid))
    return found


def landed(root: Path) -> list[str]:
    """Phase ids of the Done landings on main, newest first."""
    return [s.split(":")[0].removeprefix("Phase ") for s in git("log", "--format=%s", "main", cwd=root).splitlines()
            if s.startswith("Phase ") and not s.endswith(")")]


def token_of_running_gate(root: Path) -> str:
    wait_for(lambda: (root / ".forge/runs").is_dir() and any(
        read_pid_file(p)[1] for p in (root / ".forge/runs").glob("*/attempt-1/gate.pid")))
    return read_pid_file(next((root / ".forge/runs").glob("*/attempt-1/gate.pid")))[0]


@pytest.mark.parametrize("gate", ["cd / && sleep 60", "(sleep 60 &); sleep 1"])
def test_recovery_ends_every_process_a_killed_run_started(make_repo, tmp_path, gate):
    """A gate that cds out of the worktree, or whose shell exits and leaves a child behind."""
    root = make_repo(BASE, [phase_md("1", "Slow", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path), checks=(gate,))])
    proc = start_cli("next", cwd=root)
    token = token_of_running_gate(root)
    wait_for(lambda: any(Path(f"/proc/{p}/cmdline").read_bytes().startswith(b"sleep\x0060") for p in marked(token)))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1.5)  # the second gate's shell exits: its sleep is adopted by init
    assert marked(token), "the gate's processes outlive the killed gitforge"
    again = run_cli("status", cwd=root)  # looking does not recover; the next run does
    assert again.returncode == 0
    rec = run_cli("next", cwd=root)
    assert "ended process" in rec.stderr, rec.stderr
    wait_for(lambda: not marked(token), timeout=10)


def test_a_stale_notes_lock_from_a_killed_landing_is_cleared(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path))])
    lock = root / ".git/refs/notes/forge/runs.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("0" * 40 + "\n")
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "removed the stale git lock" in proc.stderr
    assert not lock.exists()
    assert json.loads(git("notes", "--ref=forge/runs", "show", "main", cwd=root))["phase"] == "1"


def test_stale_target_and_worktree_locks_are_cleared_and_check_reports_them(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path)),
                            phase_md("2", "Two", patch=make_diff(BASE, {"b.txt": "b\n"}, tmp_path))])
    assert run_cli("next", cwd=root).returncode == 0
    target_lock = root / ".git/refs/heads/main.lock"
    target_lock.write_text("")
    wt_lock = root / ".git/worktrees/wt-1/index.lock"
    wt_lock.write_text("")
    branch_lock = root / ".git/refs/heads/forge/2-two.lock"
    branch_lock.parent.mkdir(parents=True, exist_ok=True)
    branch_lock.write_text("")
    check = run_cli("check", cwd=root)
    assert str(target_lock) in check.stdout + check.stderr
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert landed(root) == ["2", "1"]
    assert not target_lock.exists() and not wt_lock.exists() and not branch_lock.exists()


def test_a_lock_a_live_process_holds_is_never_removed(make_repo, tmp_path):
    root = make_repo(BASE, [])
    lock = root / ".git/refs/heads/main.lock"
    holder = subprocess.Popen([sys.executable, "-c", f"f = open({str(lock)!r}, 'w'); import time; time.sleep(30)"])
    try:
        wait_for(lock.exists)
        ctx = Context.open(root)
        (found,) = inspect(ctx.git.common_dir, "main", [root])
        assert found.open_by == (holder.pid,) and not found.stale({"target"})
        assert clear_locks(ctx, {}, merge=True) == [] and lock.exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_live_writer_holding_the_target_ref_lock_is_waited_out(make_repo):
    root = make_repo(BASE, [])
    g = Git.open(root)
    tip = g.branch_tip("main")
    new = g.commit(g.tree_of(tip), [tip], "next")
    lock = root / ".git/refs/heads/main.lock"
    fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    release = threading.Timer(1.0, lambda: (os.close(fd), os.unlink(lock)))
    release.start()
    start = time.monotonic()
    assert g.cas_branch("main", tip, new, "test")
    assert time.monotonic() - start >= 0.9
    assert g.branch_tip("main") == new


def test_a_landed_commit_without_its_note_gets_it_back(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path)),
                            phase_md("2", "Two", patch=make_diff(BASE, {"b.txt": "b\n"}, tmp_path))])
    assert run_cli("next", cwd=root).returncode == 0
    first = json.loads(git("notes", "--ref=forge/runs", "show", "main", cwd=root))
    git("notes", "--ref=forge/runs", "remove", "main", cwd=root)  # the record says landed, the note is gone
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "wrote the missing run note" in proc.stderr
    restored = json.loads(git("notes", "--ref=forge/runs", "show", "main~1", cwd=root))
    assert restored["run_id"] == first["run_id"] and restored["gates"] == first["gates"] and restored["recovered"]


def test_a_checkout_left_behind_by_a_killed_landing_is_updated_and_keeps_user_edits(make_repo, tmp_path):
    root = make_repo({**BASE, "notes.txt": "mine\n"},
                     [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path)),
                      phase_md("2", "Two", patch=make_diff(BASE, {"b.txt": "b\n"}, tmp_path))])
    before = git("rev-parse", "main", cwd=root).strip()
    assert run_cli("next", cwd=root).returncode == 0
    assert run_cli("next", cwd=root).returncode == 0
    git("read-tree", "-m", "-u", "main", before, cwd=root)  # two landings moved the ref, not the checkout
    write(root, {"notes.txt": "mine, edited\n"})
    proc = run_cli("status", cwd=root)
    assert proc.returncode == 0
    proc = run_cli("next", cwd=root)
    assert "updated the checkout" in proc.stderr, proc.stderr
    assert git("diff", "--cached", "--name-only", cwd=root) == ""
    assert git("diff", "--name-only", cwd=root).split() == ["notes.txt"]
    assert (root / "a.txt").exists() and (root / "b.txt").exists()


def test_a_phase_whose_landing_was_reverted_is_not_run_again(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path))])
    assert run_cli("next", cwd=root).returncode == 0
    git("revert", "--no-edit", "HEAD", cwd=root)  # the board says Not started again
    assert "**Status:** Not started" in (root / "BACKLOG.md").read_text()
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0 and "Nothing to do" in proc.stdout
    assert "landed already" in proc.stdout and "--again" in proc.stdout
    board = run_cli("status", cwd=root)
    assert "landed already" in board.stdout and "--again" in board.stdout
    assert json.loads(run_cli("status", "--json", cwd=root).stdout)["phases"][0]["landed_already"]
    refused = run_cli("next", "1", cwd=root)
    assert refused.returncode == 2 and "--again" in refused.stderr
    again = run_cli("next", "1", "--again", cwd=root)
    assert again.returncode == 0, again.stderr
    assert landed(root) == ["1", "1"]


def test_an_interrupt_during_a_gate_is_recorded_as_during_the_gate(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "Slow", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path),
                                     checks=("sleep 60",))])
    proc = start_cli("next", cwd=root)
    token_of_running_gate(root)
    os.kill(proc.pid, signal.SIGINT)
    proc.wait(timeout=30)
    (record,) = [json.loads(p.read_text()) for p in (root / ".forge/runs").glob("*.json")]
    assert record["status"] == "crashed" and "during 'gates'" in record["reason"], record["reason"]


USER_LOOP = """
import os, subprocess, sys, time
root, stop = sys.argv[1], sys.argv[2]
i = 0
while not os.path.exists(stop):
    with open(f"{root}/user.txt", "w") as f:
        f.write(f"edit {i}\\n")
    subprocess.run(["git", "commit", "-q", "-a", "-m", f"user {i}"], cwd=root, capture_output=True)
    i += 1
    time.sleep(0.1)
"""


def test_a_person_committing_during_landings_never_reverts_them(make_repo, tmp_path):
    base = {**BASE, "user.txt": "start\n"}
    phases = [phase_md(str(i), f"Add f{i}", patch=make_diff(base, {f"f{i}.txt": f"{i}\n"}, tmp_path))
              for i in range(1, 7)]
    root = make_repo(base, phases)
    stop = tmp_path / "stop"
    user = subprocess.Popen([sys.executable, "-c", USER_LOOP, str(root), str(stop)])
    try:
        for _ in range(6):
            proc = run_cli("next", cwd=root)
            assert proc.returncode == 0, proc.stderr
    finally:
        stop.write_text("")
        user.wait(timeout=60)
    subjects = git("log", "--format=%H %s", "main", cwd=root).splitlines()
    for line in subjects:
        sha, subject = line.split(" ", 1)
        if subject.startswith("user "):
            touched = git("show", "--name-only", "--format=", sha, cwd=root).split()
            assert touched == ["user.txt"], f"{subject} touched {touched}"
    assert sorted(landed(root)) == [str(i) for i in range(1, 7)]
    for i in range(1, 7):
        assert git("show", f"main:f{i}.txt", cwd=root) == f"{i}\n"
    assert "**Status:** Not started" not in git("show", "main:BACKLOG.md", cwd=root)


def test_a_checkout_update_killed_midway_is_finished(make_repo, tmp_path):
    """gitforge SIGKILLed while `git read-tree -m -u` writes the main checkout: git finishes the
    files, gitforge never installs the new index. The next run completes the update."""
    import shutil
    import stat

    real = shutil.which("git")
    shim = tmp_path / "bin" / "git"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\ncase "$*" in *"read-tree -m -u"*) kill -9 $PPID;; esac\nexec {real} "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    root = make_repo(BASE, [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path)),
                            phase_md("2", "Two", patch=make_diff(BASE, {"b.txt": "b\n"}, tmp_path))])
    killed = run_cli("next", cwd=root, env={"PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}"})
    assert killed.returncode == -9, killed.stderr
    assert git("status", "--porcelain", cwd=root) != ""  # files at the landing, index not
    again = run_cli("next", cwd=root)
    assert again.returncode == 0 and "Landed phase 2" in again.stdout, again.stderr
    assert git("status", "--porcelain", cwd=root) == "", again.stderr
    assert not list((root / ".git").glob("index.gitforge-*"))


NS_LAST_PID = Path("/proc/sys/kernel/ns_last_pid")  # root can choose the next pid






def spawn_with_pid(pid: int) -> subprocess.Popen:
    """A `sleep` that gets `pid` (the kernel hands out ns_last_pid + 1 next)."""
    for _ in range(50):
        NS_LAST_PID.write_text(str(pid - 1))
        proc = subprocess.Popen(["sleep", "120"])
        if proc.pid == pid:
            return proc
        proc.kill()
        proc.wait()
    pytest.skip("could not get the pid back (a busy machine)")


@pytest.mark.skipif(not os.access(NS_LAST_PID, os.W_OK), reason="needs a writable ns_last_pid (root)")
def test_leftovers_of_a_killed_run_are_ended_when_its_pid_was_reused(make_repo, tmp_path):
    flag = tmp_path / "fast"
    root = make_repo(BASE, [phase_md("1", "Slow", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path),
                                     checks=(f"test -f {flag} || sleep 300",))])
    proc = subprocess.Popen([sys.executable, "-m", "gitforge", "next"], cwd=root, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = root / ".forge/runs"
    wait_for(lambda: runs.is_dir() and any(read_pid_file(p)[1] for p in runs.glob("*/attempt-1/gate.pid")))
    token = read_pid_file(next(runs.glob("*/attempt-1/gate.pid")))[0]
    wait_for(lambda: marked(token))
    os.kill(proc.pid, signal.SIGKILL)  # gitforge alone: its gate lives on in its own session
    proc.wait()
    stranger = spawn_with_pid(proc.pid)  # an unrelated process now has the dead gitforge's pid
    try:
        flag.write_text("")
        again = run_cli("next", cwd=root)
        assert again.returncode == 0, again.stderr
        time.sleep(0.5)
        assert marked(token) == [], f"the killed run's gate still runs: {again.stderr}"
    finally:
        stranger.kill()
        stranger.wait()
        for pid in marked(token):
            os.kill(pid, signal.SIGKILL)


def test_where_processes_cannot_be_seen_only_gitforges_own_dead_locks_are_stale(tmp_path):
    from gitforge.git.locks import LockFile

    old = LockFile(tmp_path / "x.lock", "target", 3600.0, (), (), dead_owner=False, seen=False)
    assert not old.stale({"target"})
    assert LockFile(tmp_path / "i.lock", "index", 0.0, (), (), dead_owner=True, seen=False).stale()
    assert LockFile(tmp_path / "y.lock", "target", 0.0, (), (), seen=True).stale({"target"})
