"""Landing a run's work (DESIGN.md §2 step 10), the part every driver shares: `next`, host-agent
sessions and `run` workers hand the Lander a verified Candidate (or nothing, for a phase that
failed: then only the bookkeeping lands).

When the target has moved since the candidate's base, the change is merged onto the new tip in
memory; if the code it would land on differs from the code its gates ran on, it is
re-verified there first — outside the merge lock, so other landings go on meanwhile. The
commit is then made on that tip and moved there by compare-and-swap (land/move.py), which
fails if the tip moved again: then the loop goes round. After OUTSIDE_TRIES rounds lost to
other landings, the re-verification holds the merge lock, so a busy target cannot starve it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from gitforge.backlog import Phase
from gitforge.context import Context
from gitforge.errors import LockBusy, WorkFailed
from gitforge.land.commit import landing_commit, same_code
from gitforge.land.move import Landing, move_target
from gitforge.run.tracker import Tracker
from gitforge.ui import UI

CAS_ATTEMPTS = 8
OUTSIDE_TRIES = 3


@dataclass
class Candidate:
    """A verified change: the commit its gates ran on (`base`), the tree they passed, the
    candidate commit, and the gate results that prove that tree."""

    base: str
    tree: str
    commit: str
    gates: list = field(default_factory=list)


class LandConflict(WorkFailed):
    """The change conflicts with what landed on the target since its base."""

    def __init__(self, message: str, files: list[str], hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.files = files


class Lander:
    def __init__(self, ctx: Context, ui: UI) -> None:
        self.ctx, self.ui = ctx, ui

    def land(self, tracker: Tracker, phase: Phase, status: str, cand: Candidate | None = None, *,
             reverify=None, reason: str = "", summary: str = "") -> Landing:
        """Land `cand` (or, with None, the bookkeeping alone) with `phase` set to `status`.
        `reverify(tip, merged_tree) -> Candidate` proves the change on a moved target; it raises
        WorkFailed when it fails there."""
        ctx, git = self.ctx, self.ctx.git
        reverified = False
        for n in range(CAS_ATTEMPTS):
            hold = ctx.store.locked("merge", what="the merge lock") if n >= OUTSIDE_TRIES else contextlib.nullcontext()
            with hold:
                tip = ctx.tip
                tree = git.tree_of(tip)
                parents = [tip]
                if cand is not None:
                    if tip != cand.base:
                        merged = self._merged(phase, cand, tip)
                        if not same_code(ctx, cand.base, tip):
                            self.ui.step(f"{ctx.target} moved to {tip[:12]}: re-verifying the change on the new tip")
                            cand, reverified = reverify(tip, merged), True
                            if n < OUTSIDE_TRIES:
                                continue  # the tip may have moved while the gates ran
                        else:
                            cand = Candidate(tip, merged, git.commit(merged, [tip], "gitforge candidate (rebased)"),
                                             cand.gates)
                    tree = cand.tree
                    if ctx.cfg.merge.strategy == "merge":
                        parents.append(cand.commit)
                gates = cand.gates if cand is not None else None
                note = tracker.note(status.lower() if status != "Done" else "landed", gates, reverified)
                commit = landing_commit(ctx, tree, parents, phase, status, tracker.run_id,
                                        tracker.entry(status, gates, reason), summary)
                if cand is not None:
                    tracker.step("landing", landing_commit=commit, note=note)
                else:  # a failure's bookkeeping: recovery writes the note from here if need be
                    tracker.save(landing_commit=commit, note=note)
                landing = move_target(ctx, tip, commit, f"gitforge: phase {phase.id} {status} (run {tracker.run_id})",
                                      note)
                if landing is not None:
                    landing.reverified = reverified
                    return landing
                if cand is not None:
                    tracker.step("land")
        # not the change's fault: nothing landed, the phase is not marked Failed, no attempt is spent
        raise LockBusy(f"{ctx.target} kept moving during the landing ({CAS_ATTEMPTS} tries, each re-verified on "
                       f"the new tip); nothing landed and phase {phase.id} can run again",
                       hint="pause other commits to the branch for a moment, then run gitforge next again")

    def _merged(self, phase: Phase, cand: Candidate, tip: str) -> str:
        git = self.ctx.git
        merged, conflicts = git.merge_trees(git.tree_of(cand.base), git.tree_of(tip), cand.tree)
        if merged is None:
            raise LandConflict(f"{self.ctx.target} moved while phase {phase.id} ran, and the change conflicts "
                               f"with it in: {', '.join(conflicts)}", conflicts,
                               hint=f"run the phase again from the new tip: gitforge next {phase.id}")
        return merged
