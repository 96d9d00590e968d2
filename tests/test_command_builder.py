"""The command builder on real worktrees, with small Python scripts standing in for coding agents."""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path

import pytest

from conftest import PY, git, phase_md
from gitforge.backlog import parse_backlog
from gitforge.builders.base import Job, Plan
from gitforge.builders.command import CommandBuilder, allowed_env, check_command, command_argv
from gitforge.config import BuilderConfig
from gitforge.errors import ConfigError
from gitforge.git import Git
from gitforge.infra.redact import MASK
from test_proc import _alive, _wait_for

BRANCH = "forge/1-add-greeting"
SECRET = "sk-ant-" + "s3cr3t" * 6


def _script(tmp_path: Path, name: str, body: str) -> str:
    """An agent: `body` saved as a script, returned as the command that runs it."""
    path = tmp_path / "agents" / f"{name}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("import json, os, subprocess, sys, time\nfrom pathlib import Path\n" + body)
    return f"{shlex.quote(PY)} {shlex.quote(str(path))}"


@pytest.fixture
def setup(make_repo, tmp_path):
    """A repository, a task worktree on its own branch at base, and a function making started builders."""
    phase = parse_backlog("# Backlog\n\n" + phase_md("1", "Add greeting")).phases[0]
    repo = make_repo({"app.py": "print('hi')\n"}, [phase_md("1", "Add greeting")])
    base = git("rev-parse", "HEAD", cwd=repo).strip()
    workdir = tmp_path / "wt"
    git("worktree", "add", "-q", "-b", BRANCH, str(workdir), base, cwd=repo)
    g = Git.open(repo)

    def make(command: str, *, timeout: float = 30, environ: dict | None = None, plan: Plan | None = None,
             protected: tuple[str, ...] = (".git/", ".forge/", "otto.yaml", ".env*"),
             allowlist: list[str] | None = None):
        job = Job(phase=phase, workdir=workdir, base=base, view=g.view(base), files=g.list_files(base),
                  run_dir=tmp_path / "run", env={"GITFORGE_RUN": "run-1", "GITFORGE_PHASE": "1",
                                                 "GITFORGE_WORKTREE": str(workdir)},
                  capture=lambda: g.capture_worktree(workdir, BRANCH, base, exclude=["**/__pycache__/**"]),
                  reset=lambda: g.worktree_reset(workdir, BRANCH, base), protected=protected, plan=plan)
        cfg = BuilderConfig(kind="command", command=command, timeout=timeout,
                            **({} if allowlist is None else {"env_allowlist": allowlist}))
        builder = CommandBuilder(cfg, phase, environ=dict(os.environ) if environ is None else environ)
        builder.start(job)
        return builder, job

    return make, base, workdir


def test_an_agent_that_commits_its_edit(setup, tmp_path):
    make, base, workdir = setup
    agent = _script(tmp_path, "commit", """
Path("app.py").write_text("print('hello')\\n")
subprocess.run(["git", "commit", "-qam", "agent edit"], check=True)
print("committed")
""")
    builder, job = make(agent)
    built = builder.build(1, None)
    assert built.failure is None and built.diff
    assert "-print('hi')\n+print('hello')" in built.diff and "a/app.py" in built.diff
    assert "exited with code 0" in built.summary and "error" not in built.summary
    assert git("rev-parse", "HEAD", cwd=workdir).strip() == base  # capture reset the branch, changes kept
    assert (workdir / "app.py").read_text() == "print('hello')\n"
    log = (job.run_dir / "agent" / "attempt-1.log").read_text()
    assert "committed" in log and (job.run_dir / "agent" / "prompt-1.md").is_file()
    assert builder.describe() == {"kind": "command", "command": agent}


def test_an_agent_that_edits_and_adds_files_without_committing(setup, tmp_path):
    make, _, workdir = setup
    agent = _script(tmp_path, "edit", """
Path("app.py").write_text("print('hey')\\n")
Path("pkg").mkdir()
Path("pkg/new.py").write_text("x = 1\\n")
Path("pkg/__pycache__").mkdir()
Path("pkg/__pycache__/new.cpython.pyc").write_bytes(b"\\0junk")
""")
    built = make(agent)[0].build(1, None)
    assert "+print('hey')" in built.diff and "b/pkg/new.py" in built.diff and "+x = 1" in built.diff
    assert "__pycache__" not in built.diff


