"""Run gate commands in a worktree: a timeout each, the whole process group killed on expiry.
The process handling itself lives in `proc.py`."""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from gitforge.infra import gate_env as gate_env_mod
from gitforge.git import clean_env
from gitforge.infra.redact import redact, redact_file, secrets_from, without_own_secrets
from gitforge.infra.proc import PID_FILE, end_marked, owner_alive, read_pid_file, run_logged


@dataclass(frozen=True)
class GateSpec:
    name: str
    run: str
    timeout: float
    source: str = "otto.yaml"  # or "phase"


@dataclass(frozen=True)
class GateResult:
    name: str
    run: str
    source: str
    exit_code: int | None  # None when killed at its timeout
    duration: float
    timed_out: bool
    log: str
    tail: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def to_json(self) -> dict:
        return asdict(self)


def gate_specs(verify: Sequence, phase_commands: Sequence[str], default_timeout: float = 600) -> list[GateSpec]:
    """otto.yaml `verify` first, then the phase's Verification commands."""
    specs = [GateSpec(g.name, g.run, g.timeout, "otto.yaml") for g in verify]
    for i, cmd in enumerate(phase_commands, 1):
        specs.append(GateSpec(f"phase-check-{i}", cmd, default_timeout, "phase"))
    return specs


def end_orphans(run_dir: Path, worktree: str | None = None) -> list[int]:
    """End every process a gitforge started for a run (gates, setup, agents, fixes): found by
    the token each one's pid file names and every descendant inherits, wherever it runs now and
    whoever its parent is. The caller knows that gitforge is gone. Returns the pids ended."""
    return _end(sorted(run_dir.rglob(PID_FILE)) if run_dir.is_dir() else [], worktree)


def end_dead_owners(runs_dir: Path) -> list[int]:
    """`end_orphans` for every pid file under `.forge/runs/` whose gitforge process is dead
    (runs, and the gates of `verify`, `check --full` and the pre-push hook)."""
    files = [f for pattern in (f"*/{PID_FILE}", f"*/*/{PID_FILE}") for f in runs_dir.glob(pattern)] \
        if runs_dir.is_dir() else []
    return _end([f for f in sorted(files) if not owner_alive(read_pid_file(f)[0])])


def _end(pid_files: list[Path], worktree: str | None = None) -> list[int]:
    tokens, sessions = [], set()
    for pid_file in pid_files:
        token, pgid = read_pid_file(pid_file)
        if token:
            tokens.append(token)
            if pgid:
                sessions.add(pgid)
        elif pgid and worktree and _works_in(pgid, worktree):  # a pid file from before tokens
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
    killed = end_marked(tokens, sessions)
    for pid_file in pid_files:
        pid_file.unlink(missing_ok=True)
    return killed


def _works_in(pid: int, worktree: str) -> bool:
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return cwd == worktree or cwd.startswith(worktree.rstrip("/") + "/")


def run_gate(spec: GateSpec, cwd: Path, log_dir: Path, env: dict[str, str] | None = None,
             isolation=None, seen: dict | None = None) -> GateResult:
    """One gate, as a shell command, logged to `<log_dir>/<name>.log` (see `proc.run_logged`),
    with the worktree's import roots first on PYTHONPATH. `isolation` is otto.yaml's `gates`
    section (None: the defaults). Raises GateUnprovable, before running it, when the gate's
    interpreter would import the project from outside `cwd`."""
    pythonpath = getattr(isolation, "pythonpath", None)
    gate_env = gate_env_mod.isolate(without_own_secrets(clean_env(env)), cwd, pythonpath)
    if getattr(isolation, "import_check", True):
        gate_env_mod.check_gate(spec.name, spec.run, cwd, gate_env, pythonpath, {} if seen is None else seen)
    log_path = log_dir / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', spec.name)}.log"
    secrets = secrets_from()
    result = run_logged(spec.run, cwd, gate_env, log_path, spec.timeout, shell=True)
    redact_file(result.log, secrets)  # a gate's output becomes feedback, records and prompts
    return GateResult(spec.name, spec.run, spec.source, result.exit_code, result.duration, result.timed_out,
                      str(result.log), redact(result.tail, secrets))


def run_gates(specs: Sequence[GateSpec], cwd: Path, log_dir: Path, env: dict[str, str] | None = None,
              on_gate: Callable[[GateSpec, GateResult | None], None] | None = None,
              isolation=None) -> list[GateResult]:
    """Run gates in order; stop at the first failure. `on_gate` sees each start and end."""
    results: list[GateResult] = []
    seen: dict = {}  # the import check's answer per interpreter, for this round
    for spec in specs:
        if on_gate:
            on_gate(spec, None)
        result = run_gate(spec, cwd, log_dir, env, isolation, seen)
        results.append(result)
        if on_gate:
            on_gate(spec, result)
        if not result.ok:
            break
    return results


def describe_failure(result: GateResult) -> str:
    why = (f"timed out after {result.duration:.0f}s" if result.timed_out
           else f"exited with code {result.exit_code}")
    return f"gate '{result.name}' ({result.run}) {why}"
