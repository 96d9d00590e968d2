"""gitforge gc: remove kept (failed) and idle pooled worktrees that no live run or open
host-agent session holds."""

from __future__ import annotations

from pathlib import Path

from gitforge.context import Context
from gitforge.ui import UI, print_json
from gitforge.infra.worktree import Pool


def gc(repo: Path, as_json: bool = False) -> int:
    ctx = Context.open(repo)
    store = ctx.store
    pool = Pool(ctx.git, store, None, [])
    removed, busy = [], []
    sessions = {c.run_id for c in store.claims()}
    with store.locked("pool", what="the worktree pool"):
        for name in pool.names():
            if store.is_locked_elsewhere(name) or pool.meta(name).get("run_id") in sessions:
                busy.append(name)  # a run works in it, or a host agent's session owns it
                continue
            pool.remove(name)
            removed.append(name)
        ctx.git.worktree_prune()
    if as_json:
        print_json({"command": "gc", "removed": removed, "in_use": busy})
    else:
        UI.out(f"removed {len(removed)} worktree(s)" + (f"; {len(busy)} in use, kept" if busy else ""))
    return 0
