"""The run's shared ledger (state.ledger) and the Meter's per-run limits across worker processes:
real files under `.forge/`, real processes appending at once, a writer SIGKILLed mid-write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gitforge.config import Budgets, Config
from gitforge.infra.state import Store
from gitforge.infra.state.ledger import Ledger
from gitforge.llm import Usage
from gitforge.run.spend import BREAKER_PHASES, BreakerTripped, BudgetExceeded, Meter

PRICES = Config().prices
SONNET = "claude-sonnet-5-5"  # $2 / $10 per million input / output tokens

# A worker process: a Meter on the batch's ledger. argv: root, batch id, phase, budgets (JSON),
# then the steps, each "check:ROLE:CHARS:MAX_TOKENS", "record:ROLE:INPUT:OUTPUT" or "fail:SIGNATURE".
# It prints one JSON line per step: "ok" or the refusal's class and message.
WORKER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from gitforge.config import Budgets, Config
    from gitforge.infra.state import Store
    from gitforge.infra.state.ledger import Ledger
    from gitforge.llm import Usage
    from gitforge.run.spend import BudgetExceeded, Meter
    root, batch, phase, budgets, *steps = sys.argv[1:]
    meter = Meter(Budgets(**json.loads(budgets)), Config().prices, ledger=Ledger(Store(Path(root)), batch))
    meter.start_phase(phase, "RUN-" + phase)
    for step in steps:
        kind, *args = step.split(":")
        try:
            if kind == "check":
                meter.check(args[0], "claude-sonnet-5-5", int(args[1]), int(args[2]))
            elif kind == "record":
                meter.record(args[0], "claude-sonnet-5-5", Usage(int(args[1]), int(args[2])))
            else:
                meter.count_failure(args[0])
            print(json.dumps("ok"))
        except BudgetExceeded as e:
            print(json.dumps([type(e).__name__, e.message]))
""")


def worker(root: Path, batch: str, phase: str, budgets: dict, *steps: str) -> list:
    proc = subprocess.run([sys.executable, "-c", WORKER, str(root), batch, phase, json.dumps(budgets), *steps],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def meter_on(ledger: Ledger, phase: str, **budgets) -> Meter:
    m = Meter(Budgets(**budgets), PRICES, ledger=ledger)
    m.start_phase(phase, f"RUN-{phase}")
    return m


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger.new(Store(tmp_path))


# --- the file ------------------------------------------------------------------------------

APPENDER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from gitforge.infra.state import Store
    from gitforge.infra.state.ledger import Ledger
    root, batch, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    ledger = Ledger(Store(Path(root)), batch)
    while not go.exists():
        time.sleep(0.001)
    me = str(os.getpid())
    for i in range(n):
        if i % 2:
            ledger.append("call", phase=me, phase_run=None, settles=None, role="pilot" if i % 4 == 1 else "builder",
                          model="m", usd=0.000125 * (i % 7))
        else:
            ledger.append("failure", phase=me, phase_run=None, signature=f"sig{i % 3}")
""")


def test_eight_processes_appending_at_once_lose_nothing(tmp_path, ledger):
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, str(tmp_path), ledger.batch_id, "200", str(go)])
             for _ in range(8)]
    time.sleep(0.5)  # let them all start, then release them together
    go.touch()
    assert [p.wait(timeout=120) for p in procs] == [0] * 8
    lines = ledger.path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 1601
    assert all(json.loads(line)["v"] == 1 for line in lines[:-1])
    t = ledger.totals()
    assert (t.entries, t.skipped, t.failures, t.calls) == (1600, 0, 800, 800)
    assert t.pilot_calls == 8 * 50
    assert t.settled_micro == 8 * sum(125 * (i % 7) for i in range(1, 200, 2))
    assert set(t.signatures) == {"sig0", "sig1", "sig2"}
    assert all(len(phases) == 8 for phases in t.signatures.values())
    assert sum(n for phases in t.signatures.values() for n in phases.values()) == 800
    pids = [json.loads(line)["pid"] for line in lines[:-1]]
    assert set(pids) == {p.pid for p in procs}
    assert sum(a != b for a, b in zip(pids, pids[1:])) > 20  # they did write at once
    assert Ledger(Store(tmp_path), ledger.batch_id).totals() == t  # a fresh reader agrees


def test_reads_are_incremental_and_wait_for_a_line_to_end(ledger):
    ledger.append("failure", phase="1", signature="a")
    assert ledger.totals().failures == 1
    size = ledger.path.stat().st_size
    assert ledger.read_offset == size
    with open(ledger.path, "ab") as f:  # a line being written: not taken yet
        f.write(b'{"v":1,"kind":"failure","phase":"2","sig')
    assert ledger.totals().failures == 1 and ledger.read_offset == size
    with open(ledger.path, "ab") as f:
        f.write(b'nature":"b"}\n')
    t = ledger.totals()
    assert (t.failures, t.skipped, ledger.read_offset) == (2, 0, ledger.path.stat().st_size)
    assert t.signatures == {"a": {"1": 1}, "b": {"2": 1}}


def test_foreign_lines_and_a_replaced_file(ledger):
    ledger.append("failure", phase="1", signature=None)
    with open(ledger.path, "ab") as f:
        f.write(b"not json\n\xff\xfe\n[1, 2]\n{}\n" + json.dumps({"v": 1, "kind": "call", "usd": "lots"}).encode()
                + b"\n")
    ledger.append("call", phase="1", settles=None, role="builder", model="m", usd=0.5)
    t = ledger.totals()
    assert (t.entries, t.skipped, t.failures, t.usd) == (2, 5, 1, 0.5)
    ledger.path.unlink()  # someone started the file over: so does the reader
    ledger.append("failure", phase="9", signature="x")
    t = ledger.totals()
    assert (t.entries, t.failures, t.usd, t.signatures) == (1, 1, 0, {"x": {"9": 1}})


BIG_APPENDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from gitforge.infra.state import Store
    from gitforge.infra.state.ledger import Ledger
    ledger = Ledger(Store(Path(sys.argv[1])), sys.argv[2])
    pad = "x" * (16 << 20)
    while True:
        ledger.append("failure", phase="big", signature=None, pad=pad)
""")