def test_the_agent_sees_only_allowlisted_variables_and_the_job_env(setup, tmp_path):
    make, _, workdir = setup
    out = tmp_path / "env.json"
    agent = _script(tmp_path, "env", f"""
Path({str(out)!r}).write_text(json.dumps(dict(os.environ)))
Path("touched.txt").write_text("x\\n")
""")
    environ = {"PATH": os.environ["PATH"], "HOME": os.environ["HOME"], "LC_CTYPE": "C.UTF-8", "LC_NUMERIC": "C",
               "ANTHROPIC_API_KEY": SECRET, "MY_DB_PASSWORD": "hunter2", "GITFORGE_RUN": "spoofed"}
    builder, _ = make(agent, environ=environ, allowlist=["PATH", "HOME", "LC_*", "ANTHROPIC_API_KEY"])
    assert builder.build(1, None).diff
    seen = json.loads(out.read_text())
    assert "MY_DB_PASSWORD" not in seen and "hunter2" not in json.dumps(seen)
    assert seen["LC_CTYPE"] == "C.UTF-8" and seen["LC_NUMERIC"] == "C" and seen["ANTHROPIC_API_KEY"] == SECRET
    assert seen["GITFORGE_RUN"] == "run-1" and seen["GITFORGE_PHASE"] == "1"
    assert seen["GITFORGE_WORKTREE"] == str(workdir)
    assert not {k for k in seen if k.startswith("GIT_")}


def test_allowed_env_matches_names_and_patterns():
    env = {"PATH": "/bin", "LC_ALL": "C", "LC_X": "y", "LCX": "n", "path": "lower", "SECRET": "s"}
    assert allowed_env(env, ["PATH", "LC_*"]) == {"PATH": "/bin", "LC_ALL": "C", "LC_X": "y"}


def test_prompt_file_placeholder_and_what_the_prompt_says(setup, tmp_path):
    make, _, workdir = setup
    copy = tmp_path / "prompt-copy.md"
    agent = _script(tmp_path, "reader", f"""
Path({str(copy)!r}).write_text(Path(sys.argv[1]).read_text())
Path("app.py").write_text("print('read')\\n")
""") + " {prompt_file}"
    plan = Plan(files=("app.py",), approach="change the greeting", risks=("none",))
    builder, job = make(agent, plan=plan, protected=(".git/", "secrets/**"))
    assert builder.build(1, None).diff
    prompt = copy.read_text()
    assert prompt == (job.run_dir / "agent" / "prompt-1.md").read_text()
    assert "phase 1" in prompt and "Add greeting" in prompt and "1. Do it." in prompt
    assert "Files to touch: app.py" in prompt and "Approach: change the greeting" in prompt
    assert "current directory" in prompt and "Committing is optional" in prompt and "tests" in prompt
    for path in (".forge/", ".git/", "otto.yaml", "secrets/**"):
        assert path in prompt
    assert "previous attempt" not in prompt


def test_a_retry_carries_the_feedback(setup, tmp_path):
    make, _, _ = setup
    agent = _script(tmp_path, "noop2", "pass\n")
    builder, job = make(agent)
    builder.build(2, "gate 'tests' (pytest) exited with code 1\nAssertionError: 2 != 3")
    prompt = (job.run_dir / "agent" / "prompt-2.md").read_text()
    assert "AssertionError: 2 != 3" in prompt and "still holds the previous attempt's changes" in prompt


def test_the_prompt_is_one_argument_whatever_it_holds(tmp_path):
    prompt = "Fix \"quotes\" and 'apostrophes'; $(rm -rf /) `x` {prompt_file}\nsecond line"
    argv = command_argv("aider --yes --message {prompt} --file={prompt_file}", prompt, tmp_path / "p.md")
    assert argv == ["aider", "--yes", "--message", prompt, f"--file={tmp_path / 'p.md'}"]
    assert command_argv("claude -p --permission-mode acceptEdits", prompt, tmp_path / "p.md") == [
        "claude", "-p", "--permission-mode", "acceptEdits", prompt]
    assert command_argv("tool '--msg={prompt}'", "a b", tmp_path / "p.md") == ["tool", "--msg=a b"]


def test_without_a_placeholder_the_prompt_is_the_last_argument(setup, tmp_path):
    make, _, _ = setup
    out = tmp_path / "argv.json"
    agent = _script(tmp_path, "argv", f"""
Path({str(out)!r}).write_text(json.dumps(sys.argv[1:]))
Path("app.py").write_text("print('argv')\\n")
""") + " --flag"
    builder, job = make(agent)
    builder.build(1, None)
    args = json.loads(out.read_text())
    assert args == ["--flag", (job.run_dir / "agent" / "prompt-1.md").read_text()]


