"""Checkouts of the target branch: locked (their index.lock, as git does) while the target
moves, then brought to the new tip the way `git checkout` would, carrying a user's
uncommitted changes over; and, after a crash between the two, repaired by recovery."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from gitforge.context import Context
from gitforge.errors import WorkFailed
from gitforge.git import checkout
from gitforge.git.checkout import index_tree
from gitforge.git.locks import LOCK_WAIT, IndexBusy, IndexLock
from gitforge.land.commit import FORGE_RUN


@contextlib.contextmanager
def lock_checkout(ctx: Context, path: Path) -> Iterator[IndexLock]:
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
