"""`gitforge next` end to end on real repositories: landing, failing, recording."""

from __future__ import annotations

import json

from conftest import PY, git, make_diff, phase_md, run_cli, write

BASE = {"app/__init__.py": "", "app/text.py": "def shout(s):\n    return s.upper()\n"}


def slug_patch(tmp_path, body="    return s.lower().replace(' ', '-')\n"):
    return make_diff(BASE, {"app/text.py": BASE["app/text.py"] + "\n\ndef slug(s):\n" + body}, tmp_path)


def gate(cmd: str, name: str = "check", timeout: float = 60) -> str:
    return f"verify:\n  - name: {name}\n    run: {json.dumps(cmd)}\n    timeout: {timeout}\n"


def notes(root) -> list[dict]:
    out = git("log", "--format=%H", "main", cwd=root).split()
    found = []
    for sha in out:
        text = git("notes", "--ref=forge/runs", "show", sha, cwd=root, check=False)
        found += [json.loads(line) for line in text.splitlines() if line.strip()]
    return found


def test_next_lands_a_phase_with_bookkeeping_note_and_checkout(make_repo, tmp_path):
    check = f"{PY} -c 'from app.text import slug; assert slug(\"A B\") == \"a-b\"'"
    root = make_repo(BASE, [phase_md("1", "Add slug", patch=slug_patch(tmp_path), checks=(check,))],
                     otto=gate(f"{PY} -c 'import app.text'"))
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "Landed phase 1: Add slug" in proc.stdout
    subject = git("log", "-1", "--format=%s", cwd=root).strip()
    body = git("log", "-1", "--format=%b", cwd=root)
    assert subject == "Phase 1: Add slug"
    assert "Forge-Phase: 1" in body and "Forge-Run: " in body
    changed = set(git("show", "--name-only", "--format=", "HEAD", cwd=root).split())
    assert changed == {"app/text.py", "BACKLOG.md", "PROGRESS.md"}
    assert "**Status:** Done" in git("show", "HEAD:BACKLOG.md", cwd=root)
    assert "Phase 1: Add slug — Done" in git("show", "HEAD:PROGRESS.md", cwd=root)
    # the checkout of main was clean, so it was updated: files and index match HEAD
    assert "def slug" in (root / "app/text.py").read_text()
    assert git("status", "--porcelain", cwd=root) == ""
    (note,) = notes(root)
    assert note["phase"] == "1" and note["status"] == "landed" and note["attempts"] == 1
    assert [g["name"] for g in note["gates"]] == ["check", "phase-check-1"]
    assert note["patch"]["files"] == 1 and note["builder"] == {"kind": "patch"}
    # the run record and events
    runs = list((root / ".forge" / "runs").glob("*.json"))
    record = json.loads(runs[0].read_text())
    assert record["status"] == "landed" and record["schema_version"] == 1
    states = [t["state"] for t in record["attempts"][0]["ledger"]["transitions"]]
    assert states == ["created", "validated", "applied", "verified", "committed"]
    kinds = [json.loads(line)["kind"] for line in (root / ".forge/events.jsonl").read_text().splitlines()]
    assert kinds[0] == "run.started" and kinds[-1] == "run.landed"
    assert ".forge" in (root / ".git/info/exclude").read_text()
    # the forge branch was a temporary: gone after landing; the worktree is back in the pool
    assert "forge/1-add-slug" not in git("branch", "--list", cwd=root)
    assert json.loads((root / ".forge/worktrees/wt-1.json").read_text())["state"] == "idle"


def test_gate_failure_ends_failed_with_reason_and_keeps_worktree(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "Add slug", patch=slug_patch(tmp_path),
                                     checks=(f"{PY} -c 'import sys; print(\"boom here\"); sys.exit(3)'",))])
    before = git("rev-parse", "HEAD", cwd=root).strip()
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 1
    assert "gate 'phase-check-1'" in proc.stdout and "exited with code 3" in proc.stdout
    assert "boom here" in proc.stderr  # the gate's tail is shown
    # only a bookkeeping commit landed: BACKLOG.md and PROGRESS.md, nothing of the patch
    assert git("rev-parse", "HEAD~1", cwd=root).strip() == before
    changed = set(git("show", "--name-only", "--format=", "HEAD", cwd=root).split())
    assert changed == {"BACKLOG.md", "PROGRESS.md"}
    assert "**Status:** Failed" in (root / "BACKLOG.md").read_text()
    assert "def slug" not in (root / "app/text.py").read_text()
    assert "Forge-Status: Failed" in git("log", "-1", "--format=%b", cwd=root)
    status = run_cli("status", "--json", cwd=root)
    data = json.loads(status.stdout)
    assert data["schema_version"] == 1
    (kept,) = data["kept_worktrees"]
    assert kept["branch"] == "forge/1-add-slug" and "exited with code 3" in kept["reason"]
    assert "def slug" in (root / ".forge/worktrees/wt-1/app/text.py").read_text()
    again = run_cli("next", cwd=root)
    assert again.returncode == 0 and "Nothing to do" in again.stdout and "Not started" in again.stdout


