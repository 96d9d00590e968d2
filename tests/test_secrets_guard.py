"""gitforge's own API key is out of reach of the processes it starts: not in their environment,
not in gitforge's initial environment block (/proc/<pid>/environ), while gitforge itself (its
SDK, the command builder's allowlist) still has it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from conftest import PY, git, phase_md, run_cli

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl are Linux's")

# Walks from the gate up to pid 1, then over every process, and looks for the keys (their
# values are in a file named on the command line, so they are in no command line themselves).
PROBE = textwrap.dedent(r'''
    import os, sys
    needles = open(sys.argv[1], "rb").read().split()
    found, chain, pid = [], [], os.getpid()
    def look(pid):
        for part in ("environ", "cmdline"):
            try:
                data = open(f"/proc/{pid}/{part}", "rb").read()
            except OSError as exc:
                print(f"  {pid} {part}: {exc.strerror}")
                continue
            found.extend(f"{pid} {part}" for n in needles if n in data)
    while pid >= 1:
        chain.append(pid)
        look(pid)
        if pid == 1:
            break
        pid = int(open(f"/proc/{pid}/stat", "rb").read().rsplit(b")", 1)[1].split()[1])
    for pid in chain:
        print("ancestor", pid, open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ")[:120])
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in chain:
            look(int(name))
    print("found:", found or "nothing")
    sys.exit(1 if found else 0)
''')

# A stand-in coding agent: proves it got the key through the allowlist, without writing it.
AGENT = textwrap.dedent('''
    import hashlib, os, pathlib
    key = os.environ.get("ANTHROPIC_API_KEY", "")
    pathlib.Path("agent.txt").write_text(hashlib.sha256(key.encode()).hexdigest() + "\\n")
''')


def test_a_gate_finds_the_key_in_no_ancestor_and_no_process(make_repo, tmp_path):
    key, token = f"sk-ant-guard-{uuid.uuid4().hex}", f"tok-guard-{uuid.uuid4().hex}"
    needles = tmp_path / "needles"
    needles.write_text(f"{key}\n{token}\n")
    probe, agent = f"{PY} probe.py {needles}", f"{PY} {tmp_path / 'agent.py'}"
    otto = (f"verify:\n  - {{name: probe, run: {json.dumps(probe)}, timeout: 60}}\n"
            f"builder: {{kind: command, command: {json.dumps(agent)}, timeout: 60}}\n"
            "pilot: false\nmax_attempts: 1\n")
    (tmp_path / "agent.py").write_text(AGENT)
    root = make_repo({"probe.py": PROBE}, [phase_md("1", "Prove the key is safe")], otto=otto)
    proc = run_cli("next", cwd=root, env={"ANTHROPIC_API_KEY": key, "ANTHROPIC_AUTH_TOKEN": token,
                                          "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"})
    (log,) = (root / ".forge" / "runs").rglob("probe.log")
    text = log.read_text()
    assert proc.returncode == 0, text + proc.stdout + proc.stderr
    assert "found: nothing" in text and "-m gitforge next" in text  # gitforge itself was looked at
    # gitforge still had the key for the agent it ran (through builder.env_allowlist)
    assert git("show", "main:agent.txt", cwd=root).strip() == hashlib.sha256(key.encode()).hexdigest()


def test_the_guard_keeps_os_environ_and_drops_the_key_for_children(tmp_path):
    script = textwrap.dedent("""
        import os, subprocess, sys
        from gitforge.infra.secrets_guard import guard
        print(guard())
        block = open("/proc/self/environ", "rb").read().split(b"\\0")
        print([e for e in block if e.startswith((b"ANTHROPIC", b"OTHER"))])
        print(os.environ["ANTHROPIC_API_KEY"])
        print(subprocess.run(["sh", "-c", "echo ${ANTHROPIC_API_KEY:-unset} $OTHER"], capture_output=True,
                             text=True).stdout.strip())
    """)
    key = "sk-ant-" + "k" * 24
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "ANTHROPIC_API_KEY": key, "OTHER": "kept"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "['ANTHROPIC_API_KEY']", f"[b'ANTHROPIC_API_KEY={'*' * len(key)}', b'OTHER=kept']", key, "unset kept"]


def _runs_as_nobody() -> str | None:
    """A Python the unprivileged user can run, when we can switch to that user at all."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return None
    for python in ("/usr/bin/python3", sys.executable):
        ok = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c", "pass"],
                            capture_output=True)
        if ok.returncode == 0:
            return python
    return None


def test_as_a_normal_user_a_child_cannot_read_gitforges_memory_but_gitforge_reads_its_childs_cwd(tmp_path):
    """PR_SET_DUMPABLE 0: same-user processes cannot read gitforge's /proc files (environ, mem,
    cwd); gitforge can still read a child's /proc/<pid>/cwd (gates.end_orphans needs it), as
    execve makes the child dumpable again. Only root can run this (to become another user)."""
    python = _runs_as_nobody()
    if python is None:
        pytest.skip("needs root and setpriv, to run as an unprivileged user")
    child = ("import os\npp = os.getppid()\nfor part in ('environ', 'mem', 'cwd'):\n"
             "    try:\n        open(f'/proc/{pp}/{part}', 'rb').close() if part != 'cwd' else os.readlink(f'/proc/{pp}/cwd')\n"
             "        print(part, 'readable')\n"
             "    except OSError as exc:\n        print(part, exc.strerror)\n"
             "import time; time.sleep(1)\n")
    parent = textwrap.dedent(f"""
        import os, subprocess, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from gitforge.infra.secrets_guard import guard
        if sys.argv[1] == "guard":
            guard()
        proc = subprocess.Popen([{python!r}, "-c", {child!r}], cwd="/tmp", stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        print("child cwd", os.readlink(f"/proc/{{proc.pid}}/cwd"))
        print(proc.communicate()[0].strip())
    """)
    runs = {}
    for mode in ("bare", "guard"):
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c", parent,
                               mode], capture_output=True, text=True, cwd="/tmp",
                              env={"PATH": "/usr/bin:/bin", "ANTHROPIC_API_KEY": "sk-ant-" + "n" * 24})
        assert done.returncode == 0, done.stderr
        runs[mode] = done.stdout.splitlines()
    assert runs["bare"] == ["child cwd /tmp", "environ readable", "mem readable", "cwd readable"]
    assert runs["guard"] == ["child cwd /tmp", "environ Permission denied", "mem Permission denied",
                             "cwd Permission denied"]
