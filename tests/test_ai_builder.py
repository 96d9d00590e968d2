"""The anthropic builder, the fix loop and the pilot, end to end: the real CLI in a child
process, the real SDK, a loopback server speaking the Messages API with scripted replies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import PY, git, make_diff, phase_md, run_cli
from fake_api import FakeAnthropic, delay, error, message, text, tool_use

from gitforge.config import DEFAULT_PRICES

KEY = "sk-ant-test-KEY0123456789abcdef"
BASE = {"calc.py": "def add(a, b):\n    return a + b\n"}
CHECK = f"{PY} -c 'from calc import mul; assert mul(2, 3) == 6, mul(2, 3)'"


def diff_for(tmp_path, body: str, extra: dict | None = None) -> str:
    return make_diff(BASE, {"calc.py": BASE["calc.py"] + f"\n\ndef mul(a, b):\n    return {body}\n", **(extra or {})},
                     tmp_path)


def otto(extra: str = "") -> str:
    return (f"verify:\n  - name: check\n    run: {json.dumps(CHECK)}\n    timeout: 60\n"
            f"builder: {{kind: anthropic, model: claude-sonnet-5-5}}\n{extra}")


def submit(diff: str, summary: str = "adds mul") -> object:
    return message([text("Here is the patch."), tool_use("submit_patch", {"diff": diff, "summary": summary})])


def decide(action: str, confidence: float = 0.9, **extra) -> object:
    return message(tool_use("submit_decision", {"action": action, "confidence": confidence,
                                                "reason": f"because {action}", **extra}))


@pytest.fixture
def api():
    with FakeAnthropic() as server:
        yield server
        assert server.unexpected == 0, server.failures


def repo(make_repo, extra: str = "", files: dict | None = None) -> Path:
    return make_repo({**BASE, **(files or {})}, [phase_md("1", "Add mul")], otto=otto(extra))


def next_(root: Path, api, *args: str):
    return run_cli("next", *args, cwd=root, env=api.env(KEY), timeout=180)


def record_of(root: Path) -> dict:
    (path,) = (root / ".forge" / "runs").glob("*.json")
    return json.loads(path.read_text())


def note_of(root: Path) -> dict:
    return json.loads(git("notes", "--ref=forge/runs", "show", "main", cwd=root).splitlines()[-1])


def status_of(root: Path) -> str:
    text_ = git("show", "main:BACKLOG.md", cwd=root)
    return text_.split("**Status:** ")[1].splitlines()[0]


def user_texts(body: dict) -> str:
    """Everything in the request's last user message, as text."""
    out = []
    for block in body["messages"][-1]["content"]:
        content = block.get("content", block.get("text", ""))
        out.append(content if isinstance(content, str) else json.dumps(content))
    return "\n".join(out)


def no_key_anywhere(root: Path) -> None:
    for path in (root / ".forge").rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(errors="replace"), path
    assert KEY not in git("log", "--all", "-p", "--notes=forge/runs", cwd=root)


# --- the scenarios ---------------------------------------------------------------------------

