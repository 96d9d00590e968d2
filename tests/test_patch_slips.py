"""Hunks whose header counts and body disagree: a `+` lost from an added line, or counts that are
simply wrong. Minimal reproductions of what bench/bench_patch.py refused (wrong hunk counts,
`+` marker lost) that has exactly one reading, next to look-alikes that must stay refused."""

from __future__ import annotations

import pytest

from gitforge.errors import PatchRefused
from gitforge.patch import DictTree, apply_patches, parse_patch


def run(diff: str, data: str) -> str | None:
    """The file after the patch, or None if it was refused."""
    try:
        changes = apply_patches(parse_patch(diff), DictTree({"f": data}))
    except PatchRefused:
        return None
    return changes[0].data.decode() if changes else data


CODE = "x = 1\n\ndef f():\n\n    for a in b:\n        y()\n        z()\nend\n"


def test_wrong_counts_on_a_hunk_that_fits_as_written_at_its_line():
    # The header says 5 old lines, 6 new; the body has 7 and 6. Read as written, every line has
    # its marker and the hunk fits byte for byte at line 1: the counts are what is wrong.
    diff = ("--- a/f\n+++ b/f\n@@ -1,5 +1,6 @@\n x = 1\n \n def f():\n-\n"
            "     for a in b:\n         y()\n         z()\n")
    assert run(diff, CODE) == "x = 1\n\ndef f():\n    for a in b:\n        y()\n        z()\nend\n"


def test_wrong_counts_and_a_wrong_line_are_ambiguous_when_the_counts_fit_at_that_line():
    # The same hunk, its header naming line 3: as written it fits at line 1 only; as its counts
    # read it (the first two lines added, " x = 1" and " "), it fits at line 3. Either could be
    # meant: refused (the engine once inserted the two lines at line 3).
    diff = ("--- a/f\n+++ b/f\n@@ -3,5 +3,6 @@\n x = 1\n \n def f():\n-\n"
            "     for a in b:\n         y()\n         z()\n")
    assert run(diff, CODE) is None
    assert run(diff.replace("@@ -3,5 +3,6 @@", "@@ -9,5 +9,6 @@"), CODE) is None  # line 9: nowhere


def test_wrong_counts_and_a_wrong_line_where_only_the_written_reading_fits_elsewhere():
    # Read as its counts say, "d" and "e" would be added again right before the file's own "d"
    # and "e"; no other reading fits anywhere, so the hunk as written is taken, relocated.
    assert run("--- a/f\n+++ b/f\n@@ -7,3 +7,4 @@\n-a\n b\n c\n d\n e\n", "a\nb\nc\nd\ne\n") == "b\nc\nd\ne\n"


def test_a_lost_plus_on_a_line_that_starts_with_a_dash():
    # "+- new" lost its "+" and reads as the removal of " new": the header counts one old line
    # fewer and one new line more than the body, which says a "-" line is an added one.
    diff = "--- a/f\n+++ b/f\n@@ -1,4 +1,5 @@\n # Changes\n \n- new\n - one\n - two\n"
    assert run(diff, "# Changes\n\n- one\n- two\n") == "# Changes\n\n- new\n- one\n- two\n"


def test_an_rst_underline_that_lost_its_plus():
    diff = ("--- a/f\n+++ b/f\n@@ -1,4 +1,4 @@\n Title\n-=====\n------\n \n text\n")
    assert run(diff, "Title\n=====\n\ntext\n") == "Title\n------\n\ntext\n"  # "+------" lost its "+"


def test_a_lost_plus_among_many_context_lines_is_found():
    # The header counts the added line, so any of the 20 context lines could be an added line
    # too; the one that is nowhere in the file must be one, wherever it is in the hunk.
    pkgs = [f"pkg{i}==1.0\n" for i in range(20)]
    body = "".join(" " + p for p in pkgs[:18]) + "newpkg==2.0\n" + "".join(" " + p for p in pkgs[18:])
    diff = f"--- a/f\n+++ b/f\n@@ -1,20 +1,21 @@\n{body}"
    assert run(diff, "".join(pkgs)) == "".join(pkgs[:18]) + "newpkg==2.0\n" + "".join(pkgs[18:])


def test_a_lost_plus_on_the_last_line_of_a_file_without_a_final_newline():
    diff = ("--- a/f\n+++ b/f\n@@ -1,2 +1,3 @@\n-a\n-b\n\\ No newline at end of file\n+A\n+b\nlast\n"
            "\\ No newline at end of file\n")
    assert run(diff, "a\nb") == "A\nb\nlast"


def test_marker_less_lines_that_fit_both_as_added_and_as_context_stay_refused():
    # The header says B and C were added; the file has them right after A, as context.
    assert run("--- a/f\n+++ b/f\n@@ -1,1 +1,3 @@\n A\nB\nC\n", "A\nB\nC\n") is None


def test_a_dash_line_that_fits_both_ways():
    data = "A\n B\nC\nA\nC\n"  # as written ("- B" removes " B") it fits at line 1, as added at line 4
    diff = "--- a/f\n+++ b/f\n@@ -{0},2 +{0},3 @@\n A\n- B\n C\n"
    assert run(diff.format(1), data) == "A\nC\nA\nC\n"  # as written, at the line its header names
    assert run(diff.format(4), data) is None  # the header's line and counts say "added": ambiguous
