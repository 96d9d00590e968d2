"""The pilot: from the second failed attempt of a phase, it decides what happens next.

Failures with a known cause (a refused or unplaceable patch, a syntax error, a timed-out gate,
a builder reply that was cut off) get a rule's decision without a model call. Otherwise the
cheap model is asked through a forced `submit_decision` call, and the strong one when the cheap
one is unsure or the failure is complex, within the doctor-call budgets.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from gitforge.builders import prompts
from gitforge.builders.base import Plan
from gitforge.run.calls import Caller
from gitforge.infra.clip import middle
from gitforge.run.pipeline import Attempt
from gitforge.llm import LLMError
from gitforge.run.spend import BudgetExceeded, Meter

MAX_TOKENS = 2000
_NOISE = re.compile(r"0x[0-9a-f]+|\b[0-9a-f]{12,}\b|\d+(\.\d+)?|/tmp/\S+|\.forge/\S+", re.I)
_ERRORISH = re.compile(r"error|assert|fail|exception|traceback|expected|refused|not found", re.I)


@dataclass
class Decision:
    action: str
    confidence: float = 1.0
    hint: str = ""
    reason: str = ""
    commands: list[str] = field(default_factory=list)
    source: str = "rule"  # "rule", "default", or the model that decided

    def to_json(self) -> dict:
        return asdict(self)


def signature(att: Attempt) -> str:
    """What makes two failures "the same error": the stage and the error lines of the output,
    with numbers, hashes and temporary paths taken out."""
    text = "\n".join([att.reason, *[str(d) for d in att.details]])
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errorish = [ln for ln in lines if _ERRORISH.search(ln)] or lines[-5:]
    norm = "\n".join(_NOISE.sub("#", ln) for ln in errorish[-12:])
    return hashlib.sha256(f"{att.stage}\n{norm}".encode()).hexdigest()[:16]


def rule_decision(att: Attempt) -> Decision | None:
    """A decision for a failure whose cause is known, or None when a model should look."""
    if att.stage == "build":
        hint = ("Send a compact diff: only the changed lines with 3 lines of context." if "cut off" in att.reason
                else "")
        return Decision("retry_with_fix", hint=hint, reason=f"builder: {att.reason}")
    if att.stage == "validate":
        return Decision("retry_with_fix", hint="Keep the patch inside the policy: " + "; ".join(att.details[:5]),
                        reason="the patch was refused by the policy")
    if att.stage == "apply":
        return Decision("retry_with_fix", hint="Read the files again and copy the context lines exactly; the "
                        "hunks named above did not match the base files.", reason="the patch did not apply")
    if att.stage == "audit":
        syntax = [d for d in att.details if "syntax error" in d]
        return Decision("retry_with_fix", hint=("Fix the syntax error: " + "; ".join(syntax)) if syntax else
                        "Fix the files named above so they parse.", reason="the patched files failed the audit")
    timed_out = [g for g in att.gates if g.timed_out]
    if timed_out:
        g = timed_out[0]
        return Decision("retry_with_fix", hint=f"Gate '{g.name}' ({g.run}) was killed after {g.duration:.0f}s. "
                        "The change probably hangs: an endless loop, a blocking read or a server left running.",
                        reason="a gate timed out")
    return None


class Pilot:
    def __init__(self, caller: Caller | None, meter: Meter, cheap: str, strong: str, escalate_below: float,
                 fix_commands: Sequence[str] | None) -> None:
        self.caller, self.meter = caller, meter
        self.cheap, self.strong, self.escalate_below = cheap, strong, escalate_below
        self.fix_commands = list(fix_commands) if fix_commands is not None else None

    def decide(self, phase_text: str, attempts: Sequence[Attempt], plan: Plan | None, last_diff: str) -> Decision:
        last = attempts[-1]
        rule = rule_decision(last)
        if rule is not None:
            return rule
        if self.caller is None:
            return Decision("retry_with_fix", reason="no model to consult (builder is not anthropic)",
                            source="default")
        why_not = self.meter.pilot_allowed()
        if why_not:
            return Decision("retry_with_fix", reason=f"pilot not consulted: {why_not}", source="default")
        messages = [{"role": "user", "content": [{"type": "text",
                                                  "text": self._brief(phase_text, attempts, plan, last_diff)}]}]
        try:
            decision = self._ask(self.cheap, messages)
        except (LLMError, BudgetExceeded) as e:  # triage is advice: without it, the loop just retries
            return Decision("retry_with_fix", reason=f"pilot not consulted: {e}", source="default")
        complex_ = len(last.changes) > 8 or len({signature(a) for a in attempts}) >= 3
        if (decision.confidence < self.escalate_below or complex_) and self.strong != self.cheap \
                and self.meter.pilot_allowed() is None:
            try:
                decision = self._ask(self.strong, messages)
            except (LLMError, BudgetExceeded) as e:
                decision.reason += f" (the strong model could not be asked: {e})"
        return decision

    def _ask(self, model: str, messages: list[dict]) -> Decision:
        actions = tuple(a for a in prompts.ACTIONS if a != "execute_fix" or self.fix_commands)
        tool = prompts.submit_decision(actions)
        reply = self.caller.call("pilot", model=model, system=prompts.system(prompts.PILOT_SYSTEM),
                                 messages=messages, tools=[tool], tool_choice={"type": "tool", "name": tool["name"]},
                                 max_tokens=MAX_TOKENS)
        uses = reply.tool_uses("submit_decision")
        data = uses[0].get("input") if uses and not reply.truncated else None
        if not isinstance(data, dict) or data.get("action") not in actions:
            return Decision("retry_with_fix", confidence=0.0, source=model,
                            reason="the pilot's answer was unusable (cut off or malformed); retrying with feedback")
        try:
            confidence = min(1.0, max(0.0, float(data.get("confidence", 0))))
        except (TypeError, ValueError):
            confidence = 0.0
        commands = [c for c in data.get("commands") or [] if isinstance(c, str)]
        return Decision(data["action"], confidence, str(data.get("hint") or ""), str(data.get("reason") or ""),
                        commands, source=model)

    def _brief(self, phase_text: str, attempts: Sequence[Attempt], plan: Plan | None, last_diff: str) -> str:
        parts = [prompts.phase_block(phase_text)]
        if plan:
            parts.append(f"# The plan\n\n{plan.render()}\n")
        for att in attempts:
            body = "\n".join([att.reason, *[str(d) for d in att.details]])
            parts.append(f"# Attempt {att.number}: failed at {att.stage}\n\n{middle(body, 3000)}\n")
        if last_diff:
            parts.append(f"# The last attempt's diff\n\n```diff\n{middle(last_diff, 8000)}\n```\n")
        if self.fix_commands:
            parts.append("# execute_fix may run commands starting with: " + ", ".join(self.fix_commands) + "\n")
        parts.append("Decide what happens next by calling submit_decision.")
        return "\n".join(parts)

