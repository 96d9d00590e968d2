"""Two runs at once, and runs killed at awkward moments: nothing lands twice, nothing is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import git, make_diff, phase_md, run_cli

from gitforge.infra.proc import read_pid_file

BASE = {"app.py": "x = 1\n"}


def start_cli(*args, cwd):
    return subprocess.Popen([sys.executable, "-m", "gitforge", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for(predicate, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def landed_phases(root) -> list[str]:
    log = git("log", "--format=%(trailers:key=Forge-Phase,valueonly)", "main", cwd=root)
    return [line.strip() for line in log.splitlines() if line.strip()]


def test_two_next_at_once_on_one_phase_lands_it_once(make_repo, tmp_path):
    go = tmp_path / "go"
    root = make_repo(BASE, [phase_md("1", "Slow", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path),
                                     checks=(f"while [ ! -f {go} ]; do sleep 0.05; done",))])
    first = start_cli("next", cwd=root)
    wait_for(lambda: (root / ".forge/leases/1.json").exists())
    second = run_cli("next", cwd=root)
    go.write_text("")
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert second.returncode == 0
    assert "Nothing to do" in second.stdout and "phase 1 is in progress in another run" in second.stdout
    assert landed_phases(root) == ["1"]


def test_two_next_at_once_on_two_phases_both_land(make_repo, tmp_path):
    root = make_repo(BASE, [
        phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path), checks=("sleep 1",)),
        phase_md("2", "Two", patch=make_diff(BASE, {"b.txt": "b\n"}, tmp_path), checks=("sleep 1",)),
    ], otto="worktrees: {pool_size: 1}\n")
    procs = [start_cli("next", cwd=root)]
    wait_for(lambda: (root / ".forge/leases").is_dir() and any((root / ".forge/leases").iterdir()))
    procs.append(start_cli("next", cwd=root))
    for p in procs:
        _, err = p.communicate(timeout=90)
        assert p.returncode == 0, err
    assert sorted(landed_phases(root)) == ["1", "2"]
    files = git("ls-tree", "-r", "--name-only", "main", cwd=root).split()
    assert {"a.txt", "b.txt"} <= set(files)
    backlog = git("show", "main:BACKLOG.md", cwd=root)
    assert backlog.count("**Status:** Done") == 2  # the second landing kept the first one's status
    # two worktrees were needed at once; the pool keeps one idle (pool_size: 1)
    assert [p.name for p in (root / ".forge/worktrees").iterdir() if p.is_dir()] in (["wt-1"], ["wt-2"])
    assert "forge/" not in git("worktree", "list", cwd=root).replace(".forge/", "")


def test_run_killed_during_gates_is_recovered_and_runs_again(make_repo, tmp_path):
    gate_flag = tmp_path / "fast"
    slow = f"test -f {gate_flag} || sleep 60"
    root = make_repo(BASE, [phase_md("1", "Killed", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path),
                                     checks=(slow,))])
    proc = start_cli("next", cwd=root)
    # the gate's log is opened before it starts, its pid file right after: wait for the pid
    wait_for(lambda: any(read_pid_file(p)[1] for p in (root / ".forge/runs").glob("*/attempt-1/gate.pid"))
             if (root / ".forge/runs").is_dir() else False)
    gate_pid = read_pid_file(next((root / ".forge/runs").glob("*/attempt-1/gate.pid")))[1]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _alive(gate_pid)  # the gate has a session of its own: it outlives gitforge
    gate_flag.write_text("")
    again = run_cli("next", cwd=root)
    assert again.returncode == 0, again.stderr
    assert "died during 'gates'; nothing landed" in again.stderr
    assert f"ended process {gate_pid}" in again.stderr
    wait_for(lambda: not _alive(gate_pid), timeout=10)
    assert landed_phases(root) == ["1"]
    statuses = sorted(json.loads(p.read_text())["status"] for p in (root / ".forge/runs").glob("*.json"))
    assert statuses == ["crashed", "landed"]
    assert not list((root / ".forge/runs").rglob("*.tmp"))


def test_run_killed_after_landing_before_its_record_is_completed(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "Landed", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path))])
    assert run_cli("next", cwd=root).returncode == 0
    # rewind the run's own state to what a SIGKILL right after the ref move leaves behind
    record_path = next((root / ".forge/runs").glob("*.json"))
    record = json.loads(record_path.read_text())
    record.update(status="running", step="landing")
    record_path.write_text(json.dumps(record))
    git("notes", "--ref=forge/runs", "remove", "main", cwd=root)
    git("read-tree", "-m", "-u", "HEAD", "HEAD~1", cwd=root)  # killed before the checkout was updated
    assert not (root / "a.txt").exists()
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0
    assert "it had landed as" in proc.stderr and "Nothing to do" in proc.stdout
    assert landed_phases(root) == ["1"]  # no second landing
    note = json.loads(git("notes", "--ref=forge/runs", "show", "main", cwd=root))
    assert note["run_id"] == record["run_id"]
    assert json.loads(record_path.read_text())["status"] == "landed"
    assert (root / "a.txt").read_text() == "a\n" and git("status", "--porcelain", cwd=root) == ""


NOTE_WRITER = """
import sys
from pathlib import Path
from gitforge.git import Git
from gitforge.infra.state import Store
root, commits = Path(sys.argv[1]), sys.argv[2:]
git = Git.open(root)
store = Store(root, git.common_dir).ensure()
for i, commit in enumerate(commits):
    with store.locked("notes"):
        git.append_note(commit, '{"writer": "%s", "i": %d}' % (sys.argv[0], i))
