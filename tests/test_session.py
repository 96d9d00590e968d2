"""Host-agent mode: `gitforge start` / `submit` / `abandon` driven the way Claude Code drives
them (a script stands in for the agent), and the /forge-next slash command it follows."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import yaml

from conftest import PY, ROOT, commit_all, git, phase_md, run_cli, write

BASE = {"app/__init__.py": "", "app/text.py": "def shout(s):\n    return s.upper()\n"}
CHECK = f"{PY} -c 'from app.text import slug; assert slug(\"A B\") == \"a-b\"'"
GOOD = BASE["app/text.py"] + "\n\ndef slug(s):\n    return s.lower().replace(' ', '-')\n"
BAD = BASE["app/text.py"] + "\n\ndef slug(s):\n    return s.lower()\n"

# The stand-in for Claude Code: it follows templates/.claude/commands/forge-next.md with
# nothing but the gitforge command line and the JSON it prints. Each edit in EDITS is one try.
AGENT = textwrap.dedent("""
    import json, subprocess, sys
    from pathlib import Path
    edits = json.loads(sys.argv[1])
    def gf(*args):
        p = subprocess.run([sys.executable, "-m", "gitforge", *args, "--json"], capture_output=True, text=True)
        return p.returncode, json.loads(p.stdout)
    code, s = gf("start")
    log = [("start", code, s["status"])]
    if s["status"] != "started":
        print(json.dumps(log)); sys.exit(0)
    run, wt = s["run_id"], Path(s["worktree"])
    assert "slug" in s["phase"]["text"] and s["gates"], s
    for files in edits:
        for rel, text in files.items():
            (wt / rel).parent.mkdir(parents=True, exist_ok=True)
            (wt / rel).write_text(text)
        code, s = gf("submit", run)
        log.append(("submit", code, s["status"], s["feedback"], s["attempts_left"]))
        if s["status"] != "retry":
            break
    print(json.dumps(log))
