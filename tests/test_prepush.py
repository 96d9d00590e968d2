"""The pre-push check end to end: real `git push` to a real bare remote through the installed hook."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import PY, commit_all, git, make_diff, phase_md, run_cli, write

from gitforge.prepush import judge_note
from gitforge.infra.state import Store

BASE = {"app/__init__.py": "", "app/text.py": "def shout(s):\n    return s.upper()\n"}
NOTES = "refs/notes/forge/runs"


def slug_patch(tmp_path: Path) -> str:
    return make_diff(BASE, {"app/text.py": BASE["app/text.py"] + "\n\ndef slug(s):\n    return s.lower()\n"},
                     tmp_path)


def setup_remote(root: Path, tmp_path: Path) -> Path:
    """A bare remote holding main as it is now, and the hook installed."""
    bare = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(bare), cwd=tmp_path)
    git("remote", "add", "origin", str(bare), cwd=root)
    git("push", "-q", "origin", "main", cwd=root)
    proc = run_cli("hooks", "install", cwd=root)
    assert proc.returncode == 0, proc.stderr
    return bare


def push(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "push", *args], cwd=root, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=180)


def tip(repo: Path, ref: str = "main") -> str:
    return git("rev-parse", "--verify", "-q", ref, cwd=repo, check=False).strip()


def landed_repo(make_repo, tmp_path, otto: str = "verify: []\n") -> tuple[Path, Path, str]:
    """A repository with its remote at the initial commit and one real gitforge landing on main."""
    root = make_repo(BASE, [phase_md("1", "Add slug", patch=slug_patch(tmp_path))], otto=otto)
    bare = setup_remote(root, tmp_path)
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0, proc.stderr
    landing = tip(root)
    assert "Forge-Run: " in git("log", "-1", "--format=%B", cwd=root)
    return root, bare, landing


def test_push_without_gitforge_commits_is_allowed(make_repo, tmp_path):
    root = make_repo(BASE)
    bare = setup_remote(root, tmp_path)
    write(root, {"a.txt": "a\n"})
    new = commit_all(root, "plain work")
    proc = push(root, "origin", "main")
    assert proc.returncode == 0, proc.stderr
    assert tip(bare) == new
    assert "main -> main: 1 new commit(s)" in proc.stderr and "0 by gitforge: ok" in proc.stderr
    assert "run notes are not pushed" not in proc.stderr  # no landings: nothing to offer


def test_repo_without_gitforge_setup_pushes(make_repo, tmp_path):
    root = make_repo({"x.txt": "x\n"}, otto=None)  # no otto.yaml, no BACKLOG.md
    bare = setup_remote(root, tmp_path)
    write(root, {"x.txt": "y\n"})
    new = commit_all(root, "more")
    proc = push(root, "origin", "main")
    assert proc.returncode == 0, proc.stderr
    assert tip(bare) == new
    assert not (root / ".forge").exists()  # checking a push leaves no gitforge state behind


def test_landing_with_its_note_pushes_and_offers_notes(make_repo, tmp_path):
    root, bare, landing = landed_repo(make_repo, tmp_path)
    proc = push(root, "origin", "main")
    assert proc.returncode == 0, proc.stderr
    assert tip(bare) == landing
    assert "1 by gitforge: ok" in proc.stderr
    assert ("run notes are not pushed with branches: gitforge notes push origin, "
            "or set notes.push_with: true in otto.yaml") in proc.stderr
    assert tip(bare, NOTES) == ""  # not pushed unless asked


def test_landing_without_its_note_is_refused(make_repo, tmp_path):
    root, bare, landing = landed_repo(make_repo, tmp_path)
    before = tip(bare)
    git("update-ref", "-d", NOTES, cwd=root)
    proc = push(root, "origin", "main")
    assert proc.returncode != 0
    assert tip(bare) == before  # the remote did not move
    assert f'{landing[:9]} "Phase 1: Add slug": no run note for run' in proc.stderr
    assert "refused: 1 without a passing run note" in proc.stderr
    assert "gitforge notes fetch origin" in proc.stderr
    assert "git notes --ref=forge/runs copy OLD NEW" in proc.stderr
    assert "GITFORGE=0 git push" in proc.stderr and "git push --no-verify" in proc.stderr
    # GITFORGE=0 skips the check
    skipped = push(root, "origin", "main", env={"GITFORGE": "0"})
    assert skipped.returncode == 0, skipped.stderr
    assert tip(bare) == landing and "by gitforge" not in skipped.stderr


def test_missing_notes_are_fetched_from_where_they_are_not_from_the_push_target(make_repo, tmp_path):
    root, bare, landing = landed_repo(make_repo, tmp_path)
    upstream = tmp_path / "upstream.git"
    git("init", "-q", "--bare", str(upstream), cwd=tmp_path)
    git("remote", "add", "upstream", str(upstream), cwd=root)
    # the landing and its note live on upstream; the push goes to origin, which has neither
    git("push", "-q", "--no-verify", "upstream", "main", "refs/notes/forge/*:refs/notes/forge/*", cwd=root)
    git("update-ref", "-d", NOTES, cwd=root)
    proc = push(root, "origin", "main")
    assert proc.returncode != 0 and tip(bare) != landing
    assert "these commits came from upstream: fetch the run notes from there: gitforge notes fetch upstream" \
        in proc.stderr
    assert "gitforge notes fetch origin" not in proc.stderr
    # fetched to upstream's tracking notes but not merged: the advice says so
    git("fetch", "-q", "upstream", "+refs/notes/forge/*:refs/notes/remotes/upstream/forge/*", cwd=root)
    proc = push(root, "origin", "main")
    assert proc.returncode != 0
    assert "your copy of upstream's run notes has them, not merged into yours yet: gitforge notes fetch upstream" \
        in proc.stderr
    assert run_cli("notes", "fetch", "upstream", cwd=root).returncode == 0  # what the advice says works
    proc = push(root, "origin", "main")
    assert proc.returncode == 0, proc.stderr
    assert tip(bare) == landing


def test_note_with_a_failing_gate_is_refused(make_repo, tmp_path):
    otto = f"verify:\n  - name: check\n    run: {json.dumps(PY + ' -c pass')}\n"
    root, bare, landing = landed_repo(make_repo, tmp_path, otto)
    (line,) = git("notes", "--ref=forge/runs", "show", landing, cwd=root).splitlines()
    note = json.loads(line)
    assert note["gates"] and note["gates"][0]["exit_code"] == 0
    note["gates"][0]["exit_code"] = 1
    git("notes", "--ref=forge/runs", "add", "-f", "-m", json.dumps(note), landing, cwd=root)
    before = tip(bare)
    proc = push(root, "origin", "main")
    assert proc.returncode != 0 and tip(bare) == before
    assert "note records failed gate(s): 'check' exited 1" in proc.stderr
    assert "do not record a passing landing" in proc.stderr


def test_failed_phase_bookkeeping_commit_needs_only_its_note(make_repo, tmp_path):
    failing = f"{PY} -c 'import sys; sys.exit(4)'"
    root = make_repo(BASE, [phase_md("1", "Add slug", patch=slug_patch(tmp_path), checks=(failing,))])
    bare = setup_remote(root, tmp_path)
    assert run_cli("next", cwd=root).returncode == 1
    assert "Forge-Status: Failed" in git("log", "-1", "--format=%B", cwd=root)
    assert json.loads(git("notes", "--ref=forge/runs", "show", "main", cwd=root))["status"] != "landed"
    proc = push(root, "origin", "main")
    assert proc.returncode == 0, proc.stderr
    assert tip(bare) == tip(root) and "1 by gitforge: ok" in proc.stderr


def test_merge_lock_refuses_the_target_only(make_repo, tmp_path):
    root = make_repo(BASE)
    bare = setup_remote(root, tmp_path)
    write(root, {"a.txt": "a\n"})
    commit_all(root, "work")
    git("branch", "feature", cwd=root)
    before = tip(bare)
    store = Store(root, root / ".git").ensure()  # a landing has written its run record by then
    with store.locked("merge"):  # what land.py holds while it lands
        proc = push(root, "origin", "main")
        assert proc.returncode != 0 and tip(bare) == before
        assert "a landing is in progress on this branch" in proc.stderr
        assert "wait for it to finish, then push again" in proc.stderr
        head = push(root, "origin", "HEAD")  # HEAD is main here
        assert head.returncode != 0 and "a landing is in progress" in head.stderr
        other = push(root, "origin", "feature")
        assert other.returncode == 0, other.stderr
        assert tip(bare, "feature") == tip(root, "feature")
    after = push(root, "origin", "main")
    assert after.returncode == 0, after.stderr
    assert tip(bare) == tip(root)


def test_merge_lock_with_a_detached_head_uses_the_landing_runs_target(make_repo, tmp_path):
    root = make_repo(BASE)
    bare = setup_remote(root, tmp_path)
    write(root, {"a.txt": "a\n"})
    commit_all(root, "work")
    git("checkout", "-q", "--detach", "main", cwd=root)  # as during a rebase; otto.yaml names no target
    runs = root / ".forge" / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    (runs / "01LANDING.json").write_text(json.dumps({"run_id": "01LANDING", "phase": "1", "status": "running",
                                                     "step": "landing", "target": "main"}))
    with Store(root).locked("merge"):
        proc = push(root, "origin", "main")
        assert proc.returncode != 0 and "a landing is in progress" in proc.stderr
    assert push(root, "origin", "main").returncode == 0


def test_notes_refs_and_tags_are_not_gated(make_repo, tmp_path):
    root = make_repo({**BASE, "marker.txt": "good"}, otto=PRE_PUSH)
    bare = setup_remote(root, tmp_path)
    write(root, {"marker.txt": "bad"})
    commit_all(root, "break the marker")
    git("tag", "old-bad", cwd=root)
    git("notes", "--ref=forge/runs", "add", "-m", "{}", "HEAD", cwd=root)
    proc = push(root, "origin", "refs/notes/forge/*:refs/notes/forge/*")
    assert proc.returncode == 0, proc.stderr
    assert "pre_push gate marker" not in proc.stderr
    proc = push(root, "origin", "old-bad")
    assert proc.returncode == 0, proc.stderr
    assert "not a branch" in proc.stderr and "pre_push gate marker" not in proc.stderr
    assert push(root, "origin", "main").returncode != 0  # the branch itself is still gated


MARKER_GATE = PY + (""" -c 'import pathlib,sys; t=pathlib.Path("marker.txt").read_text(); """
                    """print("marker is", t); sys.exit(t != "good")'""")
