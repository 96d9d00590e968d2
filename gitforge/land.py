"""Landing (DESIGN.md §2 steps 10–11): under the merge lock, bring the work onto the target's
current tip (re-verifying if it moved), add the BACKLOG.md/PROGRESS.md bookkeeping to the
same commit, move the target by compare-and-swap, write the run note, update clean checkouts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gitforge.backlog import Phase, parse_backlog
from gitforge.context import Context
from gitforge.errors import WorkFailed
from gitforge.git import Change
from gitforge.progress import update_progress

CAS_ATTEMPTS = 8


@dataclass
class Work:
    """A verified change to land: its tree, the commit it was based on, and how to re-verify."""

    base: str
    tree: str
    candidate: str
    reverify: Callable[[str, str], str]  # (new tip, merged tree) -> new candidate commit; raises WorkFailed


@dataclass
class Landing:
    commit: str
    previous: str
    reverified: bool = False
    checkouts: list[tuple[Path, str | None]] = field(default_factory=list)  # (path, None=updated | how to)


def message_for(phase: Phase, status: str, run_id: str, summary: str = "") -> str:
    title = f"Phase {phase.id}: {phase.title}" + ("" if status == "Done" else f" ({status})")
    body = f"\n\n{summary.strip()}" if summary.strip() else ""
    trailers = f"Forge-Phase: {phase.id}\nForge-Run: {run_id}"
    if status != "Done":
        trailers += f"\nForge-Status: {status}"
    return f"{title}{body}\n\n{trailers}\n"


def land(ctx: Context, phase: Phase, run_id: str, status: str, entry: dict, note: dict, *,
         work: Work | None = None, summary: str = "",
         before_move: Callable[[str], None] | None = None) -> Landing:
    """Land `work` (or, with work=None, a bookkeeping-only commit) with `phase` set to `status`."""
    git, cfg = ctx.git, ctx.cfg
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
                    work.candidate = work.reverify(tip, merged)
                    work.base, work.tree, reverified = tip, merged, True
                tree = work.tree
                if cfg.merge.strategy == "merge":
                    parents.append(work.candidate)
            final = git.build_tree(tree, _bookkeeping(ctx, tip, phase, status, entry))
            commit = git.commit(final, parents, message_for(phase, status, run_id, summary))
            checkouts = {p: git.dirty_paths(p) for p in git.checkouts_of(ctx.target)}
            if before_move:
                before_move(commit)
            if git.cas_branch(ctx.target, tip, commit, f"gitforge: phase {phase.id} {status} (run {run_id})"):
                break
        else:
            raise WorkFailed(f"{ctx.target} kept moving during the landing ({CAS_ATTEMPTS} tries)",
                             hint="stop other writers to the branch for a moment, then run gitforge next again")
        note = {**note, "reverified": reverified}
        with ctx.store.locked("notes", what="the notes lock"):
            git.append_note(commit, json.dumps(note, sort_keys=True))
        landing = Landing(commit, tip, reverified)
        for path, dirty in checkouts.items():
            landing.checkouts.append((path, _update_checkout(ctx, path, dirty, tip, commit)))
        return landing


def _bookkeeping(ctx: Context, tip: str, phase: Phase, status: str, entry: dict) -> list[Change]:
    """The phase's new Status in BACKLOG.md and its PROGRESS.md entry, on top of `tip`."""
    backlog = ctx.backlog(tip).with_status(phase.id, status)
    old = ctx.git.read_file(tip, ctx.cfg.progress)
    progress = update_progress(old.decode("utf-8", "replace") if old is not None else None,
                               [p.status for p in backlog.phases], entry)
    return [Change(ctx.cfg.backlog, backlog.render().encode("utf-8")),
            Change(ctx.cfg.progress, progress.encode("utf-8"))]


def _update_checkout(ctx: Context, path: Path, dirty: list[str], old: str, new: str) -> str | None:
    """Update a clean checkout of the target; a dirty one is never touched: say how instead."""
    how = f"git -C {path} read-tree -m -u {old[:12]} {new[:12]}"
    if dirty:
        shown = ", ".join(dirty[:5]) + (" ..." if len(dirty) > 5 else "")
        return (f"{ctx.target} is checked out at {path} with uncommitted changes ({shown}); gitforge moved "
                f"the branch but left your files alone. To bring them up to date and keep your changes, "
                f"run: {how}")
    refusal = ctx.git.update_checkout(path, old, new)
    if refusal is None:
        return None
    return f"could not update the checkout at {path} ({refusal}); to update it, run: {how}"
