"""The pieces around the model calls, one by one: budgets, the pilot's rules and signatures,
fix-command checking, plan reading, redaction, and the SDK boundary against the loopback API."""

from __future__ import annotations

import pytest
from fake_api import FakeAnthropic, delay, error, message, tool_use

from gitforge.config import Budgets, Config
from gitforge.run.fixes import FixRefused, check_fix
from gitforge.infra.gates import GateResult
from gitforge.llm import Client, LLMError, Usage
from gitforge.run.pilot import rule_decision, signature
from gitforge.run.pipeline import Attempt, dropped
from gitforge.run.planner import PlanFailed, read_plan
from gitforge.infra.redact import MASK, redact, redact_obj
from gitforge.run.spend import BudgetExceeded, Meter, by_role

PRICES = Config().prices


def meter(**budgets) -> Meter:
    m = Meter(Budgets(**budgets), PRICES)
    m.start_phase("1")
    return m


# --- spend ---------------------------------------------------------------------------------

def test_cost_uses_every_usage_field():
    m = meter()
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cache_write_tokens=1_000_000,
                  cache_read_tokens=1_000_000)
    assert m.cost("claude-sonnet-5-5", usage) == pytest.approx(2 + 10 + 2.5 + 0.10)


def test_budget_is_checked_before_the_call_on_the_worst_case():
    m = meter(usd_per_phase=0.10)
    m.record("builder", "claude-sonnet-5-5", Usage(input_tokens=30_000))  # $0.06
    assert m.check("builder", "claude-sonnet-5-5", request_chars=3_000, max_tokens=1000) < 0.04
    with pytest.raises(BudgetExceeded) as err:
        m.check("builder", "claude-sonnet-5-5", request_chars=3_000, max_tokens=4000)
    assert "budgets.usd_per_phase" in err.value.message and "$0.0600" in err.value.message
    assert "lower builder.max_tokens" in err.value.hint


def test_a_budget_hint_names_only_settings_that_change_that_call():
    m = meter(usd_per_phase=0.01)
    for role in ("pilot", "planner"):  # their replies are not capped by builder.max_tokens
        with pytest.raises(BudgetExceeded) as err:
            m.check(role, "claude-sonnet-5-5", request_chars=30_000, max_tokens=2000)
        assert "raise budgets.usd_per_phase in otto.yaml" in err.value.hint
        assert "max_tokens" not in err.value.hint


def test_run_budget_spans_phases():
    m = meter(usd_per_run=0.05)
    m.record("builder", "claude-sonnet-5-5", Usage(input_tokens=20_000))  # $0.04 on phase 1
    m.start_phase("2")
    assert m.phase_usd() == 0
    with pytest.raises(BudgetExceeded) as err:
        m.check("builder", "claude-sonnet-5-5", 30_000, 1000)
    assert "budgets.usd_per_run" in err.value.message


def test_an_unknown_model_is_counted_at_the_ceiling_and_said_once_per_process():
    warnings: list[str] = []
    first, second = (Meter(Budgets(), PRICES, warn=warnings.append) for _ in range(2))
    first.start_phase("1")
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cache_write_tokens=1_000_000,
                  cache_read_tokens=1_000_000)
    ceiling = {k: max(getattr(p, k) for p in PRICES.values()) for k in ("input", "output", "cache_write", "cache_read")}
    assert ceiling == {"input": 5, "output": 25, "cache_write": 6.25, "cache_read": 0.5}
    assert first.estimate("model-from-2027", 3_000_000, 1_000_000) == pytest.approx(5 + 25)
    call = first.record("builder", "model-from-2027", usage)
    assert call["usd"] == pytest.approx(5 + 25 + 6.25 + 0.5) and call["estimated"] is True
    second.price("model-from-2027")
    assert len(warnings) == 1 and "model-from-2027" in warnings[0] and "prices:" in warnings[0]
    first.record("builder", "claude-sonnet-5-5", usage)
    summary = by_role(first.calls)
    assert summary["estimated"] is True and summary["unpriced"] == ["model-from-2027"]
    assert by_role(first.calls[1:])["estimated"] is False


def test_pilot_caps_and_failure_budget():
    m = meter(doctor_calls_per_phase=1, doctor_calls_per_run=2, failures_per_run=2)
    assert m.pilot_allowed() is None
    m.record("pilot", "claude-haiku-5-5", Usage(10, 10))
    assert "doctor_calls_per_phase" in m.pilot_allowed()
    m.start_phase("2")
    assert m.pilot_allowed() is None
    run = meter(doctor_calls_per_phase=5, doctor_calls_per_run=2)
    for _ in range(2):
        run.record("pilot", "claude-haiku-5-5", Usage(10, 10))
    assert "doctor_calls_per_run" in run.pilot_allowed()
    m.count_failure()
    with pytest.raises(BudgetExceeded):
        m.count_failure()


def test_by_role_sums_per_role():
    m = meter()
    m.record("builder", "claude-sonnet-5-5", Usage(100, 10, 5, 50))
    m.record("builder", "claude-sonnet-5-5", Usage(100, 10, 0, 50))
    m.record("pilot", "claude-haiku-5-5", Usage(10, 1))
    s = by_role(m.calls)
    assert s["calls"] == 3 and s["by_role"]["builder"]["cache_read_tokens"] == 100
    assert s["total_usd"] == pytest.approx(sum(c["usd"] for c in m.calls))


# --- pilot rules and signatures ------------------------------------------------------------

