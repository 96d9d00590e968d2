"""parse_patch: unified diff text -> FilePatch values."""

from __future__ import annotations

import pytest

from gitforge.errors import PatchRefused
from gitforge.patch import FilePatch, Hunk, parse_patch

MODIFY = """\
diff --git a/app/text.py b/app/text.py
index 83db48f..bf269f4 100644
--- a/app/text.py
+++ b/app/text.py
@@ -1,3 +1,4 @@ def slugify(text):
 import re
-x = 1
+x = 2
+y = 3
 z = 4
"""


def refused(text: str | bytes) -> str:
    with pytest.raises(PatchRefused) as info:
        parse_patch(text)
    return "\n".join([info.value.message, *info.value.reasons])


def test_git_modify_strips_prefixes_and_keeps_line_endings():
    (fp,) = parse_patch(MODIFY)
    assert fp == FilePatch("modify", "app/text.py", "app/text.py", "100644", "100644", False, (
        Hunk(1, 3, 1, 4, ((" ", "import re\n"), ("-", "x = 1\n"), ("+", "x = 2\n"), ("+", "y = 3\n"),
                          (" ", "z = 4\n")), "@@ -1,3 +1,4 @@ def slugify(text):"),))
    assert fp.path == "app/text.py"
    assert (fp.added, fp.removed) == (2, 1)


def test_plain_diff_without_prefixes_or_git_header():
    (fp,) = parse_patch("--- app.py\n+++ app.py\n@@ -1 +1 @@\n-a\n+b\n")
    assert (fp.op, fp.old_path, fp.new_path, fp.old_mode, fp.new_mode) == ("modify", "app.py", "app.py", None, None)
    assert fp.hunks[0].header == "@@ -1 +1 @@"
    assert (fp.hunks[0].old_len, fp.hunks[0].new_len) == (1, 1)


def test_plain_diff_with_timestamps_and_differing_names_modifies_the_new_name():
    text = "--- app.py.orig\t2024-01-01 00:00:00\n+++ app.py\t2024-01-02 00:00:00\n@@ -1 +1 @@\n-a\n+b\n"
    (fp,) = parse_patch(text)
    assert (fp.op, fp.old_path, fp.new_path) == ("modify", "app.py", "app.py")


def test_a_directory_named_a_is_not_a_prefix_when_the_other_side_lacks_b():
    (fp,) = parse_patch("--- a/x.py\n+++ a/x.py\n@@ -1 +1 @@\n-a\n+b\n")
    assert fp.path == "a/x.py"


def test_create_and_delete():
    text = ("diff --git a/new.py b/new.py\nnew file mode 100755\nindex 0000000..1111111\n"
            "--- /dev/null\n+++ b/new.py\n@@ -0,0 +1,2 @@\n+one\n+two\n"
            "diff --git a/old.py b/old.py\ndeleted file mode 100644\nindex 1111111..0000000\n"
            "--- a/old.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-gone\n")
    new, old = parse_patch(text)
    assert (new.op, new.old_path, new.new_path, new.new_mode, new.added) == ("create", None, "new.py", "100755", 2)
    assert (old.op, old.old_path, old.new_path, old.old_mode, old.removed) == ("delete", "old.py", None, "100644", 1)
    assert old.path == "old.py"


def test_plain_create_without_git_header():
    (fp,) = parse_patch("--- /dev/null\n+++ b/pkg/new.py\n@@ -0,0 +1 @@\n+x = 1\n")
    assert (fp.op, fp.new_path, fp.hunks[0].old_start, fp.hunks[0].old_len) == ("create", "pkg/new.py", 0, 0)


def test_git_empty_file_create_has_no_hunks():
    (fp,) = parse_patch("diff --git a/empty b/empty\nnew file mode 100644\nindex 0000000..e69de29\n")
    assert (fp.op, fp.path, fp.hunks) == ("create", "empty", ())


def test_renames_with_and_without_hunks():
    text = ("diff --git a/old name.txt b/new name.txt\nsimilarity index 100%\n"
            "rename from old name.txt\nrename to new name.txt\n"
            "diff --git a/x.py b/y.py\nsimilarity index 66%\nrename from x.py\nrename to y.py\n"
            "index de98044..7be73ce 100644\n--- a/x.py\n+++ b/y.py\n@@ -1,2 +1,2 @@\n a\n-b\n+B\n")
    pure, edited = parse_patch(text)
    assert (pure.op, pure.old_path, pure.new_path, pure.hunks) == ("rename", "old name.txt", "new name.txt", ())
    assert (edited.op, edited.old_path, edited.new_path, len(edited.hunks)) == ("rename", "x.py", "y.py", 1)


