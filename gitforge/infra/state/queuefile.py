"""`.forge/queue.json`: the merge queue's entries, in order (see land/queue.py). Read without a
lock (the file is replaced atomically), edited under `locks/queue.lock`; the entries of this
process's threads are edited one at a time (filelock lets a process's threads in together)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from gitforge.infra.state import shapes
from gitforge.infra.state.files import atomic_write_json

if TYPE_CHECKING:
    from gitforge.infra.state import Store

_EDITING = threading.Lock()


class QueueFile:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.path = store.dir / "queue.json"

    def entries(self) -> list[dict[str, Any]]:
        data = self.store._load(self.path, shapes.QUEUE, "merge queue")
        return list(data["entries"]) if data else []

    @contextlib.contextmanager
    def editing(self) -> Iterator[list[dict[str, Any]]]:
        """The entries, to change in place; written back when the block ends without error."""
        self.store.ensure()
        with _EDITING, self.store.locked("queue", what="the merge queue's lock"):
            entries = self.entries()
            yield entries
            atomic_write_json(self.path, {"schema_version": 1, "entries": entries})
