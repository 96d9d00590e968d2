"""Choosing the next phase (DESIGN §2 step 2) and saying why when there is none."""

from __future__ import annotations

from gitforge.backlog import Backlog, parse_backlog
from gitforge.run.selection import Selection, select_next


def board(*phases: tuple) -> Backlog:
    """board(("1", "Done"), ("2", "Not started", "high", "1")) -> a parsed backlog."""
    out = ["# Backlog", ""]
    for pid, status, *rest in phases:
        priority = rest[0] if rest else "medium"
        deps = rest[1] if len(rest) > 1 else "None"
        out += [f"## Phase {pid}: Phase {pid}", f"**Status:** {status}",
                f"**Priority:** {priority}", f"**Dependencies:** {deps}", ""]
    return parse_backlog("\n".join(out) + "\n")


def picked(selection: Selection) -> str | None:
    return selection.phase.id if selection.phase else None


def test_priority_then_document_order():
    backlog = board(("1", "Not started", "low"), ("2", "Not started", "high"),
                    ("3", "Not started", "high"), ("4", "Done", "critical"),
                    ("5", "Not started", "medium"))
    selection = select_next(backlog)
    assert picked(selection) == "2"
    assert selection.reason == "phase 2 is next (high priority)"
    assert selection.blocked == {}
    assert picked(select_next(backlog, busy={"2"})) == "3"
    assert picked(select_next(backlog, busy={"Phase 2", "phase 3"})) == "5"
    assert picked(select_next(board(("1", "Not started"), ("2", "Not started")))) == "1"


def test_critical_beats_everything():
    backlog = board(("1", "Not started", "high"), ("2", "Not started", "critical"))
    assert picked(select_next(backlog)) == "2"


def test_dependencies_must_be_done():
    backlog = board(("1", "Not started", "low"), ("2", "Not started", "critical", "1"))
    assert picked(select_next(backlog)) == "1"
    assert picked(select_next(backlog.with_status("1", "Done"))) == "2"
    assert picked(select_next(backlog.with_status("1", "Awaiting review"))) is None


def test_busy_phases_are_skipped():
    backlog = board(("1", "Not started"), ("2", "Not started"))
    assert picked(select_next(backlog, busy=["1"])) == "2"
    selection = select_next(backlog, busy=["1", "2", "not an id"])
    assert selection.phase is None
    assert selection.reason == ("2 phases cannot run:\n- phase 1 is in progress in another run\n"
                                "- phase 2 is in progress in another run")


def test_failed_runs_only_when_retryable():
    backlog = board(("1", "Failed", "high"), ("2", "Not started", "low"))
    assert picked(select_next(backlog)) == "2"
    assert picked(select_next(backlog, retryable=["1"])) == "1"
    assert picked(select_next(backlog, retryable=["Phase 1"], busy=["1"])) == "2"


def test_blocked_cascade_is_reported_and_statuses_are_untouched():
    backlog = board(("1", "Failed"), ("2", "Not started", "high", "1"),
                    ("3", "Not started", "high", "Phase 2"), ("4", "Not started", "low", "3"),
                    ("5", "Not started", "low"))
    before = backlog.render()
    selection = select_next(backlog)
    assert picked(selection) == "5"
    assert selection.blocked == {
        "2": "waiting on phase 1 (Failed)",
        "3": "waiting on phase 2, which is blocked by phase 1",
        "4": "waiting on phase 3, which is blocked by phase 1",
    }
    assert backlog.render() == before
    assert [p.status for p in backlog.phases] == ["Failed"] + ["Not started"] * 4


def test_retryable_failed_dependency_still_blocks_its_dependents():
    backlog = board(("1", "Failed", "low"), ("2", "Not started", "critical", "1"))
    selection = select_next(backlog, retryable={"1"})
    assert picked(selection) == "1"
    assert selection.blocked == {"2": "waiting on phase 1 (Failed)"}


def test_blocked_and_skipped_dependencies_block():
    backlog = board(("1", "Blocked"), ("2", "Skipped"), ("3", "Not started", "medium", "1"),
                    ("4", "Not started", "medium", "2"), ("5", "Not started", "medium", "1, 2"))
    selection = select_next(backlog)
    assert selection.phase is None
    assert selection.blocked == {"3": "waiting on phase 1 (Blocked)",
                                 "4": "waiting on phase 2 (Skipped)",
                                 "5": "waiting on phase 1 (Blocked)"}
    assert selection.reason == (
        "4 phases cannot run:\n"
        "- phase 1 is Blocked; set its Status to Not started to run it\n"
        "- phase 3 is blocked, waiting on phase 1 (Blocked)\n"
        "- phase 4 is blocked, waiting on phase 2 (Skipped)\n"
        "- phase 5 is blocked, waiting on phase 1 (Blocked)")


def test_a_done_phase_does_not_pass_a_block_on():
    backlog = board(("1", "Failed"), ("2", "Done", "medium", "1"),
                    ("3", "Not started", "medium", "2"))
    selection = select_next(backlog)
    assert picked(selection) == "3"
    assert selection.blocked == {}


