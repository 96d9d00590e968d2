"""Placement, one strategy and one refusal at a time: where each hunk lands, what the
provenance says (`FileChange.hunks[i].strategy` / `.offset`, `summarize`), and what a refusal
tells the model that wrote the diff (file, hunk and header, why, candidates, the closest
region with line numbers) — compact, because the fix loop sends it back verbatim."""

from __future__ import annotations

import pytest

from gitforge.errors import PatchRefused
from gitforge.patch import DictTree, FileChange, apply_patches, parse_patch, summarize

N = "".join(f"line {i}\n" for i in range(1, 31))  # "line 1" .. "line 30"
HEAD = "--- a/f\n+++ b/f\n"


def applied(diff: str, data: str | bytes, path: str = "f") -> FileChange:
    files = {} if data is None else {path: data}
    (change,) = apply_patches(parse_patch(diff), DictTree(files))
    return change


def how(change: FileChange) -> list[tuple[str, int | None]]:
    return [(p.strategy, p.offset) for p in change.hunks]


def refused(diff: str, files: dict) -> PatchRefused:
    with pytest.raises(PatchRefused) as info:
        apply_patches(parse_patch(diff), DictTree(files))
    assert info.value.message.endswith("nothing was changed")
    return info.value


def compact(reason: str, hunks: int = 1) -> str:
    assert len(reason.splitlines()) <= 16 * hunks, reason  # about 15 lines a hunk at most
    return reason


def n_with(**changes: str) -> bytes:
    lines = N.splitlines(keepends=True)
    for k, v in changes.items():
        lines[int(k[1:]) - 1] = v
    return "".join(lines).encode()


# -- strategies ------------------------------------------------------------------------------

def test_exact():
    c = applied(HEAD + "@@ -10,3 +10,3 @@\n line 10\n-line 11\n+X\n line 12\n", N)
    assert c.data == n_with(l11="X\n")
    assert how(c) == [("exact", 0)]
    assert summarize(c.hunks) == "1 exact"


@pytest.mark.parametrize("start, offset", [(12, -2), (8, 2), (1, 9), (30, -20)])
def test_relocated_with_its_offset(start, offset):
    c = applied(HEAD + f"@@ -{start},3 +{start},3 @@\n line 10\n-line 11\n+X\n line 12\n", N)
    assert c.data == n_with(l11="X\n")
    assert how(c) == [("relocated", offset)]
    assert summarize(c.hunks) == f"1 relocated {offset:+d}"


def test_summary_of_several_hunks():
    diff = HEAD + ("@@ -2,3 +2,3 @@\n line 2\n-line 3\n+A\n line 4\n"
                   "@@ -10,3 +10,3 @@\n line 10\n-line 11\n+B\n line 12\n"
                   "@@ -22,3 +22,3 @@\n line 20\n-line 21\n+C\n line 22\n"
                   "@@ -26,3 +26,3 @@\n   line 26\n-  line 27\n+  D\n   line 28\n")
    c = applied(diff, N)
    assert c.data == n_with(l3="A\n", l11="B\n", l21="C\n", l27="D\n")
    assert how(c) == [("exact", 0), ("exact", 0), ("relocated", -2), ("indent", 0)]
    assert summarize(c.hunks) == "2 exact, 1 relocated -2, 1 indent"


def test_eol_an_lf_diff_on_a_crlf_file_keeps_crlf():
    crlf = N.replace("\n", "\r\n")
    c = applied(HEAD + "@@ -10,3 +10,4 @@\n line 10\n-line 11\n+X\n+Y\n line 12\n", crlf)
    assert c.data == crlf.replace("line 11\r\n", "X\r\nY\r\n").encode()
    assert how(c) == [("eol", 0)]


def test_eol_a_crlf_diff_on_an_lf_file_keeps_lf():
    c = applied(HEAD + "@@ -10,3 +10,3 @@\n line 10\r\n-line 11\r\n+X\r\n line 12\r\n", N)
    assert c.data == n_with(l11="X\n")
    assert how(c) == [("eol", 0)]


def test_whitespace_keeps_the_files_own_trailing_whitespace():
    data = n_with(l10="line 10  \n", l12="line 12\t\n")
    c = applied(HEAD + "@@ -10,3 +10,3 @@\n line 10\n-line 11\n+X \n line 12\n", data)
    assert c.data == data.replace(b"line 11\n", b"X \n")  # kept lines as the file has them, added as written
    assert how(c) == [("whitespace", 0)]


