"""gitforge next: take the next runnable phase to a verified commit on the target."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gitforge.context import Context
from gitforge.engine import Engine
from gitforge.ui import UI, print_json


def next_phase(repo: Path, phase: str | None, overrides: Mapping[str, object], as_json: bool = False) -> int:
    ctx = Context.open(repo, overrides)
    ui = UI()
    outcome = Engine(ctx, ui).next(phase)
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