def test_dependencies_priority_and_blocked_cascade(make_repo, tmp_path):
    ok_patch = make_diff(BASE, {"a.txt": "a\n"}, tmp_path)
    bad_patch = make_diff(BASE, {"b.txt": "b\n"}, tmp_path)
    c_patch = make_diff(BASE, {"c.txt": "c\n"}, tmp_path)
    root = make_repo(BASE, [
        phase_md("1", "Depends on two", deps="Phase 2", patch=ok_patch, priority="critical"),
        phase_md("2", "Fails", patch=bad_patch, checks=("false",)),
        phase_md("3", "Waits on one", deps="1", patch=c_patch),
        phase_md("4", "Independent", patch=make_diff(BASE, {"d.txt": "d\n"}, tmp_path), priority="low"),
    ])
    first = run_cli("next", "--json", cwd=root)
    assert json.loads(first.stdout)["phase"] == "2" and first.returncode == 1
    second = run_cli("next", cwd=root)
    assert second.returncode == 0 and "Landed phase 4" in second.stdout
    third = run_cli("next", cwd=root)
    assert third.returncode == 0 and third.stdout.startswith("Nothing to do")
    assert "phase 2" in third.stdout.lower()
    board = json.loads(run_cli("status", "--json", cwd=root).stdout)
    blocked = {p["id"]: p["blocked"] for p in board["phases"] if p["blocked"]}
    assert set(blocked) == {"1", "3"}
    assert "2" in blocked["1"] and "1" in blocked["3"]
    text = (root / "BACKLOG.md").read_text()
    assert text.count("**Status:** Not started") == 2  # blocked phases keep their status


def test_run_a_named_phase_and_refuse_one_that_cannot_run(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path)),
                            phase_md("2", "Two", deps="1", patch=make_diff(BASE, {"b.txt": "b\n"}, tmp_path))])
    refused = run_cli("next", "2", cwd=root)
    assert refused.returncode == 2 and "phase 2 cannot run now" in refused.stderr
    assert run_cli("next", "1", cwd=root).returncode == 0
    assert run_cli("next", "2", cwd=root).returncode == 0
    assert (root / "b.txt").read_text() == "b\n"


def test_pool_reuses_the_worktree(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path)),
                            phase_md("2", "Two", patch=make_diff(BASE, {"b.txt": "b\n"}, tmp_path))])
    run_cli("next", cwd=root)
    (root / ".forge/worktrees/wt-1/junk.txt").write_text("left by a gate")
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0 and "(reused)" in proc.stderr
    assert sorted(p.name for p in (root / ".forge/worktrees").iterdir() if p.is_dir()) == ["wt-1"]
    assert not (root / ".forge/worktrees/wt-1/junk.txt").exists()
    assert (root / ".forge/worktrees/wt-1/a.txt").exists()  # it was reset to the new tip


def test_target_moved_during_run_is_reverified_on_the_new_tip(make_repo, tmp_path):
    other = tmp_path / "repo"
    # the gate lands an unrelated commit on main the first time it runs: a concurrent landing
    move = (f"test -f {other}/other.txt || (cd {other} && echo x > other.txt && git add other.txt "
            f"&& git commit -qm concurrent)")
    root = make_repo(BASE, [phase_md("1", "Add slug", patch=slug_patch(tmp_path), checks=(move,))])
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "re-verifying" in proc.stderr
    assert git("log", "-1", "--format=%s", "HEAD~1", cwd=root).strip() == "concurrent"
    files = git("ls-tree", "-r", "--name-only", "HEAD", cwd=root).split()
    assert "other.txt" in files and "def slug" in git("show", "HEAD:app/text.py", cwd=root)
    assert notes(root)[0]["reverified"] is True


