"""State files of the wrong shape: set aside with a warning naming them, never deleted, never a crash."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from conftest import make_diff, phase_md
from gitforge.commands.check import check
from gitforge.commands.next import next_phase
from gitforge.commands.status import status
from gitforge.error_handler import handle
from gitforge.infra.state import Store

BASE = {"app.py": "x = 1\n"}
GOOD_RUN = {"run_id": "01J0000000000000000000GOOD", "phase": "1", "title": "Change x", "status": "failed",
            "step": "done", "target": "main", "base": "0" * 40, "branch": "forge/1-change-x",
            "builder": {"kind": "patch"}, "pid": 1, "host": "h", "started": "2025-01-01T00:00:00.000Z",
            "ended": "2025-01-01T00:01:00.000Z", "reason": "gate 'tests' exited with code 1", "retryable": False,
            "run_dir": "/nonexistent/run", "attempts": [{
                "number": 1, "ok": False, "stage": "verify", "reason": "r", "details": ["d"], "files": ["app.py"],
                "gates": [{"name": "tests", "run": "pytest", "source": "otto.yaml", "exit_code": 1, "duration": 0.5,
                           "timed_out": False, "log": "/x.log", "tail": "t"}],
                "ledger": {"state": "rolled_back", "transitions": [{"state": "created", "at": "now", "reason": ""}]},
                "decision": {"action": "stop", "confidence": 1.0, "hint": "", "reason": "r", "commands": [],
                             "source": "rule"}}]}
WRONG = [None, 5, True, 1.5, "x", [], {}, ["x"], {"k": 1}]


def repo_with_phase(make_repo, tmp_path) -> Path:
    patch = make_diff(BASE, {"app.py": "x = 2\n"}, tmp_path)
    return make_repo(BASE, [phase_md("1", "Change x", patch=patch)])


def codes(root: Path) -> dict[str, int]:
    """Exit codes of status, check and next, in this process, the way the command line gets them."""
    return {"status": handle(lambda: status(root, {})), "check": handle(lambda: check(root, False, {})),
            "next": handle(lambda: next_phase(root, None, {}))}


def mutations() -> list[tuple[str, bytes]]:
    """A few dozen run records of the wrong shape (or of a surprising but valid one)."""
    out: list[tuple[str, bytes]] = []
    for key in GOOD_RUN:
        for n, value in enumerate(WRONG):
            out.append((f"{key}-{n}", json.dumps({**GOOD_RUN, key: value}).encode()))
    attempt = GOOD_RUN["attempts"][0]
    for key in ("number", "ok", "stage", "gates", "ledger", "decision", "details", "files"):
        for n, value in enumerate(WRONG):
            out.append((f"attempt-{key}-{n}", json.dumps({**GOOD_RUN, "attempts": [{**attempt, key: value}]}).encode()))
    gate = attempt["gates"][0]
    for key in gate:
        out.append((f"gate-{key}", json.dumps({**GOOD_RUN, "attempts": [{**attempt, "gates": [
            {**gate, key: [1]}]}]}).encode()))
    out += [("list", b"[1, 2]"), ("string", b'"run"'), ("number", b"7"), ("null", b"null"), ("empty", b""),
            ("torn", json.dumps(GOOD_RUN).encode()[:40]), ("latin1", json.dumps(GOOD_RUN).encode() + b"\xff\xfe"),
            ("utf16", json.dumps(GOOD_RUN).encode("utf-16")), ("extra-gate-key", json.dumps({**GOOD_RUN, "attempts": [
                {**attempt, "gates": [{**gate, "surprise": 1}]}]}).encode())]
    return out


def test_dozens_of_wrong_shaped_state_files_never_crash_status_next_or_check(make_repo, tmp_path, capsys):
    root = repo_with_phase(make_repo, tmp_path)
    store = Store(root, root / ".git").ensure()
    names = []
    for n, (label, data) in enumerate(mutations()):
        name = f"01J{n:023d}"  # sorts like a ULID
        (store.runs_dir / f"{name}.json").write_bytes(data)
        names.append((store.runs_dir, f"{name}.json"))
    (store.runs_dir / "01JDIRECTORY.json").mkdir()  # a folder where a record belongs
    names.append((store.runs_dir, "01JDIRECTORY.json"))
    leases = {"7": b"[]", "8": json.dumps({"phase": "8", "run_id": "r", "pid": "x", "host": "h", "started": "s"}),
              "9": json.dumps({"phase": "9", "run_id": "r"}), "10": b"\xff", "11": json.dumps(
                  {"phase": "11", "run_id": "r", "pid": 1, "host": "h", "started": "s", "kind": "alien"}),
              "12": json.dumps({"phase": "12", "run_id": "r", "pid": 1, "host": "h", "started": "s", "more": 1})}
    for phase, data in leases.items():
        (store.leases_dir / f"{phase}.json").write_bytes(data if isinstance(data, bytes) else data.encode())
        names.append((store.leases_dir, f"{phase}.json"))
    (store.leases_dir / "13.json").mkdir()
    names.append((store.leases_dir, "13.json"))
    metas = {"wt-1": b"[1]", "wt-2": json.dumps({"state": "lost"}).encode(), "wt-3": b"{",
             "wt-4": json.dumps({"state": "kept", "reason": 5, "branch": []}).encode()}
    for name, data in metas.items():
        (store.worktrees_dir / name).mkdir()
        (store.worktrees_dir / f"{name}.json").write_bytes(data)
        names.append((store.worktrees_dir, f"{name}.json"))
    (store.worktrees_dir / "wt-5").mkdir()
    (store.worktrees_dir / "wt-5.json").mkdir()
    names.append((store.worktrees_dir, "wt-5.json"))
    store.events_path.write_bytes(b'5\n"text"\n[1]\n\xff\xfe\n{"id": "x", "kind": "ok"}\n')

    got = codes(root)
    assert got == {"status": 0, "check": 0, "next": 0}, (got, capsys.readouterr().err[-3000:])
    err = capsys.readouterr().err
    record = next(r for r in store.runs() if r["phase"] == "1" and r["status"] == "landed")
    assert record["ended"]
    for folder, name in names:  # never deleted: each is where it was, or set aside next to it
        assert (folder / name).exists() or list(folder.glob(f"{name}.corrupt-*")), name
    aside = [p for folder in (store.runs_dir, store.leases_dir, store.worktrees_dir) for p in folder.glob("*.corrupt-*")]
    assert len(aside) >= 60
    assert "01JDIRECTORY.json was not a valid run record (a folder where a file belongs)" in err
    assert "not a valid lease (pid is 'x', not an integer)" in err
    assert "set aside as " in err and "(nothing was deleted)" in err
    assert codes(root) == {"status": 0, "check": 0, "next": 0}  # and once set aside, quiet again
    assert "set aside" not in capsys.readouterr().err


@pytest.mark.parametrize("where", ["runs", "leases", "locks", "worktrees", "events.jsonl", "leases/1.json"])
def test_a_state_path_of_the_wrong_kind_is_set_aside(make_repo, tmp_path, capsys, where):
    root = repo_with_phase(make_repo, tmp_path)
    store = Store(root, root / ".git").ensure()
    path = store.dir / where
    if path.is_dir():
        path.rmdir()
        path.write_text("not a folder\n")
    else:
        path.mkdir()
    got = codes(root)
    assert got == {"status": 0, "check": 0, "next": 0}, (got, capsys.readouterr().err[-3000:])
    aside = list(path.parent.glob(f"{path.name}.corrupt-*"))
    assert len(aside) == 1 and f"{path} was not a " in capsys.readouterr().err
    assert any(r["status"] == "landed" for r in store.runs())


def test_forge_that_is_a_file_is_a_clear_usage_error(make_repo, tmp_path, capsys):
    root = repo_with_phase(make_repo, tmp_path)
    (root / ".forge").write_text("mine\n")
    assert codes(root) == {"status": 0, "check": 2, "next": 2}
    err = capsys.readouterr().err
    assert f"{root / '.forge'} is not a folder" in err and "move" in err
    assert (root / ".forge").read_text() == "mine\n"  # left as it is: it is the user's
    with pytest.raises(Exception, match="is not a folder") as e:
        Store(root, root / ".git").ensure()
    assert e.value.exit_code == 2 and "mv " in e.value.hint


def test_a_run_id_from_the_command_line_never_reaches_outside_runs(make_repo, tmp_path, capsys):
    root = repo_with_phase(make_repo, tmp_path)
    store = Store(root, root / ".git").ensure()
    (root / "notes.json").write_text("[]")
    assert store.load_run("../../notes") is None and store.read_lease("../../notes") is None
    assert (root / "notes.json").read_text() == "[]"  # not read as a record, not set aside


def test_crash_log_goes_to_a_private_per_user_folder(tmp_path, monkeypatch, capsys, sealed_env):
    monkeypatch.chdir(tmp_path)  # not in a repository
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))

    def bug() -> int:
        raise RuntimeError("a bug")

    assert handle(bug) == 3
    (log,) = (state / "gitforge/logs").iterdir()
    assert f"the traceback is in {log}" in capsys.readouterr().err
    assert "RuntimeError: a bug" in log.read_text()
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700 and stat.S_IMODE(log.stat().st_mode) == 0o600
    monkeypatch.delenv("XDG_STATE_HOME")
    assert handle(bug) == 3
    (log,) = (sealed_env / ".local/state/gitforge/logs").iterdir()
    assert str(log) in capsys.readouterr().err and not str(log).startswith("/tmp/gitforge-logs")
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
