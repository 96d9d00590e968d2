"""Run one child process the way gitforge runs every command it does not control (gates, setup
commands, coding agents): in its own session, output to a log file, a timeout, and nothing of
it left running afterwards -- not on timeout, not on Ctrl-C, not when it forks and exits.

Every such command carries a token in its environment (GITFORGE_PROC), which its children
inherit wherever they `cd` and whoever adopts them. Before it starts, a `gate.pid` file next to
its log records that token (and then its process group), so that a later gitforge can end all
of it (`end_marked`) if this one is SIGKILLed; when it ends normally, whatever it left running
in its group or under its token is ended at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TAIL_LINES = 40
TAIL_BYTES = 8192  # a command may print megabytes: only the end is kept in records and feedback
LINE_CHARS = 400
KILL_GRACE = 3.0
PID_FILE = "gate.pid"
MARK_VAR = "GITFORGE_PROC"  # inherited by every process a command starts: how its leftovers are found
EXIT_NOT_FOUND = 127  # the shell's codes for "no such command" and "cannot run it"
EXIT_CANNOT_RUN = 126


@dataclass(frozen=True)
class ProcResult:
    """How a command ended. `exit_code` is None when it was killed at its timeout; `error` is
    set (with exit code 127 or 126, as a shell would) when it could not be started at all."""

    exit_code: int | None
    timed_out: bool
    duration: float
    log: Path
    tail: str
    pid: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last `lines` lines, each cut to LINE_CHARS with its start and its end kept (the end
    of a line often says what happened): what fits in feedback and records."""
    from gitforge.infra.clip import middle

    kept = text.rstrip("\n").splitlines()[-lines:]
    return "\n".join(middle(line, LINE_CHARS) for line in kept)


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


def kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, give it KILL_GRACE seconds, then SIGKILL whatever is left."""
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


def end_leftovers(pgid: int, token: str | None = None) -> None:
    """The leader exited: SIGKILL anything it left running in its group (a background `sleep`)
    or anywhere else under its token (a daemon that called setsid), which would otherwise hold
    the worktree and the log open."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if token:
        end_marked([token], {pgid})


