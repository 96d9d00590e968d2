"""What a worker tells its coordinator: one JSON object per line on its stdout, the same
messages a terminal user of `gitforge next` reads, each with its kind and time."""

from __future__ import annotations

import json
import sys
import time

from gitforge.ui import UI


class EventUI(UI):
    """A UI whose every message is an event line for the coordinator."""

    def __init__(self, worker: int) -> None:
        super().__init__()
        self.worker = worker

    def emit(self, kind: str, text: str = "", **data) -> None:
        line = json.dumps({"t": time.time(), "worker": self.worker, "kind": kind, "text": text, **data})
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def step(self, text: str) -> None:
        self.emit("step", text)

    def ok(self, text: str) -> None:
        self.emit("ok", text)

    def fail(self, text: str) -> None:
        self.emit("fail", text)

    def warn(self, text: str) -> None:
        self.emit("warn", text)

    def info(self, text: str) -> None:
        self.emit("info", text)

    def block(self, text: str, indent: str = "    ") -> None:
        lines = text.splitlines()
        if lines:
            self.emit("block", lines[-1])


def parse(line: str) -> dict | None:
    """An event line, or None for anything else a worker printed."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "kind" in event else None
