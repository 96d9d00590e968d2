"""Everything under `.forge/`: run records, events, leases, locks. Every write is atomic.

Layout (DESIGN.md §1)::

    .forge/runs/<run-id>.json      one record per run
    .forge/runs/<run-id>/          gate logs, patches, diff-log.md
    .forge/events.jsonl            append-only, one JSON object per line, ULID ids
    .forge/batches/<id>/ledger.jsonl   a `gitforge run`'s shared spend and failures (state.ledger)
    .forge/leases/<phase>.json     who works on what; live while its lock is held
    .forge/locks/*.lock            filelock files (released by the OS when a holder dies)
    .forge/worktrees/              pooled task worktrees, and wt-N.json about each (see worktree.py)

Nothing is created until there is something to record: where there is no `.forge/`, readers
find nothing and locks need no file (state.locks); the first write creates the folders and
the info/exclude line. A file that is not what it should be (not JSON, not UTF-8, the wrong
shape, a folder where a file belongs) is set aside with a warning, never deleted, and the
reader goes on without it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from gitforge.errors import LockBusy, StaleRecord, UsageError
from gitforge.infra.state import shapes
from gitforge.infra.state.files import (Corrupt, append_jsonl, atomic_write, atomic_write_json, load_json, new_id,
                                  now_iso, read_json, read_jsonl, set_aside)
from gitforge.infra.state.leases import Lease, Leases, plain_name
from gitforge.infra.state.locks import Busy, file_lock, folder_busy, folder_lock, wait_for_creators

__all__ = ["Lease", "Store", "append_jsonl", "atomic_write", "atomic_write_json", "new_id", "now_iso", "read_json",
           "read_jsonl", "set_aside"]

SCHEMA_VERSION = 1
FORGE_DIR = ".forge"
EXCLUDE_LINE = "/.forge/"
FOLDERS = ("runs", "locks", "leases", "worktrees")
_SAVING = threading.Lock()  # run-record saves of this process's threads, one at a time (filelock lets threads in)
_WARNED: set[str] = set()  # `.forge` paths already reported as not a folder


class Store(Leases):
    """The `.forge/` directory of one repository."""

    def __init__(self, root: Path, git_common_dir: Path | None = None) -> None:
        self.root = Path(root)
        self.dir = self.root / FORGE_DIR
        self._git_common_dir = git_common_dir
        self._ready = False

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
        """`.forge/runs/<run-id>/`, created (a run is about to write its logs there)."""
        d = self.ensure().runs_dir / run_id
        self._folder(d, create=True)
        return d

    def ensure(self) -> Store:
        """Create `.forge/` and its folders and keep it out of git through info/exclude: what
        the first write needs. A `.forge` that is not a folder is a UsageError saying what to do."""
        if self._ready and self.dir.is_dir():
            return self
        if not self.dir.is_dir() and (self.dir.exists() or self.dir.is_symlink()):
            raise UsageError(f"{self.dir} is not a folder: gitforge keeps its run state in a folder of that name",
                             hint=f"move it away (mv {self.dir} {self.dir}.old), then run the command again")
        for name in FOLDERS:
            self._folder(self.dir / name, create=True)
        if self._git_common_dir is not None:
            self._exclude(self._git_common_dir / "info" / "exclude")
        self._ready = True
        return self

    @staticmethod
    def _exclude(exclude: Path) -> None:
        text = exclude.read_text(encoding="utf-8", errors="surrogateescape") if exclude.is_file() else ""
        if any(line.strip() in (EXCLUDE_LINE, ".forge/", ".forge", "/.forge") for line in text.splitlines()):
            return
        if text and not text.endswith("\n"):
            text += "\n"
        atomic_write(exclude, (text + "# gitforge run state\n" + EXCLUDE_LINE + "\n").encode("utf-8", "surrogateescape"))

    def _forge_is_dir(self) -> bool:
        """Whether there is a `.forge/` folder to read; one that is something else is reported once."""
        if self.dir.is_dir():
            return True
        if (self.dir.exists() or self.dir.is_symlink()) and str(self.dir) not in _WARNED:
            _WARNED.add(str(self.dir))
            from gitforge.infra.state import files

            files.warn(f"{self.dir} is not a folder, so gitforge sees no run state there: move it away "
                       f"(mv {self.dir} {self.dir}.old) so that runs can be recorded")
        return False

    def _folder(self, path: Path, create: bool = False) -> bool:
        """Whether `path`, one of `.forge/`'s folders, is a folder; anything else in its place
        is set aside. With `create`, it is made when missing."""
        if path.is_dir():
            return True
        if path.exists() or path.is_symlink():
            set_aside(path, "not a folder")
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return create

    def _load(self, path: Path, shape: Any, what: str) -> Any:
        """The JSON object in `path` if it has `shape`; None when there is none. A file of the
        wrong shape is set aside (with a warning) and counts as none."""
        if not (self._forge_is_dir() and self._folder(path.parent)):
            return None
        for _ in range(3):
            try:
                seen = os.stat(path)
                value = load_json(path)
            except FileNotFoundError:
                return None
            except Corrupt as e:
                why = str(e)
            else:
                why = shapes.problem(value, shape)
                if why is None:
                    return value
            with contextlib.suppress(FileNotFoundError):
                now = os.stat(path)
                if (now.st_ino, now.st_mtime_ns) != (seen.st_ino, seen.st_mtime_ns):
                    continue  # rewritten meanwhile: read the new one
            set_aside(path, f"not a valid {what} ({why})")
            return None
        return None

    # -- locks ----------------------------------------------------------------------------
    def _lock_path(self, name: str) -> Path:
        return self.locks_dir / f"{name}.lock"

    def lock(self, name: str) -> FileLock:
        """The process-wide lock object for `.forge/locks/<name>.lock`, for a holder about to
        write (`.forge/` is created)."""
        self.ensure()
        return file_lock(self._lock_path(name))

    @contextlib.contextmanager
    def locked(self, name: str, timeout: float = -1, what: str | None = None) -> Iterator[None]:
        """Hold the lock `name`. Where there is no `.forge/` yet, nothing is created: the
        section holds the folder lock of state.locks instead, and may create `.forge/`."""
        with contextlib.ExitStack() as stack:
            try:
                self._take(stack, name, timeout)
            except (Busy, Timeout):
                where = (f"lock file {self._lock_path(name)}" if self.dir.is_dir() else
                         f"it may be starting the first run in {self.root}")
                raise LockBusy(f"{what or name} is held by another gitforge process",
                               hint=f"wait for it to finish ({where})") from None
            yield

    def _take(self, stack: contextlib.ExitStack, name: str, timeout: float) -> None:
        deadline = None if timeout < 0 else time.monotonic() + timeout

        def left() -> float:
            return -1 if deadline is None else max(0.0, deadline - time.monotonic())

        if not self.dir.is_dir():
            folder = folder_lock(self.root)
            folder.acquire(left())
            if not self.dir.is_dir():
                stack.callback(folder.release)
                return
            folder.release()  # created meanwhile: take its lock file like everyone else
        wait_for_creators(self.root, left())
        self._folder(self.locks_dir, create=True)
        lock = file_lock(self._lock_path(name))
        lock.acquire(timeout=left())
        stack.callback(lock.release)

    @contextlib.contextmanager
    def held_if_free(self, name: str) -> Iterator[bool]:
        """Take the lock `name` if no other process holds it; yields whether it was taken."""
        with contextlib.ExitStack() as stack:
            try:
                self._take(stack, name, 0)
            except (Busy, Timeout):
                taken = False
            else:
                taken = True
            yield taken

    def is_locked_elsewhere(self, name: str) -> bool:
        """True when another live process holds the lock (a dead holder's flock is gone). A
        lock file that does not exist is held by no one, and is not created; where there is no
        `.forge/` yet, the folder lock stands for every lock."""
        path = self._lock_path(name)
        if not self.dir.is_dir():
            return folder_busy(self.root)
        if not path.is_file():
            return False
        lock = file_lock(path)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return True
        lock.release()
        return False

    # -- runs -----------------------------------------------------------------------------
    def save_run(self, record: dict[str, Any], expect: int | None = None) -> int:
        """Write a run record; returns its new version. With `expect`, the record on disk must
        still be at that version (0: there is none yet), else StaleRecord and nothing is written."""
        self.ensure()
        path = self.runs_dir / f"{record['run_id']}.json"
        with _SAVING, self.lock("runs"):
            if expect is not None:
                on_disk = self._load(path, shapes.RUN, "run record")
                found = 0 if on_disk is None else on_disk.get("version", 0)
                if found != expect:
                    raise StaleRecord(f"run {record['run_id']}: its record was saved elsewhere (version {found}, "
                                      f"this copy read version {expect}); nothing was overwritten")
            version = record.get("version", 0) + 1 if expect is None else expect + 1
            record.update(schema_version=SCHEMA_VERSION, updated=now_iso(), version=version)
            atomic_write_json(path, record)
        return version

    def write_run_file(self, run_id: str, name: str, data: bytes) -> None:
        """A file in the run's folder (such as diff-log.md), written atomically."""
        atomic_write(self.run_dir(run_id) / name, data)

    def load_run(self, run_id: str) -> dict[str, Any] | None:
        if not plain_name(run_id):
            return None
        return self._load(self.runs_dir / f"{run_id}.json", shapes.RUN, "run record")

    def runs(self) -> list[dict[str, Any]]:
        """All run records, oldest first (ULIDs sort by time)."""
        out = []
        if self._forge_is_dir() and self._folder(self.runs_dir):
            for path in sorted(self.runs_dir.glob("*.json")):
                record = self._load(path, shapes.RUN, "run record")
                if record is not None:
                    out.append(record)
        return out

    def find_runs(self, prefix: str) -> list[dict[str, Any]]:
        prefix = prefix.upper()
        return [r for r in self.runs() if r["run_id"].startswith(prefix)]

    # -- worktree records (worktree.py keeps the pool) ------------------------------------
    def worktree_meta(self, name: str) -> dict[str, Any]:
        """What `.forge/worktrees/<name>.json` says about a pooled worktree ({} when nothing)."""
        if not plain_name(name):
            return {}
        return self._load(self.worktrees_dir / f"{name}.json", shapes.WORKTREE, "worktree record") or {}

    def save_worktree_meta(self, name: str, meta: dict[str, Any]) -> None:
        self.ensure()
        atomic_write_json(self.worktrees_dir / f"{name}.json", meta)

    # -- events ---------------------------------------------------------------------------
    def event(self, kind: str, **data: Any) -> dict[str, Any]:
        ev = {"id": new_id(), "ts": now_iso(), "kind": kind, **data}
        self.ensure()
        if self.events_path.exists() and not self.events_path.is_file():
            set_aside(self.events_path, "not a file")
        append_jsonl(self.events_path, ev)
        return ev

    def events(self) -> list[dict[str, Any]]:
        path = self.events_path
        if not self._forge_is_dir():
            return []
        if path.exists() and not path.is_file():
            set_aside(path, "not a file")
            return []
        return read_jsonl(path)