def test_patch_lands_first_try_with_tools_caching_and_costs(make_repo, api, tmp_path):
    root = repo(make_repo)
    api.script(message(tool_use("read_file", {"path": "calc.py"})), submit(diff_for(tmp_path, "a * b")))
    proc = next_(root, api)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "def mul" in git("show", "main:calc.py", cwd=root) and status_of(root) == "Done"
    first, second = api.bodies()
    # what gitforge sent: the stable prefix is cached, the tools are there, the phase is in the prompt
    assert first["model"] == "claude-sonnet-5-5"
    assert first["system"][-1]["cache_control"] == {"type": "ephemeral"}
    context = first["messages"][0]["content"][0]
    assert "cache_control" in context and "calc.py" in context["text"] and "def add" in context["text"]
    assert "Add mul" in first["messages"][0]["content"][1]["text"]
    assert {t["name"] for t in first["tools"]} >= {"read_file", "list_dir", "search_text", "submit_patch"}
    result = second["messages"][-1]["content"][0]
    assert result["type"] == "tool_result" and "return a + b" in result["content"]
    assert second["messages"][-1]["content"][-1].get("cache_control") == {"type": "ephemeral"}
    # what it recorded: usage and cost per role, on the note and the run record
    note = note_of(root)
    assert note["builder"] == {"kind": "anthropic", "model": "claude-sonnet-5-5"}
    builder = note["llm"]["by_role"]["builder"]
    assert builder["calls"] == 2 and builder["usd"] > 0 and builder["cache_read_tokens"] > 0
    assert record_of(root)["llm"]["total_usd"] == note["llm"]["total_usd"]
    shown = run_cli("show", "1", cwd=root)
    assert "builder" in shown.stdout and "$" in shown.stdout and "cache" in shown.stdout
    assert "model cost $" in git("show", "main:PROGRESS.md", cwd=root)
    talk = run_cli("show", "1", "--transcript", cwd=root).stdout
    assert "call 1: builder claude-sonnet-5-5" in talk and 'read_file({"path": "calc.py"})' in talk
    assert "submit_patch(" in talk and "result: " in talk
    no_key_anywhere(root)


def test_bad_hunk_then_fixed(make_repo, api, tmp_path):
    root = repo(make_repo)
    bad = diff_for(tmp_path, "a * b").replace(" def add(a, b):", " def add(x, y):")
    api.script(submit(bad), submit(diff_for(tmp_path, "a * b")))
    proc = next_(root, api)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fed_back = api.bodies()[1]["messages"][-1]["content"][-1]
    assert fed_back["type"] == "tool_result" and fed_back["is_error"] is True
    assert "not applied" in fed_back["content"] and "calc.py" in fed_back["content"]
    assert [a["stage"] for a in record_of(root)["attempts"]] == ["apply", "committed"]


def test_gate_fails_then_fixed(make_repo, api, tmp_path):
    root = repo(make_repo)
    api.script(submit(diff_for(tmp_path, "a + b")), submit(diff_for(tmp_path, "a * b")))
    proc = next_(root, api)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    feedback = user_texts(api.bodies()[1])
    assert "gate 'check'" in feedback and "AssertionError: 5" in feedback
    assert note_of(root)["attempts"] == 2


def test_pilot_says_skip(make_repo, api, tmp_path):
    root = repo(make_repo)
    api.script(submit(diff_for(tmp_path, "a + b")), submit(diff_for(tmp_path, "a - b")), decide("skip_phase"))
    proc = next_(root, api)
    assert proc.returncode == 1
    assert status_of(root) == "Skipped" and "skipped" in proc.stdout
    pilot = api.bodies()[2]
    assert pilot["tool_choice"] == {"type": "tool", "name": "submit_decision"}
    assert pilot["model"] == "claude-haiku-5-5"  # the cheap model first
    assert "Attempt 2: failed at gates" in user_texts(pilot)
    rec = record_of(root)
    assert rec["status"] == "skipped" and rec["decisions"][0]["action"] == "skip_phase"
    assert note_of(root)["llm"]["by_role"]["pilot"]["calls"] == 1


def test_pilot_says_fatal_and_the_phase_is_not_retried(make_repo, api, tmp_path):
    root = repo(make_repo)
    api.script(submit(diff_for(tmp_path, "a + b")), submit(diff_for(tmp_path, "a - b")), decide("mark_fatal"))
    proc = next_(root, api)
    assert proc.returncode == 1 and status_of(root) == "Failed"
    assert "fatal" in record_of(root)["reason"] and record_of(root)["retryable"] is False
    again = next_(root, api)
    assert again.returncode == 0 and "Nothing to do" in again.stdout