PRE_PUSH = f"verify: []\npre_push:\n  - name: marker\n    run: {json.dumps(MARKER_GATE)}\n"


def test_pre_push_gates_check_the_pushed_tip_not_the_working_tree(make_repo, tmp_path):
    root = make_repo({**BASE, "marker.txt": "good"}, otto=PRE_PUSH)
    bare = setup_remote(root, tmp_path)
    write(root, {"marker.txt": "bad"})
    bad = commit_all(root, "break the marker")
    write(root, {"marker.txt": "good"})  # the working tree passes; the pushed tip does not
    proc = push(root, "origin", "main")
    assert proc.returncode != 0 and tip(bare) != bad
    assert "pre_push gate marker" in proc.stderr and "exited with code 1" in proc.stderr
    assert "marker is bad" in proc.stderr  # the tail of the gate's output
    logs = list((root / ".forge" / "runs").glob("pre-push-*/marker.log"))
    assert len(logs) == 1 and str(logs[0]) in proc.stderr
    write(root, {"marker.txt": "good"})
    good = commit_all(root, "fix the marker")
    write(root, {"marker.txt": "bad"})  # the working tree fails; the pushed tip passes
    proc = push(root, "origin", "main")
    assert proc.returncode == 0, proc.stderr
    assert tip(bare) == good and "1 pre_push gate(s) passed" in proc.stderr
    assert "forge/pre-push" not in git("branch", "--list", cwd=root)  # the pooled worktree went back
    assert git("status", "--porcelain", "--", ".forge", cwd=root) == ""  # .forge/ is excluded


