"""Which phase a driver works on next (DESIGN.md §2 step 2), after recovering from any run
that died: runnable (Not started, or Failed with attempts left), dependencies Done, no live
lease, not already landed; a phase asked for by name must be runnable, or the refusal says why."""

from __future__ import annotations

from gitforge.backlog import Phase
from gitforge.context import Context
from gitforge.errors import UsageError
from gitforge.run.recover import landed_phases, recover, retryable_phases
from gitforge.run.selection import select_next
from gitforge.ui import UI


def recover_now(ctx: Context, ui: UI) -> None:
    """Recovery (run/recover.py) under the state lock, each thing it did said."""
    with ctx.store.locked("state", what="the state lock"):
        for message in recover(ctx):
            ui.warn(message)


def select(ctx: Context, phase_id: str | None = None, again: bool = False,
           done: frozenset[str] = frozenset()) -> tuple[Phase | None, str]:
    """(the phase to run, "") or (None, why nothing is runnable). The caller holds the state lock.
    `done`: phases a `run` already ran and that did not land (not run again by the same run)."""
    store = ctx.store
    backlog = ctx.backlog()
    busy = set(store.live_leases()) | done
    retryable = retryable_phases(store, ctx.cfg.max_attempts)
    landed = landed_phases(ctx, backlog)
    if phase_id is None:
        sel = select_next(backlog, busy=busy, retryable=retryable, landed=landed)
        return sel.phase, sel.reason
    phase = backlog.get(phase_id)
    if again:
        landed.pop(phase.id, None)
    sel = select_next(backlog, busy=busy, retryable=retryable, landed=landed)
    runnable = phase.status == "Not started" or (phase.status == "Failed" and phase.id in retryable)
    waiting = [d for d in phase.dependencies if backlog.get(d).status != "Done"]
    if phase.id in busy:
        raise store.busy_error(phase.id, store.live_leases().get(phase.id))
    if phase.id in landed:
        raise UsageError(f"phase {phase.id} cannot run now: it landed already ({landed[phase.id]}) although "
                         f"{ctx.cfg.backlog} says {phase.status}",
                         hint=f"if its landing was undone on purpose, run it anew: gitforge next {phase.id} --again")
    if not runnable or waiting:
        why = sel.blocked.get(phase.id) or (
            f"it waits on phase {', '.join(waiting)}" if waiting else f"its status is {phase.status}")
        raise UsageError(f"phase {phase.id} cannot run now: {why}", hint="run `gitforge status` to see the board")
    return phase, ""
