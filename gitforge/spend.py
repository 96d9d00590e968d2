"""Money and tokens: what each model call cost, per role, and the budgets checked before a call.

A call is refused *before* it is made when its worst case (the whole request at the full input
price, plus `max_tokens` of output) would take the phase or the run past its budget. The
estimate counts a token per 3 characters, which errs on the side of stopping early.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gitforge.errors import ConfigError, WorkFailed
from gitforge.llm import Usage

CHARS_PER_TOKEN = 3


class BudgetExceeded(WorkFailed):
    """A budget would be exceeded: the phase stops cleanly as Failed, with this reason."""


@dataclass
class Meter:
    """Spend for one gitforge invocation (a "run" in budgets), and for the phase in progress."""

    budgets: object  # config.Budgets
    prices: Mapping[str, object]  # model -> config.Price
    calls: list[dict] = field(default_factory=list)
    phase: str | None = None
    failures: int = 0

    def start_phase(self, phase_id: str) -> None:
        self.phase = phase_id

    def price(self, model: str):
        if model not in self.prices:
            raise ConfigError(f"no price for model '{model}', so its cost cannot be counted against the budgets",
                              hint=f"add it to otto.yaml: prices: {{{model}: {{input: 3, output: 15, "
                                   f"cache_write: 3.75, cache_read: 0.3}}}} (USD per million tokens)")
        return self.prices[model]

    def cost(self, model: str, usage: Usage) -> float:
        p = self.price(model)
        return (usage.input_tokens * p.input + usage.output_tokens * p.output
                + usage.cache_write_tokens * p.cache_write + usage.cache_read_tokens * p.cache_read) / 1e6

    def estimate(self, model: str, request_chars: int, max_tokens: int) -> float:
        p = self.price(model)
        return (request_chars / CHARS_PER_TOKEN * p.input + max_tokens * p.output) / 1e6

    # -- spend so far ---------------------------------------------------------------------
    def phase_calls(self) -> list[dict]:
        return [c for c in self.calls if c["phase"] == self.phase]

    def phase_usd(self) -> float:
        return sum(c["usd"] for c in self.phase_calls())

    def run_usd(self) -> float:
        return sum(c["usd"] for c in self.calls)

    def pilot_calls(self, phase_only: bool) -> int:
        calls = self.phase_calls() if phase_only else self.calls
        return sum(1 for c in calls if c["role"] == "pilot")

    # -- the checks -----------------------------------------------------------------------
    def check(self, role: str, model: str, request_chars: int, max_tokens: int) -> float:
        """Raise BudgetExceeded if this call could break a budget; return its estimate."""
        est = self.estimate(model, request_chars, max_tokens)
        b = self.budgets
        for scope, spent, limit, key in (("phase", self.phase_usd(), b.usd_per_phase, "usd_per_phase"),
                                         ("run", self.run_usd(), b.usd_per_run, "usd_per_run")):
            if spent + est > limit:
                raise BudgetExceeded(
                    f"budget: the next {role} call ({model}, up to ${est:.4f}) would take this {scope}'s spend "
                    f"from ${spent:.4f} past budgets.{key} = ${limit:g}",
                    hint=f"raise budgets.{key} in otto.yaml" + (", or lower builder.max_tokens" if role == "builder"
                                                                  else "") + ", then run the phase again")
        return est

    def pilot_allowed(self) -> str | None:
        """None if the pilot may be consulted, else why not."""
        b = self.budgets
        if self.pilot_calls(True) >= b.doctor_calls_per_phase:
            return f"budgets.doctor_calls_per_phase ({b.doctor_calls_per_phase}) reached"
        if self.pilot_calls(False) >= b.doctor_calls_per_run:
            return f"budgets.doctor_calls_per_run ({b.doctor_calls_per_run}) reached"
        return None

    def count_failure(self) -> None:
        self.failures += 1
        if self.failures >= self.budgets.failures_per_run:
            raise BudgetExceeded(f"budget: {self.failures} failed attempts in this run reached "
                                 f"budgets.failures_per_run = {self.budgets.failures_per_run}",
                                 hint="look at the failures (gitforge show), then raise the budget if needed")

    def record(self, role: str, model: str, usage: Usage, usd: float | None = None, **extra) -> dict:
        """One call's usage and cost (`usd` given for a call that failed without usage: its estimate)."""
        cost = round(self.cost(model, usage), 6) if usd is None else usd
        call = {"phase": self.phase, "role": role, "model": model, **usage.to_json(), "usd": cost, **extra}
        self.calls.append(call)
        return call


def by_role(calls: list[dict]) -> dict:
    """{"total_usd", "calls", "by_role": {role: {calls, models, input/output/cache tokens, usd}}}."""
    roles: dict[str, dict] = {}
    for c in calls:
        r = roles.setdefault(c["role"], {"calls": 0, "models": [], "input_tokens": 0, "output_tokens": 0,
                                         "cache_write_tokens": 0, "cache_read_tokens": 0, "usd": 0.0})
        r["calls"] += 1
        if c["model"] not in r["models"]:
            r["models"].append(c["model"])
        for k in ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens"):
            r[k] += c.get(k, 0)
        r["usd"] = round(r["usd"] + c["usd"], 6)
    return {"total_usd": round(sum(c["usd"] for c in calls), 6), "calls": len(calls), "by_role": roles}
