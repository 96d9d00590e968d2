"""`gitforge check` and the quick tier before `gitforge next`: every finding provoked for real."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from conftest import PY, commit_all, git, make_diff, phase_md, run_cli, write
from gitforge.infra.state import Store

BASE = {"app.py": "x = 1\n"}
UTF8 = {"PYTHONIOENCODING": "utf-8"}
T0_IDS = ["repo", "commits", "config", "target", "backlog", "forge-writable", "builder", "leases", "claims",
          "locks", "git-locks", "runs", "worktrees"]


def check(root, *args, env=None):
    proc = run_cli("check", "--json", *args, cwd=root, env=env)
    report = json.loads(proc.stdout)
    assert report["command"] == "check" and report["ok"] == (proc.returncode == 0), proc.stdout
    return proc, report["findings"]


def one(findings, id):
    (found,) = [f for f in findings if f["id"] == id]
    return found


def patch(tmp_path, new="x = 2\n"):
    return make_diff(BASE, {"app.py": new}, tmp_path)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)


def iso(when: datetime) -> str:  # the format of gitforge.infra.state.now_iso()
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_not_a_repository(tmp_path):
    proc, findings = check(tmp_path)
    assert proc.returncode == 2
    repo = one(findings, "repo")
    assert repo["level"] == "error" and "is not inside a git repository" in repo["message"]
    assert "git init" in repo["fix"]
    assert [f["id"] for f in findings] == T0_IDS
    assert all(f["level"] == "skip" for f in findings[1:])
    human = run_cli("check", "--full", cwd=tmp_path, env=UTF8)
    assert human.returncode == 2
    assert "✗ repo: " in human.stderr and "    fix: run `git init`" in human.stderr
    assert "- gates: skipped" in human.stderr
    assert human.stdout.startswith("check: 1 error(s), 0 warning(s), 0 ok, 14 skipped")


def test_no_commits(tmp_path):
    git("init", "-q", cwd=tmp_path)
    proc, findings = check(tmp_path)
    assert proc.returncode == 2
    commits = one(findings, "commits")
    assert commits["level"] == "error" and "no commits yet" in commits["message"]
    assert "first commit" in commits["fix"]
    assert one(findings, "target")["level"] == "skip" and one(findings, "backlog")["level"] == "skip"
    assert one(findings, "config")["level"] == "ok" and one(findings, "forge-writable")["level"] == "ok"


def test_missing_target_branch_and_the_override(make_repo):
    root = make_repo(BASE, [phase_md("1", "One")], otto="target_branch: release\n")
    proc, findings = check(root)
    assert proc.returncode == 2
    target = one(findings, "target")
    assert target["level"] == "error"
    assert "target branch 'release' does not exist (branches: main)" in target["message"]
    assert "--target" in target["fix"] and one(findings, "backlog")["level"] == "skip"
    proc, findings = check(root, "--target", "main")
    assert proc.returncode == 0 and "target branch main at" in one(findings, "target")["message"]


def test_detached_head_without_target_branch(make_repo):
    root = make_repo(BASE, [phase_md("1", "One")])
    git("checkout", "-q", "--detach", cwd=root)
    proc, findings = check(root)
    target = one(findings, "target")
    assert proc.returncode == 2 and target["level"] == "error" and "HEAD is detached" in target["message"]
    assert "target_branch" in target["fix"]


def test_invalid_config_names_the_line_and_the_nearest_key(make_repo):
    root = make_repo(BASE, [phase_md("1", "One")], otto="max_attempt: 2\n")
    proc, findings = check(root, "--full")
    assert proc.returncode == 2
    config = one(findings, "config")
    assert config["level"] == "error"
    assert "otto.yaml:1: unknown key 'max_attempt'" in config["message"] and "'max_attempts'" in config["message"]
    assert config["fix"]
    for skipped in ("target", "backlog", "builder", "gates", "uncommitted"):
        assert one(findings, skipped)["level"] == "skip", skipped
    assert one(findings, "forge-writable")["level"] == "ok"


def test_malformed_backlog_names_the_line(make_repo):
    root = make_repo(BASE, [phase_md("1", "One"), "## Phase two: words are not ids\n"])
    proc, findings = check(root)
    assert proc.returncode == 2
    line = next(i for i, t in enumerate((root / "BACKLOG.md").read_text().splitlines(), 1) if "Phase two" in t)
    backlog = one(findings, "backlog")
    assert backlog["level"] == "error" and f"BACKLOG.md:{line}:" in backlog["message"] and backlog["fix"]


def test_backlog_not_committed(make_repo):
    root = make_repo(BASE, None)
    write(root, {"BACKLOG.md": "# Backlog\n\n" + phase_md("1", "One")})
    proc, findings = check(root)
    backlog = one(findings, "backlog")
    assert proc.returncode == 2 and backlog["level"] == "error"
    assert "BACKLOG.md is not committed on main" in backlog["message"]
    assert "git add BACKLOG.md" in backlog["fix"]


def test_read_only_forge_folder(make_repo):
    root = make_repo(BASE, [phase_md("1", "One")])
    assert check(root)[0].returncode == 0 and not (root / ".forge").exists()  # check creates nothing
    Store(root, root / ".git").ensure()  # as the first run leaves it
    forge_dir, prefix = root / ".forge", []
    os.chmod(forge_dir, 0o500)
    if os.geteuid() == 0:  # root writes through folder modes: run as root without that capability
        if shutil.which("setpriv") is None:
            pytest.skip("running as root, and setpriv is not there to drop CAP_DAC_OVERRIDE")
        os.chown(forge_dir, 65534, -1)
        os.chmod(forge_dir, 0o555)
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                  "--inh-caps=-dac_override,-dac_read_search"]
    try:
        proc = subprocess.run([*prefix, sys.executable, "-m", "gitforge", "check", "--json"], cwd=root,
                              capture_output=True, text=True, timeout=120)
    finally:
        if os.geteuid() == 0:
            os.chown(forge_dir, 0, -1)
        os.chmod(forge_dir, 0o700)
    findings = json.loads(proc.stdout)["findings"]
    forge = one(findings, "forge-writable")
    assert proc.returncode == 2 and forge["level"] == "error" and "Permission denied" in forge["message"]
    assert "chmod" in forge["fix"]
    assert all(one(findings, i)["level"] == "skip" for i in ("leases", "claims", "locks", "runs", "worktrees"))
    assert "1 runnable (next: phase 1)" in one(findings, "backlog")["message"]


def test_forge_that_is_a_file_is_unwritable(make_repo):
    root = make_repo(BASE, [phase_md("1", "One")])
    (root / ".forge").write_text("not a folder\n")
    proc, findings = check(root)
    forge = one(findings, "forge-writable")
    assert proc.returncode == 2 and forge["level"] == "error" and str(root / ".forge") in forge["message"]
    assert "move the file" in forge["fix"]
    assert one(findings, "leases")["level"] == "skip"


def test_anthropic_builder_without_a_key(make_repo, tmp_path):
    otto = "verify: []\nbuilder: {kind: anthropic}\n"
    root = make_repo(BASE, [phase_md("1", "Needs a model")], otto=otto)
    proc, findings = check(root)
    builder = one(findings, "builder")
    assert proc.returncode == 2 and builder["level"] == "error"
    assert "ANTHROPIC_API_KEY is not set" in builder["message"] and "phase(s) 1 need it" in builder["message"]
    assert "kind: command" in builder["fix"] and "### Patch" in builder["fix"]
    secret = "sk-ant-test-0123456789abcdef"
    keyed = run_cli("check", cwd=root, env={"ANTHROPIC_API_KEY": secret, "PYTHONPROFILEIMPORTTIME": "1"})
    assert keyed.returncode == 0, keyed.stderr
    assert secret not in keyed.stdout + keyed.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in keyed.stderr.splitlines() if "import time:" in line]
    assert "gitforge.health" in imported and not [m for m in imported if m.split(".")[0] == "anthropic"]
    # no key is needed while every runnable phase carries its own patch
    patched = make_repo(BASE, [phase_md("1", "Patched", patch=patch(tmp_path))], otto=otto, name="patched")
    proc, findings = check(patched)
    assert proc.returncode == 0 and "carries its own ### Patch" in one(findings, "builder")["message"]


def test_command_builder_whose_command_is_missing(make_repo):
    otto = "verify: []\nbuilder: {kind: command, command: 'no-such-agent-cli -p'}\n"
    root = make_repo(BASE, [phase_md("1", "Needs an agent")], otto=otto)
    proc, findings = check(root)
    builder = one(findings, "builder")
    assert proc.returncode == 2 and builder["level"] == "error" and "'no-such-agent-cli'" in builder["message"]
    assert "install no-such-agent-cli" in builder["fix"]
    write(root, {"otto.yaml": otto.replace("no-such-agent-cli", PY)})
    commit_all(root, "a real command")
    proc, findings = check(root)
    assert proc.returncode == 0 and one(findings, "builder")["level"] == "ok"


def test_patch_builder_warns_about_a_runnable_phase_without_a_patch(make_repo):
    root = make_repo(BASE, [phase_md("1", "No patch")])
    proc, findings = check(root)
    builder = one(findings, "builder")
    assert proc.returncode == 0 and builder["level"] == "warn" and "phase(s) 1 have no ### Patch" in builder["message"]
    assert "'### Patch'" in builder["fix"]


def test_stale_lease_is_counted_and_removed(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=patch(tmp_path))])
    Store(root, root / ".git").ensure()  # as an earlier run left it
    pid = dead_pid()
    lease = root / ".forge/leases/1.json"
    lease.write_text(json.dumps({"phase": "1", "run_id": "01STALE", "pid": pid, "host": socket.gethostname(),
                                 "started": iso(datetime.now(timezone.utc)), "kind": "process"}))
    proc, findings = check(root)
    assert proc.returncode == 0
    leases = one(findings, "leases")["message"]
    assert "removed 1 stale lease" in leases and f"pid {pid}" in leases and "phase 1" in leases
    assert not lease.exists()
    assert "1 runnable (next: phase 1)" in one(findings, "backlog")["message"]


def test_run_left_running_by_a_dead_process_is_reported_and_next_recovers_it(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=patch(tmp_path))])
    Store(root, root / ".git").ensure()  # as an earlier run left it
    run_id = "01J0000000000000000000DEAD"
    record_path = root / ".forge/runs" / f"{run_id}.json"
    record = {"run_id": run_id, "phase": "1", "title": "One", "status": "running", "step": "build",
              "target": "main", "base": git("rev-parse", "main", cwd=root).strip(), "branch": "forge/1-one",
              "builder": {"kind": "patch"}, "pid": dead_pid(), "host": socket.gethostname(),
              "started": iso(datetime.now(timezone.utc)), "attempts": [],
              "run_dir": str(root / ".forge/runs" / run_id)}
    record_path.write_text(json.dumps(record))
    proc, findings = check(root)
    runs = one(findings, "runs")
    assert proc.returncode == 0 and runs["level"] == "warn"
    assert f"run {run_id} (phase 1, pid {record['pid']}, during 'build')" in runs["message"]
    assert "`gitforge next` recovers them" in runs["fix"]
    assert json.loads(record_path.read_text())["status"] == "running"  # check recovers nothing itself
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(record_path.read_text())["status"] == "crashed"
    assert one(check(root)[1], "runs")["level"] == "ok"


def test_old_host_agent_claim_is_a_warning_naming_the_run(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=patch(tmp_path))])
    Store(root, root / ".git").ensure()  # as an earlier run left it
    claim = {"phase": "1", "run_id": "01J0000000000000000000CLAM", "pid": dead_pid(), "host": "laptop",
             "started": iso(datetime.now(timezone.utc) - timedelta(hours=13)), "kind": "session"}
    (root / ".forge/leases/1.json").write_text(json.dumps(claim))
    proc, findings = check(root)
    claims = one(findings, "claims")
    assert proc.returncode == 0 and claims["level"] == "warn"
    assert "host-agent run 01J0000000000000000000CLAM claimed phase 1 13 hours ago" in claims["message"]
    assert "gitforge abandon 01J0000000000000000000CLAM" in claims["fix"]
    assert "0 runnable" in one(findings, "backlog")["message"]  # the claim still holds the phase
    claim["started"] = iso(datetime.now(timezone.utc) - timedelta(hours=1))
    (root / ".forge/leases/1.json").write_text(json.dumps(claim))
    claims = one(check(root)[1], "claims")
    assert claims["level"] == "ok" and "1 open host-agent session(s)" in claims["message"]


def test_a_lock_held_by_a_live_process_is_information(make_repo):
    root = make_repo(BASE, [phase_md("1", "One")])
    check(root)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, filelock; lock = filelock.FileLock(sys.argv[1]); "
                               "lock.acquire(); print('held', flush=True); sys.stdin.read()",
                               str(root / ".forge/locks/merge.lock")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        proc, findings = check(root)
        locks = one(findings, "locks")
        assert proc.returncode == 0 and locks["level"] == "ok"
        assert "held by a live gitforge process (a run in progress): merge" in locks["message"]
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert one(check(root)[1], "locks")["message"] == "no lock is held"


def test_kept_worktree_warns_and_next_continues_past_it(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "Fails its check", priority="high", patch=patch(tmp_path),
                                     checks=("false",)),
                            phase_md("2", "Lands", priority="low",
                                     patch=make_diff(BASE, {"b.txt": "b\n"}, tmp_path))],
                     otto="verify: []\nmax_attempts: 1\n")
    assert run_cli("next", cwd=root).returncode == 1
    proc, findings = check(root)
    worktrees = one(findings, "worktrees")
    assert proc.returncode == 0 and worktrees["level"] == "warn"
    assert str(root / ".forge/worktrees/wt-1") in worktrees["message"] and "forge/1-" in worktrees["message"]
    assert "gitforge gc" in worktrees["fix"]
    proc = run_cli("next", cwd=root, env=UTF8)
    assert proc.returncode == 0, proc.stderr
    assert "! worktrees: 1 worktree(s) kept from failed runs" in proc.stderr and "gitforge gc" in proc.stderr
    assert "Landed phase 2: Lands" in proc.stdout
    assert run_cli("gc", cwd=root).returncode == 0
    assert one(check(root)[1], "worktrees")["level"] == "ok"


def test_healthy_repository_is_all_ok(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=patch(tmp_path))])
    proc, findings = check(root)
    assert proc.returncode == 0
    assert [f["id"] for f in findings] == T0_IDS
    assert all(f["level"] == "ok" and f["tier"] == "T0" for f in findings), findings
    assert set(findings[0]) == {"id", "tier", "level", "message", "fix", "detail"}
    human = run_cli("check", cwd=root, env=UTF8)
    lines = human.stderr.splitlines()
    assert human.returncode == 0 and len(lines) == len(T0_IDS) and all(line.startswith("✓ ") for line in lines)
    assert human.stdout == f"check: all {len(T0_IDS)} checks ok\n"


def gate_otto() -> str:
    command = f"{PY} -c 'import app; assert app.x == 2, app.x'"
    return f"verify:\n  - name: unit\n    run: {json.dumps(command)}\n"


def test_full_runs_the_gates_on_the_tip_not_the_working_tree(make_repo):
    root = make_repo(BASE, [phase_md("1", "One")], otto=gate_otto())
    write(root, {"app.py": "x = 2\n"})  # the fix, not committed
    assert run_cli("verify", cwd=root).returncode == 0  # the working tree passes
    proc, findings = check(root, "--full")
    assert proc.returncode == 1
    gates = one(findings, "gates")
    assert gates["level"] == "error" and gates["tier"] == "T1"
    assert "gate 'unit'" in gates["message"] and "exited with code 1" in gates["message"]
    assert "AssertionError: 1" in gates["detail"]
    log = re.search(r"\(log: (\S+)\)", gates["message"]).group(1)
    assert "AssertionError: 1" in open(log).read()
    assert "fix main first" in gates["fix"]
    uncommitted = one(findings, "uncommitted")
    assert uncommitted["level"] == "ok" and "local changes to 1 other file(s) (app.py)" in uncommitted["message"]
    assert one(findings, "worktrees")["level"] == "ok"  # a health check keeps no worktree
    human = run_cli("check", "--full", cwd=root, env=UTF8)
    assert human.returncode == 1 and "✗ gates: gate 'unit'" in human.stderr and "AssertionError" in human.stderr


def test_full_passes_when_the_tip_passes(make_repo):
    root = make_repo({"app.py": "x = 2\n"}, [phase_md("1", "One")], otto=gate_otto())
    proc, findings = check(root, "--full")
    assert proc.returncode == 0, proc.stdout
    gates = one(findings, "gates")
    assert gates["level"] == "ok" and "1 gate(s) pass on main at" in gates["message"]
    assert one(findings, "uncommitted")["message"].endswith(": no uncommitted changes")
    meta = [json.loads(p.read_text()) for p in (root / ".forge/worktrees").glob("wt-*.json")]
    assert meta and all(m["state"] == "idle" for m in meta)
    assert "forge/check-" not in git("branch", "--list", cwd=root)


def test_full_finds_an_uncommitted_backlog_edit(make_repo):
    root = make_repo(BASE, [phase_md("1", "One")])
    write(root, {"BACKLOG.md": (root / "BACKLOG.md").read_text() + "\nA note I have not committed.\n"})
    assert check(root)[0].returncode == 0  # T0 does not look at the checkout
    proc, findings = check(root, "--full")
    assert proc.returncode == 2
    uncommitted = one(findings, "uncommitted")
    assert uncommitted["level"] == "error" and "uncommitted changes to BACKLOG.md" in uncommitted["message"]
    assert uncommitted["fix"] == "a landing will leave your checkout behind; commit or stash them"


def test_next_refuses_on_a_t0_error(make_repo):
    root = make_repo(BASE, [phase_md("1", "One"), "## Phase two: words are not ids\n"])
    proc = run_cli("next", cwd=root, env=UTF8)
    assert proc.returncode == 2
    assert "✗ backlog: BACKLOG.md:" in proc.stderr and "    fix: " in proc.stderr
    assert "next stopped before claiming a phase" in proc.stderr
    assert not list((root / ".forge/runs").glob("*.json"))
    report = json.loads(run_cli("next", "--json", cwd=root).stdout)
    assert report["ok"] is False and report["exit_code"] == 2 and report["error"].startswith("BACKLOG.md:")
    # an unwritable .forge/ stops next with the fix, before anything is claimed
    fresh = make_repo(BASE, [phase_md("1", "One")], name="fresh")
    (fresh / ".forge").write_text("not a folder\n")
    proc = run_cli("next", cwd=fresh)
    assert proc.returncode == 2 and "forge-writable" in proc.stderr and "move the file" in proc.stderr


def test_the_backlog_check_is_linear_in_the_phases(make_repo):
    # found by bench/torture_backlog.py: 2,000 runnable phases made `gitforge check` hang,
    # each one found by a select_next pass over the whole board
    import time

    from gitforge import health
    root = make_repo(BASE, [f"## Phase {n}: p{n}\n" for n in range(1, 2001)],
                     otto='verify: []\nbuilder: {kind: command, command: "true"}\n')
    start = time.process_time()  # CPU time: a busy machine does not fail it
    checkup = health.quick(root, {})
    assert time.process_time() - start < 5
    (found,) = [f for f in checkup.findings if f.id == "backlog"]
    assert found.message.endswith("2000 phase(s), 2000 runnable (next: phase 1)")
