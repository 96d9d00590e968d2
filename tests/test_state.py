"""`.forge/`: atomic writes, exclusion from git, leases tied to a live process, events."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import git
from gitforge.errors import LockBusy
from gitforge.git import Git
from gitforge.state import Store, atomic_write_json


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
from gitforge.state import Store
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
