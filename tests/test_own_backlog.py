"""gitforge's own roadmap (BACKLOG.md at the top of this repository) is a valid backlog."""

from __future__ import annotations

import graphlib
import re

import pytest

from conftest import ROOT
from gitforge.backlog import parse_backlog

PATH = ROOT / "BACKLOG.md"


@pytest.fixture(scope="module")
def backlog():
    text = PATH.read_bytes().decode("utf-8")
    return text, parse_backlog(text, path="BACKLOG.md")


def test_it_parses_and_round_trips(backlog):
    text, parsed = backlog
    assert parsed.render() == text
    assert len(parsed.phases) >= 10


def test_every_phase_is_complete(backlog):
    _, parsed = backlog
    for phase in parsed.phases:
        assert phase.goal and phase.tasks, phase.id
        assert phase.verification, f"phase {phase.id} has no Verification command"
        for command in phase.verification:
            assert re.fullmatch(r"python -m pytest -q( tests/test_\w+\.py)+", command), command


def test_dependencies_resolve_and_the_core_comes_first(backlog):
    _, parsed = backlog
    ids = {p.id for p in parsed.phases}
    assert all(d in ids for p in parsed.phases for d in p.dependencies)
    order = list(graphlib.TopologicalSorter({p.id: p.dependencies for p in parsed.phases})
                 .static_order())
    run = next(p for p in parsed.phases if "gitforge run" in p.title)
    closure, todo = set(), list(run.dependencies)  # everything `run` builds on
    while todo:
        closure.add(dep := todo.pop())
        todo += parsed.get(dep).dependencies
    assert {"1", "2", "3"} <= closure  # the reshaped core: run record, leases, landing
    assert order.index("1") == 0


def test_a_status_edit_changes_one_line(backlog):
    text, parsed = backlog
    for phase in parsed.phases:
        updated = parsed.with_status(phase.id, "Done").render().splitlines()
        assert len(updated) == len(text.splitlines())
        assert sum(a != b for a, b in zip(text.splitlines(), updated)) <= 1
