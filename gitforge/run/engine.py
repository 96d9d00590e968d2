"""`gitforge next` (DESIGN.md §2): recover -> select -> claim -> one phase's life (run/phase.py).
The pieces are shared with host-agent sessions (run/session.py) and `run` workers: selection
(run/select.py), the record (run/record.py, run/tracker.py), the landing (run/lander.py) and
the endings (run/endings.py)."""

from __future__ import annotations

import contextlib
import os

from gitforge.builders import make_builder
from gitforge.context import Context
from gitforge.infra.state import new_id
from gitforge.run.calls import api_key
from gitforge.run.endings import Outcome
from gitforge.run.lander import Lander
from gitforge.run.phase import PhaseRun
from gitforge.run.select import recover_now, select
from gitforge.run.spend import Meter
from gitforge.ui import UI

__all__ = ["Engine", "Outcome"]


class Engine:
    def __init__(self, ctx: Context, ui: UI) -> None:
        self.ctx = ctx
        self.ui = ui
        self.store = ctx.store  # .forge/ is created by the first write (a run record), not here
        self.meter = Meter(ctx.cfg.budgets, ctx.cfg.prices, warn=ui.warn)  # spend across this invocation
        self.lander = Lander(ctx, ui)

    def next(self, phase_id: str | None = None, again: bool = False) -> Outcome:
        recover_now(self.ctx, self.ui)
        if self.ctx.backlog_is_dirty():
            self.ui.warn(f"{self.ctx.cfg.backlog} has uncommitted edits; gitforge works from the version "
                         f"committed on {self.ctx.target}. Commit them to include them.")
        with contextlib.ExitStack() as stack:
            with self.store.locked("state", what="the state lock"):
                phase, why = select(self.ctx, phase_id, again)
                if phase is None:
                    return Outcome("nothing", why)
                builder = make_builder(self.ctx.cfg, phase)
                self._check_prices(builder)
                run_id = new_id()
                stack.enter_context(self.store.lease(phase.id, run_id))
            return PhaseRun(self.ctx, self.ui, self.meter, self.lander, phase, builder, run_id).run()

    def _check_prices(self, builder) -> None:
        """Say now, before any call, which models this run may call have no price (they are
        counted at the most expensive known one, and their cost is marked estimated)."""
        cfg = self.ctx.cfg
        if api_key(os.environ) is None:
            return
        models = [cfg.builder.model] if builder.kind == "anthropic" else []
        models += [cfg.planner.model] if cfg.planner.enabled else []
        models += [cfg.llm.pilot_model, cfg.llm.pilot_strong_model] if cfg.pilot else []
        for model in models:
            self.meter.price(model)