def test_whitespace_with_trailing_whitespace_the_file_does_not_have():
    c = applied(HEAD + "@@ -10,3 +10,3 @@\n line 10 \n-line 11\t\n+X\n line 12\n", N)
    assert c.data == n_with(l11="X\n")
    assert how(c) == [("whitespace", 0)]


CODE = "class A:\n    def f(self):\n        if x:\n            y()\n        return 1\n"


def test_indent_a_hunk_written_less_indented_is_reindented_to_the_file():
    diff = HEAD + "@@ -3,3 +3,4 @@\n if x:\n-    y()\n+    z()\n+    if w:\n+        v()\n return 1\n"
    c = applied(diff, CODE)
    assert c.data == (b"class A:\n    def f(self):\n        if x:\n            z()\n            if w:\n"
                      b"                v()\n        return 1\n")
    assert how(c) == [("indent", 0)]


def test_indent_a_hunk_written_more_indented_is_reindented_to_the_file():
    diff = HEAD + "@@ -3,3 +3,3 @@\n             if x:\n-                y()\n+                z()\n             return 1\n"
    c = applied(diff, CODE)
    assert c.data == CODE.replace("y()", "z()").encode()
    assert how(c) == [("indent", 0)]


def test_indent_keeps_tabs_when_the_file_uses_tabs():
    tabs = "def f():\n\tif x:\n\t\ty()\n\treturn 1\n"
    c = applied(HEAD + "@@ -2,3 +2,3 @@\nif x:\n-\ty()\n+\tz()\n return 1\n", tabs)
    assert c.data == tabs.replace("y()", "z()").encode()
    assert how(c) == [("indent", 0)]


def test_fuzz1_one_outer_context_line_changed():
    c = applied(HEAD + "@@ -9,5 +9,5 @@\n line 9\n line 10\n-line 11\n+X\n line 12\n line 13 was\n", N)
    assert c.data == n_with(l11="X\n")
    assert how(c) == [("fuzz1", 0)]
    assert summarize(c.hunks) == "1 fuzz1"


def test_fuzz2_two_outer_context_lines_changed():
    diff = HEAD + "@@ -8,6 +8,6 @@\n line 8 was\n line 9 was\n line 10\n-line 11\n+X\n line 12\n line 13\n"
    c = applied(diff, N)
    assert c.data == n_with(l11="X\n")
    assert how(c) == [("fuzz2", 0)]


def test_fuzz_never_rewrites_the_lines_it_dropped():
    c = applied(HEAD + "@@ -10,3 +10,3 @@\n line 10 was\n-line 11\n+X\n line 12\n line 13\n", N)
    assert c.data == n_with(l11="X\n")  # line 10 stays as the file has it


def test_slip_an_added_line_that_lost_its_plus():
    c = applied(HEAD + "@@ -10,2 +10,3 @@\n line 10\nnew line\n line 11\n", N)
    assert c.data == N.replace("line 10\n", "line 10\nnew line\n").encode()
    assert how(c) == [("slip+exact", 0)]


def test_an_empty_context_line_whose_space_was_trimmed():
    data = "a\n\nb\nc\n"
    c = applied(HEAD + "@@ -1,4 +1,4 @@\n a\n\n b\n-c\n+C\n", data)
    assert c.data == b"a\n\nb\nC\n"
    assert how(c) == [("exact", 0)]


def test_create_written_as_an_edit_of_a_missing_file():
    for header in ("@@ -0,0 +1,2 @@", "@@ @@", "@@ -1,0 +1,2 @@"):
        c = applied(HEAD + f"{header}\n+x\n+y\n", None)
        assert (c.path, c.data) == ("f", b"x\ny\n")
        assert how(c) == [("create", None)]
        assert summarize(c.hunks) == "1 create"


def test_recounted_header_places_the_hunk_where_it_says():
    diff = HEAD + "@@ -10,7 +10,2 @@\n line 10\n-line 11\n+X\n line 12\n"
    (fp,) = parse_patch(diff)
    assert fp.hunks[0].recounted and (fp.hunks[0].old_len, fp.hunks[0].new_len) == (3, 3)
    c = applied(diff, N)
    assert c.data == n_with(l11="X\n")
    assert how(c) == [("exact", 0)]


