"""What lands: the commit that carries a verified tree (or, for a phase that failed, only the
bookkeeping) onto the target's tip, with BACKLOG.md and PROGRESS.md updated in the same
commit and the `Forge-Phase`/`Forge-Run` trailers recovery and the hook read."""

from __future__ import annotations

import re
from collections.abc import Sequence

from gitforge.backlog import Phase
from gitforge.context import Context
from gitforge.git import Change
from gitforge.land.progress import update_progress

FORGE_RUN = re.compile(r"^Forge-Run:\s*(\S+)\s*$", re.MULTILINE)


def message_for(phase: Phase, status: str, run_id: str, summary: str = "") -> str:
    title = f"Phase {phase.id}: {phase.title}" + ("" if status == "Done" else f" ({status})")
    body = f"\n\n{summary.strip()}" if summary.strip() else ""
    trailers = f"Forge-Phase: {phase.id}\nForge-Run: {run_id}"
    if status != "Done":
        trailers += f"\nForge-Status: {status}"
    return f"{title}{body}\n\n{trailers}\n"


def landing_commit(ctx: Context, tree: str, parents: Sequence[str], phase: Phase, status: str, run_id: str,
                   entry: dict, summary: str = "") -> str:
    """The commit that lands `tree` on `parents[0]` (the tip it must still be at), with `phase`
    set to `status` and `entry` added to PROGRESS.md. Made outside any lock: the ref move that
    publishes it is a compare-and-swap from that tip."""
    final = ctx.git.build_tree(tree, bookkeeping(ctx, tree, phase, status, entry))
    return ctx.git.commit(final, list(parents), message_for(phase, status, run_id, summary))


def bookkeeping(ctx: Context, tree: str, phase: Phase, status: str, entry: dict) -> list[Change]:
    """The phase's new Status in BACKLOG.md and its PROGRESS.md entry, on top of `tree` (the
    tree that lands, so a patch's own edits to these files are kept)."""
    backlog = ctx.backlog(tree).with_status(phase.id, status)
    old = ctx.git.read_file(tree, ctx.cfg.progress)
    progress = update_progress(old.decode("utf-8", "replace") if old is not None else None,
                               [p.status for p in backlog.phases], entry)
    return [Change(ctx.cfg.backlog, backlog.render().encode("utf-8")),
            Change(ctx.cfg.progress, progress.encode("utf-8"))]


def same_code(ctx: Context, old: str, new: str) -> bool:
    """Whether two commits hold the same files apart from the two bookkeeping files (a tree
    tested on one of them is tested on the other: only BACKLOG.md statuses and PROGRESS.md
    entries differ, which are records, not code)."""
    if old == new:
        return True
    git = ctx.git
    records = {ctx.cfg.backlog, ctx.cfg.progress}
    return set(git.changed_paths(git.tree_of(old), git.tree_of(new))) <= records
