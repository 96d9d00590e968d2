"""git's own lock files (`<file>.lock`): which ones can block gitforge, which are stale, and
holding a checkout's `index.lock` the way git does.

git takes `<file>.lock` with O_EXCL before it rewrites `<file>` and renames it into place when
done; a process killed in between leaves the lock behind and every later writer fails. A lock
is stale, and safe to remove, only when nobody can still finish it: no process has the file
open, no git process is running in the repository, and it is older than `STALE_AGE` seconds
(a live writer holds a ref's lock for microseconds). A user's `git commit` waiting for its
editor keeps index.lock closed but is a live git process: it is never touched.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

STALE_AGE = 10.0
LOCK_WAIT = 30.0  # how long a landing waits for a live git process to release a lock


MARKER = b"gitforge "  # what gitforge writes into an index.lock it holds, then its pid


@dataclass(frozen=True)
class LockFile:
    path: Path
    kind: str                     # target | notes | forge | index | other
    age: float                    # seconds since it was last written
    open_by: tuple[int, ...]      # pids that have it open
    git_running: tuple[int, ...]  # live git processes in the repository
    dead_owner: bool = False      # gitforge's own index.lock, and its process is gone
    seen: bool = True             # whether processes could be looked at (/proc); if not, only
                                  # gitforge's own locks of dead processes are known to be stale

    def stale(self, quiet: Iterable[str] = ()) -> bool:
        """Nobody can finish it. `quiet` names the kinds no live gitforge process can be
        writing right now (the caller holds the gitforge lock that guards them)."""
        if self.open_by or self.git_running:
            return False
        if not self.seen:
            return self.dead_owner
        return self.dead_owner or self.kind in quiet or self.age >= STALE_AGE


def candidates(common_dir: Path, target: str) -> list[tuple[Path, str]]:
    """Lock files that stop gitforge's work, with their kind: the target's ref, gitforge's refs
    (forge branches, run notes, candidates), packed-refs, HEAD and every checkout's index."""
    c = common_dir
    found = [(c / "refs" / "heads" / f"{target}.lock", "target"), (c / "packed-refs.lock", "target"),
             (c / "HEAD.lock", "other"), (c / "index.lock", "index")]
    for folder, kind in ((c / "refs" / "heads" / "forge", "forge"), (c / "refs" / "notes" / "forge", "notes"),
                         (c / "refs" / "forge", "forge")):
        if folder.is_dir():
            found += [(p, kind) for p in sorted(folder.rglob("*.lock"))]
    wts = c / "worktrees"
    if wts.is_dir():
        for wt in sorted(wts.iterdir()):
            found += [(wt / "index.lock", "index"), (wt / "HEAD.lock", "other")]
    return [(p, kind) for p, kind in dict.fromkeys(found) if p.is_file()]


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()] if os.path.isdir("/proc") else []


def _holders(paths: Iterable[Path]) -> dict[Path, list[int]]:
    """{lock: pids that have it open}, from /proc/<pid>/fd."""
    wanted = {str(p): p for p in paths}
    held: dict[Path, list[int]] = {p: [] for p in wanted.values()}
    for pid in _pids():
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target in wanted:
                        held[wanted[target]].append(pid)
    return held


def git_processes(roots: Iterable[Path]) -> list[int]:
    """Live git processes whose working directory is inside one of `roots`."""
    prefixes = [str(r.resolve()).rstrip("/") for r in roots]
    found = []
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
                name = f.read().strip()
            if name != "git" and not name.startswith("git-"):
                continue
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if any(cwd == p or cwd.startswith(p + "/") for p in prefixes):
            found.append(pid)
    return found


def _dead_owner(path: Path) -> bool:
    """An index.lock gitforge wrote (MARKER + pid) whose process is gone."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return False
    if not head.startswith(MARKER):
        return False
    words = head[len(MARKER):].split()
    return bool(words) and words[0].isdigit() and not pid_alive(int(words[0]))


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def inspect(common_dir: Path, target: str, roots: Iterable[Path]) -> list[LockFile]:
    """Every lock file that can stop gitforge, with what is known about its holder."""
    found = candidates(common_dir, target)
    if not found:
        return []
    held = _holders(p for p, _ in found)
    running = tuple(git_processes(roots))
    now = time.time()
    out = []
    for p, kind in found:
        with contextlib.suppress(FileNotFoundError):
            out.append(LockFile(p, kind, max(0.0, now - p.stat().st_mtime), tuple(held.get(p, [])), running,
                                kind == "index" and _dead_owner(p), os.path.isdir("/proc")))
    return out


def clear_stale(locks: Iterable[LockFile], quiet: Iterable[str] = ()) -> list[Path]:
    """Remove the stale ones; returns those removed."""
    quiet = set(quiet)
    removed = []
    for lock in locks:
        if lock.stale(quiet):
            with contextlib.suppress(FileNotFoundError):
                lock.path.unlink()
                removed.append(lock.path)
    return removed


def clear_for_checkout(private: Path, checkout: Path, refs: Iterable[Path] = ()) -> list[Path]:
    """Remove the index and HEAD locks of a checkout nobody else can be using (the caller holds
    gitforge's lock on it), and the given ref locks, unless a process has one open or a git
    process runs in that checkout."""
    paths = [p for p in (private / "index.lock", private / "HEAD.lock", *refs) if p.is_file()]
    if not paths or not os.path.isdir("/proc"):  # without /proc no holder can be seen: touch nothing
        return []
    held = _holders(paths)
    if git_processes([checkout]):
        return []
    removed = []
    for p in paths:
        if not held.get(p):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed


class IndexBusy(Exception):
    """Another process holds a checkout's index.lock."""


class IndexLock:
    """A checkout's index.lock, held the way git holds it (O_EXCL, kept open, so it is never
    taken for stale). While it is held a concurrent `git commit` there fails with git's usual
    "index.lock exists"; `commit` installs a new index through it."""

    def __init__(self, git_dir: Path) -> None:
        self.git_dir = git_dir
        self.path = git_dir / "index.lock"
        self._fd: int | None = None
        self._ino: int | None = None

    def acquire(self, wait: float = LOCK_WAIT) -> IndexLock:
        deadline = time.monotonic() + wait
        delay = 0.02
        while True:
            try:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:
                if time.monotonic() >= deadline:
                    raise IndexBusy(str(self.path)) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        os.write(self._fd, MARKER + str(os.getpid()).encode() + b"\n")
        self._ino = os.fstat(self._fd).st_ino
        return self

    def commit(self, new_index: Path) -> None:
        """Move `new_index` over the lock, then the lock over the index (git's own
        commit_lock_file): no reader ever sees a torn index. The lock is released."""
        os.replace(new_index, self.path)
        os.replace(self.path, self.git_dir / "index")
        self._ino = None
        self.release()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._ino is not None:  # still our file (never someone else's lock taken meanwhile)
            with contextlib.suppress(FileNotFoundError):
                if os.lstat(self.path).st_ino == self._ino:
                    os.unlink(self.path)
            self._ino = None

    def __enter__(self) -> IndexLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
