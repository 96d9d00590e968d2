"""One run's record as the run goes: every step saved before it starts (so a run killed
anywhere is recovered by the next one), the attempts kept, the gates shown, the end written."""

from __future__ import annotations

from typing import Any

from gitforge.infra.gates import GateResult
from gitforge.infra.state import Store
from gitforge.run.pipeline import Attempt
from gitforge.run.record import RunRecord
from gitforge.run.spend import Meter, by_role
from gitforge.run.trail import diff_log, progress_entry, run_note
from gitforge.ui import UI, gate_printer


class Tracker:
    def __init__(self, store: Store, ui: UI, meter: Meter, record: RunRecord,
                 attempts: list[Attempt] | None = None) -> None:
        self.store, self.ui, self.meter, self.record = store, ui, meter, record
        self.attempts: list[Attempt] = list(attempts or [])

    @property
    def run_id(self) -> str:
        return self.record.run_id

    def save(self, **values: Any) -> None:
        for key, value in values.items():
            setattr(self.record, key, value)
        self.record.save(self.store)

    def step(self, step: str, **values: Any) -> None:
        self.record.to(step)
        self.save(**values)

    def event(self, kind: str, **data: Any) -> None:
        self.store.event(kind, run_id=self.record.run_id, phase=self.record.phase, **data)

    # -- attempts and gates -----------------------------------------------------------------
    def on_attempt(self, att: Attempt) -> None:
        """An attempt ended (or changed, as when a passed one did not land)."""
        if att not in self.attempts:
            self.attempts.append(att)
            self.event("attempt.finished", attempt=att.number, ok=att.ok, stage=att.stage, reason=att.reason)
        self.record.attempts = [a.to_json() for a in self.attempts]
        if self.record.step == "gates":
            self.record.to("build")
        self.save()

    def gate_printer(self, track: bool = True):
        """Prints each gate; with `track`, the run's step says "gates" while they run (an
        interrupt then says so), and the attempt saver sets it back."""
        show = gate_printer(self.ui)
        if not track:
            return show

        def on_gate(spec, result) -> None:
            if result is None and self.record.step == "build":
                self.step("gates")
            show(spec, result)
        return on_gate

    def usage(self) -> None:
        """The model calls of this phase so far, in the record."""
        self.save(llm=by_role(self.meter.phase_calls()))

    # -- what is written about it -------------------------------------------------------------
    def gates_of(self, gates: list[GateResult] | None) -> list[GateResult]:
        if gates is not None:
            return gates
        return list(self.attempts[-1].gates) if self.attempts else []

    def entry(self, status: str, gates: list[GateResult] | None = None, reason: str = "") -> dict:
        return progress_entry(self.record, self.attempts, status, self.gates_of(gates), reason,
                              self.meter.phase_calls())

    def note(self, status: str, gates: list[GateResult] | None = None, reverified: bool = False) -> dict:
        return run_note(self.record, self.attempts, status, self.gates_of(gates), self.meter.phase_calls(),
                        reverified)

    def close(self, status: str, reason: str | None = None) -> None:
        self.record.end(status, reason)
        self.save()
        self.store.write_run_file(self.record.run_id, "diff-log.md", diff_log(self.record).encode())
