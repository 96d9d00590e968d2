"""`.forge/`: atomic writes, exclusion from git, leases tied to a live process, events."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from conftest import commit_all, git, make_diff, phase_md, write
from gitforge.errors import LockBusy
from gitforge.git import Git
from gitforge.infra.state import Store, atomic_write, atomic_write_json


def test_store_is_created_on_demand_and_excluded(make_repo):
    root = make_repo({}, [])
    store = Store(root, Git.open(root).common_dir)
    assert not (root / ".forge").exists()
    store.ensure()
    store.ensure()
    exclude = (root / ".git/info/exclude").read_text()
    assert exclude.count("/.forge/") == 1
    (root / ".forge/runs/x.json").write_text("{}")
    assert git("status", "--porcelain", cwd=root) == ""
    assert ".forge" not in (root / ".gitignore").read_text() if (root / ".gitignore").exists() else True


def test_atomic_write_leaves_no_temp_files(tmp_path):
    path = tmp_path / "a" / "r.json"
    for i in range(20):
        atomic_write_json(path, {"i": i})
    assert json.loads(path.read_text()) == {"i": 19}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_run_records_round_trip_with_schema_version(tmp_path):
    store = Store(tmp_path).ensure()
    store.save_run({"run_id": "01ABC", "phase": "1", "status": "running"})
    rec = store.load_run("01ABC")
    assert rec["schema_version"] == 1 and rec["status"] == "running" and "updated" in rec
    assert store.find_runs("01a") == [rec]


def test_events_have_ulid_ids_and_a_torn_line_is_skipped(tmp_path):
    store = Store(tmp_path).ensure()
    first = store.event("run.started", run_id="r1")
    store.event("run.landed", run_id="r1")
    with open(store.events_path, "a") as f:
        f.write('{"id": "torn", "ki')  # a writer killed mid-line
    events = store.events()
    assert [e["kind"] for e in events] == ["run.started", "run.landed"]
    assert len(first["id"]) == 26 and events[0]["id"] < events[1]["id"]


def test_a_phase_lease_excludes_a_second_claim(tmp_path):
    store = Store(tmp_path).ensure()
    other = Store(tmp_path)
    with store.lease("1", "run-a"):
        assert set(store.live_leases()) == {"1"}
        with pytest.raises(LockBusy, match="phase 1 is already being worked on by run run-a"):
            with other.lease("1", "run-b"):
                pass
    assert store.live_leases() == {}


HOLDER = """
import sys, time
from pathlib import Path
from gitforge.infra.state import Store
store = Store(Path(sys.argv[1])).ensure()
with store.lease("7", "run-held"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_lease_dies_with_its_process(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    store = Store(tmp_path)
    assert store.live_leases()["7"].run_id == "run-held"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for _ in range(50):
        if not store.live_leases():
            break
        time.sleep(0.05)
    assert store.live_leases() == {}
    assert not (tmp_path / ".forge/leases/7.json").exists()  # the stale file was cleaned up
    with store.lease("7", "run-new"):
        pass


# -- nothing is written until there is something to record ------------------------------------

def test_atomic_write_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    path = tmp_path / "exclude"
    path.write_text("old\n")
    os.chmod(path, 0o640)
    atomic_write(path, b"new\n")
    assert path.read_bytes() == b"new\n" and stat.S_IMODE(path.stat().st_mode) == 0o640
    atomic_write(path, b"hook\n", mode=0o755)  # an explicit mode wins
    assert stat.S_IMODE(path.stat().st_mode) == 0o755


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_gives_a_new_file_the_mode_open_would(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "new.txt", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == mode


def _exclude(root):
    path = root / ".git/info/exclude"
    return path.read_bytes(), stat.S_IMODE(path.stat().st_mode)


def test_commands_that_only_look_create_nothing(make_repo, tmp_path, capsys):
    from gitforge.commands.check import check
    from gitforge.commands.next import next_phase
    from gitforge.commands.show import show
    from gitforge.commands.status import status
    from gitforge.error_handler import handle

    root = make_repo({"app.py": "x = 1\n"}, [phase_md("1", "Done already", status="Done")])
    os.chmod(root / ".git/info/exclude", 0o644)
    before = _exclude(root)
    assert handle(lambda: check(root, False, {})) == 0
    assert handle(lambda: status(root, {})) == 0
    assert handle(lambda: show(root, "1")) == 2  # no run to show
    assert handle(lambda: next_phase(root, None, {})) == 0
    assert "Nothing to do" in capsys.readouterr().out
    write(root, {"BACKLOG.md": "# Backlog\n\n## Phase two: words are not ids\n"})
    commit_all(root, "a broken backlog")
    assert handle(lambda: next_phase(root, None, {})) == 2  # refused by the T0 checks
    assert not (root / ".forge").exists()
    assert _exclude(root) == before  # the same bytes and the same mode
    patch = make_diff({"app.py": "x = 1\n"}, {"app.py": "x = 2\n"}, tmp_path)
    write(root, {"BACKLOG.md": "# Backlog\n\n" + phase_md("1", "Change x", patch=patch)})
    commit_all(root, "a runnable phase")
    assert handle(lambda: next_phase(root, None, {})) == 0  # the first write creates what it needs
    assert (root / ".forge/runs").is_dir() and len(list((root / ".forge/runs").glob("*.json"))) == 1
    data, mode = _exclude(root)
    assert data.startswith(before[0]) and data.count(b"/.forge/") == 1 and mode == 0o644


def test_a_lock_before_forge_exists_creates_nothing_and_still_excludes(make_repo):
    root = make_repo({}, [])
    holder = subprocess.Popen([sys.executable, "-c", "import sys\nfrom gitforge.infra.state import Store\n"
                               "with Store(sys.argv[1]).locked('state'):\n    print('held', flush=True)\n"
                               "    sys.stdin.read()\n", str(root)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not (root / ".forge").exists()
        store = Store(root, root / ".git")
        assert store.is_locked_elsewhere("state")
        with pytest.raises(LockBusy, match="the state lock is held by another gitforge process"):
            with store.locked("state", timeout=0.3, what="the state lock"):
                pass
    finally:
        holder.stdin.close()
        holder.wait()
    with store.locked("state", timeout=5):
        store.save_run({"run_id": "01FIRST", "phase": "1", "status": "running"})  # a first write, inside
    assert store.load_run("01FIRST")["status"] == "running"
    assert (root / ".forge/locks").is_dir() and "/.forge/" in (root / ".git/info/exclude").read_text()