def test_target_moved_with_a_conflict_fails_cleanly(make_repo, tmp_path):
    other = tmp_path / "repo"
    clash = (f"cd {other} && printf 'def shout(s):\\n    return s\\n' > app/text.py && "
             f"git commit -qam clash")
    patch = make_diff(BASE, {"app/text.py": "def shout(s):\n    return s.upper() + '!'\n"}, tmp_path)
    root = make_repo(BASE, [phase_md("1", "Exclaim", patch=patch, checks=(clash,))])
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 1
    assert "conflicts with it in: app/text.py" in proc.stdout
    assert git("show", "HEAD:app/text.py", cwd=root) == "def shout(s):\n    return s\n"


def test_merge_strategy_makes_a_merge_commit(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path))],
                     otto="merge: {strategy: merge}\n")
    assert run_cli("next", cwd=root).returncode == 0
    parents = git("log", "-1", "--format=%P", cwd=root).split()
    assert len(parents) == 2
    assert git("show", f"{parents[1]}:a.txt", cwd=root) == "a\n"


def test_progress_md_accumulates_runs(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path)),
                            phase_md("2", "Two", patch=make_diff(BASE, {"b.txt": "b\n"}, tmp_path),
                                     checks=("false",))])
    run_cli("next", cwd=root)
    run_cli("next", cwd=root)
    progress = (root / "PROGRESS.md").read_text()
    assert progress.count("<details>") == 2
    assert "Phase 1: One — Done" in progress and "Phase 2: Two — Failed" in progress
    assert progress.count("<!-- gitforge:state -->") == 1
    assert "**Phases:** 2 (1 Done, 1 Failed)" in progress


def test_show_reports_ledger_and_gates(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path))],
                     otto=gate("true", name="unit"))
    run_cli("next", cwd=root)
    proc = run_cli("show", "1", cwd=root)
    assert proc.returncode == 0
    for word in ("status:   landed", "validated", "committed", "gate unit", "note (refs/notes/forge/runs)"):
        assert word in proc.stdout
    data = json.loads(run_cli("show", "1", "--json", cwd=root).stdout)
    assert data["schema_version"] == 1 and data["run"]["phase"] == "1"
    run_id = data["run"]["run_id"]
    assert run_cli("show", run_id[:10], cwd=root).returncode == 0
    assert run_cli("show", "nope", cwd=root).returncode == 2


def test_verify_runs_gates_on_the_working_tree(make_repo):
    root = make_repo(BASE, [], otto=gate(f"{PY} -c 'import app.text'") + "  - {name: two, run: 'test -f x'}\n")
    failed = run_cli("verify", cwd=root)
    assert failed.returncode == 1 and "gate 'two'" in failed.stdout
    write(root, {"x": "here"})
    ok = run_cli("verify", "--json", cwd=root)
    assert ok.returncode == 0 and json.loads(ok.stdout)["ok"] is True


def test_a_patch_may_edit_the_backlog_and_its_edit_lands(make_repo):
    edit = ("--- a/BACKLOG.md\n+++ b/BACKLOG.md\n@@ -1,3 +1,3 @@\n # Backlog\n \n"
            "-Intro.\n+Intro, edited by the phase.\n")
    text = "# Backlog\n\nIntro.\n\n" + phase_md("1", "Edit the intro", patch=edit)
    root = make_repo({"BACKLOG.md": text}, None)
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0, proc.stderr
    landed = git("show", "HEAD:BACKLOG.md", cwd=root)
    assert "Intro, edited by the phase." in landed and "**Status:** Done" in landed


def test_a_patch_that_breaks_the_backlog_is_refused(make_repo):
    edit = ("--- a/BACKLOG.md\n+++ b/BACKLOG.md\n@@ -1,3 +1,3 @@\n # Backlog\n \n"
            "-Intro.\n+## Phase x: not a phase id\n")
    text = "# Backlog\n\nIntro.\n\n" + phase_md("1", "Break it", patch=edit)
    root = make_repo({"BACKLOG.md": text}, None)
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 1 and "after the patch, BACKLOG.md:3:" in proc.stderr
    assert "Intro." in git("show", "HEAD:BACKLOG.md", cwd=root)