def _stat(pid: int | str) -> list[bytes]:
    """The fields of /proc/<pid>/stat after the command name (field 3 on), [] when unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _proc_stat(pid: str) -> tuple[int, int] | None:
    """(process group, session) of a live process."""
    fields = _stat(pid)
    try:
        return int(fields[2]), int(fields[3])
    except (IndexError, ValueError):
        return None


def _marks(pid: str) -> set[str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read()
    except OSError:
        return set()
    prefix = MARK_VAR.encode() + b"="
    return {item[len(prefix):].decode("ascii", "replace") for item in env.split(b"\0") if item.startswith(prefix)}


def end_marked(tokens: Sequence[str], sessions: set[int] = frozenset()) -> list[int]:
    """SIGKILL every process that carries one of `tokens` in its environment, and every process
    in a session of `sessions` once one process of that session is shown to be ours by its token
    (a child that cleared its environment stays in its parent's session). Returns the pids ended."""
    wanted = set(tokens)
    if not wanted or not os.path.isdir("/proc"):
        return []
    me = os.getpid()
    table = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != me and (stat := _proc_stat(pid)) is not None:
            table.append((int(pid), stat[1], bool(_marks(pid) & wanted)))
    ours = {sid for _, sid, marked in table if marked and sid in sessions}
    killed = []
    for pid, sid, marked in table:
        if marked or sid in ours:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    return killed


def read_pid_file(path: Path) -> tuple[str | None, int | None]:
    """(token, process group) from a pid file; an old file holds only the group."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None, None
    try:
        data = json.loads(text)
    except ValueError:
        return None, None
    if isinstance(data, int):
        return None, data
    if isinstance(data, dict):
        token, pgid = data.get("token"), data.get("pgid")
        return (token if isinstance(token, str) else None), (pgid if isinstance(pgid, int) else None)
    return None, None


def start_time(pid: int) -> str | None:
    """When a process started (clock ticks since boot, /proc/<pid>/stat field 22): with its pid,
    an identity no later process can have."""
    fields = _stat(pid)
    return fields[19].decode() if len(fields) > 19 else None


def new_token() -> str:
    """"<pid>.<start time>-<random>": names the gitforge process that starts a command."""
    return f"{os.getpid()}.{start_time(os.getpid()) or 0}-{secrets.token_hex(8)}"


def owner_pid(token: str | None) -> int | None:
    """The gitforge process that started a command, from its token."""
    head = (token or "").partition("-")[0].partition(".")[0]
    return int(head) if head.isdigit() else None


def owner_alive(token: str | None) -> bool:
    """Whether the gitforge process a token names still runs: its pid is alive and started when
    the token says (a pid given to another process since does not count)."""
    pid = owner_pid(token)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    recorded = (token or "").partition("-")[0].partition(".")[2]
    now = start_time(pid)
    return not recorded or recorded == "0" or now is None or now == recorded


def _write_pid_file(path: Path, token: str, pgid: int | None) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"token": token, "pgid": pgid}), encoding="utf-8")
    os.replace(tmp, path)


def _spawn_error(exc: OSError, argv0: str, cwd: Path) -> tuple[int, str]:
    """A clear sentence for a command that could not be started, and the shell's exit code for it."""
    if not cwd.is_dir():
        return EXIT_CANNOT_RUN, f"cannot run {argv0!r}: its working directory {cwd} does not exist"
    if isinstance(exc, FileNotFoundError):
        return EXIT_NOT_FOUND, (f"cannot run {argv0!r}: no such executable (not found on PATH, or the path "
                                f"does not exist)")
    if isinstance(exc, PermissionError):
        return EXIT_CANNOT_RUN, f"cannot run {argv0!r}: permission denied (is it executable?)"
    return EXIT_CANNOT_RUN, f"cannot run {argv0!r}: {exc.strerror or exc}"


def _header(cmd: str | Sequence[str]) -> str:
    return f"$ {cmd if isinstance(cmd, str) else shlex.join(cmd)}\n"


def run_logged(cmd: str | Sequence[str], cwd: Path, env: Mapping[str, str], log_path: Path, timeout: float, *,
               shell: bool = False, header: str | None = None) -> ProcResult:
    """Run `cmd` (an argv list, or a shell string with `shell=True`) in `cwd` with exactly `env`,
    stdin from /dev/null and all output into `log_path` (after `header`, by default "$ cmd").
    Never raises for a command that cannot start; re-raises KeyboardInterrupt and the like only
    after the command's whole process group has been killed."""
    if shell and not isinstance(cmd, str):
        raise TypeError("shell=True takes the command as one string")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_file = log_path.parent / PID_FILE  # lets the next run end this command if gitforge is SIGKILLed
    token = new_token()
    _write_pid_file(pid_file, token, None)  # before the start: a kill right after Popen leaves a trace
    env = {**env, MARK_VAR: token}
    start = time.monotonic()
    timed_out = False
    with open(log_path, "wb") as log:
        log.write((_header(cmd) if header is None else header).encode())
        log.flush()
        args = cmd if isinstance(cmd, str) else list(cmd)
        try:
            proc = subprocess.Popen(args, shell=shell, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=dict(env), start_new_session=True)
        except OSError as exc:
            argv0 = "/bin/sh" if shell else (args if isinstance(args, str) else args[0])
            code, message = _spawn_error(exc, argv0, Path(cwd))
            log.write(f"[gitforge] {message}\n".encode())
            pid_file.unlink(missing_ok=True)
            return ProcResult(code, False, round(time.monotonic() - start, 3), log_path, message, error=message)
        _write_pid_file(pid_file, token, proc.pid)
        try:
            code: int | None = proc.wait(timeout=timeout)
            end_leftovers(proc.pid, token)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(proc)
            end_marked([token], {proc.pid})
            code = None
        except BaseException:  # Ctrl-C or a kill of gitforge: the command's own session must go too
            kill_group(proc)
            end_marked([token], {proc.pid})
            pid_file.unlink(missing_ok=True)
            raise
    pid_file.unlink(missing_ok=True)
    duration = time.monotonic() - start
    text = read_tail(log_path)
    if timed_out:
        note = f"\n[gitforge] killed after {timeout:g}s timeout (process group {proc.pid})\n"
        with open(log_path, "a", encoding="utf-8") as log_end:
            log_end.write(note)
        text += note
    return ProcResult(code, timed_out, round(duration, 3), log_path, tail(text), pid=proc.pid)