def test_recounted_headers_do_not_swallow_the_next_hunk():
    diff = HEAD + "@@ -2,9 +2,9 @@\n line 2\n-line 3\n+A\n line 4\n@@ -10,1 +10,1 @@\n line 10\n-line 11\n+B\n line 12\n"
    c = applied(diff, N)
    assert c.data == n_with(l3="A\n", l11="B\n")
    assert how(c) == [("exact", 0), ("exact", 0)]


def test_unnumbered_header_is_placed_by_its_context_alone():
    for header in ("@@ @@", "@@ @@ def main():", "@@"):
        c = applied(HEAD + f"{header}\n line 10\n-line 11\n+X\n line 12\n", N)
        assert c.data == n_with(l11="X\n")
        assert how(c) == [("relocated", None)]  # no numbers: no offset to report
        assert summarize(c.hunks) == "1 relocated"


def test_unnumbered_header_picks_no_look_alike():
    err = refused(HEAD + "@@ @@\n a\n-b\n+B\n", {"f": "a\nb\nc\na\nb\n"})
    (reason,) = err.reasons
    assert reason.startswith("f: hunk 1 '@@ @@': it matches in more than one place: at lines 1, 4\n")


def test_exact_at_the_headers_line_wins_over_look_alikes():
    c = applied(HEAD + "@@ -4,2 +4,2 @@\n a\n-b\n+B\n", "a\nb\nc\na\nb\n")
    assert c.data == b"a\nb\nc\na\nB\n"
    assert how(c) == [("exact", 0)]


def test_hunks_keep_their_order():
    # the second hunk's lines occur only before the first hunk: it cannot go there
    diff = HEAD + "@@ -10,3 +10,3 @@\n line 10\n-line 11\n+X\n line 12\n@@ -20,2 +20,2 @@\n line 2\n-line 3\n+Y\n"
    (reason,) = refused(diff, {"f": N}).reasons
    assert reason.startswith("f: hunk 2 '@@ -20,2 +20,2 @@': no place in the file has these lines")


# -- refusals and their feedback ---------------------------------------------------------------

def test_refused_no_match_shows_the_closest_region_with_line_numbers():
    (reason,) = refused(HEAD + "@@ -10,3 +10,3 @@\n line 10\n-line 11 as it was\n+X\n line 12\n", {"f": N}).reasons
    assert compact(reason) == "\n".join([
        "f: hunk 1 '@@ -10,3 +10,3 @@': no place in the file has these lines",
        "  line 11: the hunk expects 'line 11 as it was', the file has 'line 11'",
        "  closest region, lines 8-14 of f ('>' marks lines that differ from the hunk):",
        "     8 | line 8",
        "     9 | line 9",
        "    10 | line 10",
        "  > 11 | line 11",
        "    12 | line 12",
        "    13 | line 13",
        "    14 | line 14",
    ])


def test_refused_ambiguous_names_the_candidate_lines_and_shows_them():
    (reason,) = refused(HEAD + "@@ -20,3 +20,3 @@\n a\n-b\n+B\n c\n", {"f": "x\na\nb\nc\ny\na\nb\nc\n"}).reasons
    assert compact(reason) == "\n".join([
        "f: hunk 1 '@@ -20,3 +20,3 @@': it matches in more than one place: at lines 2, 6",
        "  add context lines (or correct line numbers) that single out the place you mean",
        "  lines 2-4:",
        "    2 | a",
        "    3 | b",
        "    4 | c",
        "  lines 6-8:",
        "    6 | a",
        "    7 | b",
        "    8 | c",
    ])


def test_refused_ambiguous_under_a_tolerance():
    (reason,) = refused(HEAD + "@@ -20,3 +20,3 @@\n a\n-b\n+B\n c\n", {"f": "x\na \nb\nc\ny\na\t\nb\nc\n"}).reasons
    assert reason.splitlines()[0] == "f: hunk 1 '@@ -20,3 +20,3 @@': it matches in more than one place: at lines 2, 6"


def test_refused_ambiguous_with_many_candidates_stays_compact():
    (reason,) = refused(HEAD + "@@ -4,2 +4,2 @@\n a\n-b\n+B\n", {"f": "a\nb\n" * 40 + "c\n"}).reasons
    first = reason.splitlines()[0]
    assert first == "f: hunk 1 '@@ -4,2 +4,2 @@': it matches in more than one place: at lines 1, 3, 5, 7, 9, 11 ..."
    compact(reason)


