"""`gitforge apply`: a git-apply with the policy and the audit, on the working tree."""

from __future__ import annotations

import json

from conftest import make_diff, run_cli


def test_crlf_patch_from_a_file_and_from_stdin(make_repo, tmp_path):
    base = {"win.txt": "one\r\ntwo\r\n"}
    root = make_repo(base, [])
    diff = make_diff(base, {"win.txt": "one\r\nTWO\r\n"}, tmp_path)
    assert "\r\n" in diff
    (tmp_path / "p.diff").write_bytes(diff.encode())
    check = run_cli("apply", "--check", "--json", str(tmp_path / "p.diff"), cwd=root)
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["checked_only"] is True
    assert (root / "win.txt").read_bytes() == b"one\r\ntwo\r\n"
    proc = run_cli("apply", "-", cwd=root, input=diff)
    assert proc.returncode == 0, proc.stderr
    assert (root / "win.txt").read_bytes() == b"one\r\nTWO\r\n"


def test_refusal_in_json(make_repo, tmp_path):
    root = make_repo({"a.py": "x = 1\n"}, [])
    (tmp_path / "p.diff").write_text("not a diff at all\n")
    proc = run_cli("apply", "--json", str(tmp_path / "p.diff"), cwd=root)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["ok"] is False and report["schema_version"] == 1 and report["reason"]


def test_missing_patch_file_is_a_usage_error(make_repo, tmp_path):
    root = make_repo({}, [])
    proc = run_cli("apply", str(tmp_path / "nope.diff"), cwd=root)
    assert proc.returncode == 2 and "cannot read" in proc.stderr


def test_apply_and_verify_in_a_linked_worktree_act_there(make_repo, tmp_path):
    from conftest import git

    root = make_repo({"a.py": "x = 1\n"}, [], otto="verify: [{name: here, run: 'test -f only-here'}]\n")
    linked = tmp_path / "linked"
    git("worktree", "add", "-q", "-b", "feature", str(linked), cwd=root)
    (linked / "only-here").write_text("")
    assert run_cli("verify", cwd=linked).returncode == 0
    assert run_cli("verify", cwd=root).returncode == 1
    diff = make_diff({"a.py": "x = 1\n"}, {"a.py": "x = 2\n"}, tmp_path)
    (tmp_path / "p.diff").write_text(diff)
    assert run_cli("apply", str(tmp_path / "p.diff"), cwd=linked).returncode == 0
    assert (linked / "a.py").read_text() == "x = 2\n"
    assert (root / "a.py").read_text() == "x = 1\n"
