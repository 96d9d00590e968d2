"""Recovery after a gitforge process died (SIGKILL, power loss), and the retry bookkeeping.

Run under the state lock before any new work, in this order:

1. every process a dead gitforge started (gates, setup, agents) is ended, wherever it runs;
2. git lock files nobody can finish any more are removed (`git/locks.py` says which);
3. a run is dead when its record says it was running but no live lease holds its phase for
   it (the OS drops a dead holder's flock). If its commit reached the target (found by the
   `Forge-Run:` trailer) it landed: the record is closed as landed. Otherwise nothing landed,
   and the phase is simply runnable again;
4. every recent commit on the target that carries a `Forge-Run:` trailer has its run note
   (written from the run's record);
5. a checkout of the target left behind by an interrupted landing is brought up to date.
"""

from __future__ import annotations

import json

from gitforge.context import Context
from gitforge.infra.gates import end_dead_owners
from gitforge.git.locks import clear_stale, inspect
from gitforge.land.checkouts import repair_checkouts
from gitforge.infra.state import Store
from gitforge.run.record import RunRecord, all_runs, load

SCAN_DEPTH = 500   # commits searched for a dead run's landing
NOTE_DEPTH = 50    # recent commits whose notes are checked on every recovery


def _trailer(message: str, key: str) -> str | None:
    for line in reversed(message.splitlines()):
        if line.startswith(f"{key}:"):
            return line.split(":", 1)[1].strip() or None
    return None


def dead_runs(store: Store, live: dict) -> list[RunRecord]:
    """Run records that say "running" while no live lease (process or host-agent session)
    holds their phase for that run: their process died."""
    return [r for r in all_runs(store) if r.open and not (r.phase in live and live[r.phase].run_id == r.run_id)]


def recover(ctx: Context) -> list[str]:
    """Steps 1-5 above; returns one message per thing recovered. The caller holds the state
    lock, so no run can be between its claim and its first record meanwhile."""
    store = ctx.store
    messages = [f"ended process {pid}, left running by a gitforge process that died"
                for pid in end_dead_owners(store.runs_dir)]
    live = store.live_leases()
    # A live landing holds the merge lock from its ref move to its note and checkouts: while
    # it does, what it is about to write is not missing, so only what is safe is done now.
    with store.held_if_free("merge") as merge:
        messages += clear_locks(ctx, live, merge)
        dead = dead_runs(store, live)
        landed = _landings(ctx, SCAN_DEPTH if dead else NOTE_DEPTH)
        records = {}
        for rec in dead:
            found = landed.get(rec.run_id)
            if found and not merge:
                continue  # decided by the next recovery, once no landing is under way
            records[rec.run_id] = rec
            if found:
                commit, status = found
                rec.commit, rec.recovered = commit, True
                rec.end("landed" if status == "Done" else "failed")
                messages.append(f"recovered run {rec.run_id} (phase {rec.phase}): it had landed as "
                                f"{commit[:12]} before its process died; its record is complete now")
            else:
                rec.retryable, step = True, rec.step
                rec.end("crashed", f"the gitforge process (pid {rec.pid}) died during '{step}'; nothing landed")
                messages.append(f"run {rec.run_id} (phase {rec.phase}) died during '{step}'; "
                                f"nothing landed, the phase can run again")
            rec.save(store)
            store.event("run.recovered", run_id=rec.run_id, phase=rec.phase, status=rec.status)
        if merge:
            messages += complete_notes(ctx, landed, records)
            messages += repair_checkouts(ctx)
    return messages


def clear_locks(ctx: Context, live: dict, merge: bool) -> list[str]:
    """Remove git lock files that nobody can finish (step 2). gitforge's own locks held here
    say which kinds no live gitforge can be writing: the target's (merge lock), the run notes'
    (notes lock), the forge branches' (no other gitforge run is alive)."""
    git, store = ctx.git, ctx.store
    roots = [git.root, *git.worktree_paths()]
    found = inspect(git.common_dir, ctx.target, roots)
    if not found:
        return []
    quiet = set()
    with store.held_if_free("notes") as notes:
        if merge:
            quiet.add("target")
            if not any(lease.kind == "process" for lease in live.values()):
                quiet.add("forge")
        if notes:
            quiet.add("notes")
        removed = clear_stale(found, quiet)
    return [f"removed the stale git lock {path} (left by a process that died; no process holds it)"
            for path in removed]


def _landings(ctx: Context, depth: int) -> dict[str, tuple[str, str]]:
    """{run id: (commit, status)} for the commits with a Forge-Run trailer among the target's
    last `depth` first-parent commits."""
    landed: dict[str, tuple[str, str]] = {}
    for commit, message in ctx.git.log(ctx.tip, depth):
        run = _trailer(message, "Forge-Run")
        if run:
            landed.setdefault(run, (commit, _trailer(message, "Forge-Status") or "Done"))
    return landed


def landed_phases(ctx: Context, backlog) -> dict[str, str]:
    """Phases that are not Done on the board but whose landing (a `Phase <N>: <title>` commit with
    a Forge-Run trailer and no Forge-Status) is in the target's history: phase id -> where."""
    open_titles = {p.id: p.title for p in backlog.phases if p.status != "Done"}
    found: dict[str, str] = {}
    if not open_titles:
        return found
    for commit, message in ctx.git.log(ctx.tip, SCAN_DEPTH):
        phase, run = _trailer(message, "Forge-Phase"), _trailer(message, "Forge-Run")
        if not (phase and run) or phase not in open_titles or phase in found or _trailer(message, "Forge-Status"):
            continue
        if message.split("\n", 1)[0].strip() == f"Phase {phase}: {open_titles[phase]}":
            found[phase] = f"run {run}, commit {commit[:12]}"
    return found


def complete_notes(ctx: Context, landed: dict[str, tuple[str, str]], records: dict[str, RunRecord]) -> list[str]:
    """Step 4: the note of every landing whose run has a record, written where it is missing."""
    store, git = ctx.store, ctx.git
    missing = [(run, commit, status) for run, (commit, status) in landed.items()
               if run not in (git.read_note(commit) or "")]
    messages = []
    for run, commit, status in missing:
        rec = records.get(run) or load(store, run)
        if rec is None:
            continue  # no record here (another clone's run): `gitforge notes fetch` brings its note
        note = rec.note or {"schema_version": 1, "run_id": run, "phase": rec.phase,
                            "status": "landed" if status == "Done" else status.lower()}
        note = {**note, "recovered": True}
        with store.locked("notes", what="the notes lock"):
            if run not in (git.read_note(commit) or ""):
                git.append_note(commit, json.dumps(note, sort_keys=True))
                messages.append(f"wrote the missing run note of {commit[:12]} (run {run}, phase {rec.phase})")
        if rec.commit != commit:
            rec.commit = commit
            rec.save(store)
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
