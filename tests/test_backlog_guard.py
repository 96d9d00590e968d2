"""A phase's patch may edit BACKLOG.md, but not the board: only gitforge writes Status lines,
and no patch removes or renumbers a phase (pipeline.backlog_problems, via patch_changes)."""

from __future__ import annotations

import pytest

from conftest import git, make_diff, phase_md, run_cli
from gitforge.config import PolicyConfig
from gitforge.errors import PatchRefused
from gitforge.git import Git
from gitforge.run.pipeline import patch_changes

PHASES = [phase_md("1", "Edit the board"), phase_md("2", "Later", deps="1"),
          phase_md("3", "Done already", status="Done")]
BOARD = "# Backlog\n\n" + "\n".join(PHASES)


def line_of(text: str, needle: str, after: str = "") -> int:
    lines = text.splitlines()
    start = lines.index(after) if after else 0
    return next(n for n, line in enumerate(lines[start:], start + 1) if needle in line)


@pytest.fixture
def board(make_repo, tmp_path):
    """(patch the board into `new` with phase 1's patch -> changes, or PatchRefused)."""
    root = make_repo({"BACKLOG.md": BOARD})
    view = Git.open(root).view(git("rev-parse", "HEAD", cwd=root).strip())

    def patch(new: str, phase: str = "1"):
        diff = make_diff({"BACKLOG.md": BOARD}, {"BACKLOG.md": new}, tmp_path)
        return patch_changes(view, diff, PolicyConfig(), keep_phase=("BACKLOG.md", phase))

    return patch


def refused(patch, new: str) -> list[str]:
    with pytest.raises(PatchRefused) as info:
        patch(new)
    assert info.value.stage == "audit"
    return info.value.reasons


def test_a_patch_may_not_set_another_phases_status(board):
    new = BOARD.replace("## Phase 2: Later\n**Status:** Not started", "## Phase 2: Later\n**Status:** Done")
    line = line_of(new, "**Status:**", after="## Phase 2: Later")
    assert refused(board, new) == [
        f"BACKLOG.md:{line}: the patch changes phase 2's Status from Not started to Done; "
        "only gitforge writes Status lines"]


def test_a_patch_may_not_set_its_own_status_or_reopen_a_done_phase(board):
    own = BOARD.replace("**Status:** Not started", "**Status:** Done", 1)
    assert "phase 1's Status from Not started to Done" in refused(board, own)[0]
    reopened = BOARD.replace("**Status:** Done", "**Status:** Not started")
    assert "phase 3's Status from Done to Not started" in refused(board, reopened)[0]
    dropped = BOARD.replace("**Status:** Done\n", "")  # no Status line reads Not started
    assert "phase 3's Status from Done to Not started" in refused(board, dropped)[0]


def test_a_patch_may_not_remove_or_renumber_a_phase(board):
    gone = BOARD.replace(PHASES[2], "")
    line = line_of(BOARD, "## Phase 3:")
    assert refused(board, gone) == [f"BACKLOG.md:{line}: the patch removes phase 3 (Done already); "
                                    "only a person removes a phase"]
    renumbered = BOARD.replace("## Phase 3:", "## Phase 7:")
    assert refused(board, renumbered) == [f"BACKLOG.md:{line}: the patch changes the id of phase 3 "
                                          "(Done already) to 7; only a person renumbers a phase"]


def test_a_phase_the_patch_adds_starts_not_started(board):
    added = BOARD + "\n" + phase_md("4", "New", status="Done")
    line = line_of(added, "**Status:** Done", after="## Phase 4: New")
    assert refused(board, added) == [f"BACKLOG.md:{line}: the patch adds phase 4 with Status Done; "
                                     "a new phase starts Not started"]


def test_other_edits_to_the_backlog_are_allowed(board):
    new = (BOARD.replace("1. Do it.", "1. Do it, step by step.")
           .replace("**Priority:** medium", "**Priority:** high", 1)
           .replace("**Status:** Not started", "**status:**   not STARTED", 1)  # same value
           .replace("## Phase 2: Later\n**Status:** Not started\n", "## Phase 2: Later, renamed\n"))
    new += "\n" + phase_md("4", "Appended") + "\n## Phase 5: Bare\n**Goal:** no status line\n"
    changes, _ = board(new)
    assert [c.path for c in changes] == ["BACKLOG.md"] and changes[0].data == new.encode()


def test_next_refuses_a_patch_that_marks_another_phase_done(make_repo, tmp_path):
    flip = make_diff({"a.txt": "a\n"}, {"a.txt": "b\n"}, tmp_path) + (
        "--- a/BACKLOG.md\n+++ b/BACKLOG.md\n@@ -1,3 +1,3 @@\n ## Phase 2: Later\n"
        "-**Status:** Not started\n+**Status:** Done\n **Dependencies:** None\n")  # found by its context
    board = "# Backlog\n\n" + phase_md("1", "Sneaky", patch=flip) + "\n" + phase_md("2", "Later")
    root = make_repo({"BACKLOG.md": board, "a.txt": "a\n"})
    proc = run_cli("next", "1", cwd=root)
    assert proc.returncode == 1
    assert "the patch changes phase 2's Status from Not started to Done" in proc.stderr + proc.stdout
    landed = git("show", "HEAD:BACKLOG.md", cwd=root)
    assert "## Phase 2: Later\n**Status:** Not started" in landed
    assert "## Phase 1: Sneaky\n**Status:** Failed" in landed
    assert git("show", "HEAD:a.txt", cwd=root) == "a\n"
