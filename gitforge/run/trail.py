"""What a run leaves behind for people and for the hook: the PROGRESS.md entry, the run note
on the landed commit, and `runs/<id>/diff-log.md` (DESIGN.md §2 step 11). Pure functions of
the run record, its attempts and its model calls."""

from __future__ import annotations

from gitforge.infra.gates import GateResult
from gitforge.infra.state import now_iso
from gitforge.run.pipeline import Attempt
from gitforge.run.record import RunRecord
from gitforge.run.spend import by_role


def patch_summary(attempt: Attempt | None) -> dict | None:
    """Files, lines and how the hunks were placed ("2 exact, 1 relocated +3"), without the
    per-hunk list the run record keeps."""
    if attempt is None or not attempt.stats:
        return None
    return {k: v for k, v in attempt.stats.items() if k != "placements"}


def progress_entry(rec: RunRecord, attempts: list[Attempt], status: str, gates: list[GateResult], reason: str,
                   calls: list[dict]) -> dict:
    usage = by_role(calls) if calls else None
    return {"phase": rec.phase, "title": rec.title, "status": status, "run_id": rec.run_id,
            "when": now_iso()[:16].replace("T", " ") + " UTC", "attempts": len(attempts),
            "builder": " ".join(str(v) for v in rec.builder.values()),
            "patch": patch_summary(attempts[-1] if attempts else None), "gates": [g.to_json() for g in gates],
            "reason": reason, "usd": usage["total_usd"] if usage else None,
            "usd_estimated": bool(usage and usage.get("estimated"))}


def run_note(rec: RunRecord, attempts: list[Attempt], status: str, gates: list[GateResult], calls: list[dict],
             reverified: bool = False) -> dict:
    return {"schema_version": 1, "run_id": rec.run_id, "phase": rec.phase, "status": status,
            "attempts": len(attempts), "builder": rec.builder,
            "gates": [{"name": g.name, "exit_code": g.exit_code, "duration": g.duration, "timed_out": g.timed_out}
                      for g in gates],
            "patch": patch_summary(attempts[-1] if attempts else None), "started": rec.started, "ended": now_iso(),
            "llm": by_role(calls), "plan": rec.plan, "decisions": rec.decisions, "reverified": reverified}


def diff_log(rec: RunRecord) -> str:
    """What a reviewer wants on one page."""
    lines = [f"# Run {rec.run_id}: phase {rec.phase} — {rec.status}", "",
             f"- Title: {rec.title}", f"- Branch: {rec.branch}",
             f"- Target: {rec.target} (base {rec.base})",
             f"- Head: {rec.commit or '-'}", f"- Builder: {rec.builder.get('kind')}",
             f"- Started: {rec.started}; ended: {rec.ended}"]
    if rec.reason:
        lines.append(f"- Reason: {rec.reason.splitlines()[0]}")
    for att in rec.attempts:
        stats = att.get("stats") or {}
        ledger = att.get("ledger") or {}
        lines += ["", f"## Attempt {att['number']}: {'ok' if att['ok'] else 'failed at ' + att['stage']}", "",
                  f"- Patch: {ledger.get('patch')} (sha256 {ledger.get('sha256', '')[:16]})",
                  f"- Files: {', '.join(att.get('files', [])) or '-'}",
                  f"- Hunks: {stats.get('hunks', '-')}; +{stats.get('added', 0)} -{stats.get('removed', 0)}",
                  "- Ledger: " + " → ".join(t["state"] for t in ledger.get("transitions", []))]
        for g in att.get("gates", []):
            verdict = "timed out" if g["timed_out"] else f"exit {g['exit_code']}"
            lines.append(f"- Gate `{g['name']}` (`{g['run']}`): {verdict} in {g['duration']:.2f}s — log {g['log']}")
    return "\n".join(lines) + "\n"