def test_diamond_dependencies():
    backlog = board(("1", "Done"), ("2", "Done", "medium", "1"), ("3", "Not started", "low", "1"),
                    ("4", "Not started", "critical", "2, 3"))
    assert picked(select_next(backlog)) == "3"
    assert picked(select_next(backlog.with_status("3", "Done"))) == "4"


def test_select_next_is_reachable_from_backlog_module():
    from gitforge import backlog as module
    assert module.select_next is select_next and module.Selection is Selection


# --- reasons when nothing is runnable --------------------------------------------------------

def reason(backlog: Backlog, **kwargs) -> str:
    selection = select_next(backlog, **kwargs)
    assert selection.phase is None
    return selection.reason


def test_reason_empty_backlog():
    assert reason(parse_backlog("# Backlog\n")) == "BACKLOG.md has no phases"
    assert reason(parse_backlog("", path="PLAN.md")) == "PLAN.md has no phases"


def test_reason_all_done():
    backlog = board(*[(str(n), "Done") for n in range(1, 6)])
    assert reason(backlog) == "all 5 phases are done"
    assert reason(board(("1", "Done"))) == "the only phase is done"


def test_reason_all_finished_with_skipped():
    backlog = board(("1", "Done"), ("2", "Skipped"), ("3", "Done"), ("4", "Done"), ("5", "Done"))
    assert reason(backlog) == "all 5 phases are finished (4 Done, 1 Skipped)"
    assert reason(board(("1", "Skipped"))) == "the only phase is finished (Skipped)"


def test_reason_failed_without_attempts():
    assert reason(board(("1", "Done"), ("2", "Failed"))) == (
        "phase 2 Failed with no attempts left; "
        "set its Status to Not started to retry")


def test_reason_proposed():
    assert reason(board(("1", "Proposed"))) == (
        "phase 1 is Proposed; change its Status to Not started to run it")


def test_reason_awaiting_review():
    assert reason(board(("3", "Awaiting review"))) == (
        "phase 3 is awaiting review; set its Status to Done once reviewed")


def test_reason_in_progress():
    assert reason(board(("1", "In progress")), busy={"1"}) == (
        "phase 1 is in progress in another run")
    assert reason(board(("1", "In progress"))) == (
        "phase 1 is marked In progress but no live run holds it; "
        "set its Status to Not started to run it")


def test_reason_waiting_on_a_dependency_that_has_not_run():
    backlog = board(("1", "Awaiting review"), ("2", "Not started", "high", "1"),
                    ("3", "Not started", "medium", "4"), ("4", "Not started"),
                    ("5", "Failed", "low", "1"))
    assert reason(backlog, busy={"4"}, retryable={"5"}) == (
        "5 phases cannot run:\n"
        "- phase 1 is awaiting review; set its Status to Done once reviewed\n"
        "- phase 2 is waiting on phase 1 (Awaiting review)\n"
        "- phase 3 is waiting on phase 4 (in progress in another run)\n"
        "- phase 4 is in progress in another run\n"
        "- phase 5 is waiting on phase 1 (Awaiting review)")


def test_reason_blocked_cascade():
    backlog = board(("1", "Failed"), ("2", "Not started", "medium", "1"),
                    ("3", "Not started", "medium", "2"), ("4", "Done"))
    assert reason(backlog) == (
        "3 phases cannot run:\n"
        "- phase 1 Failed with no attempts left; set its Status to Not started to retry\n"
        "- phase 2 is blocked, waiting on phase 1 (Failed)\n"
        "- phase 3 is blocked, waiting on phase 2, which is blocked by phase 1")


def test_reason_stays_short_on_a_long_backlog():
    backlog = board(("1", "Failed"), *[(str(n), "Not started", "medium", str(n - 1))
                                       for n in range(2, 31)])
    lines = reason(backlog).splitlines()
    assert len(lines) == 11
    assert lines[-1] == "- and 21 more phases not runnable"
    assert len(select_next(backlog).blocked) == 29


# --- every runnable phase at once (gitforge check counts them) -------------------------------

def test_runnable_phases_are_what_select_next_picks_one_by_one():
    from gitforge.run.selection import runnable_phases
    backlog = board(("1", "Done"), ("2", "Not started", "low", "1"), ("3", "Failed", "high"),
                    ("4", "Not started", "critical", "3"), ("5", "Not started", "high"),
                    ("6", "Proposed"), ("7", "Not started", "high", "1"), ("8", "Not started"))
    one_by_one: list[str] = []
    while (sel := select_next(backlog, busy={"5", *one_by_one}, retryable={"3"})).phase:
        one_by_one.append(sel.phase.id)
    assert one_by_one == ["3", "7", "8", "2"]
    assert [p.id for p in runnable_phases(backlog, busy={"5"}, retryable={"3"})] == one_by_one
    assert [p.id for p in runnable_phases(backlog)] == ["5", "7", "8", "2"]


def test_runnable_phases_take_linear_time():
    # found by bench/torture_backlog.py: `gitforge check` picked 2,000 runnable phases one
    # select_next at a time, each a pass over the whole board, and hung
    import time

    from gitforge.run.selection import runnable_phases
    backlog = board(*[(str(n), "Not started") for n in range(1, 4001)])
    start = time.process_time()  # CPU time: a busy machine does not fail it
    assert len(runnable_phases(backlog, busy={"7"})) == 3999
    assert time.process_time() - start < 1.0