def test_mode_change_only():
    (fp,) = parse_patch("diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n")
    assert (fp.op, fp.old_mode, fp.new_mode, fp.hunks) == ("modify", "100644", "100755", ())


def test_no_newline_markers_remove_the_preceding_line_ending():
    text = ("--- a/n.txt\n+++ b/n.txt\n@@ -1,2 +1,2 @@\n keep\n-old\n\\ No newline at end of file\n"
            "+new\n\\ No newline at end of file\n")
    (fp,) = parse_patch(text)
    assert fp.hunks[0].lines == ((" ", "keep\n"), ("-", "old"), ("+", "new"))
    assert fp.hunks[0].old_lines == ["keep\n", "old"]
    assert fp.hunks[0].new_lines == ["keep\n", "new"]


def test_no_newline_marker_after_context_applies_to_both_sides():
    (fp,) = parse_patch("--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n-a\n+b\n last\n\\ No newline at end of file\n")
    assert fp.hunks[0].lines[-1] == (" ", "last")


def test_crlf_and_lone_cr_are_kept_in_line_text():
    (fp,) = parse_patch("--- a/w.txt\n+++ b/w.txt\n@@ -1,2 +1,2 @@\n one\r\n-t\rwo\r\n+2\r\n")
    assert fp.hunks[0].lines == ((" ", "one\r\n"), ("-", "t\rwo\r\n"), ("+", "2\r\n"))


def test_bytes_input_keeps_non_utf8_bytes_as_surrogates():
    (fp,) = parse_patch(b"--- a/l1.txt\n+++ b/l1.txt\n@@ -1 +1 @@\n-caf\xe9\n+cafe\n")
    assert fp.hunks[0].lines[0] == ("-", "caf\udce9\n")


def test_binary_patches_are_marked():
    git_binary = ("diff --git a/b.bin b/b.bin\nindex 8876..3e33 100644\nGIT binary patch\nliteral 5\n"
                  "McmZQzO3KUw00MIXJOBUy\n\nliteral 5\nMcmZQzOv=my00M6TI{*Lx\n\n")
    (fp,) = parse_patch(git_binary)
    assert (fp.binary, fp.path) == (True, "b.bin")
    (fp,) = parse_patch("Binary files a/logo.png and b/logo.png differ\n")
    assert (fp.binary, fp.op, fp.path) == (True, "modify", "logo.png")
    (fp,) = parse_patch("diff --git a/i.png b/i.png\nnew file mode 100644\nindex 0000000..d00491f\n"
                        "Binary files /dev/null and b/i.png differ\n")
    assert (fp.binary, fp.op, fp.path) == (True, "create", "i.png")


def test_paths_are_kept_as_written_for_the_policy_to_judge():
    (fp,) = parse_patch("--- a/../etc/passwd\n+++ b/../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n")
    assert fp.path == "../etc/passwd"
    (fp,) = parse_patch("--- /dev/null\n+++ /etc/cron.d/x\n@@ -0,0 +1 @@\n+a\n")
    assert fp.path == "/etc/cron.d/x"


def test_git_quoted_paths_are_unquoted():
    text = ('diff --git "a/t\\303\\251st \\"q\\".txt" "b/t\\303\\251st \\"q\\".txt"\nindex 1..2 100644\n'
            '--- "a/t\\303\\251st \\"q\\".txt"\n+++ "b/t\\303\\251st \\"q\\".txt"\n@@ -1 +1 @@\n-a\n+b\n')
    (fp,) = parse_patch(text)
    assert fp.path == 'tést "q".txt'


def test_several_files_and_email_wrapping():
    text = ("From 1234 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] two\n---\n a | 2 +-\n\n"
            "diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1 +1 @@\n-1\n+2\n"
            "diff --git a/b b/b\n--- a/b\n+++ b/b\n@@ -1,0 +2 @@\n+3\n-- \n2.39.2\n\n")
    a, b = parse_patch(text)
    assert (a.path, b.path) == ("a", "b")
    assert b.hunks[0].lines == (("+", "3\n"),)


