"""Recovery of runs whose process died (SIGKILL, power loss) and the retry bookkeeping.

A run is dead when its record says it was running but no live process holds its phase lease
(the OS drops a dead holder's flock). If its commit reached the target (found by the
`Forge-Run:` trailer) it landed: the note is written if missing and the record closed.
Otherwise nothing landed, and the phase is simply runnable again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from gitforge.context import Context
from gitforge.gates import end_orphans
from gitforge.land import repair_checkouts
from gitforge.state import Store, now_iso

SCAN_DEPTH = 500


def _trailer(message: str, key: str) -> str | None:
    m = re.search(rf"^{key}:\s*(\S+)\s*$", message, re.MULTILINE)
    return m.group(1) if m else None


def dead_runs(store: Store, live: dict) -> list[dict]:
    """Run records that say "running" while no live lease (process or host-agent session)
    holds their phase for that run: their process died."""
    return [r for r in store.runs() if r.get("status") == "running"
            and not (r.get("phase") in live and live[r["phase"]].run_id == r.get("run_id"))]


def recover(ctx: Context) -> list[str]:
    """Close the records of dead runs; returns one message per recovered run. The caller holds
    the state lock, so no run can be between its claim and its first record meanwhile."""
    store = ctx.store
    dead = dead_runs(store, store.live_leases())
    if not dead:
        return []
    landed = {}
    for commit, message in ctx.git.log(ctx.tip, SCAN_DEPTH):
        run = _trailer(message, "Forge-Run")
        if run:
            landed.setdefault(run, (commit, _trailer(message, "Forge-Status") or "Done"))
    messages = []
    for rec in dead:
        for pid in end_orphans(Path(rec.get("run_dir", "")), rec.get("worktree")):
            messages.append(f"ended gate process group {pid} left running by dead run {rec['run_id']}")
        found = landed.get(rec["run_id"])
        if found:
            commit, status = found
            rec.update(status="landed" if status == "Done" else "failed", commit=commit, recovered=True)
            note = rec.get("note") or {"schema_version": 1, "run_id": rec["run_id"], "phase": rec["phase"],
                                       "status": rec["status"], "recovered": True}
            existing = ctx.git.read_note(commit) or ""
            if rec["run_id"] not in existing:
                with store.locked("notes", what="the notes lock"):
                    ctx.git.append_note(commit, json.dumps(note, sort_keys=True))
            messages.append(f"recovered run {rec['run_id']} (phase {rec['phase']}): it had landed as "
                            f"{commit[:12]} before its process died; its record and note are complete now")
            messages += repair_checkouts(ctx, commit)
        else:
            rec.update(status="crashed", retryable=True,
                       reason=f"the gitforge process (pid {rec.get('pid')}) died during '{rec.get('step')}'; "
                              f"nothing landed")
            messages.append(f"run {rec['run_id']} (phase {rec['phase']}) died during '{rec.get('step')}'; "
                            f"nothing landed, the phase can run again")
        rec.update(ended=rec.get("ended") or now_iso())
        store.save_run(rec)
        store.event("run.recovered", run_id=rec["run_id"], phase=rec["phase"], status=rec["status"])
    return messages


def retryable_phases(store: Store, max_attempts: int) -> set[str]:
    """Failed phases with attempts left: their last run failed for a reason a new run can fix
    (not a fixed patch that was refused, nor all attempts spent)."""
    last: dict[str, dict] = {}
    used: dict[str, int] = {}
    for rec in store.runs():
        phase = rec.get("phase")
        if phase is None or rec.get("status") not in ("failed", "crashed"):
            continue
        last[phase] = rec
        used[phase] = used.get(phase, 0) + len(rec.get("attempts", []))
    return {p for p, rec in last.items() if rec.get("retryable") and used[p] < max_attempts}
