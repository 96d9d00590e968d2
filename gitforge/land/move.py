"""Moving the target (DESIGN.md §2 step 10): under the merge lock, with every checkout of the
target locked, the branch moves by compare-and-swap from the tip a landing commit was made on;
then the checkouts follow and the run note is written. Nothing here runs a gate: a landing is
verified before it gets here (see run/lander.py and the queue)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from gitforge.context import Context
from gitforge.errors import LockBusy
from gitforge.land.checkouts import lock_checkout, sync_checkout


@dataclass
class Landing:
    commit: str
    previous: str
    reverified: bool = False
    checkouts: list[tuple[Path, str | None]] = field(default_factory=list)  # (path, None=fine | what to do)


def move_target(ctx: Context, tip: str, commit: str, reason: str, note: dict) -> Landing | None:
    """Move the target from `tip` to `commit` (whose first parent is `tip`) and write its run
    `note`; None, with nothing changed, when the target is no longer at `tip`. Every checkout of
    the target is locked from before the ref moves until its files are updated: a `git commit -a`
    there meanwhile fails instead of committing the old files on top of the landing. The merge
    lock is held until the note is written (recovery writes a missing note only when no
    landing holds it)."""
    git = ctx.git
    with ctx.store.locked("merge", what="the merge lock"):
        if ctx.tip != tip:
            return None
        with contextlib.ExitStack() as held:
            locks = {p: held.enter_context(lock_checkout(ctx, p)) for p in git.checkouts_of(ctx.target)}
            local = {p: git.local_changes(p, tip) for p in locks}
            if not git.cas_branch(ctx.target, tip, commit, reason):
                return None
            landing = Landing(commit, tip)
            for path, changes in local.items():
                landing.checkouts.append((path, sync_checkout(ctx, path, tip, commit, changes, locks[path])))
        _write_note(ctx, landing, note)
        return landing


def _write_note(ctx: Context, landing: Landing, note: dict) -> None:
    """The run note on the landed commit. A notes lock held too long does not undo the landing:
    recovery writes the note from the run's record, and the landing says so."""
    try:
        with ctx.store.locked("notes", what="the notes lock"):
            ctx.git.append_note(landing.commit, json.dumps(note, sort_keys=True))
    except LockBusy as e:
        landing.checkouts.append((ctx.git.root, f"{e.message}; {e.hint}"))
