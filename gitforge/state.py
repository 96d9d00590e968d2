"""Everything under `.forge/`: run records, events, leases, locks. Every write is atomic.

Layout (DESIGN.md §1)::

    .forge/runs/<run-id>.json      one record per run
    .forge/runs/<run-id>/          gate logs, patches, diff-log.md
    .forge/events.jsonl            append-only, one JSON object per line, ULID ids
    .forge/leases/<phase>.json     who works on what; live while its lock is held
    .forge/locks/*.lock            filelock files (released by the OS when a holder dies)
    .forge/worktrees/              pooled task worktrees (see worktree.py)
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from gitforge.errors import LockBusy

SCHEMA_VERSION = 1
FORGE_DIR = ".forge"
EXCLUDE_LINE = "/.forge/"
# Locks this process holds as leases. flock excludes other processes (and other threads, which
# open their own descriptors), but a FileLock is re-entrant within a thread: this closes that gap.
_HELD: set[str] = set()
# FileLock's singleton registry holds its objects weakly, and a collected FileLock releases
# its flock: keep every lock object alive for the life of the process.
_LOCKS: dict[str, FileLock] = {}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    from ulid import ULID  # ~20 ms; only paid when something is written

    return str(ULID())


def atomic_write(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write `data` to `path` so that a reader sees the old or the new file, never a torn one
    (nor, with `mode`, one without its permissions)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def append_jsonl(path: Path, obj: Any) -> None:
    """Append one JSON line with a single O_APPEND write: concurrent writers never interleave,
    and a line torn by a crash is skipped by `read_jsonl`."""
    line = (json.dumps(obj, sort_keys=False) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> list[Any]:
    out = []
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
    return out


@dataclass(frozen=True)
class Lease:
    phase: str
    run_id: str
    pid: int
    host: str
    started: str
    # "process": live while its process holds the phase lock (gitforge next).
    # "session": a host agent's claim (gitforge start); live until submit lands or fails, or abandon.
    kind: str = "process"


class Store:
    """The `.forge/` directory of one repository."""

    def __init__(self, root: Path, git_common_dir: Path | None = None) -> None:
        self.root = Path(root)
        self.dir = self.root / FORGE_DIR
        self._git_common_dir = git_common_dir

    # -- layout ---------------------------------------------------------------------------
    @property
    def runs_dir(self) -> Path:
        return self.dir / "runs"

    @property
    def worktrees_dir(self) -> Path:
        return self.dir / "worktrees"

    @property
    def locks_dir(self) -> Path:
        return self.dir / "locks"

    @property
    def leases_dir(self) -> Path:
        return self.dir / "leases"

    @property
    def events_path(self) -> Path:
        return self.dir / "events.jsonl"

    def run_dir(self, run_id: str) -> Path:
        d = self.runs_dir / run_id
        d.mkdir(parents=True, exist_ok=True)
        return d

    def ensure(self) -> Store:
        """Create `.forge/` on demand and keep it out of git through info/exclude."""
        for d in (self.runs_dir, self.locks_dir, self.leases_dir, self.worktrees_dir):
            d.mkdir(parents=True, exist_ok=True)
        if self._git_common_dir is not None:
            self._exclude(self._git_common_dir / "info" / "exclude")
        return self

    @staticmethod
    def _exclude(exclude: Path) -> None:
        text = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
        if any(line.strip() in (EXCLUDE_LINE, ".forge/", ".forge", "/.forge") for line in text.splitlines()):
            return
        if text and not text.endswith("\n"):
            text += "\n"
        atomic_write(exclude, (text + "# gitforge run state\n" + EXCLUDE_LINE + "\n").encode())

    # -- locks ----------------------------------------------------------------------------
    def lock(self, name: str) -> FileLock:
        """The process-wide lock object for `.forge/locks/<name>.lock` (one object per path)."""
        self.locks_dir.mkdir(parents=True, exist_ok=True)
        path = str(self.locks_dir / f"{name}.lock")
        if path not in _LOCKS:
            _LOCKS[path] = FileLock(path, is_singleton=True)
        return _LOCKS[path]

    @contextlib.contextmanager
    def locked(self, name: str, timeout: float = -1, what: str | None = None) -> Iterator[None]:
        lock = self.lock(name)
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise LockBusy(
                f"{what or name} is held by another gitforge process",
                hint=f"wait for it to finish (lock file {self.locks_dir / (name + '.lock')})",
            ) from None
        try:
            yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def held_if_free(self, name: str) -> Iterator[bool]:
        """Take the lock if no other process holds it; yields whether it was taken."""
        lock = self.lock(name)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def is_locked_elsewhere(self, name: str) -> bool:
        """True when another live process holds the lock (a dead holder's flock is gone)."""
        lock = self.lock(name)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return True
        lock.release()
        return False

    # -- leases ---------------------------------------------------------------------------
    def _take_phase_lock(self, phase: str) -> FileLock:
        lock = self.lock(f"phase-{phase}")
        try:
            if lock.lock_file in _HELD:
                raise Timeout(lock.lock_file)
            lock.acquire(timeout=0)
        except Timeout:
            other = self.read_lease(phase)
            if other is not None and other.kind == "session":
                raise LockBusy(f"phase {phase}: a submission of host-agent run {other.run_id} is in progress",
                               hint="wait for it to finish (gitforge status shows the run)") from None
            raise self.busy_error(phase, other) from None
        return lock

    @staticmethod
    def busy_error(phase: str, other: Lease | None) -> LockBusy:
        if other is not None and other.kind == "session":
            return LockBusy(f"phase {phase} is claimed by host-agent run {other.run_id} (gitforge start, "
                            f"{other.started} on {other.host})",
                            hint=f"let that session submit, or release it: gitforge abandon {other.run_id}")
        who = f"run {other.run_id} (pid {other.pid} on {other.host})" if other else "another process"
        return LockBusy(f"phase {phase} is already being worked on by {who}",
                        hint="wait for that run to finish, or pick another phase")

    @contextlib.contextmanager
    def lease(self, phase: str, run_id: str) -> Iterator[Lease]:
        """Work on a phase. Live exactly while this process holds `locks/phase-<id>.lock`. A
        host agent's claim on the phase refuses it, except for that claim's own run (submit)."""
        lock = self._take_phase_lock(phase)
        path = self.leases_dir / f"{phase}.json"
        claim = self.read_lease(phase)
        if claim is not None and claim.kind == "session":
            if claim.run_id != run_id:
                lock.release()
                raise self.busy_error(phase, claim)
            lease, own_file = claim, False
        else:
            lease, own_file = Lease(phase, run_id, os.getpid(), socket.gethostname(), now_iso()), True
        _HELD.add(lock.lock_file)
        try:
            if own_file:
                atomic_write_json(path, lease.__dict__)
            yield lease
        finally:
            if own_file:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            _HELD.discard(lock.lock_file)
            lock.release()

    def claim(self, phase: str, run_id: str) -> Lease:
        """A host agent's claim on a phase: it outlives this process, until `release_claim`."""
        held = self.lock(f"phase-{phase}").lock_file in _HELD  # this process works on it (submit)
        lock = None if held else self._take_phase_lock(phase)
        try:
            other = self.read_lease(phase)
            if other is not None and other.kind == "session" and other.run_id != run_id:
                raise self.busy_error(phase, other)
            lease = Lease(phase, run_id, os.getpid(), socket.gethostname(), now_iso(), "session")
            atomic_write_json(self.leases_dir / f"{phase}.json", lease.__dict__)
            return lease
        finally:
            if lock is not None:
                lock.release()

    def release_claim(self, phase: str, run_id: str) -> bool:
        """Drop a host agent's claim (the caller holds the phase, or the claim is its own)."""
        lease = self.read_lease(phase)
        if lease is None or lease.kind != "session" or lease.run_id != run_id:
            return False
        with contextlib.suppress(FileNotFoundError):
            (self.leases_dir / f"{phase}.json").unlink()
        return True

    def read_lease(self, phase: str) -> Lease | None:
        try:
            return Lease(**read_json(self.leases_dir / f"{phase}.json"))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None

    def live_leases(self) -> dict[str, Lease]:
        """Leases whose holder is alive, and host agents' claims; stale process lease files
        (holder died) are removed."""
        live: dict[str, Lease] = {}
        if not self.leases_dir.is_dir():
            return live
        for path in sorted(self.leases_dir.glob("*.json")):
            phase = path.stem
            lease = self.read_lease(phase)
            if lease is not None and lease.kind == "session":
                live[phase] = lease
                continue
            held_here = self.lock(f"phase-{phase}").lock_file in _HELD
            if held_here or self.is_locked_elsewhere(f"phase-{phase}"):
                if lease is not None:
                    live[phase] = lease
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        return live

    def claims(self) -> list[Lease]:
        """Host agents' open claims, oldest first."""
        return sorted((lease for lease in self.live_leases().values() if lease.kind == "session"),
                      key=lambda lease: lease.started)

    # -- runs -----------------------------------------------------------------------------
    def save_run(self, record: dict[str, Any]) -> None:
        record["schema_version"] = SCHEMA_VERSION
        record["updated"] = now_iso()
        atomic_write_json(self.runs_dir / f"{record['run_id']}.json", record)

    def load_run(self, run_id: str) -> dict[str, Any] | None:
        try:
            return read_json(self.runs_dir / f"{run_id}.json")
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def runs(self) -> list[dict[str, Any]]:
        """All run records, oldest first (ULIDs sort by time)."""
        out = []
        if self.runs_dir.is_dir():
            for path in sorted(self.runs_dir.glob("*.json")):
                with contextlib.suppress(json.JSONDecodeError, OSError):
                    out.append(read_json(path))
        return out

    def find_runs(self, prefix: str) -> list[dict[str, Any]]:
        prefix = prefix.upper()
        return [r for r in self.runs() if r.get("run_id", "").startswith(prefix)]

    # -- events ---------------------------------------------------------------------------
    def event(self, kind: str, **data: Any) -> dict[str, Any]:
        ev = {"id": new_id(), "ts": now_iso(), "kind": kind, **data}
        append_jsonl(self.events_path, ev)
        return ev

    def events(self) -> list[dict[str, Any]]:
        return read_jsonl(self.events_path)
