"""Diffs that create a file (`--- /dev/null`), damaged the ways models damage them: the new
file's content is exactly the `+` lines, so a damaged hunk header or a lost `diff --git` line
does not make them ambiguous. Over an existing file they stay refused."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gitforge.errors import PatchRefused
from gitforge.patch import DictTree, apply_patches, parse_patch

LINES = [f"line {i}\n" for i in range(40)]
BODY = "".join("+" + line for line in LINES)
CONTENT = "".join(LINES).encode()
GIT = "diff --git a/pkg/new.py b/pkg/new.py\nnew file mode 100644\nindex 0000000..1111111\n"
LOST_GIT_LINE = "new file mode 100644\nindex 0000000..1111111\n"
FILE = "--- /dev/null\n+++ b/pkg/new.py\n"
DAMAGED = ["@@ @@", "@@ -1,0 +1,40 @@", "@@ -1 +1,40 @@", "@@ -0,0 +5,40 @@", "@@ -0,0 +1,30 @@",
           "@@ -0,0 +1,45 @@", "@@ -0,2 +1,40 @@", "@@ -1,40 +1,40 @@"]


def new_file(diff: str, files: dict | None = None):
    (change,) = apply_patches(parse_patch(diff), DictTree(files or {"README.md": "x\n"}))
    return change


@pytest.mark.parametrize("head", [GIT, LOST_GIT_LINE, ""], ids=["git", "no-diff-git-line", "plain"])
@pytest.mark.parametrize("header", DAMAGED)
def test_a_damaged_creation_header_applies_as_the_added_lines(head, header):
    change = new_file(f"{head}{FILE}{header}\n{BODY}")
    assert (change.path, change.data, change.mode) == ("pkg/new.py", CONTENT, "file")
    assert [p.strategy for p in change.hunks] == ["create"]  # provenance: repaired, not as written


@pytest.mark.parametrize("head", [GIT, LOST_GIT_LINE, ""], ids=["git", "no-diff-git-line", "plain"])
def test_a_clean_creation_is_exact(head):
    change = new_file(f"{head}{FILE}@@ -0,0 +1,40 @@\n{BODY}")
    assert change.data == CONTENT and [(p.strategy, p.offset) for p in change.hunks] == [("exact", 0)]


@pytest.mark.parametrize("header", ["@@ -0,0 +1,40 @@", *DAMAGED])
@pytest.mark.parametrize("head", [GIT, LOST_GIT_LINE, ""], ids=["git", "no-diff-git-line", "plain"])
def test_a_creation_over_an_existing_file_is_still_refused(head, header):
    with pytest.raises(PatchRefused) as err:
        apply_patches(parse_patch(f"{head}{FILE}{header}\n{BODY}"), DictTree({"pkg/new.py": "old\n"}))
    assert err.value.reasons == ["pkg/new.py: file already exists"]


def test_a_lost_diff_git_line_keeps_the_new_files_mode():
    (fp,) = parse_patch(f"new file mode 100755\nindex 0000000..1111111\n{FILE}@@ @@\n+#!/bin/sh\n")
    assert (fp.op, fp.old_path, fp.new_path, fp.new_mode) == ("create", None, "pkg/new.py", "100755")
    assert new_file(f"new file mode 100755\n{FILE}@@ @@\n+#!/bin/sh\n").mode == "exec"


def test_a_lost_diff_git_line_of_a_deletion():
    (fp,) = parse_patch("deleted file mode 100644\nindex 1111111..0000000\n--- a/old.py\n+++ /dev/null\n"
                        "@@ @@\n-gone\n")
    assert (fp.op, fp.old_path, fp.new_path) == ("delete", "old.py", None)
    (change,) = apply_patches((fp,), DictTree({"old.py": "gone\n"}))
    assert (change.path, change.data) == ("old.py", None)


def test_a_lost_diff_git_line_among_other_files():
    diff = (f"diff --git a/a.py b/a.py\nindex 1..2 100644\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-a\n+b\n"
            f"{LOST_GIT_LINE}{FILE}@@ @@\n+new\n")
    out = {c.path: c.data for c in apply_patches(parse_patch(diff), DictTree({"a.py": "a\n"}))}
    assert out == {"a.py": b"b\n", "pkg/new.py": b"new\n"}


def test_new_file_mode_with_nothing_to_name_the_file_is_still_malformed():
    with pytest.raises(PatchRefused) as err:
        parse_patch("new file mode 100644\n@@ @@\n+x\n")
    assert "Unexpected new file found" in err.value.reasons[0]


def test_several_hunks_of_a_new_file_in_order():
    diff = f"{FILE}@@ -0,0 +1,2 @@\n+a\n+b\n@@ -0,0 +3,2 @@\n+c\n+d\n"
    assert new_file(diff).data == b"a\nb\nc\nd\n"
    assert new_file(f"{FILE}@@ @@\n+a\n+b\n@@ @@\n+c\n").data == b"a\nb\nc\n"


def test_several_hunks_of_a_new_file_out_of_order_or_joined_are_refused():
    with pytest.raises(PatchRefused) as err:
        new_file(f"{FILE}@@ -0,0 +3,2 @@\n+c\n+d\n@@ -0,0 +1,2 @@\n+a\n+b\n")
    assert "out of order (hunk 2 starts at line 1, before hunk 1 at line 3)" in err.value.reasons[0]
    with pytest.raises(PatchRefused) as err:
        new_file(f"{FILE}@@ -0,0 +1 @@\n+a\n\\ No newline at end of file\n@@ -0,0 +2 @@\n+b\n")
    assert "ends without a newline but another hunk follows it" in err.value.reasons[0]


def test_a_new_file_without_a_final_newline():
    assert new_file(f"{FILE}@@ @@\n+a\n+b\n\\ No newline at end of file\n").data == b"a\nb"


_TEXT = st.lists(st.sampled_from(["a", "  b", "", "x = 1", "@@ y", "-- c", "++ d", "é", "\\ z"]), min_size=1,
                 max_size=12)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(_TEXT, st.booleans(), st.sampled_from(["git", "lost", "plain"]), st.data())
def test_any_damaged_creation_header_gives_exactly_the_added_lines(lines, eol_at_end, head, data):
    text = "\n".join(lines) + ("\n" if eol_at_end else "")
    assume(text and (eol_at_end or not text.endswith("\n")))  # an empty new file has no hunk at all
    body = "".join("+" + line for line in text.splitlines(keepends=True))
    body += "" if eol_at_end else "\n\\ No newline at end of file\n"
    n = len(lines)
    header = data.draw(st.sampled_from(["@@ @@", f"@@ -1,0 +1,{n} @@", f"@@ -1 +1,{n} @@", f"@@ -0,0 +7,{n} @@",
                                        f"@@ -0,0 +1,{n + 2} @@", f"@@ -0,0 +1,{max(n - 1, 0)} @@"]))
    top = {"git": GIT, "lost": LOST_GIT_LINE, "plain": ""}[head]
    assert new_file(f"{top}{FILE}{header}\n{body}").data == text.encode()
