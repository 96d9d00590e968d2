"""`.forge/batches/`: one record per `gitforge run` (a "batch" of phases run together), and
its folder of worker logs. Written only here."""

from __future__ import annotations

from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from gitforge.infra.state import shapes
from gitforge.infra.state.files import atomic_write_json, now_iso

if TYPE_CHECKING:
    from gitforge.infra.state import Store


def batches_dir(store: Store) -> Path:
    return store.dir / "batches"


def save_batch(store: Store, record: dict[str, Any]) -> None:
    store.ensure()
    record["updated"] = now_iso()
    atomic_write_json(batches_dir(store) / f"{record['batch_id']}.json", {"schema_version": 1, **record})


def load_batch(store: Store, batch_id: str) -> dict[str, Any] | None:
    from gitforge.infra.state.leases import plain_name

    if not plain_name(batch_id):
        return None
    return store._load(batches_dir(store) / f"{batch_id}.json", shapes.BATCH, "run record")


def all_batches(store: Store) -> list[dict[str, Any]]:
    """Every batch record, oldest first."""
    folder = batches_dir(store)
    if not (store._forge_is_dir() and store._folder(folder)):
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        rec = store._load(path, shapes.BATCH, "run record")
        if rec is not None:
            out.append(rec)
    return out


def worker_log(store: Store, batch_id: str, worker: int) -> IO[bytes]:
    """The file a worker's stderr goes to (appended to: a resumed run keeps the earlier lines)."""
    folder = batches_dir(store) / batch_id
    folder.mkdir(parents=True, exist_ok=True)
    return open(folder / f"worker-{worker}.log", "ab")
