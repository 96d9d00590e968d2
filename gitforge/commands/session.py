"""gitforge start / submit / abandon: a host agent (Claude Code) as the builder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gitforge.context import Context
from gitforge.run.session import HostSession, Session
from gitforge.ui import UI, print_json


def start(repo: Path, phase: str | None, overrides: Mapping[str, object], as_json: bool = False) -> int:
    ctx = Context.open(repo, overrides)
    session = HostSession(ctx, UI()).start(phase)
    return _report("start", session, as_json)


def submit(repo: Path, run: str | None, as_json: bool = False) -> int:
    session = HostSession(Context.open(repo), UI()).submit(run)
    return _report("submit", session, as_json)


def abandon(repo: Path, run: str, as_json: bool = False) -> int:
    session = HostSession(Context.open(repo), UI()).abandon(run)
    return _report("abandon", session, as_json)


def _report(command: str, s: Session, as_json: bool) -> int:
    if as_json:
        print_json({"command": command, **s.to_json()})
        return s.exit_code
    ui, out = UI(), UI.out
    if s.status in ("started", "resumed", "nothing"):  # a landing's notices were printed as it landed
        for notice in s.notices:
            ui.warn(notice)
    if s.status == "nothing":
        out(f"Nothing to do: {s.reason}")
    elif s.status in ("started", "resumed"):
        out(f"Phase {s.phase.id}: {s.phase.title}   (run {s.run_id}, {s.status})")
        out(f"Worktree: {s.worktree}")
        out(f"  branch {s.branch}, from {s.target} @ {s.base[:12]}; edit files there (no need to commit)")
        out("Gates: " + ("; ".join(f"{g['name']}: {g['run']}" for g in s.gates) or "none configured"))
        out(f"Attempts left: {s.attempts_left}")
        out()
        out(s.phase.text.rstrip())
        out()
        out(f"When the change is made: gitforge submit {s.run_id}   (to give up: gitforge abandon {s.run_id})")
    elif s.status == "landed":
        out(f"Landed phase {s.phase.id}: {s.phase.title} -> {s.target} {s.commit[:12]} (run {s.run_id})")
    elif s.status == "retry":
        out(f"Not landed: {s.reason}")
        if s.feedback:
            out(s.feedback)
        out(f"Fix the files in {s.worktree} (your edits are still there), then: gitforge submit {s.run_id}"
            f"   ({s.attempts_left} attempt(s) left)")
    elif s.status == "abandoned":
        out(f"Released run {s.run_id}" + (f" (phase {s.phase.id})" if s.phase else "") + "; nothing landed")
    else:
        verb = "was skipped" if s.status == "skipped" else "failed"
        out(f"Phase {s.phase.id} {verb}: {s.reason}")
        out(f"  details: gitforge show {s.run_id}")
    return s.exit_code
