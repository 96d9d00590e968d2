"""The locks of `.forge/`, and the one lock that needs no file.

Lock files live in `.forge/locks/` and are held with filelock (the OS drops a dead holder's
flock). Before `.forge/` exists there is nothing to lock a file in, and a command that only
looks must not create it. So a section that finds no `.forge/` takes an exclusive flock on
the folder that would hold it (nothing is written), and whoever later takes a lock file
first waits, through a shared flock on that folder, until no such section is running. One
of those sections may create `.forge/`; it finishes before any lock file in it is taken.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

from filelock import FileLock

POLL = 0.05
# FileLock's singleton registry holds its objects weakly, and a collected FileLock releases
# its flock: keep every lock object alive for the life of the process.
_LOCKS: dict[str, FileLock] = {}
# Locks this process holds as leases. flock excludes other processes (and other threads, which
# open their own descriptors), but a FileLock is re-entrant within a thread: this closes that gap.
HELD: set[str] = set()


class Busy(Exception):
    """The lock was not free within the time allowed."""


def file_lock(path: Path) -> FileLock:
    """The process-wide lock object for `path` (one object per path: two FileLock objects on
    one path in one thread deadlock)."""
    key = str(path)
    if key not in _LOCKS:
        _LOCKS[key] = FileLock(key, is_singleton=True)
    return _LOCKS[key]


class _FolderLock:
    """An exclusive flock on a folder, re-entrant within a thread, exclusive between threads."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.mutex = threading.RLock()
        self.fd: int | None = None
        self.depth = 0

    def acquire(self, timeout: float) -> None:
        if not self.mutex.acquire(timeout=timeout if timeout >= 0 else -1):
            raise Busy(str(self.folder))
        if self.depth == 0:
            try:
                self.fd = _flock(self.folder, fcntl.LOCK_EX, timeout)
            except BaseException:
                self.mutex.release()
                raise
        self.depth += 1

    def release(self) -> None:
        self.depth -= 1
        if self.depth == 0 and self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
        self.mutex.release()


_FOLDERS: dict[str, _FolderLock] = {}
_FOLDERS_GUARD = threading.Lock()


def folder_lock(folder: Path) -> _FolderLock:
    key = os.path.realpath(folder)
    with _FOLDERS_GUARD:
        if key not in _FOLDERS:
            _FOLDERS[key] = _FolderLock(Path(key))
        return _FOLDERS[key]


def _flock(folder: Path, how: int, timeout: float) -> int:
    """An open descriptor of `folder` holding flock `how`; Busy after `timeout` seconds (<0: wait)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    deadline = None if timeout < 0 else time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, how | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise Busy(str(folder)) from None
                time.sleep(POLL)
    except BaseException:
        os.close(fd)
        raise


def wait_for_creators(folder: Path, timeout: float) -> None:
    """Return once no other section that may create `.forge/` in `folder` is running."""
    lock = folder_lock(folder)
    if lock.depth and lock.mutex._is_owned():  # type: ignore[attr-defined]  # this thread is one
        return
    os.close(_flock(folder, fcntl.LOCK_SH, timeout))


def folder_busy(folder: Path) -> bool:
    """Whether another process (or another thread here) holds the folder lock of `folder`."""
    lock = folder_lock(folder)
    if lock.depth and lock.mutex._is_owned():  # type: ignore[attr-defined]
        return False
    try:
        os.close(_flock(folder, fcntl.LOCK_SH, 0))
    except Busy:
        return True
    return False
