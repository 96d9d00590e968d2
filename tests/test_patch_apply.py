"""apply_patches: exact, all-or-nothing, in memory."""

from __future__ import annotations

import difflib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitforge.errors import PatchRefused
from gitforge.patch import DictTree, FileChange, apply_patches, parse_patch
from gitforge.patch.place import FileIndex, Miss, place

NUMBERED = "".join(f"line {i}\n" for i in range(1, 31))


def apply(text: str | bytes, files: dict, modes: dict | None = None, **kw) -> dict[str, FileChange]:
    changes = apply_patches(parse_patch(text), DictTree(files, modes), **kw)
    return {c.path: c for c in changes}


def refusal(text: str, files: dict, modes: dict | None = None, **kw) -> PatchRefused:
    with pytest.raises(PatchRefused) as info:
        apply_patches(parse_patch(text), DictTree(files, modes), **kw)
    return info.value


def test_modify():
    out = apply("--- a/f.py\n+++ b/f.py\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n", {"f.py": b"a\nb\nc\n", "g": b""})
    assert out == {"f.py": FileChange("f.py", b"a\nB\nc\n", "file", None)}


def test_create_including_directories_and_exec_mode():
    text = ("diff --git a/pkg/new.sh b/pkg/new.sh\nnew file mode 100755\nindex 0000000..1\n"
            "--- /dev/null\n+++ b/pkg/new.sh\n@@ -0,0 +1,2 @@\n+#!/bin/sh\n+echo hi\n")
    assert apply(text, {}) == {"pkg/new.sh": FileChange("pkg/new.sh", b"#!/bin/sh\necho hi\n", "exec", None)}


def test_create_empty_file():
    out = apply("diff --git a/e b/e\nnew file mode 100644\nindex 0000000..e69de29\n", {})
    assert out == {"e": FileChange("e", b"", "file", None)}


def test_create_refused_when_the_file_exists_even_if_identical():
    err = refusal("--- /dev/null\n+++ b/f\n@@ -0,0 +1 @@\n+x\n", {"f": b"x\n"})
    assert err.reasons == ["f: file already exists"]
    assert "nothing was changed" in err.message


def test_create_refused_over_a_directory_or_under_a_file():
    assert refusal("--- /dev/null\n+++ b/d\n@@ -0,0 +1 @@\n+x\n", {"d/f": b""}).reasons == [
        "d: a directory exists at this path"]
    assert refusal("--- /dev/null\n+++ b/f/x\n@@ -0,0 +1 @@\n+x\n", {"f": b""}).reasons == [
        "f/x: 'f' is not a directory"]


def test_delete_checks_the_content():
    text = "diff --git a/f b/f\ndeleted file mode 100755\nindex 1..0\n--- a/f\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n"
    assert apply(text, {"f": b"a\nb\n"}, {"f": "exec"}) == {"f": FileChange("f", None, "exec", None)}
    err = refusal(text, {"f": b"a\nb\nc\n"})
    assert err.reasons == ["f: the file's content does not match the deletion (1 lines would remain)"]
    err = refusal(text, {"f": b"a\nX\n"})
    assert err.reasons[0].startswith("f: hunk 1 '@@ -1,2 +0,0 @@': no place in the file has these lines\n"
                                     "  line 2: the hunk expects 'b', the file has 'X'")


def test_delete_of_a_missing_file_and_modify_of_a_missing_file():
    assert refusal("--- a/f\n+++ /dev/null\n@@ -1 +0,0 @@\n-a\n", {}).reasons == ["f: file does not exist"]
    assert refusal("--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n", {"f/x": b""}).reasons == [
        "f: file does not exist (it is a directory)"]


def test_delete_empty_file_without_hunks():
    text = "diff --git a/e b/e\ndeleted file mode 100644\nindex e69de29..0000000\n"
    assert apply(text, {"e": b""}) == {"e": FileChange("e", None, "file", None)}
    assert "1 lines would remain" in refusal(text, {"e": b"data\n"}).reasons[0]


