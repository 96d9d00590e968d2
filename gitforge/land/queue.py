"""The merge queue (DESIGN.md §2b), after Zuul's dependent pipeline, kept in `.forge/queue.json`
so that every worker process reads the same order and none has to be asked.

A change joins at the end when its gates are about to run. It is tested on the tree it is
predicted to land as: the target's tip, plus the change of every entry ahead of it that merges
(an entry that would not merge is predicted not to land), plus its own change. Entries land in
order; an entry leaves the queue when it lands, fails or its run ends. When what is ahead
changes in a way that changes the code of the prediction (an entry ahead failed, or the target
moved by other means), an entry behind is tested again on the new prediction; when what is
ahead lands as predicted, it is not.

An entry whose run is no longer alive (its process lease is gone) is dropped by the next reader.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from gitforge.context import Context
from gitforge.infra.state import new_id, now_iso
from gitforge.infra.state.queuefile import QueueFile


@dataclass(frozen=True)
class Entry:
    id: str
    run_id: str
    phase: str
    base: str     # the commit the change was made on
    tree: str     # the change applied there


@dataclass(frozen=True)
class Prediction:
    tip: str                  # the target's tip it starts from
    tree: str                 # the tip plus the changes ahead that merge
    ahead: tuple[str, ...]    # the entries ahead, by id

    def same_as(self, ctx: Context, other: Prediction | None) -> bool:
        """Whether a change tested on `other` is tested on this one: the same files, apart from
        the bookkeeping files (BACKLOG.md, PROGRESS.md), which are records, not code."""
        if other is None:
            return False
        if other.tree == self.tree:
            return True
        records = {ctx.cfg.backlog, ctx.cfg.progress}
        return set(ctx.git.changed_paths(other.tree, self.tree)) <= records


class Queue:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.file = QueueFile(ctx.store)

    def join(self, run_id: str, phase: str, base: str, tree: str) -> Entry:
        """Put a change at the end (a run's earlier entry, if any, leaves: a new change re-enters)."""
        entry = Entry(new_id(), run_id, phase, base, tree)
        with self.file.editing() as entries:
            entries[:] = [e for e in entries if e["run_id"] != run_id]
            entries.append({**entry.__dict__, "pid": os.getpid(), "host": socket.gethostname(),
                            "joined": now_iso(), "target": self.ctx.target})
        return entry

    def leave(self, entry: Entry) -> None:
        with self.file.editing() as entries:
            entries[:] = [e for e in entries if e["id"] != entry.id]

    def ahead(self, entry: Entry) -> list[Entry]:
        """The live entries ahead of `entry` for the same target, in order; those whose run is
        gone are dropped from the queue."""
        found = self.file.entries()
        mine = next((i for i, e in enumerate(found) if e["id"] == entry.id), len(found))
        before = [e for e in found[:mine] if e.get("target", self.ctx.target) == self.ctx.target]
        if not before:
            return []
        live = self.ctx.store.live_leases()
        dead = {e["id"] for e in before if not (e["phase"] in live and live[e["phase"]].run_id == e["run_id"])}
        if dead:
            with self.file.editing() as entries:
                entries[:] = [e for e in entries if e["id"] not in dead]
        return [_entry(e) for e in before if e["id"] not in dead]

    def predict(self, ahead: list[Entry]) -> Prediction:
        git = self.ctx.git
        tip = self.ctx.tip
        tree = git.tree_of(tip)
        for e in ahead:
            merged, _ = git.merge_trees(git.tree_of(e.base), tree, e.tree)
            if merged is not None:
                tree = merged
        return Prediction(tip, tree, tuple(e.id for e in ahead))

    def place(self, entry: Entry, prediction: Prediction) -> tuple[str | None, list[str]]:
        """The tree `entry`'s change makes of the prediction, or (None, the conflicting files)."""
        git = self.ctx.git
        return git.merge_trees(git.tree_of(entry.base), prediction.tree, entry.tree)


def _entry(data: dict) -> Entry:
    return Entry(data["id"], data["run_id"], data["phase"], data["base"], data["tree"])