def test_low_confidence_escalates_to_the_strong_model(make_repo, api, tmp_path):
    root = repo(make_repo)
    api.script(submit(diff_for(tmp_path, "a + b")), submit(diff_for(tmp_path, "a - b")),
               decide("retry_with_fix", 0.2, hint="multiply"), decide("retry_with_fix", 0.95, hint="use a * b"),
               submit(diff_for(tmp_path, "a * b")))
    proc = next_(root, api)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    models = [b["model"] for b in api.bodies()]
    assert models[2:4] == ["claude-haiku-5-5", "claude-opus-5-5"]
    assert "Hint from the reviewer: use a * b" in user_texts(api.bodies()[4])


def test_same_error_three_times_stops_the_phase(make_repo, api, tmp_path):
    root = repo(make_repo, "max_attempts: 6\n")
    wrong = diff_for(tmp_path, "a + b")
    api.script(submit(wrong), submit(wrong), decide("retry_with_fix", hint="really multiply"), submit(wrong))
    proc = next_(root, api)
    assert proc.returncode == 1 and status_of(root) == "Failed"
    rec = record_of(root)
    assert len(rec["attempts"]) == 3 and rec["reason"].startswith("the same error 3 times")
    assert "Hint from the reviewer: really multiply" in user_texts(api.bodies()[3])


def test_overloaded_twice_then_success(make_repo, api, tmp_path):
    root = repo(make_repo)
    api.script(error(529), error(529), submit(diff_for(tmp_path, "a * b")))
    proc = next_(root, api)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [r["status"] for r in api.requests] == [529, 529, 200]
    assert note_of(root)["llm"]["calls"] == 1


def test_api_still_down_after_retries_fails_the_phase_cleanly(make_repo, api, tmp_path):
    root = repo(make_repo, "llm: {max_retries: 1}\n")
    api.script(error(529), error(529))
    proc = next_(root, api)
    assert proc.returncode == 1
    assert "overloaded" in record_of(root)["reason"] and status_of(root) == "Failed"


def test_truncated_reply_is_never_applied(make_repo, api, tmp_path):
    root = repo(make_repo)
    good = diff_for(tmp_path, "a * b")
    cut = message([tool_use("submit_patch", {"diff": good[:60]})], stop_reason="max_tokens")
    api.script(cut, submit(good))
    proc = next_(root, api)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = record_of(root)["attempts"][0]
    assert first["stage"] == "build" and first["ledger"]["state"] == "dropped" and first["files"] == []
    assert "cut off" in user_texts(api.bodies()[1])


def test_malformed_tool_input_is_a_failed_attempt(make_repo, api, tmp_path):
    root = repo(make_repo)
    api.script(message(tool_use("submit_patch", {"summary": "forgot the diff"})), submit(diff_for(tmp_path, "a * b")))
    proc = next_(root, api)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "malformed" in record_of(root)["attempts"][0]["reason"]
    assert "'diff' must be a non-empty string" in user_texts(api.bodies()[1])


def test_budget_exhausted_mid_phase(make_repo, api, tmp_path):
    prices = "prices:\n  pricey: {input: 10, output: 10, cache_write: 10, cache_read: 10}\n"
    root = repo(make_repo, prices + "budgets: {usd_per_phase: 0.05}\n"
                                    "builder: {kind: anthropic, model: pricey, max_tokens: 256}\n")
    (root / "otto.yaml").write_text((root / "otto.yaml").read_text().replace(
        "builder: {kind: anthropic, model: claude-sonnet-5-5}\n", ""))
    git("commit", "-qam", "pricey", cwd=root)
    api.script(message(tool_use("read_file", {"path": "calc.py"}),
                       usage={"input_tokens": 4000, "output_tokens": 100, "cache_creation_input_tokens": 0,
                              "cache_read_input_tokens": 0}))
    proc = next_(root, api)
    assert proc.returncode == 1
    rec = record_of(root)
    assert "budgets.usd_per_phase" in rec["reason"] and rec["retryable"] is False
    assert len(api.requests) == 1 and rec["llm"]["total_usd"] == pytest.approx(0.041)
    assert status_of(root) == "Failed"


