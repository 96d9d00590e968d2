"""The record of one phase run: a typed value with explicit states and the transitions
between them, saved through the state layer with a version check.

A run is `running` at one `step` until it ends in one of the final statuses::

    worktree ─► build ◄─► gates          (gitforge next: the fix loop)
        │         │         │
        │         └────┬────┘
        ▼              ▼
      edit ◄─► submit ─► land ◄─► landing ─► done   (the target moved: back to land, re-verify)
      (host agent)      │  ▲                          (a session whose change no longer fits: land ─► edit)
                        └──┘

    running ─► landed | failed | skipped | crashed | abandoned
    crashed ─► running     (a host-agent session whose submit died before its landing went on)

Every save carries the version it was loaded or last saved with: a save over a record that
someone else saved meanwhile raises StaleRecord instead of overwriting it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from gitforge.errors import BadTransition, StaleRecord
from gitforge.infra.state import Store, now_iso

STEPS = {
    "worktree": {"build", "edit"},
    "build": {"gates", "land"},
    "gates": {"build", "land"},
    "edit": {"submit"},
    "submit": {"gates", "land", "edit"},
    "land": {"landing", "edit"},
    "landing": {"land", "edit"},
    "done": {"edit"},
}
FINAL = ("landed", "failed", "skipped", "crashed", "abandoned")
STATUSES = {"running": set(FINAL), "crashed": {"running", "landed", "failed"}}


__all__ = ["BadTransition", "RunRecord", "StaleRecord", "all_runs", "find", "load"]


@dataclass
class RunRecord:
    run_id: str
    phase: str
    title: str = ""
    status: str = "running"
    step: str = "worktree"
    mode: str | None = None          # "host" for a host-agent session
    batch: str | None = None         # the `gitforge run` it belongs to
    target: str | None = None
    base: str | None = None
    branch: str | None = None
    builder: dict = field(default_factory=dict)
    pid: int | None = None
    host: str | None = None
    started: str | None = None
    ended: str | None = None
    run_dir: str = ""
    worktree: str | None = None
    worktree_name: str | None = None
    attempts: list[dict] = field(default_factory=list)
    reason: str | None = None
    retryable: bool | None = None
    commit: str | None = None
    landing_commit: str | None = None
    reverified: bool | None = None
    recovered: bool | None = None
    note: dict | None = None
    plan: dict | None = None
    llm: dict | None = None
    decisions: list = field(default_factory=list)
    updated: str | None = None
    version: int = 0
    extra: dict = field(default_factory=dict)   # keys a newer gitforge wrote: kept as they were

    @classmethod
    def begin(cls, store: Store, run_id: str, phase, **values: Any) -> RunRecord:
        """A new running record for `phase`, its run folder made."""
        return cls(run_id=run_id, phase=phase.id, title=phase.title, branch=f"forge/{phase.id}-{phase.slug}",
                   pid=os.getpid(), host=socket.gethostname(), started=now_iso(),
                   run_dir=str(store.run_dir(run_id)), **values)

    # -- states -------------------------------------------------------------------------
    @property
    def open(self) -> bool:
        return self.status == "running"

    def to(self, step: str) -> RunRecord:
        """Move to `step` (staying put is allowed)."""
        if step != self.step and step not in STEPS.get(self.step, ()):
            raise BadTransition(f"run {self.run_id}: no way from step '{self.step}' to '{step}'")
        self.step = step
        return self

    def end(self, status: str, reason: str | None = None) -> RunRecord:
        """The run ends (or, from crashed, resumes) with `status`."""
        if status != self.status and status not in STATUSES.get(self.status, ()):
            raise BadTransition(f"run {self.run_id}: no way from status '{self.status}' to '{status}'")
        self.status = status
        if status == "running":
            self.ended = None
            self.reason = None
        else:
            self.step, self.ended = "done", self.ended or now_iso()
        if reason is not None:
            self.reason = reason
        return self

    def reopen(self, step: str) -> RunRecord:
        """A host-agent session whose submit died before landing goes on editing."""
        self.end("running")
        return self.to(step)

    # -- persistence ----------------------------------------------------------------------
    def save(self, store: Store) -> RunRecord:
        self.version = store.save_run(self.to_json(), expect=self.version)
        return self

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**self.extra, **{k: v for k, v in out.items() if v is not None or k in _ALWAYS}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known and k != "schema_version"}
        return cls(**values, extra=extra)

    @property
    def folder(self) -> Path:
        return Path(self.run_dir)


_ALWAYS = {"run_id", "phase", "status", "step"}


def load(store: Store, run_id: str) -> RunRecord | None:
    data = store.load_run(run_id)
    return None if data is None else RunRecord.from_json(data)


def all_runs(store: Store) -> list[RunRecord]:
    """Every run record, oldest first."""
    return [RunRecord.from_json(d) for d in store.runs()]


def find(store: Store, prefix: str) -> list[RunRecord]:
    return [RunRecord.from_json(d) for d in store.find_runs(prefix)]