def test_rename_without_and_with_hunks():
    pure = "diff --git a/a.bin b/sub/b.bin\nsimilarity index 100%\nrename from a.bin\nrename to sub/b.bin\n"
    data = b"\x00\xff\xfe raw"
    assert apply(pure, {"a.bin": data}, {"a.bin": "exec"}) == {
        "sub/b.bin": FileChange("sub/b.bin", data, "exec", "a.bin")}
    edited = ("diff --git a/x.py b/y.py\nsimilarity index 66%\nrename from x.py\nrename to y.py\n"
              "--- a/x.py\n+++ b/y.py\n@@ -1,2 +1,2 @@\n a\n-b\n+B\n")
    assert apply(edited, {"x.py": b"a\nb\n"}) == {"y.py": FileChange("y.py", b"a\nB\n", "file", "x.py")}
    assert refusal(edited, {"x.py": b"a\nb\n", "y.py": b""}).reasons == ["y.py: file already exists"]
    assert refusal(edited, {}).reasons == ["x.py: file does not exist"]


def test_mode_changes():
    up = "diff --git a/run b/run\nold mode 100644\nnew mode 100755\n"
    assert apply(up, {"run": b"x\n"}) == {"run": FileChange("run", b"x\n", "exec", None)}
    down = "diff --git a/run b/run\nold mode 100755\nnew mode 100644\n"
    assert apply(down, {"run": b"x\n"}, {"run": "exec"}) == {"run": FileChange("run", b"x\n", "file", None)}
    assert apply(up, {"run": b"x\n"}, {"run": "exec"}) == {}  # already executable: nothing changes


def test_plain_diff_keeps_an_executable_file_executable():
    out = apply("--- a/run\n+++ b/run\n@@ -1 +1 @@\n-a\n+b\n", {"run": b"a\n"}, {"run": "exec"})
    assert out["run"].mode == "exec"


def test_crlf_file_stays_crlf():
    text = "--- a/w.txt\n+++ b/w.txt\n@@ -1,3 +1,3 @@\n one\r\n-two\r\n+2\r\n three\r\n"
    out = apply(text, {"w.txt": b"one\r\ntwo\r\nthree\r\nfour\r\n"})
    assert out["w.txt"].data == b"one\r\n2\r\nthree\r\nfour\r\n"


def test_an_lf_diff_applies_to_a_crlf_file_and_keeps_crlf():
    out = apply("--- a/w.txt\n+++ b/w.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+2\n", {"w.txt": b"one\r\ntwo\r\n"})
    assert out["w.txt"].data == b"one\r\n2\r\n"
    assert out["w.txt"].hunks[0].strategy == "eol"


def test_non_utf8_bytes_survive():
    files = {"l1.txt": b"caf\xe9\nna\xefve\n\xff\xfe\n"}
    out = apply("--- a/l1.txt\n+++ b/l1.txt\n@@ -2 +2 @@\n-na\udcefve\n+naive\n", files)
    assert out["l1.txt"].data == b"caf\xe9\nnaive\n\xff\xfe\n"
    out = apply(b"--- a/l1.txt\n+++ b/l1.txt\n@@ -1 +1 @@\n-caf\xe9\n+caf\xe9!\n", files)
    assert out["l1.txt"].data == b"caf\xe9!\nna\xefve\n\xff\xfe\n"


def test_lone_carriage_return_is_not_a_line_break():
    out = apply("--- a/f\n+++ b/f\n@@ -2 +2 @@\n-b\n+B\n", {"f": b"a\rx\nb\n"})
    assert out["f"].data == b"a\rx\nB\n"