def test_planner_scope_refuses_a_patch_outside_the_plan(make_repo, api, tmp_path):
    root = repo(make_repo, "planner: {enabled: true}\npolicy: {scope: refuse}\n", files={"other.py": "x = 1\n"})
    plan = message(tool_use("submit_plan", {"files": ["calc.py"], "approach": "add mul next to add"}))
    stray = make_diff({**BASE, "other.py": "x = 1\n"}, {"calc.py": BASE["calc.py"] + "\n\ndef mul(a, b):\n"
                      "    return a * b\n", "other.py": "x = 2\n"}, tmp_path)
    api.script(plan, submit(stray), submit(diff_for(tmp_path, "a * b")))
    proc = next_(root, api)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    planner, build1, build2 = api.bodies()
    assert planner["tool_choice"] == {"type": "tool", "name": "submit_plan"}
    assert "Files to touch: calc.py" in build1["messages"][0]["content"][1]["text"]
    assert "other.py: outside the plan's scope" in user_texts(build2)
    assert note_of(root)["plan"]["files"] == ["calc.py"]


def test_execute_fix_runs_a_whitelisted_command(make_repo, api, tmp_path):
    fixer = "import pathlib\np = pathlib.Path('calc.py')\np.write_text(p.read_text().replace('a + b  # mul', 'a * b'))\n"
    root = repo(make_repo, f"execute_fix: {{enabled: true, commands: [{json.dumps(PY + ' fixer.py')}]}}\n",
                files={"fixer.py": fixer})
    wrong = diff_for(tmp_path, "a + b  # mul")
    api.script(submit(wrong), submit(wrong), decide("execute_fix", commands=[f"{PY} fixer.py"]))
    proc = next_(root, api)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "return a * b" in git("show", "main:calc.py", cwd=root)
    pilot_tool = api.bodies()[2]["tools"][0]
    assert "execute_fix" in pilot_tool["input_schema"]["properties"]["action"]["enum"]
    assert len(record_of(root)["attempts"]) == 3
    assert list((root / ".forge/runs").glob("*/fixes/savepoint-2.diff"))


def test_execute_fix_refuses_shell_metacharacters(make_repo, api, tmp_path):
    root = repo(make_repo, f"execute_fix: {{enabled: true, commands: [{json.dumps(PY)}]}}\n")
    wrong = diff_for(tmp_path, "a + b")
    api.script(submit(wrong), submit(diff_for(tmp_path, "a - b")),
               decide("execute_fix", commands=[f"{PY} -c 1; touch pwned"]), submit(diff_for(tmp_path, "a * b")))
    proc = next_(root, api)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "execute_fix refused" in user_texts(api.bodies()[3]) and "metacharacter" in user_texts(api.bodies()[3])
    assert not list(root.rglob("pwned"))


def test_without_a_key_fails_fast_naming_the_phase_and_the_ways_out(make_repo):
    root = repo(make_repo)
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 2
    err = proc.stderr + proc.stdout
    assert "phase 1 (Add mul)" in err and "ANTHROPIC_API_KEY" in err
    assert "kind: command" in err and "### Patch" in err
    assert not list((root / ".forge" / "runs").glob("*.json"))


