"""Output that goes away (`gitforge next | head`) and where gitforge runs (`gitforge -C DIR`)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

from conftest import PY, git, make_diff, phase_md, run_cli
from gitforge.infra.state import Store
from gitforge.infra.streams import Guarded

BASE = {"app.py": "x = 1\n"}
SLOW = "import time\nfor i in range(10):\n    print('gate output', i, flush=True)\n    time.sleep(0.1)\n"


def test_a_guarded_stream_drops_a_closed_pipe_quietly():
    read_end, write_end = os.pipe()
    stream = Guarded(os.fdopen(write_end, "w", buffering=1))
    stream.write("first line\n")
    assert os.read(read_end, 100) == b"first line\n"
    os.close(read_end)  # the reader goes away (head -1 has what it wanted)
    assert stream.write("second line\n") == len("second line\n")  # no BrokenPipeError
    stream.buffer.write(b"bytes too\n")
    stream.flush()
    assert stream.broken
    assert os.path.samefile(f"/proc/self/fd/{write_end}", os.devnull)  # what is still buffered goes nowhere
    stream.close()


def test_next_piped_into_a_reader_that_goes_away_still_lands(make_repo, tmp_path):
    patch = make_diff(BASE, {"app.py": "x = 2\n"}, tmp_path)
    root = make_repo({**BASE, "slow.py": SLOW}, [phase_md("1", "Change x", patch=patch)],
                     otto=f"verify:\n  - name: slow\n    run: {json.dumps(PY + ' slow.py')}\n")
    proc = subprocess.Popen([sys.executable, "-m", "gitforge", "next"], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    first = proc.stdout.readline()  # `gitforge next 2>&1 | head -1`
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0
    assert first.startswith("→ Phase 1: Change x".encode())
    (record,) = Store(root).runs()
    assert record["status"] == "landed" and record["ended"] and record["commit"]
    assert git("rev-parse", "main", cwd=root).strip() == record["commit"]


def test_show_piped_into_head_ends_quietly_with_the_first_line(make_repo):
    root = make_repo(BASE, [phase_md("1", "Change x")])
    attempts = [{"number": n, "ok": False, "stage": "verify", "reason": f"attempt {n} failed " + "." * 40}
                for n in range(1, 3001)]  # far more than a pipe holds
    Store(root, root / ".git").save_run({"run_id": "01J0000000000000000000SHOW", "phase": "1", "status": "failed",
                                         "attempts": attempts})
    proc = subprocess.Popen([sys.executable, "-m", "gitforge", "show", "1"], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert first.startswith("run 01J0000000000000000000SHOW   phase 1")
    assert err == ""  # no traceback, no "Exception ignored ... BrokenPipeError"


def test_global_C_runs_every_command_as_if_started_there(make_repo, tmp_path):
    patch = make_diff(BASE, {"app.py": "x = 2\n"}, tmp_path)
    root = make_repo(BASE, [phase_md("1", "Change x", patch=patch)])
    os.chmod(root / ".git/info/exclude", 0o644)
    proc = run_cli("-C", "repo", "status", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Next: phase 1" in proc.stdout and not (root / ".forge").exists()
    proc = run_cli("-C", tmp_path.name, "-C", "repo", "next", cwd=tmp_path.parent)  # -C a -C b is a/b, as in git
    assert proc.returncode == 0, proc.stderr
    assert "Landed phase 1: Change x" in proc.stdout and (root / ".forge/runs").is_dir()
    assert stat.S_IMODE((root / ".git/info/exclude").stat().st_mode) == 0o644
    proc = run_cli("-C", "nowhere", "status", cwd=tmp_path)
    assert proc.returncode == 2 and "cannot change to nowhere: No such file or directory" in proc.stderr