def test_no_newline_at_end_of_file_both_ways():
    add_nl = "--- a/n\n+++ b/n\n@@ -1 +1 @@\n-end\n\\ No newline at end of file\n+end\n"
    assert apply(add_nl, {"n": b"end"})["n"].data == b"end\n"
    drop_nl = "--- a/n\n+++ b/n\n@@ -1,2 +1,2 @@\n a\n-end\n+end\n\\ No newline at end of file\n"
    assert apply(drop_nl, {"n": b"a\nend\n"})["n"].data == b"a\nend"
    append = "--- a/n\n+++ b/n\n@@ -1 +1,2 @@\n-end\n\\ No newline at end of file\n+end\n+more\n"
    assert apply(append, {"n": b"end"})["n"].data == b"end\nmore\n"
    assert apply(add_nl, {"n": b"end\n"}) == {}  # already has its newline: nothing to change


def test_empty_files():
    fill = "--- a/e\n+++ b/e\n@@ -0,0 +1 @@\n+x\n"
    assert apply(fill, {"e": b""})["e"].data == b"x\n"
    empty = "--- a/e\n+++ b/e\n@@ -1 +0,0 @@\n-x\n"
    assert apply(empty, {"e": b"x\n"})["e"].data == b""


def test_wrong_line_number_is_relocated_and_recorded():
    text = "--- a/app.py\n+++ b/app.py\n@@ -20,3 +20,3 @@ def main():\n line 10\n-line 11\n+LINE 11\n line 12\n"
    out = apply(text, {"app.py": NUMBERED.encode()})
    assert out["app.py"].data == NUMBERED.replace("line 11\n", "LINE 11\n").encode()
    (p,) = out["app.py"].hunks
    assert (p.strategy, p.offset) == ("relocated", -10)


def test_a_hunk_that_matches_nowhere_is_refused_with_the_closest_region():
    text = "--- a/app.py\n+++ b/app.py\n@@ -20,3 +20,3 @@ def main():\n line 10\n-line 11 changed\n+X\n line 12\n"
    err = refusal(text, {"app.py": NUMBERED.encode()})
    assert err.reasons == ["\n".join([
        "app.py: hunk 1 '@@ -20,3 +20,3 @@ def main():': no place in the file has these lines",
        "  line 11: the hunk expects 'line 11 changed', the file has 'line 11'",
        "  closest region, lines 8-14 of app.py ('>' marks lines that differ from the hunk):",
        "     8 | line 8",
        "     9 | line 9",
        "    10 | line 10",
        "  > 11 | line 11",
        "    12 | line 12",
        "    13 | line 13",
        "    14 | line 14",
    ])]
    assert err.message == "patch does not apply (1 problem in 1 file); nothing was changed"


def test_feedback_is_compact_and_handles_a_hunk_that_occurs_nowhere():
    big = "--- a/f\n+++ b/f\n@@ -5,20 +5,1 @@\n" + "".join(f"-line {i}\n" for i in range(3, 23)) + "-nope\n+y\n"
    reason = refusal(big, {"f": NUMBERED.encode()}).reasons[0]
    assert reason.count(" | ") == 12
    nowhere = refusal("--- a/f\n+++ b/f\n@@ -40 +40 @@\n-a\n+b\n", {"f": NUMBERED.encode()}).reasons[0]
    assert nowhere.splitlines()[:2] == ["f: hunk 1 '@@ -40 +40 @@': no place in the file has these lines",
                                        "  none of its context or removed lines occurs in f; lines 28-30:"]
    assert nowhere.splitlines()[-1] == "    30 | line 30"
    empty = refusal("--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n", {"f": b""}).reasons[0]
    assert empty == "f: hunk 1 '@@ -1 +1 @@': no place in the file has these lines\n  f is empty"


TWO_HUNKS = ("--- a/f\n+++ b/f\n@@ -2,2 +2,2 @@\n line 2\n-line 3\n+LINE 3\n"
             "@@ -12,2 +12,2 @@\n line 11\n-line 12\n+LINE 12\n")