def test_a_model_without_a_price_lands_counted_at_the_highest_price(make_repo, api, tmp_path):
    root = repo(make_repo, "")
    (root / "otto.yaml").write_text(otto().replace("claude-sonnet-5-5", "claude-unknown-9"))
    git("commit", "-qam", "unknown model", cwd=root)
    api.script(message(tool_use("read_file", {"path": "calc.py"})), submit(diff_for(tmp_path, "a * b")))
    proc = next_(root, api)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert status_of(root) == "Done" and len(api.requests) == 2
    assert proc.stderr.count("no price for model 'claude-unknown-9'") == 1  # said once, not per call
    note, rec = note_of(root), record_of(root)
    for llm in (note["llm"], rec["llm"]):
        assert llm["estimated"] is True and llm["unpriced"] == ["claude-unknown-9"]
        assert llm["by_role"]["builder"]["estimated"] is True
    # the cost: every token at the most expensive price the table has for its kind
    table = DEFAULT_PRICES.values()
    top = {k: max(p[k] for p in table) for k in ("input", "output", "cache_write", "cache_read")}
    b = note["llm"]["by_role"]["builder"]
    expected = (b["input_tokens"] * top["input"] + b["output_tokens"] * top["output"]
                + b["cache_write_tokens"] * top["cache_write"] + b["cache_read_tokens"] * top["cache_read"]) / 1e6
    assert b["output_tokens"] and b["cache_write_tokens"] and b["cache_read_tokens"], b  # three kinds priced
    assert note["llm"]["total_usd"] == pytest.approx(expected, abs=2e-6)
    shown = run_cli("show", "1", cwd=root).stdout
    assert "in all (estimated)" in shown and "no price for claude-unknown-9" in shown
    as_json = json.loads(run_cli("show", "1", "--json", cwd=root).stdout)
    assert as_json["run"]["llm"]["estimated"] is True
    assert json.loads(as_json["note"].splitlines()[-1])["llm"]["unpriced"] == ["claude-unknown-9"]
    assert "(estimated: a model without a price)" in git("show", "main:PROGRESS.md", cwd=root)


def test_a_refused_key_is_a_configuration_error(make_repo, api):
    root = repo(make_repo)
    api.script(error(401, message="invalid x-api-key"))
    proc = next_(root, api)
    assert proc.returncode == 2 and "refused the key" in proc.stderr
    assert record_of(root)["status"] == "failed"
    no_key_anywhere(root)


def test_a_request_that_times_out_fails_the_phase_for_a_later_run(make_repo, api, tmp_path):
    root = repo(make_repo, "llm: {timeout: 0.5, max_retries: 0}\n")
    api.script(delay(5, submit(diff_for(tmp_path, "a * b"))))
    proc = next_(root, api)
    assert proc.returncode == 1
    rec = record_of(root)
    assert "did not answer within 0.5s" in rec["reason"] and rec["retryable"] is True


def test_pilot_replan_starts_a_fresh_conversation_with_a_new_plan(make_repo, api, tmp_path):
    root = repo(make_repo, "planner: {enabled: true}\nmax_attempts: 4\n")
    plan1 = message(tool_use("submit_plan", {"files": ["calc.py"], "approach": "add mul with +"}))
    plan2 = message(tool_use("submit_plan", {"files": ["calc.py"], "approach": "add mul with *"}))
    api.script(plan1, submit(diff_for(tmp_path, "a + b")), submit(diff_for(tmp_path, "a - b")),
               decide("replan", 0.9), plan2, submit(diff_for(tmp_path, "a * b")))
    proc = next_(root, api)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bodies = api.bodies()
    replanner, fresh = bodies[4], bodies[5]
    assert "add mul with +" in user_texts(replanner) and "Plan a different approach" in user_texts(replanner)
    assert len(fresh["messages"]) == 1  # a new conversation, not the old one continued
    task = fresh["messages"][0]["content"][1]["text"]
    assert "add mul with *" in task and "Why this is a fresh start" in task and "AssertionError: -1" in task
    assert note_of(root)["plan"]["approach"] == "add mul with *"


def test_pilot_rollback_discards_the_run(make_repo, api, tmp_path):
    root = repo(make_repo)
    api.script(submit(diff_for(tmp_path, "a + b")), submit(diff_for(tmp_path, "a - b")), decide("rollback_run"))
    proc = next_(root, api)
    assert proc.returncode == 1 and status_of(root) == "Failed"
    rec = record_of(root)
    assert "rolled the run back" in rec["reason"] and rec["retryable"] is True
    assert "def mul" not in (Path(rec["worktree"]) / "calc.py").read_text()


# --- found in review -------------------------------------------------------------------------