"""


def test_concurrent_note_writers_lose_nothing(make_repo):
    root = make_repo(BASE, [])
    for i in range(30):
        (root / "app.py").write_text(f"x = {i}\n")
        git("commit", "-qam", f"c{i}", cwd=root)
    commits = git("rev-list", "main", cwd=root).split()
    writers = [subprocess.Popen([sys.executable, "-c", NOTE_WRITER, str(root), *commits]) for _ in range(3)]
    for w in writers:
        assert w.wait(timeout=120) == 0
    total = sum(len(git("notes", "--ref=forge/runs", "show", c, cwd=root).splitlines()) for c in commits)
    assert total == 3 * len(commits)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_term_during_a_gate_ends_the_gate_and_closes_the_run(make_repo, tmp_path, sig):
    pidfile = tmp_path / "gate.pid"
    hang = f"sh -c 'sleep 300 & echo $! > {pidfile}; wait'"
    root = make_repo(BASE, [phase_md("1", "Interrupted", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path),
                                     checks=(hang,))])
    proc = start_cli("next", cwd=root)
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip())
    os.kill(proc.pid, sig)  # what a terminal or a supervisor sends to gitforge (the gate has its own session)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    child = int(pidfile.read_text())
    wait_for(lambda: not _alive(child), timeout=10)
    record = json.loads(next((root / ".forge/runs").glob("*.json")).read_text())
    assert record["status"] == "crashed" and "interrupted" in record["reason"]
    assert landed_phases(root) == []
    assert not (root / ".forge/leases/1.json").exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_four_next_at_once_each_get_their_own_worktree_and_all_land(make_repo, tmp_path):
    phases = [phase_md(str(i), f"P{i}", patch=make_diff(BASE, {f"f{i}.py": f"x = {i}\n"}, tmp_path),
                       checks=(f"sleep 0.5 && test -f f{i}.py",))
              for i in range(1, 5)]
    root = make_repo(BASE, phases)
    procs = [start_cli("next", cwd=root) for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err for _, err in results]
    assert sorted(landed_phases(root)) == ["1", "2", "3", "4"]


def test_gc_does_not_remove_a_worktree_in_use(make_repo, tmp_path):
    flag = tmp_path / "go"
    root = make_repo(BASE, [phase_md("1", "Slow", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path),
                                     checks=(f"while [ ! -f {flag} ]; do sleep 0.1; done; test -f a.txt",))])
    proc = start_cli("next", cwd=root)
    wait_for(lambda: any((root / ".forge/runs").glob("*/attempt-1/*.log")) if (root / ".forge/runs").is_dir()
             else False)
    gc = run_cli("gc", "--json", cwd=root)
    assert gc.returncode == 0 and json.loads(gc.stdout)["in_use"] == ["wt-1"]
    flag.write_text("")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert landed_phases(root) == ["1"]