def test_refused_file_missing():
    err = refused(HEAD + "@@ -1,2 +1,2 @@\n a\n-b\n+B\n", {"g": "a\nb\n"})
    assert err.reasons == ["f: file does not exist"]


def test_refused_ambiguous_eof_newline():
    (reason,) = refused(HEAD + "@@ -1,2 +1,2 @@\n a\n-b \n+B\n", {"f": "a\nb"}).reasons
    assert compact(reason) == "\n".join([
        "f: hunk 1 '@@ -1,2 +1,2 @@': the file has no newline at its end and the hunk does not say whether "
        "the result should (mark it with '\\ No newline at end of file')",
        "  line 2: the hunk expects 'b ', the file has 'b'",
        "  closest region, lines 1-2 of f:",
        "    1 | a",
        "    2 | b",
    ])


def test_refused_mixed_crlf_and_lf_window():
    (reason,) = refused(HEAD + "@@ -2,2 +2,2 @@\n b\n-c\n+C\n", {"f": "a\r\nb\nc\r\nd\n"}).reasons
    assert compact(reason).splitlines()[:2] == [
        "f: hunk 1 '@@ -2,2 +2,2 @@': the file mixes CRLF and LF line endings here: "
        "send added lines with the endings you mean",
        "  line 3: the hunk expects 'c\\n', the file has 'c\\r\\n' (line ending)"]
    assert "    3 | c" in reason.splitlines()


def test_a_crlf_diff_on_a_mixed_file_applies_exactly():
    c = applied(HEAD + "@@ -2,2 +2,2 @@\n b\n-c\r\n+C\r\n", "a\r\nb\nc\r\nd\n")
    assert c.data == b"a\r\nb\nC\r\nd\n"


def test_refused_inconsistent_indentation():
    (reason,) = refused(HEAD + "@@ -1,3 +1,3 @@\n a\n b\n-c\n+C\n", {"f": "  a\n    b\n  c\n"}).reasons
    assert compact(reason).splitlines()[0] == (
        "f: hunk 1 '@@ -1,3 +1,3 @@': its lines match only with indentation that changes from line to line")
    assert "    2 |     b" in reason.splitlines()


def test_refused_pure_insertion_without_numbers():
    (reason,) = refused(HEAD + "@@ @@\n+new\n", {"f": N}).reasons
    assert reason == ("f: hunk 1 '@@ @@': it has neither context lines nor line numbers, so it could go anywhere\n"
                      "  f has 30 lines")


def test_refused_pure_insertion_beyond_the_end():
    (reason,) = refused(HEAD + "@@ -40,0 +41 @@\n+new\n", {"f": N}).reasons
    assert reason == ("f: hunk 1 '@@ -40,0 +41 @@': it inserts after line 40, beyond the end of the file\n"
                      "  f has 30 lines")


def test_refused_slip_read_two_ways():
    # either "x" or "y" lost its "+": "a y b" and "a x b" both occur, and no number decides
    (reason,) = refused(HEAD + "@@ @@\n a\nx\ny\n b\n", {"f": "a\ny\nb\nq\na\nx\nb\n"}).reasons
    assert compact(reason).splitlines()[0] == (
        "f: hunk 1 '@@ @@': lines without a +/-/space marker can be read more than one way: at lines 1, 5")


def test_refused_second_hunk_only_is_reported_with_its_header():
    diff = HEAD + "@@ -2,3 +2,3 @@\n line 2\n-line 3\n+A\n line 4\n@@ -20,3 +20,3 @@ def g():\n line 20\n-nope\n+B\n line 22\n"
    (reason,) = refused(diff, {"f": N}).reasons
    assert reason.splitlines()[0] == "f: hunk 2 '@@ -20,3 +20,3 @@ def g():': no place in the file has these lines"
    assert "  > 21 | line 21" in reason.splitlines()


def test_refused_big_hunk_feedback_is_compact():
    body = "".join(f" line {i}\n" for i in range(3, 25)) + "-line 25 was\n+X\n"
    (reason,) = refused(HEAD + f"@@ -3,23 +3,23 @@\n{body}", {"f": N}).reasons
    compact(reason)
    assert "  > 25 | line 25" in reason.splitlines() or "line 25" in reason  # the difference is named
    assert "  line 25: the hunk expects 'line 25 was', the file has 'line 25'" in reason.splitlines()


