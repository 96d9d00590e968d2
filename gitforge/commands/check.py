"""gitforge check: health checks, one line per finding with what to do about it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from gitforge import health, health_full
from gitforge.health import Finding
from gitforge.ui import UI, gate_printer, print_json


def show_findings(ui: UI, findings: Iterable[Finding]) -> None:
    for f in findings:
        head, *rest = f.message.splitlines() or [""]
        line = f"{f.id}: {head}"
        if f.level == "ok":
            ui.ok(line)
        elif f.level == "warn":
            ui.warn(line)
        elif f.level == "error":
            ui.fail(line)
        else:
            ui.info(f"- {line}")
        if rest:
            ui.block("\n".join(rest))
        if f.detail:
            ui.block(f.detail)
        if f.fix and f.level in ("warn", "error"):
            ui.info(f"  fix: {f.fix}")


def summary(findings: list[Finding]) -> str:
    count = {level: sum(f.level == level for f in findings) for level in ("ok", "warn", "error", "skip")}
    skipped = f", {count['skip']} skipped" if count["skip"] else ""
    if not count["error"] and not count["warn"]:
        return f"check: all {count['ok']} checks ok{skipped}"
    return (f"check: {count['error']} error(s), {count['warn']} warning(s), {count['ok']} ok{skipped}"
            + (" — fix the ✗ lines first" if count["error"] else ""))


def check(repo: Path, full: bool, overrides: Mapping[str, object], as_json: bool = False) -> int:
    ui = UI()
    checkup = health.quick(repo, overrides)
    findings = checkup.sorted()
    show_findings(ui, findings)
    if full:
        done = len(checkup.findings)
        health_full.full(checkup, gate_printer(ui, " on the target's tip"))
        show_findings(ui, checkup.findings[done:])
        findings += checkup.findings[done:]
    code = health.exit_code(findings)
    if as_json:
        print_json({"command": "check", "ok": code == 0, "exit_code": code,
                    "findings": [f.to_json() for f in findings]})
    else:
        ui.out(summary(findings).replace("✗", ui.cross))
    return code
