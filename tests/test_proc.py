"""proc.run_logged: output to a log, exact environment, timeouts and interrupts that leave no process behind."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from conftest import PY
from gitforge.infra import gates
from gitforge.infra.proc import LINE_CHARS, PID_FILE, TAIL_LINES, read_pid_file, run_logged, tail

HANG = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
open(sys.argv[1], "w").write(f"{os.getpid()} {child.pid}")
print("hanging", flush=True)
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie nobody reaped yet counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _wait_for(predicate, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def _pids(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()]


def test_argv_output_goes_to_the_log_and_the_tail(tmp_path):
    log = tmp_path / "logs" / "x.log"
    code = "import sys; print('to stdout'); print('to stderr', file=sys.stderr); sys.exit(3)"
    result = run_logged([PY, "-c", code], tmp_path, dict(os.environ), log, 30)
    assert (result.exit_code, result.timed_out, result.error, result.ok) == (3, False, None, False)
    assert result.log == log and result.pid
    text = log.read_text()
    assert text.startswith(f"$ {PY} -c ") and "to stdout" in text and "to stderr" in text
    assert "to stdout" in result.tail and "to stderr" in result.tail
    assert not (log.parent / PID_FILE).exists()


def test_an_argument_with_spaces_and_quotes_is_never_split_by_a_shell(tmp_path):
    arg = "it's \"one\" argument; $(echo no) `echo no`"
    code = "import sys; print(len(sys.argv), sys.argv[1])"
    result = run_logged([PY, "-c", code, arg], tmp_path, dict(os.environ), tmp_path / "a.log", 30)
    assert result.ok and result.tail.splitlines()[-1] == f"2 {arg}"


def test_shell_string_cwd_stdin_and_exact_environment(tmp_path):
    (tmp_path / "here.txt").write_text("found\n")
    env = {"PATH": os.environ["PATH"], "ONLY_THIS": "yes"}
    cmd = "cat here.txt; echo \"only=$ONLY_THIS home=${HOME:-unset}\"; cat; echo stdin-done"
    result = run_logged(cmd, tmp_path, env, tmp_path / "s.log", 30, shell=True)
    assert result.ok
    assert result.tail.splitlines()[-3:] == ["found", "only=yes home=unset", "stdin-done"]


def test_the_pid_file_names_the_running_leader_and_is_removed_after(tmp_path):
    out = tmp_path / "seen"
    pid_file = tmp_path / "logs" / PID_FILE
    code = (f"import json, os, pathlib, time\n"
            f"p = pathlib.Path({str(pid_file)!r})\n"
            f"while json.loads(p.read_text())['pgid'] is None: time.sleep(0.01)\n"
            f"pathlib.Path({str(out)!r}).write_text(json.dumps([os.getpid(), os.environ['GITFORGE_PROC'], "
            f"json.loads(p.read_text())]))")
    result = run_logged([PY, "-c", code], tmp_path, dict(os.environ), tmp_path / "logs" / "p.log", 30)
    assert result.ok, result.tail
    mine, token, recorded = json.loads(out.read_text())
    assert recorded == {"token": token, "pgid": mine} and mine == result.pid
    assert not pid_file.exists()


def test_timeout_kills_the_whole_group(tmp_path):
    pids = tmp_path / "pids"
    start = time.monotonic()
    result = run_logged([PY, "-c", HANG, str(pids)], tmp_path, dict(os.environ), tmp_path / "h.log", 1.0)
    assert time.monotonic() - start < 8
    assert result.timed_out and result.exit_code is None and not result.ok
    assert "killed after 1s timeout" in result.tail and "hanging" in result.tail
    assert "killed after 1s timeout" in (tmp_path / "h.log").read_text()
    for pid in _pids(pids):
        _wait_for(lambda pid=pid: not _alive(pid))
    assert not (tmp_path / PID_FILE).exists()


def test_children_left_behind_by_a_finished_leader_are_killed(tmp_path):
    pidfile = tmp_path / "bg"
    result = run_logged(f"sleep 300 & echo $! > {pidfile}; echo leader-done", tmp_path, dict(os.environ),
                        tmp_path / "l.log", 30, shell=True)
    assert result.ok and "leader-done" in result.tail
    _wait_for(lambda: not _alive(_pids(pidfile)[0]))


def test_keyboard_interrupt_kills_the_group_then_propagates(tmp_path):
    pids = tmp_path / "pids"

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.8)
        with pytest.raises(KeyboardInterrupt):
            run_logged([PY, "-c", HANG, str(pids)], tmp_path, dict(os.environ), tmp_path / "k.log", 60)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    for pid in _pids(pids):
        _wait_for(lambda pid=pid: not _alive(pid))
    assert not (tmp_path / PID_FILE).exists()


def test_a_missing_executable_is_a_result_not_an_exception(tmp_path):
    result = run_logged(["no-such-agent-xyz", "--flag"], tmp_path, {"PATH": "/usr/bin:/bin"}, tmp_path / "m.log", 5)
    assert result.exit_code == 127 and not result.ok and not result.timed_out
    assert "no-such-agent-xyz" in result.error and "no such executable" in result.error
    assert result.error in result.tail and result.error in (tmp_path / "m.log").read_text()


def test_a_file_that_is_not_executable_and_a_missing_cwd(tmp_path):
    script = tmp_path / "agent.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    result = run_logged([str(script)], tmp_path, dict(os.environ), tmp_path / "n.log", 5)
    assert result.exit_code == 126 and "permission denied" in result.error
    result = run_logged("true", tmp_path / "gone", dict(os.environ), tmp_path / "c.log", 5, shell=True)
    assert result.exit_code == 126 and "does not exist" in result.error


def test_the_tail_keeps_only_the_end(tmp_path):
    code = "for i in range(5000): print(f'line {i} ' + 'x' * 600 + f' exited with code {i % 7}')"
    result = run_logged([PY, "-c", code], tmp_path, dict(os.environ), tmp_path / "t.log", 30)
    lines = result.tail.splitlines()
    assert len(lines) <= TAIL_LINES and lines[-1].startswith("line 4999 ")
    # a cut line keeps its end, where the words that matter usually are, and says what was cut
    assert lines[-1].endswith(" exited with code 1") and " … [" in lines[-1] and " chars] … " in lines[-1]
    assert all(len(line) < LINE_CHARS + 40 for line in lines)


def test_tail_cuts_each_long_line_in_the_middle():
    line = "gate 'tests' (" + "python -m pytest " * 40 + ") exited with code 2"
    (cut,) = tail(line).splitlines()
    assert cut.startswith("gate 'tests' (python -m pytest") and cut.endswith(") exited with code 2")
    assert f" … [{len(line) - LINE_CHARS} chars] … " in cut
    assert tail("short line\nanother") == "short line\nanother"


def test_end_orphans_finds_the_pid_file_of_a_running_command(tmp_path):
    """The recovery convention: `gate.pid` next to the log, under the run dir, trusted by cwd."""
    work = tmp_path / "wt"
    work.mkdir()
    run_dir = tmp_path / "run"
    results = []
    thread = threading.Thread(target=lambda: results.append(
        run_logged([PY, "-c", "import time; time.sleep(300)"], work, dict(os.environ),
                   run_dir / "agent" / "attempt-1.log", 60)))
    thread.start()
    _wait_for(lambda: (run_dir / "agent" / PID_FILE).exists())
    _wait_for(lambda: read_pid_file(run_dir / "agent" / PID_FILE)[1] is not None)
    token, pid = read_pid_file(run_dir / "agent" / PID_FILE)
    assert token and token.startswith(f"{os.getpid()}.")
    assert gates.end_orphans(run_dir, str(work)) == [pid]
    thread.join(10)
    assert results and results[0].exit_code == -signal.SIGKILL


def test_run_gate_keeps_its_record_shape(tmp_path):
    spec = gates.GateSpec("unit tests/1", "echo gate-out; exit 2", 30)
    result = gates.run_gate(spec, tmp_path, tmp_path / "logs")
    assert (result.exit_code, result.timed_out, result.ok) == (2, False, False)
    assert result.log == str(tmp_path / "logs" / "unit-tests-1.log") and "gate-out" in result.tail
    assert gates.describe_failure(result) == "gate 'unit tests/1' (echo gate-out; exit 2) exited with code 2"
    slow = gates.run_gate(gates.GateSpec("slow", "sleep 30", 0.5), tmp_path, tmp_path / "logs")
    assert slow.timed_out and slow.exit_code is None and "killed after 0.5s timeout" in slow.tail
