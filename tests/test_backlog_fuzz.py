"""A deterministic mutation fuzzer for the BACKLOG.md parser, in process: every hostile file
(tests/backlog_mutations.py) parses or raises BacklogError, never anything else, within a
second; a file that parses renders back to the same text, and a Status edit changes one line."""

from __future__ import annotations

import random
import re
import signal
import time
from collections import Counter

import pytest

from backlog_mutations import MUTATIONS, STATUSES, base_backlog, mutated_backlogs
from gitforge.backlog import parse_backlog
from gitforge.errors import BacklogError

SEED = 20250611
COUNT = 300
LIMIT = 1.0  # seconds of CPU time for one parse
LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def _hung(signum, frame):
    raise TimeoutError("the parser hung")


def timed_parse(text: str, name: str):
    """parse_backlog(text) or its BacklogError, in under LIMIT seconds of CPU time (a busy
    machine does not make it fail); a parse stuck for 10 s is stopped by SIGALRM."""
    previous = signal.signal(signal.SIGALRM, _hung)
    signal.setitimer(signal.ITIMER_REAL, 10 * LIMIT)
    start = time.process_time()
    try:
        backlog = parse_backlog(text)
    except BacklogError as e:
        backlog = e
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    elapsed = time.process_time() - start
    assert elapsed < LIMIT, f"{name}: parse took {elapsed:.2f} s"
    return backlog


def check_status_edit(backlog, text: str, name: str, status: str, phase_id: str) -> None:
    updated = backlog.with_status(phase_id, status)
    assert updated.get(phase_id).status == status, name
    assert [p.id for p in updated.phases] == [p.id for p in backlog.phases], name
    for before, after in zip(backlog.phases, updated.phases):
        if before.id != phase_id:
            assert (before.status, before.patch, before.verification) == (
                after.status, after.patch, after.verification), name
    old, new = LINES.findall(text), LINES.findall(updated.render())
    if len(old) == len(new):
        changed = sum(a != b for a, b in zip(old, new))
        assert changed == 1 or (changed == 0 and backlog.get(phase_id).status == status), name
    else:
        line = backlog.get(phase_id).line
        assert len(new) == len(old) + 1 and new[line].startswith(f"**Status:** {status}"), name
        assert new[:line - 1] == old[:line - 1] and new[line + 1:] == old[line:], name


def test_the_base_backlogs_parse_and_round_trip():
    for n in range(50):
        text = base_backlog(random.Random(n))
        assert parse_backlog(text).render() == text


def test_mutated_backlogs_parse_or_raise_backlog_error():
    outcomes: Counter[str] = Counter()
    for n, (name, text) in enumerate(mutated_backlogs(SEED, COUNT)):
        backlog = timed_parse(text, name)
        if isinstance(backlog, BacklogError):
            assert backlog.message.startswith("BACKLOG.md:"), name
            outcomes["error"] += 1
            continue
        outcomes["parsed"] += 1
        assert backlog.render() == text, name
        for phase in backlog.phases[:2] + backlog.phases[-1:]:
            check_status_edit(backlog, text, name, STATUSES[n % len(STATUSES)], phase.id)
    assert sum(outcomes.values()) == COUNT
    # the mutations are hostile but not hopeless: both outcomes are common
    assert outcomes["parsed"] > COUNT // 10 and outcomes["error"] > COUNT // 10, outcomes


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_every_mutation_changes_some_backlog(name):
    changed = 0
    for n in range(10):
        rng = random.Random(n)
        text = base_backlog(rng)
        lines = re.findall(r"[^\n]*\n|[^\n]+\Z", text)
        changed += "".join(MUTATIONS[name](list(lines), rng)) != text
    assert changed >= 5, name


# --- what the fuzzer found: lines that took the regexes quadratic time --------------------

@pytest.mark.parametrize("line", [
    "**Goal:** a" + " \t" * 20_000 + "x",    # a field value with a long run of blanks inside
    "**Status:** Do" + " " * 40_000 + "ne",
    "## Notes a" + " " * 40_000 + "b",       # a heading with a long run of blanks inside
    "## Phase 2: b" + "\t" * 40_000 + "c ##",
], ids=["field", "status", "heading", "phase heading"])
def test_long_blank_runs_parse_in_linear_time(line):
    text = "## Phase 1: a\n" + line + "\n"
    backlog = timed_parse(text, line[:12])
    if not isinstance(backlog, BacklogError):
        assert backlog.render() == text and backlog.phases[0].id == "1"