def test_json_errors_are_reported_on_stdout(tmp_path):
    proc = run_cli("next", "--json", cwd=tmp_path)
    assert proc.returncode == 2
    report = json.loads(proc.stdout)
    assert report == {"schema_version": 1, "ok": False, "error": report["error"], "hint": report["hint"],
                      "exit_code": 2}
    assert "not inside a git repository" in report["error"]


def test_diff_log_is_written_per_run(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path))],
                     otto=gate("true", name="unit"))
    run_cli("next", cwd=root)
    (log,) = (root / ".forge/runs").glob("*/diff-log.md")
    text = log.read_text()
    for expected in ("phase 1 — landed", "Branch: forge/1-one", "Files: a.txt",
                     "created → validated → applied → verified → committed", "Gate `unit` (`true`): exit 0"):
        assert expected in text


def test_setup_failure_is_a_configuration_error_without_bookkeeping(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path))],
                     otto="worktrees: {setup: 'echo setting up; exit 7'}\n")
    head = git("rev-parse", "HEAD", cwd=root)
    for _ in range(2):
        proc = run_cli("next", cwd=root)
        assert proc.returncode == 2 and "worktrees.setup" in proc.stderr and "setting up" in proc.stderr
    assert git("rev-parse", "HEAD", cwd=root) == head  # no Failed commits piling up


def test_deleting_forge_dir_with_a_kept_worktree_still_lets_the_phase_rerun(make_repo, tmp_path):
    import shutil

    root = make_repo(BASE, [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path),
                                     checks=("test -f ok",))])
    assert run_cli("next", cwd=root).returncode == 1
    shutil.rmtree(root / ".forge")
    write(root, {"BACKLOG.md": (root / "BACKLOG.md").read_text().replace("Failed", "Not started"),
                 "ok": "yes"})
    git("add", "-A", cwd=root)
    git("commit", "-qm", "retry", cwd=root)
    proc = run_cli("next", "1", cwd=root)
    assert proc.returncode == 0, proc.stderr


def test_worktree_setup_and_include(make_repo, tmp_path):
    otto = ("worktrees:\n  setup: 'echo built > .setup-done'\n  include: ['.env.test', 'cache/*.bin']\n"
            "verify:\n  - {name: env, run: 'grep -q SECRET=1 .env.test && test -f cache/a.bin "
            "&& test -f .setup-done'}\n")
    root = make_repo({**BASE, ".gitignore": ".env.test\ncache/\n.setup-done\n"},
                     [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path))], otto=otto)
    write(root, {".env.test": "SECRET=1\n", "cache/a.bin": "x"})
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0, proc.stderr
    landed = git("ls-tree", "-r", "--name-only", "HEAD", cwd=root).split()
    assert ".env.test" not in landed and ".setup-done" not in landed  # copied in, never committed


def test_the_note_says_how_hunks_were_placed(make_repo, tmp_path):
    base = {"app.txt": "".join(f"line {i}\n" for i in range(1, 40))}
    diff = make_diff(base, {"app.txt": base["app.txt"].replace("line 5\n", "LINE 5\n").replace(
        "line 30\n", "LINE 30\n")}, tmp_path)
    diff = diff.replace("@@ -27,7 +27,7 @@", "@@ -25,7 +25,7 @@")  # a model's line number, off by two
    root = make_repo(base, [phase_md("1", "Two edits", patch=diff)])
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0, proc.stderr
    (note,) = notes(root)
    assert note["patch"]["hunks"] == "1 exact, 1 relocated +2"
    record = json.loads(next((root / ".forge/runs").glob("*.json")).read_text())
    assert record["attempts"][0]["ledger"]["hunks"][1] == {"file": "app.txt", "hunk": 2, "strategy": "relocated",
                                                           "offset": 2}


def test_a_phase_branch_checked_out_elsewhere_is_refused_with_a_fix_that_works(make_repo, tmp_path, capsys):
    from gitforge.commands.next import next_phase
    from gitforge.error_handler import handle

    root = make_repo(BASE, [phase_md("1", "Add slug", patch=slug_patch(tmp_path))])
    other = tmp_path / "other"
    git("worktree", "add", "-q", "-b", "forge/1-add-slug", str(other), cwd=root)
    assert handle(lambda: next_phase(root, None, {})) == 2
    err = capsys.readouterr().err
    assert f"branch forge/1-add-slug is checked out at {other}" in err
    assert f"switch the checkout at {other} to another branch" in err
    assert "delete forge/1-add-slug" not in err  # git refuses to delete a branch checked out there
