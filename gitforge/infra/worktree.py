"""Task worktrees: a pool under `.forge/worktrees/`, reused by reset instead of a fresh checkout.

A pooled worktree `wt-N` is in use while its holder has `locks/wt-N.lock`; a worktree whose
run failed is *kept* (files and branch as they were) until the phase runs again or `gc`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from filelock import Timeout

from gitforge.config import GatesConfig
from gitforge.errors import ConfigError, LockBusy, RepoError, WorkFailed
from gitforge.infra.gates import GateResult, GateSpec, run_gate, run_gates
from gitforge.git import Change, Git, checkout
from gitforge.git.locks import clear_for_checkout
from gitforge.infra.state import Store, new_id, now_iso


@dataclass
class Worktree:
    name: str
    path: Path
    branch: str
    base: str
    keep: bool = False
    keep_reason: str = ""
    reused: bool = False


def write_files(root: Path, changes: Iterable[Change]) -> None:
    """Write changed files into a checkout (only those); deletions prune empty folders."""
    root = root.resolve()
    for ch in changes:
        for victim in ([ch.old_path] if ch.old_path and ch.old_path != ch.path else []) + (
                [ch.path] if ch.data is None else []):
            target = _inside(root, victim)
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            _prune_empty(root, target.parent)
        if ch.data is None:
            continue
        target = _inside(root, ch.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        target.write_bytes(ch.data)
        mode = target.stat().st_mode
        target.chmod(mode | 0o111 if ch.mode == "exec" else mode & ~0o111)


def restore(git: Git, wt: Worktree, changes: Iterable[Change]) -> None:
    """The worktree back at its base commit (untracked leftovers gone, ignored files kept),
    then `changes` written: the state an attempt's gates ran on, without what they left."""
    git.worktree_reset(wt.path, wt.branch, wt.base)
    write_files(wt.path, changes)


def _inside(root: Path, rel: str) -> Path:
    target = root / rel
    parent = target.parent.resolve()
    if parent != root and root not in parent.parents:
        raise WorkFailed(f"{rel}: resolves outside the worktree; refusing to write")
    return parent / target.name


def _prune_empty(root: Path, folder: Path) -> None:
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