def test_a_writer_killed_mid_line_leaves_a_ledger_that_reads_and_takes_appends(tmp_path, ledger):
    for _ in range(5):  # SIGKILL lands mid-write nearly always; try again in the rare case it did not
        ledger.append("failure", phase="1", signature="before")
        proc = subprocess.Popen([sys.executable, "-c", BIG_APPENDER, str(tmp_path), ledger.batch_id])
        fd = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # kill it when the file ends inside a line: mid-write
            if fd is None and ledger.path.exists():
                fd = os.open(ledger.path, os.O_RDONLY)
            size = os.fstat(fd).st_size if fd is not None else 0
            if size > 200 and os.pread(fd, 1, size - 1) not in (b"\n", b""):
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=30)
        os.close(fd)
        if not ledger.path.read_bytes().endswith(b"\n"):
            break
        ledger.path.unlink()
        ledger = Ledger.new(Store(tmp_path))
    data = ledger.path.read_bytes()
    assert not data.endswith(b"\n"), "the writer was never caught mid-line"
    complete = data.count(b"\n")
    fresh = Ledger(Store(tmp_path), ledger.batch_id).totals()
    assert (fresh.entries, fresh.skipped, fresh.failures) == (complete, 0, complete)  # the torn line: not yet
    before = ledger.totals()  # read once before the next append: incrementally after it
    assert before.failures == complete

    out = worker(tmp_path, ledger.batch_id, "2", {}, "fail:after")  # the killed writer's lock is free
    assert out == ["ok"]
    t = ledger.totals()
    assert (t.failures, t.skipped) == (complete + 1, 1)  # the torn line, ended by the next writer, skipped
    assert t.signatures["after"] == {"2": 1}
    assert Ledger(Store(tmp_path), ledger.batch_id).totals() == t
    assert ledger.path.read_bytes().endswith(b"\n")
    last = json.loads(ledger.path.read_bytes().split(b"\n")[-2])
    assert (last["kind"], last["signature"], last["phase_run"]) == ("failure", "after", "RUN-2")


# --- the Meter's per-run limits across processes -------------------------------------------------

