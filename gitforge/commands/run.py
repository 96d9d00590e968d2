"""gitforge run / resume: drain the backlog with K workers through the merge queue."""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from gitforge.commands.check import show_findings
from gitforge.context import Context
from gitforge.health import before_next
from gitforge.infra.state.queuefile import QueueFile
from gitforge.scheduler.board import LiveBoard, PlainBoard
from gitforge.scheduler.coordinator import Coordinator, Report
from gitforge.ui import UI, print_json


def run(repo: Path, parallel: int | None, max_phases: int | None, overrides: Mapping[str, object],
        as_json: bool = False) -> int:
    return _drive(repo, overrides, as_json, lambda c: c.start(), parallel, max_phases)


def resume(repo: Path, batch: str | None, parallel: int | None, overrides: Mapping[str, object],
           as_json: bool = False) -> int:
    return _drive(repo, overrides, as_json, lambda c: c.resume(batch), parallel, None)


def _drive(repo, overrides, as_json, go, parallel, max_phases) -> int:
    given = {k: v for k, v in overrides.items() if v is not None}
    ctx = Context.open(repo, given)
    ui = UI()
    problems = [f for f in before_next(ctx) if f.level in ("warn", "error")]
    show_findings(ui, problems)
    if any(f.level == "error" for f in problems):
        ui.info("run stopped before starting a worker; `gitforge check` runs every check")
        return 2
    live = sys.stderr.isatty() and not as_json
    board = LiveBoard(ui, QueueFile(ctx.store)) if live else PlainBoard(ui)
    coordinator = Coordinator(ctx, board, parallel, max_phases, given)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        report = go(coordinator)
    finally:
        signal.signal(signal.SIGTERM, previous)
        board.close()
    if as_json:
        print_json({"command": "run", **report.to_json()})
    else:
        _summary(ui, report)
    return report.exit_code


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _summary(ui: UI, r: Report) -> None:
    out = UI.out
    verb = "stopped" if r.status == "stopped" else "done"
    out(f"Run {r.batch_id} {verb} in {r.seconds:.1f}s: {len(r.landed)} landed, {len(r.failed)} failed, "
        f"{len(r.skipped)} skipped, {len(r.blocked)} blocked; ${r.usd:.4f}")
    for item in r.landed:
        out(f"  landed  {item['phase']}: {item['title']} ({(item['commit'] or '')[:12]})")
    for item in r.failed:
        out(f"  failed  {item['phase']}: {item['title']} — {item['reason']}  (gitforge show {item['run_id']})")
    for item in r.skipped:
        out(f"  skipped {item['phase']}: {item['title']} — {item['reason']}")
    for phase, why in r.blocked.items():
        out(f"  blocked {phase}: {why}")
    for error in r.errors:
        ui.fail(error)
    if r.status == "stopped":
        out(f"  continue it with: gitforge resume {r.batch_id}")
