"""Money and tokens: what each model call cost, per role, and the budgets checked before a call.

A call is refused *before* it is made when its worst case (the whole request at the full input
price, plus `max_tokens` of output) would take the phase or the run past its budget. The
estimate counts a token per 3 characters, which errs on the side of stopping early.

A model missing from the price table (newer than it, say) does not stop anything: it is
counted at the table's highest price for each kind of token, so budgets stay conservative,
its calls are marked `estimated`, and gitforge says so once per process.

With a shared ledger (state.ledger: one per `gitforge run`, written by all its worker
processes), the `per_run` limits hold for the run across its workers: `usd_per_run`,
`doctor_calls_per_run` and `failures_per_run` count every worker's entries, this one's
included. A check and the spend it allows do not race: under the ledger's lock the check reads
every worker's spend *and their reservations* (calls in flight, at their estimates), and
reserves this call's estimate before letting it go; the call's real cost settles the
reservation. So concurrent workers see each other's calls in flight, and a run passes
`usd_per_run` only by what its calls cost beyond their estimates (the estimate is a worst case;
a request that timed out and was retried is counted at the estimate once per try). A worker
killed mid-call leaves its reservation counting.

The breaker: the same error signature (pilot.signature) failing BREAKER_PHASES different phases
of the run stops it (BreakerTripped), in whichever worker sees it, and every later call check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING

from gitforge.errors import WorkFailed
from gitforge.infra.state.files import new_id
from gitforge.llm import Usage

if TYPE_CHECKING:
    from gitforge.infra.state.ledger import Ledger

CHARS_PER_TOKEN = 3
TOKEN_CLASSES = ("input", "output", "cache_write", "cache_read")
BREAKER_PHASES = 3  # the same error signature in this many phases of a run stops the run
_warned: set[str] = set()  # unpriced models already reported by this process


class BudgetExceeded(WorkFailed):
    """A budget would be exceeded: the phase stops cleanly as Failed, with this reason."""


class BreakerTripped(BudgetExceeded):
    """The same error failed BREAKER_PHASES phases of the run: it stops rather than spend more on it."""

    def __init__(self, signature: str, phases: list[str], across: str) -> None:
        shown = ", ".join(phases)
        super().__init__(f"breaker: the same error (signature {signature}) failed {len(phases)} phases of this "
                         f"run{across} ({shown}); the run stops at {BREAKER_PHASES}",
                         hint=f"look at one of them (gitforge show {phases[0]}), fix what they have in common, "
                              "then run again")
        self.signature = signature
        self.phases = phases


@dataclass
class Meter:
    """Spend for one gitforge invocation (a "run" in budgets), and for the phase in progress;
    with `ledger`, the run's spend, pilot calls and failures are those of all its workers."""

    budgets: object  # config.Budgets
    prices: Mapping[str, object]  # model -> config.Price
    warn: Callable[[str], None] | None = None  # told once per process about each unpriced model
    calls: list[dict] = field(default_factory=list)
    phase: str | None = None
    failures: int = 0  # counted by this Meter (run_failures(): the run's)
    ledger: Ledger | None = None
    phase_run: str | None = None
    signatures: dict[str, dict[str, int]] = field(default_factory=dict)  # without a ledger: sig -> {phase: n}
    _pending: list[str] = field(default_factory=list, repr=False)  # reservations checked, not yet settled

    def start_phase(self, phase_id: str, phase_run: str | None = None) -> None:
        self.phase, self.phase_run = phase_id, phase_run

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
        """Spent in this run on calls made (by every worker, with a ledger)."""
        if self.ledger is not None:
            return self.ledger.totals().usd
        return sum(c["usd"] for c in self.calls)

    def pilot_calls(self, phase_only: bool) -> int:
        if self.ledger is not None and not phase_only:
            return self.ledger.totals().pilot_calls
        calls = self.phase_calls() if phase_only else self.calls
        return sum(1 for c in calls if c["role"] == "pilot")

    def run_failures(self) -> int:
        return self.ledger.totals().failures if self.ledger is not None else self.failures

    # -- the checks -----------------------------------------------------------------------
    def check(self, role: str, model: str, request_chars: int, max_tokens: int) -> float:
        """Raise BudgetExceeded if this call could break a budget (or the run is stopped by its
        failures or its breaker); return its estimate. With a ledger the estimate is reserved
        there until `record` settles it or `release` drops it."""
        est = self.estimate(model, request_chars, max_tokens)
        self._refuse("phase", role, model, est, self.phase_usd(), 0.0, self.budgets.usd_per_phase)
        if self.ledger is None:
            self._stopped(self.failures, self.signatures)
            self._refuse("run", role, model, est, self.run_usd(), 0.0, self.budgets.usd_per_run)
            return est
        with self.ledger.locked():
            t = self.ledger.totals()
            self._stopped(t.failures, t.signatures)
            self._refuse("run", role, model, est, t.usd, t.in_flight_usd, self.budgets.usd_per_run)
            if role == "pilot" and t.pilot_calls + t.in_flight("pilot") >= self.budgets.doctor_calls_per_run:
                raise BudgetExceeded(f"budget: budgets.doctor_calls_per_run ({self.budgets.doctor_calls_per_run}) "
                                     "reached across the run's workers", hint=_RAISE_DOCTOR)
            rid = new_id()
            self.ledger.append("reserve", phase=self.phase, phase_run=self.phase_run, id=rid, role=role,
                               model=model, usd=round(est, 6))
        self._pending.append(rid)
        return est

    def _refuse(self, scope: str, role: str, model: str, est: float, spent: float, in_flight: float,
                limit: float) -> None:
        if spent + in_flight + est <= limit:
            return
        key = f"usd_per_{scope}"
        whose = "this run's spend across its workers" if scope == "run" and self.ledger is not None \
            else f"this {scope}'s spend"
        flying = f" (${in_flight:.4f} of it in calls still in flight)" if in_flight else ""
        raise BudgetExceeded(
            f"budget: the next {role} call ({model}, up to ${est:.4f}) would take {whose} "
            f"from ${spent + in_flight:.4f}{flying} past budgets.{key} = ${limit:g}",
            hint=f"raise budgets.{key} in otto.yaml" + (", or lower builder.max_tokens" if role == "builder"
                                                          else "") + ", then run the phase again")

    def pilot_allowed(self) -> str | None:
        """None if the pilot may be consulted, else why not."""
        b = self.budgets
        if self.pilot_calls(True) >= b.doctor_calls_per_phase:
            return f"budgets.doctor_calls_per_phase ({b.doctor_calls_per_phase}) reached"
        if self.ledger is not None:
            t = self.ledger.totals()
            if t.pilot_calls + t.in_flight("pilot") >= b.doctor_calls_per_run:
                return f"budgets.doctor_calls_per_run ({b.doctor_calls_per_run}) reached across the run's workers"
        elif self.pilot_calls(False) >= b.doctor_calls_per_run:
            return f"budgets.doctor_calls_per_run ({b.doctor_calls_per_run}) reached"
        return None

    def count_failure(self, signature: str | None = None) -> None:
        """Count a failed attempt of the phase in progress (with its error signature, for the
        breaker); raise BreakerTripped or BudgetExceeded when the run must stop."""
        self.failures += 1
        if self.ledger is None:
            if signature is not None and self.phase is not None:
                seen = self.signatures.setdefault(signature, {})
                seen[self.phase] = seen.get(self.phase, 0) + 1
            self._stopped(self.failures, self.signatures)
            return
        self.ledger.append("failure", phase=self.phase, phase_run=self.phase_run, signature=signature)
        t = self.ledger.totals()
        self._stopped(t.failures, t.signatures)

    def check_run(self) -> None:
        """Raise BreakerTripped or BudgetExceeded when the run's failures have stopped it (what
        a coordinator asks before it starts a phase, which may make no model call)."""
        if self.ledger is None:
            self._stopped(self.failures, self.signatures)
        else:
            t = self.ledger.totals()
            self._stopped(t.failures, t.signatures)

    def _stopped(self, failures: int, signatures: Mapping[str, Mapping[str, int]]) -> None:
        """Raise when the run's failures stop it: the breaker, or budgets.failures_per_run."""
        across = " across its workers" if self.ledger is not None else ""
        for sig, phases in signatures.items():
            if len(phases) >= BREAKER_PHASES:
                raise BreakerTripped(sig, list(phases), across)
        limit = self.budgets.failures_per_run
        if failures and failures >= limit:
            raise BudgetExceeded(f"budget: {failures} failed attempts in this run{across} reached "
                                 f"budgets.failures_per_run = {limit}",
                                 hint="look at the failures (gitforge show), then raise the budget if needed")

    # -- recording --------------------------------------------------------------------------
    def record(self, role: str, model: str, usage: Usage, usd: float | None = None, **extra) -> dict:
        """One call's usage and cost (`usd` given for a call that failed without usage: its estimate).
        With a ledger it is appended there, settling the reservation of the call's check."""
        cost = round(self.cost(model, usage), 6) if usd is None else usd
        if not self.priced(model):
            extra.update(estimated=True, unpriced=True)
        call = {"phase": self.phase, "role": role, "model": model, **usage.to_json(), "usd": cost, **extra}
        self.calls.append(call)
        if self.ledger is not None:
            self.ledger.append("call", phase=self.phase, phase_run=self.phase_run,
                               settles=self._pending.pop(0) if self._pending else None, role=role, model=model,
                               usd=cost, estimated=bool(extra.get("estimated")), **usage.to_json())
        return call

    def release(self) -> None:
        """The call checked last was not made, or the API refused it unbilled: drop its reservation."""
        if self.ledger is not None and self._pending:
            self.ledger.append("release", phase=self.phase, phase_run=self.phase_run, settles=self._pending.pop())


_RAISE_DOCTOR = "raise budgets.doctor_calls_per_run in otto.yaml, then run the phase again"


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