def test_usd_per_run_counts_every_workers_spend(tmp_path, ledger):
    # usd_per_run $0.10. Worker A spends $0.06 (30,000 input tokens), checked first ($0.01 estimate).
    assert worker(tmp_path, ledger.batch_id, "1", {"usd_per_run": 0.10},
                  "check:builder:0:1000", "record:builder:30000:0") == ["ok", "ok"]
    b = meter_on(ledger, "2", usd_per_run=0.10)
    assert b.run_usd() == pytest.approx(0.06) and b.phase_usd() == 0
    assert b.check("builder", SONNET, 0, 3000) == pytest.approx(0.03)  # 0.06 + 0.03 fits
    b.record("builder", SONNET, Usage(0, 1000))  # $0.01
    # A spends $0.02 more: $0.09 in all. B's next call (up to $0.03) would pass $0.10.
    assert worker(tmp_path, ledger.batch_id, "1", {"usd_per_run": 0.10},
                  "check:builder:0:1000", "record:builder:10000:0") == ["ok", "ok"]
    with pytest.raises(BudgetExceeded) as err:
        b.check("builder", SONNET, 0, 3000)
    assert "this run's spend across its workers from $0.0900 past budgets.usd_per_run = $0.1" in err.value.message
    # and A, in its own process, is refused too
    (refusal,) = worker(tmp_path, ledger.batch_id, "1", {"usd_per_run": 0.10}, "check:builder:0:3000")
    assert refusal[0] == "BudgetExceeded" and "across its workers" in refusal[1]
    assert ledger.totals().in_flight() == 0  # every reservation settled


def test_calls_in_flight_count_until_they_settle(tmp_path, ledger):
    a, b = meter_on(ledger, "1", usd_per_run=0.10), meter_on(Ledger(Store(tmp_path), ledger.batch_id), "2",
                                                              usd_per_run=0.10)
    a.check("builder", SONNET, 0, 5000)  # $0.05 reserved: A's call is in flight
    assert ledger.totals().in_flight_usd == pytest.approx(0.05) and a.run_usd() == 0
    with pytest.raises(BudgetExceeded) as err:
        b.check("builder", SONNET, 0, 6000)
    assert "($0.0500 of it in calls still in flight)" in err.value.message
    a.record("builder", SONNET, Usage(0, 1000))  # it cost $0.01: settled
    assert b.check("builder", SONNET, 0, 6000) == pytest.approx(0.06)
    b.release()  # B's call was refused by the API: nothing spent
    t = ledger.totals()
    assert (t.usd, t.in_flight()) == (pytest.approx(0.01), 0)


def test_failures_per_run_across_two_processes(tmp_path, ledger):
    assert worker(tmp_path, ledger.batch_id, "1", {"failures_per_run": 3}, "fail:aaa", "fail:bbb") == ["ok", "ok"]
    b = meter_on(ledger, "2", failures_per_run=3)
    assert b.run_failures() == 2 and b.failures == 0
    with pytest.raises(BudgetExceeded) as err:
        b.count_failure("ccc")
    assert err.value.message == ("budget: 3 failed attempts in this run across its workers reached "
                                 "budgets.failures_per_run = 3")
    assert not isinstance(err.value, BreakerTripped)
    (refusal,) = worker(tmp_path, ledger.batch_id, "3", {"failures_per_run": 3}, "check:builder:0:10")
    assert refusal[0] == "BudgetExceeded" and "budgets.failures_per_run = 3" in refusal[1]


def test_the_same_error_in_three_phases_trips_the_breaker(tmp_path, ledger):
    assert BREAKER_PHASES == 3
    assert worker(tmp_path, ledger.batch_id, "1", {}, "fail:deadbeef", "fail:deadbeef", "fail:other") == ["ok"] * 3
    assert worker(tmp_path, ledger.batch_id, "2", {}, "fail:deadbeef") == ["ok"]
    c = meter_on(ledger, "3")
    c.count_failure("other")  # another error in a third phase: two phases each, no trip
    with pytest.raises(BreakerTripped) as err:
        c.count_failure("deadbeef")
    assert (err.value.signature, err.value.phases) == ("deadbeef", ["1", "2", "3"])
    assert "signature deadbeef" in err.value.message and "(1, 2, 3)" in err.value.message
    assert "gitforge show 1" in err.value.hint
    (refusal,) = worker(tmp_path, ledger.batch_id, "4", {}, "check:builder:0:10")  # the whole run stops
    assert refusal[0] == "BreakerTripped" and "deadbeef" in refusal[1]
    with pytest.raises(BreakerTripped):  # and a coordinator asking before a phase is told so
        meter_on(Ledger(Store(tmp_path), ledger.batch_id), "5").check_run()


