"""What the run's shared ledger (state.ledger) costs a worker per model call.

In a temporary folder: one process appending alone (lock, O_APPEND write, fsync); `totals()`
with nothing new (the check before every call) and from scratch over the whole file; a Meter's
`check` + `record` with a ledger (a reservation and its settlement: two appends) against one
without; then K processes appending at once, for the throughput under contention.

    python bench/bench_ledger.py [--n 500] [--entries 10000] [--procs 8] [--per-proc 200]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from gitforge.config import Budgets, Config
from gitforge.infra.state import Store
from gitforge.infra.state.ledger import Ledger
from gitforge.llm import Usage
from gitforge.run.spend import Meter

APPENDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from gitforge.infra.state import Store
    from gitforge.infra.state.ledger import Ledger
    ledger = Ledger(Store(Path(sys.argv[1])), sys.argv[2])
    go = Path(sys.argv[4])
    while not go.exists():
        time.sleep(0.001)
    for i in range(int(sys.argv[3])):
        ledger.append("call", phase="1", settles=None, role="builder", model="m", usd=0.001)
""")


def per_call(fn, n: int) -> float:
    """Median of 5 rounds, in microseconds per call."""
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(rounds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--per-proc", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = Store(root)
        ledger = Ledger.new(store)
        rows = [("append (lock, write, fsync)", per_call(
            lambda: ledger.append("failure", phase="1", signature="s"), args.n))]
        reader = Ledger(store, ledger.batch_id)
        reader.totals()
        rows.append(("totals(), nothing new", per_call(reader.totals, args.n * 10)))
        for _ in range(args.entries - reader.totals().entries):
            ledger.append("call", phase="1", settles=None, role="builder", model="m", usd=0.001)

        def scratch() -> None:
            Ledger(store, ledger.batch_id).totals()

        rows.append((f"totals() from scratch, {args.entries} entries", per_call(scratch, 5)))
        budgets = Budgets(usd_per_run=1e6, usd_per_phase=1e6, failures_per_run=10**6)
        prices = Config().prices
        for label, shared in (("without a ledger", None), ("with a ledger", Ledger.new(store))):
            m = Meter(budgets, prices, ledger=shared)
            m.start_phase("1", "R")

            def call(m: Meter = m) -> None:
                m.check("builder", "claude-sonnet-5-5", 30_000, 4000)
                m.record("builder", "claude-sonnet-5-5", Usage(10_000, 1000))

            rows.append((f"Meter check + record, {label}", per_call(call, args.n)))
            if shared is None:
                m.calls.clear()
        batch = Ledger.new(store)
        go = root / "go"
        procs = [subprocess.Popen([sys.executable, "-c", APPENDER, tmp, batch.batch_id, str(args.per_proc),
                                   str(go)]) for _ in range(args.procs)]
        time.sleep(1.0)
        start = time.perf_counter()
        go.touch()
        assert all(p.wait() == 0 for p in procs)
        wall = time.perf_counter() - start
        total = args.procs * args.per_proc
        assert batch.totals().entries == total
        rows.append((f"{args.procs} processes x {args.per_proc} appends at once (per append, wall)",
                     wall / total * 1e6))
    print("| what | µs per call |\n|---|---:|")
    for label, us in rows:
        print(f"| {label} | {us:,.0f} |")


if __name__ == "__main__":
    main()