def test_new_branch_checks_only_what_the_remote_lacks(make_repo, tmp_path):
    root, bare, landing = landed_repo(make_repo, tmp_path)
    assert push(root, "origin", "main").returncode == 0  # the landing is on the remote now
    git("update-ref", "-d", NOTES, cwd=root)
    git("switch", "-q", "-c", "feature", cwd=root)
    write(root, {"b.txt": "b\n"})
    commit_all(root, "feature work")
    proc = push(root, "origin", "feature")
    assert proc.returncode == 0, proc.stderr
    assert "1 new commit(s)" in proc.stderr and "a new ref on the remote" in proc.stderr
    # by URL: origin's URL is origin (its tracking refs say what it has); the landing is not rechecked
    git("switch", "-q", "-c", "other", cwd=root)
    by_url = push(root, str(bare), "other")
    assert by_url.returncode == 0, by_url.stderr
    assert "--remotes=origin" in by_url.stderr and landing[:9] not in by_url.stderr
    # a URL no remote uses: what no remote-tracking ref has is checked, and the advice fits a URL
    elsewhere = tmp_path / "elsewhere.git"
    git("init", "-q", "--bare", str(elsewhere), cwd=tmp_path)
    git("remote", "remove", "origin", cwd=root)  # and with it every remote-tracking ref
    proc = push(root, str(elsewhere), "other")
    assert proc.returncode != 0 and tip(elsewhere, "other") == ""
    assert landing[:9] in proc.stderr and "--not --remotes;" in proc.stderr
    assert f"git remote add NAME {elsewhere}" in proc.stderr


def test_new_branch_with_an_unproven_landing_is_refused(make_repo, tmp_path):
    root, bare, landing = landed_repo(make_repo, tmp_path)
    git("update-ref", "-d", NOTES, cwd=root)
    git("branch", "carry", cwd=root)
    proc = push(root, "origin", "carry")
    assert proc.returncode != 0 and tip(bare, "carry") == ""
    assert "a new ref on the remote" in proc.stderr and landing[:9] in proc.stderr