def test_blank_context_lines_without_the_leading_space_are_accepted():
    (fp,) = parse_patch("--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n\n-b\n+c\n")
    assert fp.hunks[0].lines == ((" ", "a\n"), (" ", "\n"), ("-", "b\n"), ("+", "c\n"))


@pytest.mark.parametrize("text", ["", "   \n\n"])
def test_empty_input_is_refused(text):
    assert "empty" in refused(text)


def test_text_that_is_not_a_diff_is_refused():
    assert "no file changes found" in refused("Sure! I changed the function as requested.\n")


def test_hunk_shorter_than_its_header_is_recounted():
    (fp,) = parse_patch("--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+c\n")
    (h,) = fp.hunks
    assert (h.old_len, h.new_len, h.recounted, h.header) == (2, 2, True, "@@ -1,3 +1,3 @@")


def test_extra_line_after_a_counted_hunk_is_kept_not_dropped():
    (fp,) = parse_patch("--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n+c\n")
    assert fp.hunks[0].new_lines == ["b\n", "c\n"] and fp.hunks[0].recounted


def test_short_hunk_does_not_swallow_the_next_file_header():
    text = ("--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n-a\n+b\n"
            "--- a/g\n+++ b/g\n@@ -1 +1 @@\n-a\n+b\n")
    f, g = parse_patch(text)
    assert (f.path, g.path) == ("f", "g")
    assert f.hunks[0].lines == (("-", "a\n"), ("+", "b\n")) and f.hunks[0].recounted
    assert not g.hunks[0].recounted


def test_a_line_without_a_marker_is_context_and_remembered_as_a_slip():
    (fp,) = parse_patch("--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n-a\n?? what\n+b\n")
    (h,) = fp.hunks
    assert h.lines == (("-", "a\n"), (" ", "?? what\n"), ("+", "b\n")) and h.slips == (1,)


def test_an_empty_body_line_is_an_empty_context_line():
    (fp,) = parse_patch("--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n\n-b\n+c\n")
    assert fp.hunks[0].lines == ((" ", "a\n"), (" ", "\n"), ("-", "b\n"), ("+", "c\n"))
    assert fp.hunks[0].slips == () and not fp.hunks[0].recounted


def test_blank_lines_between_files_are_separators():
    text = "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n\n\n--- a/g\n+++ b/g\n@@ -1 +1 @@\n-a\n+b\n"
    f, g = parse_patch(text)
    assert f.hunks[0].lines == (("-", "a\n"), ("+", "b\n")) and not f.hunks[0].recounted


def test_format_patch_signature_is_not_part_of_the_last_hunk():
    text = "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n-- \n2.39.5\n\n"
    (fp,) = parse_patch(text)
    assert fp.hunks[0].lines == (("-", "a\n"), ("+", "b\n"))


def test_misplaced_no_newline_marker_is_refused():
    text = "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n-a\n\\ No newline at end of file\n-b\n+c\n+d\n"
    assert "before its last line" in refused(text)


def test_copy_is_refused():
    text = "diff --git a/a.py b/b.py\nsimilarity index 100%\ncopy from a.py\ncopy to b.py\n"
    assert "copy patches are not supported" in refused(text)


def test_a_file_header_that_changes_nothing_is_refused():
    assert "changes nothing" in refused("diff --git a/f b/f\nindex 1..2 100644\n")


def test_the_patch_package_imports_nothing_of_git_llm_or_the_rest_of_gitforge():
    import ast
    from pathlib import Path

    import gitforge.patch

    allowed = {"gitforge.errors"}
    for source in Path(gitforge.patch.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("pygit2", "anthropic"), (source.name, name)
                if name.startswith("gitforge"):
                    assert name in allowed or name.startswith("gitforge.patch"), (source.name, name)


def test_hunk_header_without_line_numbers_is_placed_by_context():
    for header in ("@@ ... @@", "@@ @@", "@@"):
        (fp,) = parse_patch(f"--- a/f\n+++ b/f\n{header}\n-a\n+b\n")
        (h,) = fp.hunks
        assert h.unnumbered and h.header == header and h.lines == (("-", "a\n"), ("+", "b\n"))