""")


def make(make_repo, otto: str = "verify: []\n", phases: list[str] | None = None) -> Path:
    return make_repo(BASE, phases or [phase_md("1", "Add slug", checks=(CHECK,))], otto=otto)


def agent(root: Path, *edits: dict) -> list:
    proc = subprocess.run([PY, "-c", AGENT, json.dumps(list(edits))], cwd=root, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def notes(root: Path) -> list[dict]:
    text = git("notes", "--ref=forge/runs", "show", "main", cwd=root, check=False)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_agent_fails_a_gate_then_fixes_it_and_the_phase_lands(make_repo):
    root = make(make_repo)
    log = agent(root, {"app/text.py": BAD}, {"app/text.py": GOOD})
    assert log[0] == ["start", 0, "started"]
    _, code, status, feedback, left = log[1]
    assert (code, status, left) == (1, "retry", 2)
    assert "phase-check-1" in feedback and "AssertionError" in feedback  # the gate's own output comes back
    assert log[2][:3] == ["submit", 0, "landed"]
    assert "def slug" in git("show", "main:app/text.py", cwd=root)
    assert "**Status:** Done" in git("show", "main:BACKLOG.md", cwd=root)
    (note,) = notes(root)
    assert note["status"] == "landed" and note["attempts"] == 2 and note["builder"]["kind"] == "host"
    assert [g["exit_code"] for g in note["gates"]] == [0]
    # the claim is gone, the worktree is back in the pool, the user's checkout is up to date
    assert not list((root / ".forge/leases").glob("*.json"))
    meta = json.loads((root / ".forge/worktrees/wt-1.json").read_text())
    assert meta["state"] == "idle"
    assert "def slug" in (root / "app/text.py").read_text() and git("status", "--porcelain", cwd=root) == ""
    record = json.loads(next((root / ".forge/runs").glob("*.json")).read_text())
    assert record["mode"] == "host" and [a["ok"] for a in record["attempts"]] == [False, True]
    assert record["attempts"][0]["files"] == ["app/text.py"]  # earlier submissions are kept as recorded


def test_a_failed_submission_leaves_the_agents_edits_and_drops_gate_leftovers(make_repo):
    root = make(make_repo, otto=f"verify:\n  - {{name: report, run: {json.dumps('echo r > report.txt && ' + CHECK)}}}\n")
    start = json.loads(run_cli("start", "--json", cwd=root).stdout)
    wt = Path(start["worktree"])
    write(wt, {"app/text.py": BAD, "notes/todo.md": "mine\n"})
    proc = run_cli("submit", "--json", cwd=root)
    out = json.loads(proc.stdout)
    assert proc.returncode == 1 and out["status"] == "retry"
    assert (wt / "app/text.py").read_text() == BAD and (wt / "notes/todo.md").read_text() == "mine\n"
    assert not (wt / "report.txt").exists()  # the gate's leftover is not the agent's change
    write(wt, {"app/text.py": GOOD})
    proc = run_cli("submit", start["run_id"][:10], "--json", cwd=root)
    assert json.loads(proc.stdout)["status"] == "landed", proc.stderr
    files = set(git("show", "--name-only", "--format=", "main", cwd=root).split())
    assert files == {"app/text.py", "notes/todo.md", "BACKLOG.md", "PROGRESS.md"}


def test_a_refused_change_is_fed_back_and_nothing_is_written(make_repo):
    root = make(make_repo)
    start = json.loads(run_cli("start", "--json", cwd=root).stdout)
    wt = Path(start["worktree"])
    write(wt, {"otto.yaml": "verify: []\nmax_attempts: 99\n", "app/text.py": GOOD})
    out = json.loads(run_cli("submit", "--json", cwd=root).stdout)
    assert out["status"] == "retry" and "otto.yaml" in out["feedback"] and "protected" in out["feedback"]
    assert "max_attempts: 99" in (wt / "otto.yaml").read_text()  # left for the agent to undo
    git("checkout", "--", "otto.yaml", cwd=wt)
    out = json.loads(run_cli("submit", "--json", cwd=root).stdout)
    assert out["status"] == "landed"
    assert "max_attempts" not in git("show", "main:otto.yaml", cwd=root)


def test_an_agent_that_commits_in_the_worktree_is_captured_too(make_repo):
    root = make(make_repo)
    start = json.loads(run_cli("start", "--json", cwd=root).stdout)
    wt = Path(start["worktree"])
    write(wt, {"app/text.py": GOOD})
    git("commit", "-qam", "agent's own commit", cwd=wt)
    out = json.loads(run_cli("submit", "--json", cwd=root).stdout)
    assert out["status"] == "landed"
    assert git("log", "-1", "--format=%s", "main", cwd=root).strip() == "Phase 1: Add slug"


def test_out_of_attempts_fails_the_phase_and_releases_it(make_repo):
    root = make(make_repo, otto="verify: []\nmax_attempts: 2\n")
    log = agent(root, {"app/text.py": BAD}, {"app/text.py": BAD + "\n# still wrong\n"}, {"app/text.py": GOOD})
    assert [entry[2] for entry in log] == ["started", "retry", "failed"]
    assert log[2][1] == 1
    assert "**Status:** Failed" in git("show", "main:BACKLOG.md", cwd=root)
    assert not list((root / ".forge/leases").glob("*.json"))
    proc = run_cli("submit", cwd=root)
    assert proc.returncode == 2 and "no open host-agent session" in proc.stderr


def test_the_same_error_three_times_stops_the_session(make_repo):
    root = make(make_repo, otto="verify: []\nmax_attempts: 5\n")
    log = agent(root, *[{"app/text.py": BAD + "#" * i + "\n"} for i in range(1, 5)])
    assert [entry[2] for entry in log] == ["started", "retry", "retry", "failed"]
    record = json.loads(next((root / ".forge/runs").glob("*.json")).read_text())
    assert record["reason"].startswith("the same error 3 times") and record["retryable"] is False


def test_a_claim_outlives_start_and_keeps_other_runs_off_the_phase(make_repo, tmp_path):
    root = make(make_repo, phases=[phase_md("1", "Add slug", checks=(CHECK,)), phase_md("2", "Other")])
    first = json.loads(run_cli("start", "1", "--json", cwd=root).stdout)
    assert first["status"] == "started" and first["phase"]["id"] == "1"
    # another agent (or gitforge next) gets the other phase, never this one
    second = json.loads(run_cli("start", "--json", cwd=root).stdout)
    assert second["phase"]["id"] == "2" and any(first["run_id"] in n for n in second["notices"])
    proc = run_cli("next", "1", cwd=root)
    assert proc.returncode == 1 and f"claimed by host-agent run {first['run_id']}" in proc.stderr
    # starting the claimed phase again resumes the same session (an agent that lost its context)
    again = json.loads(run_cli("start", "1", "--json", cwd=root).stdout)
    assert again["status"] == "resumed" and again["run_id"] == first["run_id"]
    assert again["worktree"] == first["worktree"]
    # gc leaves a session's worktree alone
    run_cli("gc", cwd=root)
    assert Path(first["worktree"], ".git").exists()
    # two open sessions: submit needs to be told which
    proc = run_cli("submit", cwd=root)
    assert proc.returncode == 2 and "2 sessions are open" in proc.stderr
    status = json.loads(run_cli("status", "--json", cwd=root).stdout)
    assert {s["phase"] for s in status["sessions"]} == {"1", "2"}


def test_abandon_releases_the_phase_and_keeps_the_edits_until_gc(make_repo):
    root = make(make_repo)
    start = json.loads(run_cli("start", "--json", cwd=root).stdout)
    write(Path(start["worktree"]), {"app/text.py": BAD})
    proc = run_cli("abandon", start["run_id"], "--json", cwd=root)
    out = json.loads(proc.stdout)
    assert proc.returncode == 0 and out["status"] == "abandoned"
    assert Path(start["worktree"], "app/text.py").read_text() == BAD
    record = json.loads(next((root / ".forge/runs").glob("*.json")).read_text())
    assert record["status"] == "abandoned"
    assert git("log", "--format=%s", "main", cwd=root).splitlines() == ["initial"]  # nothing landed
    again = json.loads(run_cli("start", "--json", cwd=root).stdout)
    assert again["status"] == "started" and again["phase"]["id"] == "1" and again["run_id"] != start["run_id"]
    assert again["attempts_left"] == 3
    proc = run_cli("abandon", start["run_id"], cwd=root)
    assert proc.returncode == 2 and "not an open session" in proc.stderr


def test_nothing_to_start(make_repo):
    root = make(make_repo, phases=[phase_md("1", "Done already", status="Done")])
    proc = run_cli("start", "--json", cwd=root)
    out = json.loads(proc.stdout)
    assert proc.returncode == 0 and out["status"] == "nothing" and out["reason"]


def test_an_empty_submission_is_not_an_attempt(make_repo):
    root = make(make_repo)
    run_cli("start", cwd=root)
    proc = run_cli("submit", "--json", cwd=root)
    out = json.loads(proc.stdout)
    assert proc.returncode == 1 and out["status"] == "retry" and out["attempts_left"] == 3
    assert "no changes" in out["reason"]


def test_a_second_submit_while_one_runs_is_refused(make_repo, tmp_path):
    flag = tmp_path / "gate-started"
    slow = f"touch {flag} && sleep 4 && {CHECK}"
    root = make(make_repo, otto=f"verify:\n  - {{name: slow, run: {json.dumps(slow)}}}\n")
    start = json.loads(run_cli("start", "--json", cwd=root).stdout)
    write(Path(start["worktree"]), {"app/text.py": GOOD})
    first = subprocess.Popen([sys.executable, "-m", "gitforge", "submit", "--json"], cwd=root,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    deadline = time.monotonic() + 60
    while not flag.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = run_cli("submit", cwd=root)
    assert second.returncode == 1 and "submission of host-agent run" in second.stderr
    out, err = first.communicate(timeout=120)
    assert json.loads(out)["status"] == "landed", err


# -- the slash command ----------------------------------------------------------------------
COMMAND = ROOT / "templates" / ".claude" / "commands" / "forge-next.md"


def frontmatter(path: Path) -> tuple[dict, str]:
    text = path.read_text(encoding="utf-8")
    m = re.match(r"---\n(.*?)\n---\n(.*)", text, re.S)
    assert m, "the command file must start with a --- frontmatter block"
    return yaml.safe_load(m.group(1)), m.group(2)


def test_forge_next_command_frontmatter_and_body():
    meta, body = frontmatter(COMMAND)
    assert set(meta) <= {"description", "argument-hint", "allowed-tools", "model"}
    assert isinstance(meta["description"], str) and 10 < len(meta["description"]) < 200
    assert meta["argument-hint"] == "[phase-id]"
    tools = [t.strip() for t in meta["allowed-tools"].split(",")]
    assert "Bash(gitforge:*)" in tools and not any(t.startswith("Bash(") and t != "Bash(gitforge:*)" for t in tools)
    assert "$ARGUMENTS" in body and not re.search(r"\$[0-9]", body)
    # every gitforge command it tells the agent to run exists
    for sub in sorted(set(re.findall(r"gitforge (start|submit|abandon|show)\b", body))):
        assert run_cli(sub, "--help", cwd=ROOT).returncode == 0


def test_the_fields_and_statuses_the_command_relies_on_are_what_gitforge_prints(make_repo):
    _, body = frontmatter(COMMAND)
    root = make(make_repo)
    start = json.loads(run_cli("start", "--json", cwd=root).stdout)
    for key in re.findall(r"`(phase\.text|worktree|gates|run_id|attempts_left|reason|feedback)`", body):
        obj = start
        for part in key.split("."):
            assert part in obj, key
            obj = obj[part]
    statuses = set(re.findall(r'"status": "(\w+)"', body))
    assert statuses == {"nothing", "landed", "retry", "failed"}
    write(Path(start["worktree"]), {"app/text.py": BAD})
    assert json.loads(run_cli("submit", "--json", cwd=root).stdout)["status"] in statuses


def test_init_claude_installs_the_command_without_overwriting_yours(make_repo):
    root = make(make_repo)
    proc = run_cli("init", "--claude", cwd=root)
    assert proc.returncode == 0, proc.stderr
    installed = root / ".claude/commands/forge-next.md"
    assert installed.read_bytes() == COMMAND.read_bytes()
    installed.write_text("my own version\n")
    proc = run_cli("init", "--claude", cwd=root)
    assert proc.returncode == 0 and "left as it is" in proc.stderr
    assert installed.read_text() == "my own version\n"


# -- crashes ---------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_submit_killed_during_its_gates_loses_nothing(make_repo, tmp_path):
    import signal

    from gitforge.infra.proc import read_pid_file

    fast = tmp_path / "fast"
    slow = f"test -f {fast} || sleep 60; {CHECK}"
    root = make(make_repo, otto=f"verify:\n  - {{name: slow, run: {json.dumps(slow)}}}\n")
    start = json.loads(run_cli("start", "--json", cwd=root).stdout)
    write(Path(start["worktree"]), {"app/text.py": GOOD})
    proc = subprocess.Popen([sys.executable, "-m", "gitforge", "submit"], cwd=root, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid_files = root / ".forge/runs" / start["run_id"]
    deadline = time.monotonic() + 60
    while not any(read_pid_file(p)[1] for p in pid_files.glob("*/gate.pid")) and time.monotonic() < deadline:
        time.sleep(0.05)
    gate_pid = read_pid_file(next(pid_files.glob("*/gate.pid")))[1]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _alive(gate_pid)
    # the claim survived its submit, the agent's edit is still in the worktree
    assert json.loads(run_cli("status", "--json", cwd=root).stdout)["sessions"][0]["run_id"] == start["run_id"]
    fast.write_text("")
    again = run_cli("submit", "--json", cwd=root)
    assert json.loads(again.stdout)["status"] == "landed", again.stderr
    assert f"ended process {gate_pid}" in again.stderr
    deadline = time.monotonic() + 10
    while _alive(gate_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(gate_pid)
    assert "def slug" in git("show", "main:app/text.py", cwd=root)


def test_a_submit_that_died_moving_the_target_is_recovered_not_landed_twice(make_repo):
    root = make(make_repo)
    start = json.loads(run_cli("start", "--json", cwd=root).stdout)
    write(Path(start["worktree"]), {"app/text.py": GOOD})
    # a submit that died before its ref move: nothing landed, the session goes on
    record_path = root / ".forge/runs" / f"{start['run_id']}.json"
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "step": "landing"}))
    proc = run_cli("submit", "--json", cwd=root)
    assert json.loads(proc.stdout)["status"] == "landed", proc.stderr
    assert "nothing landed" in proc.stderr
    # and one that died right after it: recovery finds the commit and completes the record
    landed = json.loads(record_path.read_text())
    run_cli("start", "--json", cwd=root)  # (nothing left to claim)
    Path(root / ".forge/leases").mkdir(exist_ok=True)
    (root / ".forge/leases/1.json").write_text(json.dumps(
        {"phase": "1", "run_id": landed["run_id"], "pid": 1, "host": "h", "started": landed["started"],
         "kind": "session"}))
    record_path.write_text(json.dumps({**landed, "status": "running", "step": "landing"}))
    proc = run_cli("submit", "--json", cwd=root)
    out = json.loads(proc.stdout)
    assert out["status"] == "landed" and out["commit"] == landed["commit"], proc.stderr
    assert git("log", "--format=%s", "main", cwd=root).splitlines() == ["Phase 1: Add slug", "initial"]
    assert json.loads(record_path.read_text())["status"] == "landed"
    assert not (root / ".forge/leases/1.json").exists()


# -- the target moves while the agent works ------------------------------------------------------
def test_a_conflict_with_the_moved_target_hands_the_session_back_on_the_new_tip(make_repo):
    root = make(make_repo)
    start = json.loads(run_cli("start", "--json", cwd=root).stdout)
    wt = Path(start["worktree"])
    write(wt, {"app/text.py": GOOD})
    theirs = BASE["app/text.py"] + "\n\ndef whisper(s):\n    return s.lower()\n"
    write(root, {"app/text.py": theirs})
    moved = commit_all(root, "someone else's change")
    out = json.loads(run_cli("submit", "--json", cwd=root).stdout)
    assert out["status"] == "retry" and out["base"] == moved and out["attempts_left"] == 2
    assert "conflict markers" in out["feedback"] and "app/text.py" in out["feedback"]
    text = (wt / "app/text.py").read_text()
    assert "<<<<<<<" in text and "def whisper" in text and "def slug" in text
    assert git("rev-parse", "HEAD", cwd=wt).strip() == moved
    write(wt, {"app/text.py": theirs + "\n\ndef slug(s):\n    return s.lower().replace(' ', '-')\n"})
    out = json.loads(run_cli("submit", "--json", cwd=root).stdout)
    assert out["status"] == "landed", out
    landed = git("show", "main:app/text.py", cwd=root)
    assert "def whisper" in landed and "def slug" in landed and "<<<<<<<" not in landed
    assert git("rev-parse", "main~1", cwd=root).strip() == moved


def test_gates_failing_on_the_moved_target_hand_the_session_back(make_repo):
    exclusive = "test ! -f a.txt -o ! -f b.txt"
    root = make(make_repo, otto=f"verify:\n  - {{name: exclusive, run: {json.dumps(exclusive)}}}\n",
                phases=[phase_md("1", "Add slug")])
    start = json.loads(run_cli("start", "--json", cwd=root).stdout)
    wt = Path(start["worktree"])
    write(wt, {"a.txt": "a\n"})
    write(root, {"b.txt": "b\n"})
    moved = commit_all(root, "b arrives")
    out = json.loads(run_cli("submit", "--json", cwd=root).stdout)
    assert out["status"] == "retry" and out["base"] == moved, out
    assert "exclusive" in out["feedback"] and "on top" in out["feedback"]
    assert (wt / "a.txt").exists() and (wt / "b.txt").exists()
    (wt / "a.txt").unlink()
    write(wt, {"c.txt": "c\n"})
    out = json.loads(run_cli("submit", "--json", cwd=root).stdout)
    assert out["status"] == "landed", out
    files = set(git("ls-tree", "--name-only", "main", cwd=root).split())
    assert {"b.txt", "c.txt"} <= files and "a.txt" not in files


def test_a_phase_removed_from_the_backlog_meanwhile_ends_the_session_clearly(make_repo):
    root = make(make_repo, phases=[phase_md("1", "Add slug", checks=(CHECK,)), phase_md("2", "Other")])
    start = json.loads(run_cli("start", "1", "--json", cwd=root).stdout)
    write(Path(start["worktree"]), {"app/text.py": GOOD})
    write(root, {"BACKLOG.md": "# Backlog\n\n" + phase_md("2", "Other")})
    commit_all(root, "drop phase 1")
    proc = run_cli("submit", "--json", cwd=root)
    out = json.loads(proc.stdout)
    assert proc.returncode == 1 and out["status"] == "failed", proc.stderr
    assert "no phase 1" in out["reason"] and "internal error" not in proc.stderr
    assert not list((root / ".forge/leases").glob("*.json"))
    assert "def slug" not in git("show", "main:app/text.py", cwd=root)
    # an open session's worktree is not reported as a leftover by check
    again = json.loads(run_cli("start", "--json", cwd=root).stdout)
    assert again["phase"]["id"] == "2"
    findings = json.loads(run_cli("check", "--json", cwd=root).stdout)["findings"]
    worktrees = next(f for f in findings if f["id"] == "worktrees")
    assert start["worktree"] in worktrees["message"] and again["worktree"] not in worktrees["message"]