def gate_attempt(n: int, tail: str, timed_out: bool = False) -> Attempt:
    g = GateResult("tests", "pytest", "otto.yaml", None if timed_out else 1, 12.0, timed_out, "/tmp/x.log", tail)
    return Attempt(n, stage="gates", reason="gate 'tests' (pytest) exited with code 1",
                   details=["last lines:", tail], gates=[g])


def test_known_causes_get_a_rule_without_a_model():
    assert rule_decision(dropped(1, "the model's reply was cut off", [])).action == "retry_with_fix"
    assert "syntax" in rule_decision(Attempt(1, stage="audit", details=["a.py:3: Python syntax error: x"])).hint
    assert rule_decision(Attempt(1, stage="apply", reason="hunk 1 did not apply")).source == "rule"
    timed = rule_decision(gate_attempt(1, "...", timed_out=True))
    assert timed.action == "retry_with_fix" and "hangs" in timed.hint
    assert rule_decision(gate_attempt(1, "AssertionError: 5")) is None


def test_signature_ignores_timings_addresses_and_temp_paths():
    a = gate_attempt(1, "FAILED test_x - AssertionError: 5\n1 failed in 0.31s at 0x7f00aa /tmp/pytest-1/x")
    b = gate_attempt(2, "FAILED test_x - AssertionError: 5\n1 failed in 0.92s at 0x7f11bb /tmp/pytest-7/x")
    c = gate_attempt(3, "FAILED test_y - NameError: name 'mul' is not defined")
    assert signature(a) == signature(b) != signature(c)


# --- execute_fix checks --------------------------------------------------------------------

@pytest.mark.parametrize("command", ["ruff check --fix; rm -rf /", "ruff check $(whoami)", "ruff check > out",
                                     "ruff check `id`", "ruff check && x", "ruff check\nrm x", "ruff check *"])
def test_fix_commands_refuse_shell_metacharacters(command):
    with pytest.raises(FixRefused, match="metacharacter"):
        check_fix(command, ["ruff check"])


def test_fix_commands_must_start_with_a_whitelisted_command():
    assert check_fix("ruff check --fix src", ["ruff check", "npm install"]) == ["ruff", "check", "--fix", "src"]
    assert check_fix("npm install 'left pad'", ["npm install"]) == ["npm", "install", "left pad"]
    for bad in ("ruff format .", "rufff check", "npm", "pip install x"):
        with pytest.raises(FixRefused, match="allowed command"):
            check_fix(bad, ["ruff check", "npm install"])
    with pytest.raises(FixRefused, match="split"):
        check_fix("ruff check 'open", ["ruff check"])


# --- plans ---------------------------------------------------------------------------------

def test_read_plan_normalises_paths_and_refuses_bad_shapes():
    plan = read_plan({"files": ["./src/a.py", "/src/a.py", "docs/", ""], "approach": " do it ",
                      "risks": ["r", 3], "checks": "not a list"})
    assert plan.files == ("src/a.py", "docs/") and plan.approach == "do it"
    assert plan.risks == ("r",) and plan.checks == ()
    for bad in (None, {"files": "a.py", "approach": "x"}, {"files": ["a"], "approach": ""}):
        with pytest.raises(PlanFailed):
            read_plan(bad)


# --- redaction -----------------------------------------------------------------------------

def test_redact_masks_known_values_and_key_shapes():
    text = "key=sk-ant-api03-AbCdEf123456 token=s3cr3t-value-xyz auth: Bearer abcdefghijklmnopqrstuvwxyz"
    out = redact(text, ["s3cr3t-value-xyz"])
    assert "sk-ant" not in out and "s3cr3t" not in out and "abcdefghijklmnop" not in out and MASK in out
    assert redact_obj({"a": ["sk-ant-xxxxxxxxxxxx", 3]}, []) == {"a": [MASK, 3]}


# --- the SDK boundary ----------------------------------------------------------------------

def test_client_returns_plain_blocks_and_usage():
    with FakeAnthropic() as api:
        api.script(message([tool_use("submit_patch", {"diff": "d", "summary": "s"})],
                           usage={"input_tokens": 7, "output_tokens": 3, "cache_read_input_tokens": 11}))
        reply = Client("sk-ant-test-0123456789", base_url=api.url, max_retries=0).create(
            model="claude-sonnet-5-5", system=[{"type": "text", "text": "s"}],
            messages=[{"role": "user", "content": "hi"}], max_tokens=100)
    (use,) = reply.tool_uses("submit_patch")
    assert use["input"] == {"diff": "d", "summary": "s"} and reply.stop_reason == "tool_use"
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.cache_read_tokens) == (7, 3, 11)


@pytest.mark.parametrize("reply,kind,status", [(error(401), "auth", 401), (error(400), "request", 400),
                                               (error(404), "request", 404), (error(529), "unavailable", 529),
                                               (error(500), "unavailable", 500), (error(429), "unavailable", 429)])
def test_client_errors_say_what_went_wrong(reply, kind, status):
    with FakeAnthropic() as api:
        api.script(reply)
        with pytest.raises(LLMError) as err:
            Client("sk-ant-test-0123456789", base_url=api.url, max_retries=0).create(
                model="m", system=[], messages=[{"role": "user", "content": "hi"}], max_tokens=10)
    assert (err.value.kind, err.value.status) == (kind, status)


def test_client_request_timeout():
    with FakeAnthropic() as api:
        api.script(delay(5, message("late")))
        with pytest.raises(LLMError) as err:
            Client("sk-ant-test-0123456789", base_url=api.url, max_retries=0, timeout=0.5).create(
                model="m", system=[], messages=[{"role": "user", "content": "hi"}], max_tokens=10)
    assert err.value.kind == "timeout" and "0.5s" in err.value.message
