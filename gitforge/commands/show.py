"""gitforge show <run|phase>: a run's attempts, ledger transitions, gates and landing."""

from __future__ import annotations

import json
from pathlib import Path

from gitforge.run.calls import read_transcript
from gitforge.infra.clip import middle
from gitforge.context import Context
from gitforge.errors import UsageError
from gitforge.git import NOTES_REF
from gitforge.ui import UI, print_json


def find_run(ctx: Context, what: str) -> dict:
    runs = ctx.store.runs()
    by_phase = [r for r in runs if r.get("phase") == what.removeprefix("phase").strip()]
    if by_phase:
        return by_phase[-1]
    matches = ctx.store.find_runs(what) if len(what) >= 4 else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UsageError(f"'{what}' matches {len(matches)} runs", hint="give more characters of the run id")
    raise UsageError(f"no run or phase with runs matches '{what}'",
                     hint="`gitforge status` lists phases and their last runs")


def show(repo: Path, what: str, as_json: bool = False, transcript: bool = False) -> int:
    ctx = Context.open(repo)
    rec = find_run(ctx, what)
    note = ctx.git.read_note(rec["commit"]) if rec.get("commit") else None
    others = [r["run_id"] for r in ctx.store.runs() if r.get("phase") == rec.get("phase")]
    calls = read_transcript(Path(rec["run_dir"])) if transcript and rec.get("run_dir") else None
    if as_json:
        print_json({"command": "show", "run": rec, "note": note, "phase_runs": others,
                    **({"transcript": calls} if transcript else {})})
        return 0
    out = UI.out
    out(f"run {rec['run_id']}   phase {rec['phase']}: {rec.get('title', '')}")
    out(f"  status:   {rec.get('status')}" + (f" — {rec['reason'].splitlines()[0]}" if rec.get("reason") else ""))
    builder = rec.get("builder", {})
    out(f"  builder:  {' '.join(str(v) for v in builder.values())}   target: {rec.get('target')} "
        f"(base {str(rec.get('base'))[:12]})")
    out(f"  started:  {rec.get('started')}   ended: {rec.get('ended', '-')}")
    if rec.get("worktree"):
        out(f"  worktree: {rec['worktree']} on {rec.get('branch')}")
    if rec.get("plan"):
        plan = rec["plan"]
        out(f"  plan:     {', '.join(plan['files']) or '(no files)'} — {plan['approach'].splitlines()[0]}")
    for att in rec.get("attempts", []):
        out(f"  attempt {att['number']}: {'ok' if att['ok'] else 'failed at ' + att['stage']}"
            + (f" — {att['reason']}" if att.get("reason") else ""))
        if att.get("summary"):
            out(f"      builder said: {att['summary']}")
        for notice in att.get("notices") or []:
            out(f"      note: {notice}")
        for t in att.get("ledger", {}).get("transitions", []):
            out(f"      {t['at']}  {t['state']:<13}{t.get('reason', '')}")
        for g in att.get("gates", []):
            mark = "timeout" if g["timed_out"] else f"exit {g['exit_code']}"
            out(f"      gate {g['name']:<16}{mark:<10}{g['duration']:.2f}s  {g['log']}")
        for line in att.get("details", [])[:60]:
            for sub in str(line).splitlines():
                out(f"      | {sub}")
        if att.get("decision"):
            d = att["decision"]
            out(f"      pilot ({d['source']}): {d['action']}, confidence {d['confidence']:.2f} — {d['reason']}"
                + (f"; hint: {d['hint']}" if d.get("hint") else ""))
    for line in cost_lines(rec.get("llm")):
        out(line)
    transcript = Path(rec.get("run_dir", "")) / "transcript.jsonl"
    if rec.get("run_dir") and transcript.is_file():
        out(f"  transcript: {transcript} (redacted)")
    if rec.get("commit"):
        out(f"  commit:   {rec['commit']}")
        if note:
            out(f"  note ({NOTES_REF}):")
            for line in note.splitlines():
                out(f"      {line}")
    if len(others) > 1:
        out(f"  runs of phase {rec['phase']}: {', '.join(others)}")
    if transcript:
        out("")
        for line in transcript_lines(calls or []):
            out(line)
    return 0


def transcript_lines(calls: list[dict], width: int = 400) -> list[str]:
    """The model calls, one block each: who, what was new in the request, what came back."""
    if not calls:
        return ["(no model calls in this run)"]
    lines = []
    for n, call in enumerate(calls, 1):
        resp = call.get("response", {})
        usage = resp.get("usage") or {}
        cost = f", ${usage['usd']:.4f}" if "usd" in usage else ""
        lines.append(f"── call {n}: {call['role']} {call['model']} (attempt {call.get('attempt') or '-'}{cost})")
        for msg in call.get("messages", []):
            for block in _blocks(msg.get("content")):
                lines.append(f"   {msg['role']:>9} │ {_brief(block, width)}")
        if "error" in resp:
            lines.append(f"   {'error':>9} │ {resp['error']}")
        for block in resp.get("content", []):
            lines.append(f"   {'reply':>9} │ {_brief(block, width)}")
    return lines


def _blocks(content) -> list[dict]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])


def _brief(block: dict, width: int) -> str:
    kind = block.get("type")
    if kind == "text":
        body = block.get("text", "")
    elif kind == "tool_use":
        body = f"{block.get('name')}({json.dumps(block.get('input'), ensure_ascii=False)})"
    elif kind == "tool_result":
        content = block.get("content")
        body = ("error: " if block.get("is_error") else "result: ") + (
            content if isinstance(content, str) else json.dumps(content, ensure_ascii=False))
    else:
        body = json.dumps(block, ensure_ascii=False)
    body = " ⏎ ".join(body.split("\n"))
    return middle(body, width)


def cost_lines(llm: dict | None) -> list[str]:
    """Tokens and cost per role: '  builder  2 calls  claude-sonnet-5-5  in 1,204 ...  $0.0123'."""
    if not llm or not llm.get("calls"):
        return []
    total = f"${llm['total_usd']:.4f} in all" + (" (estimated)" if llm.get("estimated") else "")
    lines = [f"  model calls: {llm['calls']}, {total}"]
    if llm.get("unpriced"):
        lines.append(f"      estimated: no price for {', '.join(llm['unpriced'])}; counted at the highest "
                     "known price per token (add it to otto.yaml `prices:` to count it exactly)")
    for role, r in llm["by_role"].items():
        lines.append(f"      {role:<8} {r['calls']} call(s)  {', '.join(r['models'])}  in {r['input_tokens']:,}  "
                     f"out {r['output_tokens']:,}  cache read {r['cache_read_tokens']:,} / written "
                     f"{r['cache_write_tokens']:,}  ${r['usd']:.4f}" + (" (estimated)" if r.get("estimated") else ""))
    return lines
