"""A run's gates through the merge queue (land/queue.py): the gate step of each attempt joins the
queue and proves the change on the tree it is predicted to land as, then waits for what is
ahead to settle, proving it again only if the prediction's code changed. It returns when the
change may land now (it passed on what the target now holds, with nothing ahead), when it
failed on that (its own failure, fed back to the builder), or when it conflicts with what
landed (fed back too, with the run moved onto the new tip)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gitforge.context import Context
from gitforge.land.queue import Entry, Prediction, Queue
from gitforge.run.proof import Proof
from gitforge.ui import UI

POLL = 0.05  # seconds between looks at the queue while waiting on the entries ahead


@dataclass
class Verified:
    proof: Proof | None = None
    tree: str | None = None       # the tree the gates passed (or failed) on
    base: str | None = None       # a commit of the prediction it was tested on
    conflict: list[str] = field(default_factory=list)
    tip: str | None = None        # the target's tip when it returned
    runs: int = 0                 # how many times the gates ran


class QueueSlot:
    """One run's place in the queue; it leaves when the run lands or ends (`leave`)."""

    def __init__(self, ctx: Context, ui: UI, run_id: str, phase: str,
                 alive: Callable[[], None] | None = None) -> None:
        self.ctx, self.ui, self.run_id, self.phase = ctx, ui, run_id, phase
        self.queue = Queue(ctx)
        self.entry: Entry | None = None
        self.alive = alive  # raises when the run must stop (its coordinator is gone)

    def verify(self, base: str, tree: str, log_dir: Path, gates: Callable[[str, str, Path], Proof]) -> Verified:
        """`gates(tree, prediction commit, log dir)` runs the gates on `tree` in the worktree."""
        git = self.ctx.git
        self.entry = entry = self.queue.join(self.run_id, self.phase, base, tree)
        tested: Prediction | None = None
        out = Verified()
        while True:
            ahead = self.queue.ahead(entry)
            pred = self.queue.predict(ahead)
            merged, conflicts = self.queue.place(entry, pred)
            if merged is None:
                if not ahead:
                    self.leave()  # back to its builder: those behind must not wait on it
                    return Verified(conflict=conflicts, tip=pred.tip, runs=out.runs)
                self.ui.info(f"queue: the change conflicts with {len(ahead)} change(s) ahead in "
                             f"{', '.join(conflicts[:5])}; waiting for them to land or fail")
                self._wait(pred)
                continue
            if not pred.same_as(self.ctx, tested):
                if tested is not None:
                    self.ui.step("queue: what is ahead changed; testing again on the new prediction")
                commit = pred.tip if pred.tree == git.tree_of(pred.tip) else git.commit(
                    pred.tree, [pred.tip], "gitforge prediction")
                where = log_dir if out.runs == 0 else log_dir.with_name(f"{log_dir.name}-queue-{out.runs + 1}")
                proof = gates(merged, commit, where)
                out = Verified(proof, merged, commit, runs=out.runs + 1)
                tested = pred
            if not ahead:
                out.tip = pred.tip
                if not out.proof.ok:
                    self.leave()  # its own failure: those behind are tested again without it
                return out
            self.ui.info(f"queue: {'passed' if out.proof.ok else 'failed'} on the tip plus {len(ahead)} change(s) "
                         f"ahead; waiting for them")
            self._wait(pred)

    def _wait(self, pred: Prediction) -> None:
        """Until an entry ahead leaves or the target moves."""
        while True:
            if self.alive is not None:
                self.alive()
            time.sleep(POLL)
            if self.ctx.tip != pred.tip:
                return
            ahead = tuple(e.id for e in self.queue.ahead(self.entry))
            if ahead != pred.ahead:
                return

    def leave(self) -> None:
        if self.entry is not None:
            self.queue.leave(self.entry)
            self.entry = None