def test_the_breaker_without_a_ledger_counts_this_processes_phases():
    m = Meter(Budgets(), PRICES)
    for phase in ("1", "1", "2"):
        m.start_phase(phase)
        m.count_failure("sig")
    m.start_phase("3")
    with pytest.raises(BreakerTripped) as err:
        m.count_failure("sig")
    assert err.value.phases == ["1", "2", "3"] and "across" not in err.value.message


def test_doctor_calls_per_run_across_processes(tmp_path, ledger):
    budgets = {"doctor_calls_per_run": 2, "doctor_calls_per_phase": 5}
    assert worker(tmp_path, ledger.batch_id, "1", budgets, "check:pilot:0:10", "record:pilot:10:10") == ["ok"] * 2
    b = meter_on(ledger, "2", **budgets)
    assert b.pilot_allowed() is None and b.pilot_calls(False) == 1 and b.pilot_calls(True) == 0
    b.check("pilot", SONNET, 0, 10)  # B's pilot call is in flight: the run's second
    (refusal,) = worker(tmp_path, ledger.batch_id, "3", budgets, "check:pilot:0:10")
    assert refusal[0] == "BudgetExceeded" and "doctor_calls_per_run (2) reached across the run's workers" in refusal[1]
    b.record("pilot", SONNET, Usage(10, 10))
    assert b.pilot_calls(False) == 2
    assert "budgets.doctor_calls_per_run (2) reached across the run's workers" in b.pilot_allowed()
    assert worker(tmp_path, ledger.batch_id, "3", budgets, "check:builder:0:10") == ["ok"]  # builders go on


def test_a_ledger_is_created_by_its_first_append_only(tmp_path):
    store = Store(tmp_path)
    ledger = Ledger.new(store)
    assert ledger.totals().entries == 0 and not (tmp_path / ".forge").exists()
    ledger.append("failure", phase="1", signature=None)
    assert ledger.path == tmp_path / ".forge" / "batches" / ledger.batch_id / "ledger.jsonl"
    assert (tmp_path / ".forge" / "locks" / f"ledger-{ledger.batch_id}.lock").is_file()
    assert oct(ledger.path.stat().st_mode & 0o777) == oct(0o600)


def test_a_call_the_api_refuses_releases_its_reservation_and_a_timeout_settles_it(tmp_path, ledger):
    from fake_api import FakeAnthropic, delay, error, message

    from gitforge.llm import Client, LLMError
    from gitforge.run.calls import Caller

    m = meter_on(ledger, "1")
    with FakeAnthropic() as api:
        caller = Caller(Client("sk-ant-test-0123456789", base_url=api.url, max_retries=0, timeout=0.5), m,
                        tmp_path / "run", secrets=[])
        (tmp_path / "run").mkdir()
        args = dict(model=SONNET, system=[{"type": "text", "text": "s"}],
                    messages=[{"role": "user", "content": "hi"}], max_tokens=1000)
        api.script(error(400), delay(5, message("late")), message("done", usage={"input_tokens": 5000,
                                                                                "output_tokens": 100}))
        with pytest.raises(LLMError):
            caller.call("builder", **args)
        t = ledger.totals()
        assert (t.in_flight(), t.calls, t.usd) == (0, 0, 0)  # refused: released, nothing spent
        with pytest.raises(LLMError):
            caller.call("builder", **args)
        t = ledger.totals()
        assert (t.in_flight(), t.calls) == (0, 1) and t.usd == pytest.approx(0.01, abs=0.001)  # at its estimate
        caller.call("builder", **args)
    t = ledger.totals()
    assert (t.in_flight(), t.calls) == (0, 2) and t.usd - 0.01 == pytest.approx(0.011, abs=0.001)
    kinds = [json.loads(line)["kind"] for line in ledger.path.read_text().splitlines()]
    assert kinds == ["reserve", "release", "reserve", "call", "reserve", "call"]


def test_a_folder_where_the_ledger_belongs_is_set_aside(tmp_path, ledger, capsys):
    ledger.path.mkdir(parents=True)
    assert ledger.totals().entries == 0
    ledger.append("failure", phase="1", signature=None)
    assert ledger.totals().failures == 1
    assert "was not a file: set aside as ledger.jsonl.corrupt-" in capsys.readouterr().err
    assert len(list(ledger.path.parent.glob("ledger.jsonl.corrupt-*"))) == 1
