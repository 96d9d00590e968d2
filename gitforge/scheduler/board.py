"""What `gitforge run` shows while it works. On a terminal, a live board (rich): a line per
worker (phase, step, elapsed, last line of output), the queue, and the cost so far. Elsewhere,
plain timestamped lines, one per thing that happened."""

from __future__ import annotations

import sys
import time

from gitforge.ui import UI

SHOWN = ("step", "ok", "fail", "warn", "outcome", "error", "stopped")  # a phase's start is its first step


class PlainBoard:
    """Timestamped lines on stderr (stdout is kept for --json)."""

    def __init__(self, ui: UI) -> None:
        self.ui = ui

    def _line(self, text: str) -> None:
        self.ui._err(f"{time.strftime('%H:%M:%S')} {text}")

    def warn(self, text: str) -> None:
        self.ui.warn(text)

    def note(self, text: str) -> None:
        self._line(text)

    def started(self, batch: str, parallel: int) -> None:
        self._line(f"run {batch}: {parallel} worker(s)")

    def event(self, w, event: dict) -> None:
        kind = event["kind"]
        if kind not in SHOWN or (kind == "outcome" and event.get("status") == "landed"):  # said by its "ok"
            return
        if kind == "phase":
            text = f"phase {event['phase']}: {event.get('title', '')} (run {event.get('run_id')})"
        elif kind == "outcome":
            commit = f" as {event['commit'][:12]}" if event.get("commit") and event["status"] == "landed" else ""
            text = f"phase {event['phase']} {event['status']}{commit}" + (
                f": {event['reason']}" if event.get("reason") and event["status"] != "landed" else "")
        else:
            text = event.get("text", "")
        self._line(f"[w{w.n}] {text}")

    def tick(self, workers) -> None:
        pass

    def worker_done(self, w) -> None:
        pass

    def close(self) -> None:
        pass


class LiveBoard(PlainBoard):
    """A rich Live table redrawn in place; the events that matter are still printed above it."""

    def __init__(self, ui: UI, queue=None) -> None:
        super().__init__(ui)
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=sys.stderr)
        self.live = Live(console=self.console, refresh_per_second=4, transient=True)
        self.queue = queue  # infra.state.queuefile.QueueFile: its entries are shown
        self.live.start()

    def _line(self, text: str) -> None:
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {text}", highlight=False, markup=False)

    def event(self, w, event: dict) -> None:
        if event["kind"] in ("phase", "outcome", "error", "fail", "warn"):
            super().event(w, event)

    def tick(self, workers) -> None:
        from rich.console import Group
        from rich.table import Table

        table = Table(box=None, show_header=True, header_style="bold")
        for col in ("worker", "phase", "elapsed", "last"):
            table.add_column(col)
        now = time.monotonic()
        for w in workers:
            alive = w.proc.poll() is None
            table.add_row(f"w{w.n}", w.phase or ("idle" if alive else "done"),
                          f"{now - w.since:5.1f}s" if w.phase else "", (w.last or "")[-80:])
        queued = [e["phase"] for e in self.queue.entries()] if self.queue is not None else []
        self.live.update(Group(table, f"queue: {' → '.join(queued) if queued else '(empty)'}"))

    def close(self) -> None:
        self.live.stop()