def test_gates_never_see_the_key_and_their_output_is_redacted(make_repo, api, tmp_path):
    leak = f"{PY} -c 'import os; print(\"key:\", os.environ.get(\"ANTHROPIC_API_KEY\"), \"sk-ant-\" + \"api03-leaked\" * 2)'"
    root = make_repo(BASE, [phase_md("1", "Add mul")],
                     otto=f"verify:\n  - {{name: leak, run: {json.dumps(leak + ' && false')}}}\n"
                          "builder: {kind: anthropic}\nmax_attempts: 2\npilot: false\n")
    api.script(submit(diff_for(tmp_path, "a * b")), submit(diff_for(tmp_path, "a * b")))
    proc = next_(root, api)
    assert proc.returncode == 1
    fed_back = user_texts(api.bodies()[1])
    assert "key: None" in fed_back and "sk-ant-api03-leaked" not in fed_back and "[REDACTED]" in fed_back
    no_key_anywhere(root)
    for path in (root / ".forge").rglob("*.log"):
        assert "sk-ant-api03-leaked" not in path.read_text()


def test_protected_files_never_reach_the_prompt(make_repo, api, tmp_path):
    root = make_repo({**BASE, ".env.test": "DB_PASSWORD=hunter2\n"},
                     [phase_md("1", "Add mul").replace("1. Do it.", "1. Use .env.test and calc.py.")], otto=otto())
    api.script(submit(diff_for(tmp_path, "a * b")))
    assert next_(root, api).returncode == 0
    sent = json.dumps(api.bodies()[0])
    assert "hunter2" not in sent and "def add" in sent


def test_an_empty_reply_is_not_sent_back(make_repo, api, tmp_path):
    root = repo(make_repo)
    api.script(message([text(" ")], stop_reason="end_turn"), message([], stop_reason="end_turn"),
               submit(diff_for(tmp_path, "a * b")))
    proc = next_(root, api)  # the fake refuses (400) what the real API refuses: empty turns
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Call submit_patch" in user_texts(api.bodies()[2])


def test_a_second_submit_in_one_reply_is_answered(make_repo, api, tmp_path):
    root = repo(make_repo)
    both = message([tool_use("submit_patch", {"diff": diff_for(tmp_path, "a + b"), "summary": "one"}),
                    tool_use("submit_patch", {"diff": diff_for(tmp_path, "a * b"), "summary": "two"})])
    api.script(both, submit(diff_for(tmp_path, "a * b")))
    assert next_(root, api).returncode == 0
    assert "only the first submit_patch" in user_texts(api.bodies()[1])


def test_no_planner_call_for_a_phase_with_its_own_patch(make_repo, api, tmp_path):
    patch = diff_for(tmp_path, "a * b")
    root = make_repo(BASE, [phase_md("1", "Add mul", patch=patch)],
                     otto=otto("planner: {enabled: true}\npolicy: {scope: refuse}\n"))
    assert next_(root, api).returncode == 0
    assert api.requests == []


def test_the_plan_and_decisions_are_kept_when_a_budget_stops_the_loop(make_repo, api, tmp_path):
    root = repo(make_repo, "planner: {enabled: true}\nllm: {max_retries: 0}\n")
    plan = message(tool_use("submit_plan", {"files": ["calc.py"], "approach": "add mul"}))
    api.script(plan, submit(diff_for(tmp_path, "a + b")), submit(diff_for(tmp_path, "a - b")),
               decide("retry_with_fix", hint="multiply"), error(529))
    proc = next_(root, api)
    assert proc.returncode == 1
    rec = record_of(root)
    assert rec["plan"]["approach"] == "add mul" and rec["decisions"][0]["hint"] == "multiply"
    assert note_of(root)["plan"]["files"] == ["calc.py"]


def test_a_pilot_escalation_that_fails_keeps_the_cheap_decision(make_repo, api, tmp_path):
    root = repo(make_repo, "llm: {max_retries: 0}\n")
    api.script(submit(diff_for(tmp_path, "a + b")), submit(diff_for(tmp_path, "a - b")),
               decide("retry_with_fix", 0.1, hint="use a * b"), error(404, message="model not found"),
               submit(diff_for(tmp_path, "a * b")))
    proc = next_(root, api)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Hint from the reviewer: use a * b" in user_texts(api.bodies()[4])
