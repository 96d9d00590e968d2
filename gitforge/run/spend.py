"""Money and tokens: what each model call cost, per role, and the budgets checked before a call.

A call is refused *before* it is made when its worst case (the whole request at the full input
price, plus `max_tokens` of output) would take the phase or the run past its budget. The
estimate counts a token per 3 characters, which errs on the side of stopping early.

A model missing from the price table (newer than it, say) does not stop anything: it is
counted at the table's highest price for each kind of token, so budgets stay conservative,
its calls are marked `estimated`, and gitforge says so once per process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace

from gitforge.errors import WorkFailed
from gitforge.llm import Usage

CHARS_PER_TOKEN = 3
TOKEN_CLASSES = ("input", "output", "cache_write", "cache_read")
_warned: set[str] = set()  # unpriced models already reported by this process


class BudgetExceeded(WorkFailed):
    """A budget would be exceeded: the phase stops cleanly as Failed, with this reason."""


@dataclass
class Meter:
    """Spend for one gitforge invocation (a "run" in budgets), and for the phase in progress."""

    budgets: object  # config.Budgets
    prices: Mapping[str, object]  # model -> config.Price
    warn: Callable[[str], None] | None = None  # told once per process about each unpriced model
    calls: list[dict] = field(default_factory=list)
    phase: str | None = None
    failures: int = 0

    def start_phase(self, phase_id: str) -> None:
        self.phase = phase_id

    def priced(self, model: str) -> bool:
        return model in self.prices

    def ceiling(self):
        """The most expensive known price for each kind of token (USD per million)."""
        return SimpleNamespace(**{k: max((getattr(p, k) for p in self.prices.values()), default=0.0)
                                  for k in TOKEN_CLASSES})

    def price(self, model: str):
        """The model's price; for a model the table does not know, the ceiling (said once)."""
        if model in self.prices:
            return self.prices[model]
        ceiling = self.ceiling()
        if model not in _warned and self.warn is not None:
            _warned.add(model)
            shown = ", ".join(f"{k.replace('_', ' ')} ${getattr(ceiling, k):g}" for k in TOKEN_CLASSES)
            self.warn(f"no price for model '{model}': its calls are counted at the highest known price "
                      f"({shown} per million tokens), so budgets stay conservative, and its cost is marked "
                      f"estimated. To count it exactly, add it to otto.yaml: prices: {{{model}: {{input: ..., "
                      "output: ..., cache_write: ..., cache_read: ...}}")
        return ceiling

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
        if not self.priced(model):
            extra.update(estimated=True, unpriced=True)
        call = {"phase": self.phase, "role": role, "model": model, **usage.to_json(), "usd": cost, **extra}
        self.calls.append(call)
        return call


def by_role(calls: list[dict]) -> dict:
    """{"total_usd", "calls", "estimated", "unpriced", "by_role": {role: {calls, models, input/output/
    cache tokens, usd, estimated}}}. `estimated`: some cost is not from a price list and real usage
    (a model with no price, counted at the ceiling; a request that timed out); `unpriced`: those models."""
    roles: dict[str, dict] = {}
    unpriced: list[str] = []
    for c in calls:
        r = roles.setdefault(c["role"], {"calls": 0, "models": [], "input_tokens": 0, "output_tokens": 0,
                                         "cache_write_tokens": 0, "cache_read_tokens": 0, "usd": 0.0,
                                         "estimated": False})
        r["calls"] += 1
        if c["model"] not in r["models"]:
            r["models"].append(c["model"])
        for k in ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens"):
            r[k] += c.get(k, 0)
        r["usd"] = round(r["usd"] + c["usd"], 6)
        r["estimated"] = r["estimated"] or bool(c.get("estimated"))
        if c.get("unpriced") and c["model"] not in unpriced:
            unpriced.append(c["model"])
    return {"total_usd": round(sum(c["usd"] for c in calls), 6), "calls": len(calls),
            "estimated": any(c.get("estimated") for c in calls), "unpriced": unpriced, "by_role": roles}
