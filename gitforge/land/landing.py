"""Landing (DESIGN.md §2 steps 10–11): under the merge lock, bring the work onto the target's
current tip (re-verifying if it moved), add the BACKLOG.md/PROGRESS.md bookkeeping to the
same commit, move the target by compare-and-swap, write the run note, update checkouts.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gitforge.backlog import Phase
from gitforge.context import Context
from gitforge.errors import LockBusy, WorkFailed
from gitforge.git import Change, checkout
from gitforge.git.checkout import index_tree
from gitforge.git.locks import LOCK_WAIT, IndexBusy, IndexLock
from gitforge.land.progress import update_progress

CAS_ATTEMPTS = 8
FORGE_RUN = re.compile(r"^Forge-Run:\s*(\S+)\s*$", re.MULTILINE)


@dataclass
class Work:
    """A verified change to land: its tree, the commit it was based on, how to re-verify it,
    and the gate results that prove the tree that lands."""

    base: str
    tree: str
    candidate: str
    gates: list = field(default_factory=list)
    # (new tip, merged tree) -> (new candidate commit, gate results); raises WorkFailed
    reverify: Callable[[str, str], tuple[str, list]] | None = None


@dataclass
class Landing:
    commit: str
    previous: str
    reverified: bool = False
    checkouts: list[tuple[Path, str | None]] = field(default_factory=list)  # (path, None=fine | what to do)


def message_for(phase: Phase, status: str, run_id: str, summary: str = "") -> str:
    title = f"Phase {phase.id}: {phase.title}" + ("" if status == "Done" else f" ({status})")
    body = f"\n\n{summary.strip()}" if summary.strip() else ""
    trailers = f"Forge-Phase: {phase.id}\nForge-Run: {run_id}"
    if status != "Done":
        trailers += f"\nForge-Status: {status}"
    return f"{title}{body}\n\n{trailers}\n"


def land(ctx: Context, phase: Phase, run_id: str, status: str, entry: Callable[[Work | None], dict],
         note: Callable[[Work | None], dict], *, work: Work | None = None, summary: str = "",
         before_move: Callable[[str], None] | None = None) -> Landing:
    """Land `work` (or, with work=None, a bookkeeping-only commit) with `phase` set to `status`.
    `entry` and `note` build the PROGRESS.md entry and the run note from the work as landed."""
    git = ctx.git
    with ctx.store.locked("merge", what="the merge lock"):
        reverified = False
        for _ in range(CAS_ATTEMPTS):
            tip = ctx.tip
            tree = git.tree_of(tip)
            parents = [tip]
            if work is not None:
                if tip != work.base:
                    merged, conflicts = git.merge_trees(git.tree_of(work.base), tree, work.tree)
                    if merged is None:
                        raise WorkFailed(f"{ctx.target} moved while phase {phase.id} ran, and the change "
                                         f"conflicts with it in: {', '.join(conflicts)}",
                                         hint=f"run the phase again from the new tip: gitforge next {phase.id}")
                    work.candidate, work.gates = work.reverify(tip, merged)
                    # the tree the gates passed on the new tip (with their edits, under gates.edits: land)
                    work.base, work.tree, reverified = tip, git.tree_of(work.candidate), True
                tree = work.tree
                if ctx.cfg.merge.strategy == "merge":
                    parents.append(work.candidate)
            final = git.build_tree(tree, _bookkeeping(ctx, tree, phase, status, entry(work)))
            commit = git.commit(final, parents, message_for(phase, status, run_id, summary))
            with contextlib.ExitStack() as held:
                # Every checkout of the target is locked (its index.lock, as git does) from before
                # the ref moves until its files are updated: a `git commit -a` there meanwhile
                # fails instead of committing the old files on top of the landing.
                locks = {p: held.enter_context(_lock_checkout(ctx, p)) for p in git.checkouts_of(ctx.target)}
                local = {p: git.local_changes(p, tip) for p in locks}
                if before_move:
                    before_move(commit)
                if not git.cas_branch(ctx.target, tip, commit, f"gitforge: phase {phase.id} {status} (run {run_id})"):
                    continue
                landing = Landing(commit, tip, reverified)
                for path, changes in local.items():
                    landing.checkouts.append((path, sync_checkout(ctx, path, tip, commit, changes, locks[path])))
                break
        else:
            # not the change's fault: nothing landed, the phase is not marked Failed, no attempt is spent
            raise LockBusy(f"{ctx.target} kept moving during the landing ({CAS_ATTEMPTS} tries, each re-verified on "
                           f"the new tip); nothing landed and phase {phase.id} can run again",
                           hint="pause other commits to the branch for a moment, then run gitforge next again")
        try:
            with ctx.store.locked("notes", what="the notes lock"):
                git.append_note(commit, json.dumps({**note(work), "reverified": reverified}, sort_keys=True))
        except LockBusy as e:  # landed all the same: recovery writes the note from the run's record
            landing.checkouts.append((git.root, f"{e.message}; {e.hint}"))
        return landing


@contextlib.contextmanager
def _lock_checkout(ctx: Context, path: Path) -> Iterator[IndexLock]:
    lock = IndexLock(checkout.git_dir(ctx.git, path))
    try:
        lock.acquire()
    except IndexBusy:
        raise WorkFailed(f"a git command has been using the checkout at {path} for {LOCK_WAIT:g}s "
                         f"({lock.path} exists), so {ctx.target} was not moved",
                         hint=f"let that command finish (or, if no git command is running there, remove "
                              f"{lock.path}), then run the phase again") from None
    try:
        yield lock
    finally:
        lock.release()


def _bookkeeping(ctx: Context, tree: str, phase: Phase, status: str, entry: dict) -> list[Change]:
    """The phase's new Status in BACKLOG.md and its PROGRESS.md entry, on top of `tree` (the
    tree that lands, so a patch's own edits to these files are kept)."""
    backlog = ctx.backlog(tree).with_status(phase.id, status)
    old = ctx.git.read_file(tree, ctx.cfg.progress)
    progress = update_progress(old.decode("utf-8", "replace") if old is not None else None,
                               [p.status for p in backlog.phases], entry)
    return [Change(ctx.cfg.backlog, backlog.render().encode("utf-8")),
            Change(ctx.cfg.progress, progress.encode("utf-8"))]