def test_second_hunk_fails_nothing_returned_and_only_it_is_reported():
    err = refusal(TWO_HUNKS.replace("-line 12", "-line 12b"), {"f": NUMBERED.encode()})
    assert len(err.reasons) == 1
    assert err.reasons[0].startswith("f: hunk 2 '@@ -12,2 +12,2 @@': no place in the file has these lines\n"
                                     "  line 12: the hunk expects 'line 12b', the file has 'line 12'")


def test_both_hunks_failing_are_both_reported():
    other = "".join(f"row {i}\n" for i in range(5, 40)).encode()
    err = refusal(TWO_HUNKS, {"f": other})
    assert [r.splitlines()[0] for r in err.reasons] == [
        "f: hunk 1 '@@ -2,2 +2,2 @@': no place in the file has these lines",
        "f: hunk 2 '@@ -12,2 +12,2 @@': no place in the file has these lines",
    ]


def test_both_hunks_relocated_by_the_same_offset():
    shifted = "".join(f"line {i}\n" for i in range(-3, 31)).encode()
    out = apply(TWO_HUNKS, {"f": shifted})["f"]
    assert [(p.strategy, p.offset) for p in out.hunks] == [("relocated", 4), ("relocated", 3)]


def test_multi_file_all_or_nothing():
    text = ("--- a/ok.py\n+++ b/ok.py\n@@ -1 +1 @@\n-a\n+b\n"
            "--- /dev/null\n+++ b/exists.py\n@@ -0,0 +1 @@\n+x\n"
            "--- a/missing.py\n+++ b/missing.py\n@@ -1 +1 @@\n-a\n+b\n")
    err = refusal(text, {"ok.py": b"a\n", "exists.py": b""})
    assert err.reasons == ["exists.py: file already exists", "missing.py: file does not exist"]
    assert err.message == "patch does not apply (2 problems in 2 files); nothing was changed"


def test_patches_on_one_path_apply_in_sequence():
    text = ("--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n"
            "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-b\n+c\n")
    assert apply(text, {"f": b"a\n"}) == {"f": FileChange("f", b"c\n", "file", None)}
    then_rename = text + "diff --git a/f b/g\nsimilarity index 100%\nrename from f\nrename to g\n"
    assert apply(then_rename, {"f": b"a\n"}) == {"g": FileChange("g", b"c\n", "file", "f")}
    create_then_delete = "--- /dev/null\n+++ b/t\n@@ -0,0 +1 @@\n+x\n--- a/t\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
    assert apply(create_then_delete, {}) == {}
    broken = "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-zzz\n+b\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-b\n+c\n"
    reasons = refusal(broken, {"f": b"a\n"}).reasons
    assert reasons[1] == "f: skipped, an earlier patch to this file did not apply"


def test_result_over_max_file_bytes_is_refused():
    text = "--- /dev/null\n+++ b/big\n@@ -0,0 +1 @@\n+" + "x" * 99 + "\n"
    assert apply(text, {}, max_file_bytes=100)["big"].data == b"x" * 99 + b"\n"
    assert refusal(text, {}, max_file_bytes=99).reasons == [
        "big: the result is 100 bytes, over the limit of 99 (max_file_bytes)"]


def test_binary_without_data_and_symlink_patches_cannot_be_applied():
    assert refusal("Binary files a/i.png and b/i.png differ\n", {"i.png": b"\x89PNG"}).reasons == [
        "i.png: the diff says this binary file changed but carries no data (make it with `git diff --binary`)"]
    text = "diff --git a/l b/l\nnew file mode 120000\nindex 0..1\n--- /dev/null\n+++ b/l\n@@ -0,0 +1 @@\n+x\n"
    assert refusal(text, {}).reasons == ["l: cannot write file mode 120000"]
    assert refusal("--- a/l\n+++ b/l\n@@ -1 +1 @@\n-x\n+y\n", {"l": b"x\n"}, {"l": "link"}).reasons == [
        "l: file does not exist (it is a symlink)"]