def test_refusals_of_several_hunks_and_files_are_all_reported():
    diff = (HEAD + "@@ -2,2 +2,2 @@\n line 2\n-nope\n+A\n@@ -12,2 +12,2 @@\n line 12\n-nope\n+B\n"
            "--- a/g\n+++ b/g\n@@ -1 +1 @@\n-a\n+b\n")
    err = refused(diff, {"f": N})
    assert [r.splitlines()[0] for r in err.reasons] == [
        "f: hunk 1 '@@ -2,2 +2,2 @@': no place in the file has these lines",
        "f: hunk 2 '@@ -12,2 +12,2 @@': no place in the file has these lines",
        "g: file does not exist",
    ]
    assert err.message == "patch does not apply (3 problems in 2 files); nothing was changed"
    for r in err.reasons:
        compact(r)


def test_a_last_context_line_that_lost_its_space_is_not_duplicated():
    # "}" lost its leading space: read as context (the header counts 3 old lines) it is kept
    # once; read as an added line it would be written twice. Both fit at line 1.
    c = applied(HEAD + "@@ -1,3 +1,3 @@\n if x:\n-  y\n+  Y\n}\n", "if x:\n  y\n}\nz\n")
    assert c.data == b"if x:\n  Y\n}\nz\n"
    c = applied(HEAD + "@@ -1,2 +1,3 @@\n x\ny\nz\n", "x\ny\n")  # "z" lost its "+": y is context
    assert c.data == b"x\ny\nz\n"


def test_refused_exact_elsewhere_but_loose_at_the_stated_line():
    # the model may have stripped the tab of line 3: lines 2-4 (stated) and 6-8 (exact) both fit
    (reason,) = refused(HEAD + "@@ -2,3 +2,3 @@\n x\n-y\n+Y\n z\n", {"f": "h\nx\ny\t\nz\nq\nx\ny\nz\nt\n"}).reasons
    lines = compact(reason).splitlines()
    assert lines[0] == ("f: hunk 1 '@@ -2,3 +2,3 @@': it fits exactly at one place, and but for whitespace or "
                        "line endings at the line its header names: at lines 2, 6")
    assert lines[2:4] == ["  lines 2-4:", "    2 | x"] and "  lines 6-8:" in lines


def test_refused_loose_fit_with_a_near_rival():
    # "a" drifted to "b" at line 1: lines 1-4 keep c and both blank lines, lines 5-8 keep a, c
    (reason,) = refused(HEAD + "@@ -1,4 +1,3 @@\n a\n-c\n \n \n", {"f": "b\nc\n\n\na\nc\nq\nr\n"}).reasons
    assert compact(reason).splitlines()[0] == (
        "f: hunk 1 '@@ -1,4 +1,3 @@': it fits one place only loosely, and other places nearly as well: at lines 5, 1")


def test_refused_slip_that_the_header_counts_contradict():
    # "end" lost its "+" (the counts say 2 old lines) or its space (then the hunk is a no-op)
    (reason,) = refused(HEAD + "@@ -1,2 +1,3 @@\nend\n end\n end\n", {"f": "end\nend\nend\nx\n"}).reasons
    assert compact(reason).splitlines()[0].startswith(
        "f: hunk 1 '@@ -1,2 +1,3 @@': lines without a +/-/space marker can be read more than one way")


def test_slip_feedback_names_the_line_without_a_marker():
    (reason,) = refused(HEAD + "@@ -1,2 +1,3 @@\nend\n end\n end\n", {"f": "end\nend\nend\nx\n"}).reasons
    assert "single out the place" not in reason
    assert "'end'" in reason and "marker" in reason.splitlines()[1]


def test_feedback_shows_the_whitespace_that_tells_look_alikes_apart():
    (reason,) = refused(HEAD + "@@ -2,3 +2,3 @@\n x\n-y\n+Y\n z\n", {"f": "h\nx\ny\t\nz\nq\nx\ny\nz\nt\n"}).reasons
    shown = {int(x.split("|")[0].strip(" >")): x.split("| ", 1)[1] for x in reason.splitlines() if " | " in x}
    assert shown[3] == shown[3].rstrip() and shown[3] != shown[7]  # the tab made visible (e.g. 'y\\t' or 'y→')