def test_deletion_is_not_checked(make_repo, tmp_path):
    root, bare, landing = landed_repo(make_repo, tmp_path)
    assert push(root, "origin", "main:published").returncode == 0
    git("update-ref", "-d", NOTES, cwd=root)  # a check of the ref's commits would refuse now
    proc = push(root, "origin", ":published")
    assert proc.returncode == 0, proc.stderr
    assert tip(bare, "published") == ""
    assert "deletes the remote ref; nothing to check" in proc.stderr


def test_invalid_config_blocks_only_pushes_gitforge_must_check(make_repo, tmp_path):
    root, bare, landing = landed_repo(make_repo, tmp_path)
    write(root, {"otto.yaml": "verify: []\nmax_atempts: 3\n"})  # a typo, not committed
    proc = push(root, "origin", "main")
    assert proc.returncode != 0 and tip(bare) != landing
    assert "otto.yaml is invalid, and this push carries gitforge commits" in proc.stderr
    assert "max_atempts" in proc.stderr
    line = f"refs/heads/main {landing} refs/heads/main {tip(bare)}\n"
    direct = run_cli("hook", "pre-push", "origin", str(bare), cwd=root, input=line)
    assert direct.returncode == 2, direct.stderr  # a configuration error, as every command reports one
    git("switch", "-q", "-c", "side", "HEAD~1", cwd=root)  # before the landing: plain commits only
    write(root, {"otto.yaml": "verify: []\nmax_atempts: 3\n"})
    write(root, {"c.txt": "c\n"})
    git("add", "c.txt", cwd=root)
    git("commit", "-q", "-m", "side work", cwd=root)
    side = push(root, "origin", "side")
    assert side.returncode == 0, side.stderr
    assert "otto.yaml is invalid" in side.stderr and "it goes ahead" in side.stderr
    write(root, {"otto.yaml": "pre_push: [{name: x, run: 'true'}]\nmax_atempts: 3\n"})
    git("commit", "-q", "--allow-empty", "-m", "more side work", cwd=root)
    gated = push(root, "origin", "side")
    assert gated.returncode != 0 and "otto.yaml names pre_push gates" in gated.stderr
    assert tip(bare, "side") != tip(root, "side")


@pytest.mark.parametrize("text", ["verify: " + "[" * 5000 + "]" * 5000 + "\n", "pre_push: &a [*a]\n",
                                  "verify: [ok]\nbacklog: \x01\n", "x: &x [" + "a, " * 20 + "]\n"
                                  + "".join(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}" if i else "*x"] * 20) + "]\n"
                                            for i in range(6))])
def test_an_otto_yaml_too_hostile_to_read_is_taken_to_name_pre_push_gates(tmp_path, text):
    """The hook's fallback reading of an invalid otto.yaml is bounded too: it stops the push
    (exit 2 from the hook), never crashes or hangs on it."""
    from gitforge.commands.prepush import _may_have_pre_push

    (tmp_path / "otto.yaml").write_text(text)
    assert _may_have_pre_push(tmp_path) is True


def test_notes_push_with_sends_the_notes_ref(make_repo, tmp_path):
    root, bare, landing = landed_repo(make_repo, tmp_path, "verify: []\nnotes:\n  push_with: true\n")
    proc = push(root, "origin", "main")
    assert proc.returncode == 0, proc.stderr
    assert tip(bare) == landing
    assert tip(bare, NOTES) == tip(root, NOTES) != ""
    assert "run notes are not pushed" not in proc.stderr


def test_judge_note_rules():
    landed = {"run_id": "R1", "status": "landed", "gates": [{"name": "t", "exit_code": 0, "timed_out": False}]}
    assert judge_note("R1", "Done", json.dumps(landed)) is None
    assert judge_note("R1", "Done", None) == ("no run note for run R1", True)
    other = json.dumps({**landed, "run_id": "R2"})
    assert judge_note("R1", "Done", other) == ("its run note has no entry for run R1", True)
    # a later line for the same run may prove it; garbage lines are ignored
    assert judge_note("R1", "Done", "not json\n" + other + "\n" + json.dumps(landed)) is None
    slow = {**landed, "gates": [{"name": "t", "exit_code": None, "timed_out": True}]}
    assert judge_note("R1", "Done", json.dumps(slow)) == ("run R1's note records failed gate(s): 't' timed out",
                                                          False)
    failed = json.dumps({**landed, "status": "failed"})
    assert judge_note("R1", "Done", failed) == ("run R1's note says status 'failed', not 'landed'", False)
    assert judge_note("R1", "Failed", failed) is None  # bookkeeping: any note line of its run
    assert judge_note("R1", "Skipped", other)[1] is True
