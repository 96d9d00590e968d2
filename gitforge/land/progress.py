"""PROGRESS.md: a human log — a current-state block plus one <details> block per run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from gitforge.infra.clip import middle

STATE_START = "<!-- gitforge:state -->"
STATE_END = "<!-- /gitforge:state -->"


def _fmt_gates(gates: Sequence[dict]) -> str:
    if not gates:
        return "none configured"
    parts = []
    for g in gates:
        mark = "timed out" if g.get("timed_out") else ("ok" if g.get("exit_code") == 0 else f"exit {g.get('exit_code')}")
        parts.append(f"`{g['name']}` {mark} ({g.get('duration', 0):.2f}s)")
    return ", ".join(parts)


def entry_block(entry: dict) -> str:
    """One run as a <details> block. `entry` is the run summary the engine records."""
    lines = [
        "<details>",
        f"<summary>Phase {entry['phase']}: {entry['title']} — {entry['status']} "
        f"(run {entry['run_id']}, {entry['when']})</summary>",
        "",
        f"- Attempts: {entry.get('attempts', 0)}; builder: {entry.get('builder', '?')}"
        + (f"; model cost ${entry['usd']:.4f}" + (" (estimated: a model without a price)" if entry.get("usd_estimated")
                                                  else "") if entry.get("usd") is not None else ""),
    ]
    patch = entry.get("patch")
    if patch:
        lines.append(f"- Patch: {patch['files']} file(s), +{patch['added']} -{patch['removed']}"
                     + (f"; hunks: {patch['hunks']}" if patch.get("hunks") else ""))
    lines.append(f"- Gates: {_fmt_gates(entry.get('gates', []))}")
    if entry.get("reason"):
        reason = " ".join(str(entry["reason"]).split())
        lines.append(f"- Reason: {middle(reason, 500)}")
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def state_block(statuses: Sequence[str], latest: str) -> str:
    counts = Counter(statuses)
    summary = ", ".join(f"{n} {s}" for s, n in counts.most_common()) or "no phases"
    return "\n".join([STATE_START, f"**Phases:** {len(statuses)} ({summary})  ", f"**Latest:** {latest}",
                      STATE_END])


def update_progress(old: str | None, statuses: Sequence[str], entry: dict) -> str:
    """Return PROGRESS.md with the state block refreshed and `entry` appended."""
    nl = "\r\n" if old and "\r\n" in old else "\n"
    text = (old or "# Progress\n\nWritten by gitforge: one block per run, newest last.\n\n").replace("\r\n", "\n")
    latest = f"Phase {entry['phase']}: {entry['title']} — {entry['status']} (run {entry['run_id']})"
    block = state_block(statuses, latest)
    start, end = text.find(STATE_START), text.find(STATE_END)
    if start != -1 and end > start:
        text = text[:start] + block + text[end + len(STATE_END):]
    else:
        first_nl = text.find("\n") + 1 if text.startswith("# ") else 0
        text = text[:first_nl] + ("\n" if first_nl else "") + block + "\n\n" + text[first_nl:].lstrip("\n")
    if not text.endswith("\n"):
        text += "\n"
    if not text.endswith("\n\n"):
        text += "\n"
    text += entry_block(entry)
    return text.replace("\n", nl)