def test_a_hanging_agent_and_its_child_are_killed_at_the_timeout(setup, tmp_path):
    make, _, _ = setup
    pids = tmp_path / "pids"
    agent = _script(tmp_path, "hang", f"""
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
Path({str(pids)!r}).write_text(f"{{os.getpid()}} {{child.pid}}")
print("thinking...", flush=True)
time.sleep(300)
""")
    builder, job = make(agent, timeout=1.0)
    start = time.monotonic()
    built = builder.build(1, None)
    assert time.monotonic() - start < 8
    assert built.final and built.diff is None
    assert built.failure == "the agent command timed out after 1s; its process group was killed"
    assert "thinking..." in built.details[0]
    leader, child = (int(p) for p in pids.read_text().split())
    for pid in (leader, child):
        _wait_for(lambda pid=pid: not _alive(pid))
    assert not (job.run_dir / "agent" / "gate.pid").exists()


def test_an_agent_that_fails_without_changes(setup, tmp_path):
    make, _, _ = setup
    agent = _script(tmp_path, "fail", f"print('cannot do it, key {SECRET}'); sys.exit(1)\n")
    builder, job = make(agent, environ={**os.environ, "ANTHROPIC_API_KEY": SECRET})
    built = builder.build(1, None)
    assert built.failure.startswith("the agent made no changes") and "code 1" in built.failure
    assert not built.final and built.diff is None
    assert "cannot do it" in built.details[0] and SECRET not in built.details[0] and MASK in built.details[0]
    log = (job.run_dir / "agent" / "attempt-1.log").read_text()
    assert "cannot do it" in log and SECRET not in log


def test_an_agent_that_errors_after_making_changes_is_still_judged(setup, tmp_path):
    make, _, _ = setup
    agent = _script(tmp_path, "partial", "Path('app.py').write_text('print(1)\\n'); sys.exit(2)\n")
    built = make(agent)[0].build(1, None)
    assert built.diff and "+print(1)" in built.diff
    assert "code 2" in built.summary and "exited with an error" in built.summary


def test_an_executable_gone_at_build_time_is_a_final_failure(setup, tmp_path):
    make, _, _ = setup
    tool = tmp_path / "bin" / "my-agent"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    builder, _ = make(str(tool))
    tool.unlink()
    built = builder.build(1, None)
    assert built.final and "could not be started" in built.failure and "my-agent" in built.failure


@pytest.mark.parametrize("command, message", [
    (None, "builder.command is not set"),
    ("   ", "builder.command is not set"),
    ("claude -p 'unclosed", "cannot be parsed"),
    ("no-such-agent-xyz -p", "'no-such-agent-xyz' was not found on PATH"),
    ("/nowhere/agent -p", "/nowhere/agent does not exist or is not executable"),
])
def test_check_command_refuses_what_cannot_run(command, message):
    with pytest.raises(ConfigError) as err:
        check_command(BuilderConfig(kind="command", command=command), {"PATH": "/usr/bin:/bin"})
    assert message in err.value.message and err.value.hint


def test_check_command_looks_on_the_path_the_agent_will_get(tmp_path):
    tool = tmp_path / "bin" / "my-agent"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    environ = {"PATH": f"{tool.parent}:/usr/bin:/bin"}
    check_command(BuilderConfig(kind="command", command="my-agent -p"), environ)
    with pytest.raises(ConfigError) as err:
        check_command(BuilderConfig(kind="command", command="my-agent -p", env_allowlist=["HOME"]), environ)
    assert "PATH is not in builder.env_allowlist" in err.value.message
    assert "add PATH to builder.env_allowlist" in err.value.hint


def test_check_command_does_not_advise_allowing_path_when_it_is_allowed(tmp_path):
    environ = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    with pytest.raises(ConfigError) as err:
        check_command(BuilderConfig(kind="command", command="my-agent -p"), environ)
    assert "was not found on PATH" in err.value.message
    assert "env_allowlist" not in err.value.hint
    assert "install my-agent into a folder on that PATH" in err.value.hint
    with pytest.raises(ConfigError):
        CommandBuilder(BuilderConfig(kind="command", command="my-agent"), None, environ={})  # type: ignore[arg-type]