class FsTree:
    """The TreeView protocol over files on disk (for `gitforge apply` on a working tree)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def kind(self, path: str) -> str | None:
        p = self.root / path
        if p.is_symlink():
            return "link"
        if p.is_dir():  # a checked-out submodule (or another repository) has its own .git
            return "submodule" if path and os.path.lexists(p / ".git") else "dir"
        if p.is_file():
            return "exec" if os.access(p, os.X_OK) else "file"
        return None

    def read(self, path: str) -> bytes | None:
        p = self.root / path
        if p.is_symlink():
            return os.readlink(p).encode()
        return p.read_bytes() if p.is_file() else None


# The setup command (e.g. `pip install -e .`) prepares the worktree: it gets the worktree first on
# PYTHONPATH like a gate, but is not itself held to the import check.
SETUP = GatesConfig(import_check=False)


class Pool:
    def __init__(self, git: Git, store: Store, setup: str | None, include: Iterable[str],
                 size: int = 4) -> None:
        self.git = git
        self.store = store
        self.setup = setup
        self.include = list(include)
        self.size = size  # idle worktrees kept for reuse; more are removed on release

    def meta(self, name: str) -> dict:
        """What the pool recorded about worktree `name` ({} when nothing; a record of the
        wrong shape is set aside by the state layer)."""
        return self.store.worktree_meta(name)

    def names(self) -> list[str]:
        d = self.store.worktrees_dir
        names = [p.name for p in d.iterdir() if p.is_dir() and p.name.startswith("wt-")] if d.is_dir() else []
        return sorted(names, key=lambda n: int(n[3:]) if n[3:].isdigit() else 0)

    def kept(self) -> list[dict]:
        return [m for n in self.names() if (m := self.meta(n)).get("state") == "kept"]

    def _claim(self, branch: str) -> tuple[str, bool]:
        """Pick a worktree: the one holding `branch` (a kept failure of the same phase), else a
        free idle one, else a new name. Returns (name, exists)."""
        names = self.names()
        ordered = sorted(names, key=lambda n: self.meta(n).get("branch") != branch)
        for name in ordered:
            meta = self.meta(name)
            if meta.get("state") == "kept" and meta.get("branch") != branch:
                continue
            lock = self.store.lock(name)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue
            return name, True
        n = max([int(x[3:]) for x in names if x[3:].isdigit()] + [0]) + 1
        name = f"wt-{n}"
        self.store.lock(name).acquire()
        (self.store.worktrees_dir / name).mkdir(parents=True)  # reserved: others see it, locked
        return name, False

    @contextlib.contextmanager
    def acquire(self, branch: str, base: str, run_id: str, log_dir: Path,
                keep_on_error: bool = True) -> Iterator[Worktree]:
        with self.store.locked("pool", what="the worktree pool"):
            name, exists = self._claim(branch)
        wt = Worktree(name, self.store.worktrees_dir / name, branch, base, reused=exists)
        with self._held(wt, run_id, lambda: self._prepare(wt, exists, log_dir), keep_on_error=keep_on_error):
            yield wt

    def gates_at(self, commit: str, specs: Sequence[GateSpec], kind: str,
                 on_gate: Callable[[GateSpec, GateResult | None], None] | None = None,
                 isolation=None) -> list[GateResult]:
        """Gates on `commit` for a check that is not a run (`check --full`, the pre-push hook):
        in a pooled worktree at that commit, logged under `.forge/runs/<kind>-<id>/`, and the
        worktree goes back to the pool whatever happens (nothing is kept)."""
        run_id = f"{kind}-{new_id()}"
        log_dir = self.store.run_dir(run_id)
        with self.acquire(f"forge/{run_id.lower()}", commit, run_id, log_dir, keep_on_error=False) as wt:
            return run_gates(specs, wt.path, log_dir, {"GITFORGE_WORKTREE": str(wt.path)}, on_gate, isolation)

    @contextlib.contextmanager
    def resume(self, name: str, branch: str, base: str, run_id: str) -> Iterator[Worktree]:
        """Take back a worktree kept for a run (a host agent's session) with its files as they
        are: no reset. It is kept again on exit unless the caller clears `keep`."""
        lock = self.store.lock(name)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise LockBusy(f"worktree {name} is in use by another gitforge process",
                           hint="wait for it to finish, then try again") from None
        wt = Worktree(name, self.store.worktrees_dir / name, branch, base, keep=True, reused=True)
        if self.meta(name).get("run_id") != run_id or not (wt.path / ".git").exists():
            lock.release()
            raise WorkFailed(f"the worktree of run {run_id} ({wt.path}) is gone or was taken by another run",
                             hint=f"release the run (gitforge abandon {run_id}) and start the phase again")
        with self._held(wt, run_id, lambda: None, lock):
            yield wt

    @contextlib.contextmanager
    def _held(self, wt: Worktree, run_id: str, prepare, lock=None, keep_on_error: bool = True) -> Iterator[Worktree]:
        """Hold `wt` (its lock is taken) for `run_id`; on exit it goes back to the pool, or is
        kept when `wt.keep` is set or the holder stopped on an error (unless not `keep_on_error`)."""
        lock = lock or self.store.lock(wt.name)
        try:
            prepare()
            self.store.save_worktree_meta(wt.name, {"name": wt.name, "path": str(wt.path), "branch": wt.branch,
                                                    "run_id": run_id, "state": "busy", "since": now_iso()})
            yield wt
        except BaseException as exc:
            if not keep_on_error:
                wt.keep = False
            elif not wt.keep:  # a run that stopped on an error: keep its files to look at
                wt.keep, wt.keep_reason = True, f"the run stopped: {exc}" if str(exc) else type(exc).__name__
            with contextlib.suppress(Exception):  # the original error is the one to report
                self._release(wt, run_id)
            lock.release()
            raise
        try:
            self._release(wt, run_id)
        finally:
            lock.release()

    def _prepare(self, wt: Worktree, exists: bool, log_dir: Path) -> None:
        holder = self.git.branch_checked_out_at(wt.branch)
        if holder is not None and holder != wt.path.resolve():
            raise RepoError(f"branch {wt.branch} is checked out at {holder}",
                            hint=f"switch the checkout at {holder} to another branch (git cannot work on a branch "
                                 "checked out twice), then run the command again")
        # a gitforge killed in the middle of a git command here left its locks: we hold the
        # worktree (and the phase its branch is for), so nobody else can be using them
        private = checkout.git_dir(self.git, wt.path) if (wt.path / ".git").exists() else wt.path / ".none"
        clear_for_checkout(private, wt.path, [self.git.common_dir / "refs" / "heads" / f"{wt.branch}.lock"])
        if exists and (wt.path / ".git").exists():
            self.git.worktree_reset(wt.path, wt.branch, wt.base)
        else:
            if wt.path.exists():  # leftovers of a worktree git no longer knows; keep the folder reserved
                for child in wt.path.iterdir():
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            self.git.worktree_prune()  # forget worktrees whose folders are gone (.forge/ deleted)
            self.git.worktree_add(wt.path, wt.branch, wt.base)
        self._copy_includes(wt.path)
        if self.setup:
            result = run_gate(GateSpec("worktree-setup", self.setup, 1800, "otto.yaml"), wt.path, log_dir,
                              isolation=SETUP)
            if not result.ok:
                wt.keep, wt.keep_reason = True, "worktrees.setup failed"
                raise ConfigError(f"worktrees.setup ({self.setup}) failed in {wt.path}:\n{result.tail}",
                                  hint=f"fix the setup command in otto.yaml; full log: {result.log}")

    def _copy_includes(self, dest: Path) -> None:
        root = self.git.root
        for pattern in self.include:
            for src in sorted(root.glob(pattern)):
                rel = src.relative_to(root)
                if rel.parts and rel.parts[0] in (".git", ".forge"):
                    continue
                if src.is_dir():
                    shutil.copytree(src, dest / rel, symlinks=True, dirs_exist_ok=True)
                elif src.is_file():
                    (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dest / rel)

    def _release(self, wt: Worktree, run_id: str) -> None:
        meta = {"name": wt.name, "path": str(wt.path), "branch": wt.branch, "run_id": run_id,
                "since": now_iso()}
        if wt.keep:
            meta.update(state="kept", reason=wt.keep_reason)
        else:
            idle = [n for n in self.names() if n != wt.name and self.meta(n).get("state") == "idle"]
            if len(idle) >= self.size:
                self.remove(wt.name)
                return
            meta.update(state="idle", branch=None)
            if (wt.path / ".git").exists():
                self.git.worktree_detach(wt.path)
                self.git.delete_branch(wt.branch)
        self.store.save_worktree_meta(wt.name, meta)

    def remove(self, name: str) -> None:
        meta = self.meta(name)
        path = self.store.worktrees_dir / name
        self.git.worktree_remove(path)
        if path.exists():
            shutil.rmtree(path)
        if meta.get("branch"):
            self.git.delete_branch(meta["branch"])
        with contextlib.suppress(FileNotFoundError):
            (self.store.worktrees_dir / f"{name}.json").unlink()