def sync_checkout(ctx: Context, path: Path, old: str, new: str, local: list[str], lock: IndexLock) -> str | None:
    """Bring a checkout of the target from `old` to `new` the way `git checkout` would, while
    holding its index.lock: files the landing changed are updated, uncommitted changes elsewhere
    are carried over untouched. A file that has uncommitted changes AND was changed by the
    landing is never written: the checkout is left as it was and the return value says how to
    finish by hand."""
    git = ctx.git
    overlap = sorted(set(local) & set(git.changed_paths(git.tree_of(old), git.tree_of(new))))
    branch = ctx.target
    if overlap:
        return (f"{branch} moved to {new[:12]}, but the checkout at {path} has uncommitted changes in files "
                f"the landing changed ({_shown(overlap)}); gitforge left your files alone, so that checkout still "
                f"shows {old[:12]} (do not commit from it as it is). To bring your changes onto the new "
                f"{branch}, run: {_carry_over(path, old, branch)}")
    refusal = checkout.update_locked(path, lock, old, new)
    if refusal is None:
        return None
    return (f"{branch} moved to {new[:12]}, but git would not update the checkout at {path}: {refusal}. "
            f"Move aside the files git names, then run: git -C {path} read-tree -m -u {old} {new}")


def repair_checkouts(ctx: Context, depth: int = 50) -> list[str]:
    """After a crash between a ref move and the checkout's update: a checkout of the target
    whose HEAD is the tip but whose index still holds an older commit that gitforge moved the
    target from (only landings in between) is updated now, carrying the user's changes over."""
    git = ctx.git
    tip = ctx.tip
    messages: list[str] = []
    chain: list[tuple[str, str]] = []
    for path in git.checkouts_of(ctx.target):
        private = checkout.git_dir(git, path)
        checkout.clear_litter(private)
        held = index_tree(path, private)
        if held is None or held == git.tree_of(tip):
            continue
        chain = chain or git.log(tip, depth)  # only walked when a checkout is behind
        older = None
        for k in range(1, len(chain)):
            if not FORGE_RUN.search(chain[k - 1][1]):
                break  # a commit gitforge did not make: the index is the user's own business
            if git.tree_of(chain[k][0]) == held:
                older = chain[k][0]
                break
        if older is None:
            continue
        try:
            lock = IndexLock(private).acquire(wait=5.0)
        except IndexBusy:
            messages.append(f"the checkout at {path} still shows {older[:12]}, but a git command is using it; "
                            f"run `gitforge next` again when it is done")
            continue
        try:
            users = checkout.finish_update(git, path, lock, older, tip)
        finally:
            lock.release()
        if users:
            messages.append(f"the checkout at {path} still shows {older[:12]} ({ctx.target} is at {tip[:12]}: a landing "
                            f"was interrupted) and has changes of yours in files the landing changed ({_shown(users)}); "
                            f"gitforge left it alone (do not commit from it as it is). To carry your changes onto "
                            f"{tip[:12]}, run: {_carry_over(path, older, ctx.target)}")
        else:
            messages.append(f"updated the checkout at {path} from {older[:12]} to {tip[:12]}: {ctx.target} "
                            f"had moved without it (a landing was interrupted)")
    return messages


def _shown(paths: list[str]) -> str:
    return ", ".join(paths[:5]) + (" ..." if len(paths) > 5 else "")


def _carry_over(path: Path, old: str, branch: str) -> str:
    """The commands that bring a checkout left at `old`, with the user's changes, onto `branch`."""
    return (f"git -C {path} update-ref --no-deref HEAD {old} && git -C {path} stash "
            f"&& git -C {path} checkout {branch} && git -C {path} stash pop")
