"""A `gitforge run` worker process: it takes runnable phases one after another, each through one
phase's life (run/phase.py) with its gates through the merge queue, until nothing is left for
it, the run's shared budget is spent, or it is told to stop (SIGTERM, or its coordinator died).

    python -m gitforge.scheduler.worker --root R --batch ID --worker N [--max-phases N] [--overrides JSON]

Its messages go to stdout as event lines (scheduler/events.py) for the coordinator."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time

from gitforge.builders import make_builder
from gitforge.context import Context
from gitforge.errors import ForgeError
from gitforge.infra.state import new_id
from gitforge.run.lander import Lander
from gitforge.run.phase import PhaseRun
from gitforge.run.queued import QueueSlot
from gitforge.run.record import all_runs, load
from gitforge.run.select import recover_now, select
from gitforge.run.spend import Meter
from gitforge.scheduler.events import EventUI

IDLE_POLL = 0.2      # seconds between looks while phases of this run are still in flight
CRASHES_PER_PHASE = 2  # a phase whose worker died this often is not taken again by the same run


class Stop(KeyboardInterrupt):
    """Told to stop: the phase in progress ends as interrupted (nothing lands half-way)."""


def _stop(signum, frame) -> None:
    raise Stop(f"signal {signum}")


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the coordinator dies (elsewhere, `alive` polls instead)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Worker:
    def __init__(self, ctx: Context, ui: EventUI, batch: str, max_phases: int | None, parent: int) -> None:
        self.ctx, self.ui, self.batch, self.max_phases, self.parent = ctx, ui, batch, max_phases, parent
        self.meter = Meter(ctx.cfg.budgets, ctx.cfg.prices, warn=ui.warn)
        self.lander = Lander(ctx, ui)

    def alive(self) -> None:
        if os.getppid() != self.parent:
            raise Stop("the coordinator is gone")

    def run(self) -> int:
        recover_now(self.ctx, self.ui)
        while True:
            self.alive()
            picked = self._pick()
            if picked is None:
                return 0
            if picked == "wait":
                time.sleep(IDLE_POLL)
                continue
            phase, builder, run_id, lease = picked
            with lease:  # the phase's lease, taken by _pick
                self.ui.emit("phase", phase=phase.id, title=phase.title, run_id=run_id)
                slot = QueueSlot(self.ctx, self.ui, run_id, phase.id, alive=self.alive)
                out = PhaseRun(self.ctx, self.ui, self.meter, self.lander, phase, builder, run_id, slot=slot,
                               batch=self.batch).run()
            self.ui.emit("outcome", phase=phase.id, run_id=run_id, status=out.status, commit=out.commit,
                         reason=out.reason.splitlines()[0] if out.reason else "")

    def _pick(self):
        """(phase, builder, run id, lease) claimed under the state lock; "wait" while phases of
        this run are in flight and nothing else is runnable; None when this worker is done."""
        ctx = self.ctx
        with ctx.store.locked("state", what="the state lock"):
            mine = [r for r in all_runs(ctx.store) if r.batch == self.batch]
            if self.max_phases is not None and len({r.phase for r in mine}) >= self.max_phases:
                return None
            crashes: dict[str, int] = {}
            for r in mine:
                crashes[r.phase] = crashes.get(r.phase, 0) + (r.status == "crashed")
            done = frozenset(r.phase for r in mine if r.status in ("failed", "skipped", "abandoned")
                             or crashes[r.phase] >= CRASHES_PER_PHASE)
            phase, _ = select(ctx, done=done)
            if phase is None:
                in_flight = any((rec := load(ctx.store, lease.run_id)) is not None and rec.batch == self.batch
                                for lease in ctx.store.live_leases().values())
                return "wait" if in_flight else None
            builder = make_builder(ctx.cfg, phase)
            run_id = new_id()
            lease = contextlib.ExitStack()
            lease.enter_context(ctx.store.lease(phase.id, run_id))
        return phase, builder, run_id, lease


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gitforge-worker")
    ap.add_argument("--root", required=True)
    ap.add_argument("--batch", required=True)
    ap.add_argument("--worker", type=int, default=1)
    ap.add_argument("--max-phases", type=int, default=None)
    ap.add_argument("--overrides", default="{}")
    ap.add_argument("--parent", type=int, default=None)
    args = ap.parse_args(argv)
    parent = args.parent or os.getppid()
    _die_with_parent()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator decides; it sends SIGTERM
    ui = EventUI(args.worker)
    try:
        ctx = Context.open(args.root, json.loads(args.overrides))
        return Worker(ctx, ui, args.batch, args.max_phases, parent).run()
    except Stop as e:
        ui.emit("stopped", str(e))
        return 130
    except ForgeError as e:
        ui.emit("error", e.message, hint=e.hint, exit_code=e.exit_code)
        return e.exit_code
    except Exception as e:  # the coordinator reports it; the traceback goes to this worker's log
        import traceback

        traceback.print_exc()
        ui.emit("error", f"internal error: {e!r}", exit_code=3)
        return 3


if __name__ == "__main__":
    sys.exit(main())