def test_place_is_the_per_hunk_entry_point():
    (fp,) = parse_patch("--- a/f\n+++ b/f\n@@ -2 +2 @@\n-b\n+B\n")
    assert place(FileIndex(["a\n", "b\n"]), fp.hunks[0], 0).at == 1
    assert place(FileIndex(["b\n", "a\n"]), fp.hunks[0], 0).strategy == "relocated"
    assert isinstance(place(FileIndex(["a\n", "b\n"]), fp.hunks[0], 2), Miss)


# -- property: the true diff of any edit applies to exactly the edited content ---------------

_TEXT = st.text(alphabet=["a", "b", " ", "-", "+", "@", "\\", "\t", "\r", "é", "\udcff"], max_size=5)
_LINE = st.tuples(_TEXT, st.sampled_from(["\n", "\r\n"])).map("".join)


@st.composite
def _files_and_edit(draw):
    lines = draw(st.lists(_LINE, max_size=20))
    if draw(st.booleans()):
        lines.append(draw(_TEXT.filter(bool)))  # a last line without a newline
    new = list(lines)
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, len(new)))
        stop = draw(st.integers(start, min(len(new), start + 3)))
        new[start:stop] = draw(st.lists(_LINE, max_size=3))
    if draw(st.booleans()) and new and new[-1].endswith("\n"):
        new[-1] = new[-1].rstrip("\r\n") or "z"
    return lines, new, draw(st.integers(0, 3))


def _lines(text: str) -> list[str]:
    """Lines split on "\\n" only, as git does (a "\\r" inside a line is content)."""
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _unified(old: str, new: str, context: int) -> str:
    out = []
    for line in difflib.unified_diff(_lines(old), _lines(new), "a/f.txt", "b/f.txt", n=context):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


@settings(max_examples=300, deadline=None)
@given(_files_and_edit())
def test_the_true_diff_of_any_edit_applies_exactly(case):
    old, new = ("".join(lines) for lines in case[:2])
    if old == new:
        return
    out = apply(_unified(old, new, case[2]), {"f.txt": old.encode("utf-8", "surrogateescape")})
    assert out == {"f.txt": FileChange("f.txt", new.encode("utf-8", "surrogateescape"), "file", None)}


def test_a_new_file_written_as_a_modification_is_a_create():
    for header in ("@@ -0,0 +1 @@", "@@ -1,0 +1,2 @@", "@@ @@"):
        out = apply(f"--- a/new.py\n+++ b/new.py\n{header}\n+x\n+y\n", {})
        assert out["new.py"].data == b"x\ny\n" and out["new.py"].hunks[0].strategy == "create"
    err = refusal("--- a/new.py\n+++ b/new.py\n@@ -1 +1 @@\n-x\n+y\n", {})
    assert err.reasons == ["new.py: file does not exist"]


def test_moving_a_large_file_unchanged_is_not_refused_for_its_size():
    text = "diff --git a/big b/moved\nsimilarity index 100%\nrename from big\nrename to moved\n"
    assert apply(text, {"big": b"x" * 500}, max_file_bytes=10)["moved"].old_path == "big"


def test_a_hunk_that_would_join_two_lines_is_refused():
    after_unterminated = "--- a/n\n+++ b/n\n@@ -1,0 +2 @@\n+more\n"
    assert refusal(after_unterminated, {"n": b"end"}).reasons == [
        "n: hunk 1 '@@ -1,0 +2 @@': it would join two lines: "
        "'\\ No newline at end of file' belongs only to the file's last line\n  n has 1 lines"]
    assert apply(after_unterminated, {"n": b"end\n"})["n"].data == b"end\nmore\n"
    unterminated_in_middle = "--- a/n\n+++ b/n\n@@ -1 +1 @@\n-a\n+A\n\\ No newline at end of file\n"
    assert "belongs only to the file's last line" in refusal(unterminated_in_middle, {"n": b"a\nb\n"}).reasons[0]
