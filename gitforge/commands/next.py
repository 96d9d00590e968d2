"""gitforge next: take the next runnable phase to a verified commit on the target."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gitforge.commands.check import show_findings
from gitforge.context import Context
from gitforge.run.engine import Engine
from gitforge.health import before_next
from gitforge.ui import UI, print_json


def next_phase(repo: Path, phase: str | None, overrides: Mapping[str, object], as_json: bool = False,
               again: bool = False) -> int:
    ctx = Context.open(repo, overrides)
    ui = UI()
    problems = [f for f in before_next(ctx) if f.level in ("warn", "error")]
    show_findings(ui, problems)
    errors = [f for f in problems if f.level == "error"]
    if errors:
        ui.info("next stopped before claiming a phase; `gitforge check` runs every check")
        if as_json:
            print_json({"command": "next", "ok": False, "status": "refused", "error": errors[0].message,
                        "hint": errors[0].fix, "exit_code": 2, "findings": [f.to_json() for f in problems]})
        return 2
    outcome = Engine(ctx, ui).next(phase, again)
    say = ui.info if as_json else ui.out
    if outcome.status == "nothing":
        say(f"Nothing to do: {outcome.reason}")
    elif outcome.status == "landed":
        say(f"Landed phase {outcome.phase.id}: {outcome.phase.title} -> {ctx.target} {outcome.commit[:12]}"
               f" (run {outcome.run_id})")
    else:
        verb = "was skipped" if outcome.status == "skipped" else "failed"
        say(f"Phase {outcome.phase.id} {verb}: {outcome.reason}")
        say(f"  details: gitforge show {outcome.run_id}")
    if as_json:
        print_json({"command": "next", **outcome.to_json()})
    return outcome.exit_code
