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

from gitforge.git import clean_env
from gitforge.redact import redact, redact_file, secrets_from, without_own_secrets
from gitforge.proc import PID_FILE, run_logged


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


def end_orphans(run_dir: Path, worktree: str | None) -> list[int]:
    """Kill the process groups of gates a dead gitforge left running (found by their pid files).
    A pid is only trusted while its process still works inside the run's worktree."""
    killed = []
    for pid_file in sorted(run_dir.rglob(PID_FILE)) if run_dir.is_dir() else []:
        try:
            pid = int(pid_file.read_text())
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except (ValueError, OSError):
            pid_file.unlink(missing_ok=True)
            continue
        if worktree and (cwd == worktree or cwd.startswith(worktree.rstrip("/") + "/")):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
                killed.append(pid)
        pid_file.unlink(missing_ok=True)
    return killed


def run_gate(spec: GateSpec, cwd: Path, log_dir: Path, env: dict[str, str] | None = None) -> GateResult:
    """One gate, as a shell command, logged to `<log_dir>/<name>.log` (see `proc.run_logged`)."""
    log_path = log_dir / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', spec.name)}.log"
    secrets = secrets_from()
    result = run_logged(spec.run, cwd, without_own_secrets(clean_env(env)), log_path, spec.timeout, shell=True)
    redact_file(result.log, secrets)  # a gate's output becomes feedback, records and prompts
    return GateResult(spec.name, spec.run, spec.source, result.exit_code, result.duration, result.timed_out,
                      str(result.log), redact(result.tail, secrets))


def run_gates(specs: Sequence[GateSpec], cwd: Path, log_dir: Path, env: dict[str, str] | None = None,
              on_gate: Callable[[GateSpec, GateResult | None], None] | None = None) -> list[GateResult]:
    """Run gates in order; stop at the first failure. `on_gate` sees each start and end."""
    results: list[GateResult] = []
    for spec in specs:
        if on_gate:
            on_gate(spec, None)
        result = run_gate(spec, cwd, log_dir, env)
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
