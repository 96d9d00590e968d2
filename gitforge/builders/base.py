"""What every builder is given and what it gives back.

A builder is made before the run claims its worktree (`make_builder`, which fails fast when
the builder cannot work: no API key, no agent command), then started with a `Job` once the
worktree exists. `build(attempt, feedback)` returns a `Built`: a unified diff against
`job.base`, or a failure that becomes the attempt's feedback (never applied), or None when
the builder has nothing more to offer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gitforge.backlog import Phase
from gitforge.patch.tree import TreeView


@dataclass(frozen=True)
class Plan:
    """The planner's answer (a forced `submit_plan` call)."""

    files: tuple[str, ...]
    approach: str
    risks: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"files": list(self.files), "approach": self.approach, "risks": list(self.risks),
                "checks": list(self.checks)}

    def render(self) -> str:
        lines = ["Files to touch: " + (", ".join(self.files) or "(none named)"), f"Approach: {self.approach}"]
        lines += [f"Risk: {r}" for r in self.risks] + [f"Check: {c}" for c in self.checks]
        return "\n".join(lines)


@dataclass
class Job:
    """One phase's build: where, against what, with which context."""

    phase: Phase
    workdir: Path                      # the task worktree (a command builder's agent edits here)
    base: str                          # the commit every diff is against
    view: TreeView                     # the base commit's tree, read-only
    files: list[tuple[str, int]]       # every tracked file at base with its size
    run_dir: Path                      # .forge/runs/<id>/ (prompts and agent logs go here)
    env: dict[str, str]                # GITFORGE_RUN, GITFORGE_PHASE, GITFORGE_WORKTREE
    capture: Callable[[], str]         # the worktree's changes against base, as one diff
    reset: Callable[[], None]          # the worktree back to the base commit (a fresh start)
    protected: tuple[str, ...] = ()    # paths the builder may not read or write (policy)
    plan: Plan | None = None


@dataclass
class Built:
    """One attempt's product: `diff` to run through the pipeline, or `failure` (why there is
    no usable diff, phrased as feedback for the next attempt). `final` means retrying the
    builder cannot help (an agent that hung, a configuration problem)."""

    diff: str | None = None
    summary: str = ""
    failure: str | None = None
    details: list[str] = field(default_factory=list)
    final: bool = False

    @classmethod
    def failed(cls, failure: str, details: list[str] | None = None, final: bool = False) -> Built:
        return cls(failure=failure, details=list(details or []), final=final)
