"""gitforge status: the board — phases, dependencies, last runs, kept worktrees."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gitforge.backlog import select_next
from gitforge.infra.clip import middle
from gitforge.context import Context
from gitforge.run.recover import landed_phases, retryable_phases
from gitforge.ui import UI, print_json
from gitforge.infra.worktree import Pool


def board(ctx: Context) -> dict:
    backlog = ctx.backlog()
    store = ctx.store
    live = store.live_leases() if store.dir.is_dir() else {}
    retryable = retryable_phases(store, ctx.cfg.max_attempts)
    landed = landed_phases(ctx, backlog)
    sel = select_next(backlog, busy=set(live), retryable=retryable, landed=landed)
    last_run: dict[str, dict] = {}
    for rec in store.runs():
        last_run[rec.get("phase")] = rec
    phases = []
    for p in backlog.phases:
        shown = "In progress" if p.id in live else p.status
        rec = last_run.get(p.id)
        phases.append({
            "id": p.id, "title": p.title, "status": p.status, "shown": shown,
            "blocked": sel.blocked.get(p.id), "dependencies": list(p.dependencies), "priority": p.priority,
            "retryable": p.id in retryable, "landed_already": landed.get(p.id),
            "last_run": None if rec is None else {k: rec.get(k) for k in ("run_id", "status", "reason", "commit",
                                                                         "ended")},
        })
    pool = Pool(ctx.git, store, None, []) if store.dir.is_dir() else None
    sessions = [{"run_id": c.run_id, "phase": c.phase, "since": c.started,
                 "worktree": (store.load_run(c.run_id) or {}).get("worktree")}
                for c in live.values() if c.kind == "session"]
    in_session = {s["run_id"] for s in sessions}
    return {"sessions": sessions,"target": ctx.target, "tip": ctx.tip, "backlog": ctx.cfg.backlog, "phases": phases,
            "next": sel.phase.id if sel.phase else None, "nothing_reason": None if sel.phase else sel.reason,
            "kept_worktrees": [w for w in pool.kept() if w.get("run_id") not in in_session] if pool else []}


def status(repo: Path, overrides: Mapping[str, object], as_json: bool = False) -> int:
    ctx = Context.open(repo, overrides)
    data = board(ctx)
    if as_json:
        print_json({"command": "status", **data})
        return 0
    out = UI.out
    out(f"{ctx.target} @ {data['tip'][:12]}   ({data['backlog']}, {len(data['phases'])} phases)")
    out()
    width = max([len(p["title"]) for p in data["phases"]] + [5])
    width = min(width, 48)
    out(f"  {'ID':<6}{'STATUS':<16}{'TITLE':<{width + 2}}{'DEPENDS':<10}LAST RUN")
    for p in data["phases"]:
        shown = "Blocked*" if p["blocked"] and p["shown"] == "Not started" else p["shown"]
        deps = ",".join(p["dependencies"]) or "-"
        run = p["last_run"]
        last = "-" if run is None else f"{run['run_id'][-8:]} {run['status']}"
        title = p["title"] if len(p["title"]) <= width else p["title"][: width - 1] + "…"
        out(f"  {p['id']:<6}{shown:<16}{title:<{width + 2}}{deps:<10}{last}")
        if p["landed_already"]:
            out(f"  {'':<6}  ! landed already ({p['landed_already']}); the board says {p['status']}: "
                f"`gitforge next {p['id']} --again` runs it anew")
        elif p["blocked"]:
            out(f"  {'':<6}  * {p['blocked']}")
        elif run and run["status"] in ("failed", "crashed") and p["status"] in ("Failed", "Not started"):
            out(f"  {'':<6}  ! {middle(run['reason'].splitlines()[0], 100) if run.get('reason') else ''}")
    out()
    if data["next"]:
        out(f"Next: phase {data['next']}  (gitforge next)")
    else:
        out(f"Nothing to do: {data['nothing_reason']}")
    for s in data["sessions"]:
        out(f"Session {s['run_id']} holds phase {s['phase']} (host agent, since {s['since']}), worktree "
            f"{s['worktree']}: gitforge submit {s['run_id']}, or gitforge abandon {s['run_id']}")
    for wt in data["kept_worktrees"]:
        out(f"Kept worktree {wt['path']} on {wt.get('branch')} (run {wt.get('run_id')}): {wt.get('reason', '')}"
            .rstrip() + "  — remove with gitforge gc")
    return 0
