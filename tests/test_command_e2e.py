"""builder.kind: command, end to end through `gitforge next`: a small script stands in for a
coding-agent CLI (`claude -p`, `aider --message`, `codex exec`)."""

from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path

from conftest import PY, git, phase_md, run_cli

BASE = {"calc.py": "def add(a, b):\n    return a + b\n"}
CHECK = f"{PY} -c 'from calc import mul; assert mul(2, 3) == 6, mul(2, 3)'"


def agent(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "agent.py"
    path.write_text("import os, pathlib, subprocess, sys, time\n" + textwrap.dedent(body))
    return path


def repo(make_repo, command: str, extra: str = "") -> Path:
    otto = (f"verify:\n  - name: check\n    run: {json.dumps(CHECK)}\n"
            f"builder:\n  kind: command\n  command: {json.dumps(command)}\n  timeout: 20\n{extra}")
    return make_repo(BASE, [phase_md("1", "Add mul")], otto=otto)


def record_of(root: Path) -> dict:
    (path,) = (root / ".forge" / "runs").glob("*.json")
    return json.loads(path.read_text())


def test_an_agent_that_edits_and_commits_lands(make_repo, tmp_path):
    script = agent(tmp_path, """
        prompt = pathlib.Path(sys.argv[1]).read_text()
        assert "Add mul" in prompt, prompt
        p = pathlib.Path("calc.py")
        p.write_text(p.read_text() + "\\n\\ndef mul(a, b):\\n    return a * b\\n")
        pathlib.Path("NOTES.txt").write_text("written by the agent\\n")
        subprocess.run(["git", "add", "-A"], check=True)
        subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "agent"], check=True)
        os.makedirs("__pycache__", exist_ok=True)
        pathlib.Path("__pycache__/calc.cpython-311.pyc").write_bytes(b"\\0junk")
        print("done")
    """)
    root = repo(make_repo, f"{PY} {script} {{prompt_file}}")
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    changed = set(git("show", "--name-only", "--format=", "main", cwd=root).split())
    assert changed == {"calc.py", "NOTES.txt", "BACKLOG.md", "PROGRESS.md"}  # not the agent's .pyc
    assert git("log", "-1", "--format=%s", "main", cwd=root).strip() == "Phase 1: Add mul"
    rec = record_of(root)
    assert rec["builder"]["kind"] == "command" and rec["status"] == "landed"


def test_gate_feedback_reaches_the_agent_which_fixes_its_work(make_repo, tmp_path):
    script = agent(tmp_path, """
        prompt = sys.stdin.read() if False else sys.argv[-1]
        p = pathlib.Path("calc.py")
        if "AssertionError: 5" in prompt:
            p.write_text(p.read_text().replace("return a + b  # mul", "return a * b"))
        else:
            p.write_text(p.read_text() + "\\n\\ndef mul(a, b):\\n    return a + b  # mul\\n")
    """)
    root = repo(make_repo, f"{PY} {script}")  # no placeholder: the prompt is the last argument
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "return a * b" in git("show", "main:calc.py", cwd=root)
    rec = record_of(root)
    assert [a["stage"] for a in rec["attempts"]] == ["gates", "committed"]
    second = Path(rec["run_dir"]) / "agent" / "prompt-2.md"
    assert "AssertionError: 5" in second.read_text()


def test_an_agent_that_hangs_is_killed_with_its_children(make_repo, tmp_path):
    pids = tmp_path / "pids"
    script = agent(tmp_path, f"""
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        pathlib.Path({str(pids)!r}).write_text(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(600)
    """)
    root = repo(make_repo, f"{PY} {script}")
    (root / "otto.yaml").write_text((root / "otto.yaml").read_text().replace("timeout: 20", "timeout: 1.5"))
    git("commit", "-qam", "short timeout", cwd=root)
    start = time.monotonic()
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert time.monotonic() - start < 60
    rec = record_of(root)
    assert "timed out" in rec["reason"] and len(rec["attempts"]) == 1 and rec["retryable"] is False
    assert "**Status:** Failed" in git("show", "main:BACKLOG.md", cwd=root)
    for pid in map(int, pids.read_text().split()):
        assert not _alive(pid), pid


def test_the_agent_sees_only_allowlisted_variables(make_repo, tmp_path, monkeypatch):
    seen = tmp_path / "env.json"
    script = agent(tmp_path, f"""
        pathlib.Path({str(seen)!r}).write_text(__import__("json").dumps(dict(os.environ)))
        p = pathlib.Path("calc.py")
        p.write_text(p.read_text() + "\\n\\ndef mul(a, b):\\n    return a * b\\n")
    """)
    root = repo(make_repo, f"{PY} {script}")
    proc = run_cli("next", cwd=root, env={"SECRET_TOKEN": "hunter2", "ANTHROPIC_API_KEY": "sk-ant-test-abcdefghij"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    env = json.loads(seen.read_text())
    assert "SECRET_TOKEN" not in env and env["GITFORGE_PHASE"] == "1" and env["ANTHROPIC_API_KEY"]
    for path in (root / ".forge").rglob("*"):
        if path.is_file():
            assert "sk-ant-test-abcdefghij" not in path.read_text(errors="replace"), path


def test_a_missing_agent_command_fails_fast(make_repo):
    root = repo(make_repo, "no-such-agent-cli -p")
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 2 and "no-such-agent-cli" in proc.stderr
    assert not list((root / ".forge" / "runs").glob("*.json"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its reaper is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_what_a_gate_leaves_behind_is_not_captured(make_repo, tmp_path):
    script = agent(tmp_path, """
        p = pathlib.Path("calc.py")
        text = p.read_text()
        if "def mul" in text:
            p.write_text(text.replace("a + b  # mul", "a * b"))
        else:
            p.write_text(text + "\\n\\ndef mul(a, b):\\n    return a + b  # mul\\n")
    """)
    root = repo(make_repo, f"{PY} {script}")
    report = f"{PY} -c 'open(\"test-report.xml\", \"w\").write(\"<r/>\")' && " + CHECK
    (root / "otto.yaml").write_text((root / "otto.yaml").read_text().replace(json.dumps(CHECK), json.dumps(report)))
    git("commit", "-qam", "a gate that writes a report", cwd=root)
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    changed = set(git("show", "--name-only", "--format=", "main", cwd=root).split())
    assert changed == {"calc.py", "BACKLOG.md", "PROGRESS.md"}
