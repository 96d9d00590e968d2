"""Run gate commands in a worktree: a timeout each, the whole process group killed on expiry."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from gitforge.git import clean_env

TAIL_LINES = 40
TAIL_BYTES = 8192  # a gate may print megabytes: only the end is kept in records and feedback
LINE_CHARS = 400
KILL_GRACE = 3.0
PID_FILE = "gate.pid"


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


def _kill_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            if sig == signal.SIGKILL:
                return
        except subprocess.TimeoutExpired:
            continue
    # Children that outlived the leader still share its group: make sure they are gone too.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def tail(text: str, lines: int = TAIL_LINES) -> str:
    kept = text.rstrip("\n").splitlines()[-lines:]
    return "\n".join(line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + " [...]" for line in kept)


def read_tail(path: Path) -> str:
    """The last TAIL_BYTES of a log, decoded leniently (never the whole of a huge file)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - TAIL_BYTES))
        data = f.read()
    text = data.decode("utf-8", errors="replace")
    if size > TAIL_BYTES:
        text = f"[... {size - TAIL_BYTES} earlier bytes in {path}]\n" + text.split("\n", 1)[-1]
    return text


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
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', spec.name)}.log"
    start = time.monotonic()
    timed_out = False
    with open(log_path, "wb") as log:
        log.write(f"$ {spec.run}\n".encode())
        log.flush()
        proc = subprocess.Popen(spec.run, shell=True, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=clean_env(env), start_new_session=True)
        pid_file = log_dir / PID_FILE  # lets the next run end this gate if gitforge is SIGKILLed
        pid_file.write_text(str(proc.pid))
        try:
            code: int | None = proc.wait(timeout=spec.timeout)
            # The leader is done; anything it left running in its group is ended now.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            code = None
        except BaseException:  # Ctrl-C or a kill of gitforge: the gate's own session must go too
            _kill_group(proc)
            raise
    pid_file.unlink(missing_ok=True)
    duration = time.monotonic() - start
    text = read_tail(log_path)
    if timed_out:
        note = f"\n[gitforge] killed after {spec.timeout:g}s timeout (process group {proc.pid})\n"
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(note)
        text += note
    return GateResult(spec.name, spec.run, spec.source, code, round(duration, 3), timed_out,
                      str(log_path), tail(text))


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
