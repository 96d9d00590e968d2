"""How a run ends: landed (its record closed, the checkouts' notices passed on), or failed or
skipped (the phase's new status and a PROGRESS.md entry land on the target as a bookkeeping
commit with the run note, then the record is closed)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gitforge.backlog import Phase
from gitforge.errors import ForgeError
from gitforge.land.move import Landing
from gitforge.run.lander import Lander
from gitforge.run.spend import by_role
from gitforge.run.tracker import Tracker
from gitforge.ui import UI


@dataclass
class Outcome:
    status: str  # "landed" | "failed" | "skipped" | "nothing"
    reason: str = ""
    phase: Phase | None = None
    run_id: str | None = None
    commit: str | None = None
    details: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.status in ("failed", "skipped") else 0

    def to_json(self) -> dict:
        return {"status": self.status, "reason": self.reason, "run_id": self.run_id, "commit": self.commit,
                "phase": self.phase.id if self.phase else None,
                "title": self.phase.title if self.phase else None, "details": self.details,
                "notices": self.notices}


def landed(ui: UI, tracker: Tracker, phase: Phase, landing: Landing, target: str) -> Outcome:
    tracker.record.reverified = landing.reverified
    tracker.record.commit = landing.commit
    tracker.close("landed")
    tracker.event("run.landed", commit=landing.commit)
    ui.ok(f"Phase {phase.id} landed on {target} as {landing.commit[:12]}")
    out = Outcome("landed", phase=phase, run_id=tracker.run_id, commit=landing.commit)
    for _, how in landing.checkouts:
        if how:
            ui.warn(how)
            out.notices.append(how)
    return out


def failed(ui: UI, lander: Lander, tracker: Tracker, phase: Phase, reason: str, retryable: bool,
           status: str = "Failed") -> Outcome:
    """Close the run as failed (or skipped) and land that on the target's board."""
    attempts = tracker.attempts
    tracker.save(retryable=retryable, reason=reason, llm=by_role(tracker.meter.phase_calls()))
    verb = "was skipped" if status == "Skipped" else "failed"
    ui.fail(f"Phase {phase.id} {verb}: {reason.splitlines()[0] if reason else ''}")
    out = Outcome("skipped" if status == "Skipped" else "failed", reason, phase=phase, run_id=tracker.run_id,
                  details=attempts[-1].details if attempts else [])
    try:
        landing = lander.land(tracker, phase, status, reason=reason)
        tracker.record.commit = out.commit = landing.commit
        out.notices += [how for _, how in landing.checkouts if how]
    except ForgeError as e:  # the failure itself is what matters; say the bookkeeping did not land
        ui.warn(f"could not record the failure on {lander.ctx.target}: {e.message}")
    tracker.close(status.lower(), reason)
    tracker.event(f"run.{status.lower()}", reason=reason)
    return out
