"""The processes a killed gitforge left running are found by the token they inherit, but they are
ended only when the gitforge named by the token's "<pid>-" part is dead (gates.end_dead_owners ->
_alive(owner_pid(token))). When that pid has been given to another process since (pid_max is
32768 on many machines, and pids wrap within minutes on a busy one), the leftovers are never ended.

Needs root: the reused pid is arranged through /proc/sys/kernel/ns_last_pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitforge_tests_conftest import make_diff, phase_md, run_cli

from gitforge.proc import MARK_VAR, read_pid_file

BASE = {"app.py": "x = 1\n"}
NS_LAST_PID = Path("/proc/sys/kernel/ns_last_pid")


def wait_for(cond, timeout=60.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.05)


def marked(token: str) -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"{MARK_VAR}={token}".encode() in env:
                out.append(int(pid))
    return out


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
