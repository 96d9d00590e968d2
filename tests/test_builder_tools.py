"""RepoTools: the builder's read-only tools answer every call, bounded, and never leak what they must not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitforge.builders import tools
from gitforge.builders.tools import READ_TOOLS, RepoTools
from gitforge.patch.tree import DictTree

PROTECTED = (".env*", "**/*.pem", "deploy/secrets/")
FILES = {
    "README.md": "# Demo\n",
    "src/app.py": "import os\n\ndef main():\n    return os.environ['HOME']\n",
    "src/util.py": "def helper():\n    pass  # TODO tidy\n",
    "src/no_newline.py": "x = 1",
    "src/crlf.txt": "one\r\ntwo\r\n",
    "src/run.sh": "#!/bin/sh\necho hi\n",
    "src/link.py": "app.py",
    "linkdir": "src",
    "logo.png": b"\x89PNG\r\n\x1a\n\0\0\0IHDR",
    "empty.txt": "",
    ".env": "SECRET=hunter2\n",
    "certs/server.pem": "SECRET key\n",
    "deploy/secrets/token": "SECRET token\n",
    "deploy/secrets/more/deep": "SECRET\n",
    "deploy/run.yaml": "steps: []\n",
}
MODES = {"src/run.sh": "exec", "src/link.py": "link", "linkdir": "link"}


def make(files: dict | None = None, modes: dict | None = None, protected=PROTECTED, sizes=None) -> RepoTools:
    tree = DictTree(FILES if files is None else files, MODES if modes is None else modes)
    listed = sorted((p, (sizes or {}).get(p, len(d))) for p, d in tree.files.items())
    return RepoTools(tree, listed, protected=protected)


def ok(result: tuple[str, bool]) -> str:
    text, is_error = result
    assert not is_error, text
    return text


def err(result: tuple[str, bool]) -> str:
    text, is_error = result
    assert is_error, text
    return text


# --- definitions

def test_the_tool_definitions_are_strict_json_schemas():
    assert [t["name"] for t in READ_TOOLS] == ["read_file", "list_dir", "search_text"]
    for t in READ_TOOLS:
        assert set(t) == {"name", "description", "input_schema"}
        schema = t["input_schema"]
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert set(schema.get("required", ())) <= set(schema["properties"])
    schemas = {t["name"]: t["input_schema"] for t in READ_TOOLS}
    assert schemas["read_file"]["required"] == ["path"]
    assert schemas["search_text"]["properties"]["regex"]["type"] == "boolean"
    assert "required" not in schemas["list_dir"]


# --- read_file

def test_read_file_numbers_lines_like_cat_n():
    assert ok(make().run("read_file", {"path": "src/app.py"})) == (
        "src/app.py (4 lines)\n     1\timport os\n     2\t\n     3\tdef main():\n     4\t    return os.environ['HOME']")


def test_a_submodule_is_named_as_one_by_read_file_and_list_dir():
    t = make({**FILES, "vendor/lib": b""}, {**MODES, "vendor/lib": "submodule"})
    for tool in ("read_file", "list_dir"):
        assert err(t.run(tool, {"path": "vendor/lib"})) == (
            "'vendor/lib' is a submodule (a gitlink): its files are in another repository, "
            "and a patch may not change them")


def test_read_file_ranges_are_one_based_and_inclusive():
    t = make()
    assert ok(t.run("read_file", {"path": "src/app.py", "start_line": 3, "end_line": 3})) == \
        "src/app.py (lines 3-3 of 4)\n     3\tdef main():\n[lines 3-3 of 4; call read_file with start_line=4 for more]"
    assert ok(t.run("read_file", {"path": "src/app.py", "start_line": 4, "end_line": 99})).endswith(
        "     4\t    return os.environ['HOME']")
    assert ok(t.run("read_file", {"path": "src/app.py", "end_line": 1, "start_line": None})).startswith(
        "src/app.py (lines 1-1 of 4)")
    assert err(t.run("read_file", {"path": "src/app.py", "start_line": 5})) == \
        "start_line=5 is past the end of 'src/app.py', which has 4 lines"
    assert err(t.run("read_file", {"path": "src/app.py", "start_line": 3, "end_line": 2})) == \
        "end_line=2 is before start_line=3"


def test_read_file_says_what_the_numbers_do_not_show():
    t = make()
    assert ok(t.run("read_file", {"path": "src/no_newline.py"})).endswith("     1\tx = 1\n\\ No newline at end of file")
    assert ok(t.run("read_file", {"path": "src/crlf.txt"})) == \
        "src/crlf.txt (2 lines, CRLF line endings)\n     1\tone\n     2\ttwo"
    assert ok(t.run("read_file", {"path": "empty.txt"})) == "'empty.txt' is empty (0 bytes)"
    assert ok(t.run("read_file", {"path": "logo.png"})) == \
        "'logo.png' is a binary file (15 bytes); its content cannot be shown"


def test_a_long_file_is_served_400_lines_at_a_time():
    t = make({"big.py": "".join(f"x{i}\n" for i in range(1, 1235))}, {})
    first = ok(t.run("read_file", {"path": "big.py"}))
    assert first.splitlines()[0] == "big.py (lines 1-400 of 1,234)"
    assert first.splitlines()[-2] == "   400\tx400"
    assert first.splitlines()[-1] == "[lines 1-400 of 1,234; call read_file with start_line=401 for more]"
    last = ok(t.run("read_file", {"path": "big.py", "start_line": 1201}))
    assert last.splitlines()[0] == "big.py (lines 1,201-1,234 of 1,234)"
    assert last.splitlines()[-1] == "  1234\tx1234"


def test_read_file_stops_at_the_character_cap_on_a_line_boundary():
    t = make({"wide.txt": ("y" * 999 + "\n") * 100, "one.min.js": "z" * 100_000}, {})
    text = ok(t.run("read_file", {"path": "wide.txt"}))
    assert len(text) < tools.READ_CHARS + 1_000
    assert text.splitlines()[-1] == "[lines 1-39 of 100; call read_file with start_line=40 for more]"
    single = ok(t.run("read_file", {"path": "one.min.js"}))
    assert f" … [{100_000 - tools.READ_CHARS // 2} chars] … " in single and len(single) < tools.READ_CHARS


def test_a_missing_file_suggests_close_names():
    t = make()
    assert err(t.run("read_file", {"path": "app.py"})) == \
        "'app.py' does not exist at the base commit; did you mean: src/app.py?"
    assert err(t.run("read_file", {"path": "src/utils.py"})).endswith(
        "did you mean: src/util.py, src/link.py, src/app.py?")
    assert err(t.run("read_file", {"path": "zzz/qqq"})).endswith("call list_dir to see what exists")
    assert err(t.run("read_file", {"path": "certs/server.pen"})).endswith("call list_dir to see what exists")


def test_folders_and_symlinks_are_named_not_followed():
    t = make()
    assert err(t.run("read_file", {"path": "src"})) == "'src' is a folder, not a file; call list_dir with path='src'"
    assert ok(t.run("read_file", {"path": "src/link.py"})).startswith(
        "'src/link.py' is a symlink to 'app.py'; symlinks are not followed")
    through = err(t.run("read_file", {"path": "linkdir/app.py"}))
    assert through.startswith("'linkdir' is a symlink to 'src'") and "'linkdir/app.py' cannot be read" in through


@pytest.mark.parametrize("path, reason", [
    ("../etc/passwd", "'..' is not allowed"),
    ("src/../../etc/passwd", "'..' is not allowed"),
    ("src/..", "'..' is not allowed"),
    ("/etc/passwd", "absolute paths are not allowed"),
    ("//server/share", "absolute paths are not allowed"),
    ("C:/Windows/win.ini", "absolute paths are not allowed"),
    ("src\\..\\..\\x", "backslashes are not allowed"),
    ("..\\x", "backslashes are not allowed"),
    ("src/app.py\0.txt", "control character"),
    (".git/config", "nothing under .git/"),
    ("src/.git/HEAD", "nothing under .git/"),
    (".GIT/config", "nothing under .git/"),
    (".git./config", "nothing under .git/"),
    ("GIT~1/config", "nothing under .git/"),
    (".forge/state.json", "nothing under .forge/"),
    ("./.forge/runs", "nothing under .forge/"),
    ("sub/.Forge/x", "nothing under .forge/"),
    ("", "the path is empty"),
    (".", "the path is empty"),
    (".env", "'.env' is protected (matches '.env*')"),
    ("./.env", "'.env' is protected (matches '.env*')"),
    ("certs/server.pem", "'certs/server.pem' is protected (matches '**/*.pem')"),
    ("deploy//secrets/token", "'deploy/secrets/token' is protected (matches 'deploy/secrets/')"),
    ("DEPLOY/Secrets/token", "is protected (matches 'deploy/secrets/')"),
])
def test_paths_outside_the_readable_tree_are_refused(path, reason):
    t = make()
    text = err(t.run("read_file", {"path": path}))
    assert text.startswith(f"refused {path!r}: ") and reason in text
    assert "SECRET" not in text and "hunter2" not in text


def test_refused_folders_cannot_be_listed_either():
    t = make()
    assert "'..' is not allowed" in err(t.run("list_dir", {"path": ".."}))
    assert "nothing under .git/" in err(t.run("list_dir", {"path": ".git"}))
    assert "absolute paths" in err(t.run("list_dir", {"path": "/"}))


# --- list_dir

def test_list_dir_shows_the_root_by_default():
    listing = ok(make().run("list_dir", {}))
    assert listing == "\n".join([
        "the repository root: 3 folders, 5 files",
        "certs/  (1 file, protected)",
        "deploy/  (3 files, 2 protected)",
        "src/  (6 files)",
        ".env  (protected)",
        "README.md  (7 B)",
        "empty.txt  (0 B)",
        "linkdir  (symlink -> src)",
        "logo.png  (15 B)",
    ])
    for path in (".", "./", "  "):
        assert ok(make().run("list_dir", {"path": path})) == listing


def test_list_dir_lists_a_folders_immediate_children():
    t = make()
    assert ok(t.run("list_dir", {"path": "src/"})) == "\n".join([
        "src/: 0 folders, 6 files",
        "app.py  (53 B)",
        "crlf.txt  (10 B)",
        "link.py  (symlink -> app.py)",
        "no_newline.py  (5 B)",
        "run.sh  (18 B, executable)",
        "util.py  (36 B)",
    ])
    assert ok(t.run("list_dir", {"path": "deploy/secrets"})) == \
        "deploy/secrets/: 1 folder, 1 file\nmore/  (1 file, protected)\ntoken  (protected)"


def test_list_dir_on_a_file_a_link_or_nothing():
    t = make()
    assert err(t.run("list_dir", {"path": "src/app.py"})) == \
        "'src/app.py' is a file, not a folder; call read_file with path='src/app.py'"
    assert ok(t.run("list_dir", {"path": "linkdir"})).startswith("'linkdir' is a symlink to 'src'")
    assert err(t.run("list_dir", {"path": "scr"})) == "'scr' does not exist at the base commit; did you mean: src?"


def test_a_huge_folder_is_listed_up_to_the_cap():
    t = make({f"d/f{i:05}.txt": "x" for i in range(tools.LIST_ENTRIES + 20)} | {"d/sub/a": "x"}, {})
    lines = ok(t.run("list_dir", {"path": "d"})).splitlines()
    assert lines[0] == f"d/: 1 folder, {tools.LIST_ENTRIES + 20:,} files"
    assert lines[1] == "sub/  (1 file)"
    assert len(lines) == tools.LIST_ENTRIES + 2
    assert lines[-1] == "… 21 more entries not listed; search_text with a path_glob narrows"


# --- search_text

def test_search_text_finds_lines_case_sensitively():
    t = make()
    assert ok(t.run("search_text", {"pattern": "def "})) == "\n".join([
        "2 matches for 'def ' (8 files searched; skipped 1 binary, 4 protected, 2 symlinks)",
        "src/app.py:3: def main():",
        "src/util.py:1: def helper():",
    ])
    assert ok(t.run("search_text", {"pattern": "DEF "})).startswith("0 matches for 'DEF '")
    assert ok(t.run("search_text", {"pattern": "two"})).endswith("src/crlf.txt:2: two")


def test_search_text_regex_and_path_glob():
    t = make()
    assert ok(t.run("search_text", {"pattern": r"^\s+\w+ ", "regex": True})).splitlines()[1:] == [
        "src/app.py:4:     return os.environ['HOME']", "src/util.py:2:     pass  # TODO tidy"]
    assert ok(t.run("search_text", {"pattern": "(", "regex": False, "path_glob": "src/*.py"})).splitlines()[0] == \
        "2 matches for '(' in files matching 'src/*.py' (3 files searched; skipped 1 symlink)"
    assert ok(t.run("search_text", {"pattern": "hi", "path_glob": "**/*.sh"})).splitlines()[1:] == \
        ["src/run.sh:2: echo hi"]
    assert ok(t.run("search_text", {"pattern": r"\Aimport", "regex": True})).splitlines()[1:] == \
        ["src/app.py:1: import os"]
    assert ok(t.run("search_text", {"pattern": "x", "path_glob": "nowhere/"})) == \
        "no tracked file matches path_glob 'nowhere/'"


def test_search_text_never_shows_protected_content():
    t = make()
    found = ok(t.run("search_text", {"pattern": "SECRET"}))
    assert found.startswith("0 matches") and "4 protected" in found
    assert "hunter2" not in ok(t.run("search_text", {"pattern": "hunter", "path_glob": ".env"}))


def test_search_text_bad_patterns_are_errors_that_say_why():
    t = make()
    text = err(t.run("search_text", {"pattern": "def (", "regex": True}))
    assert text.startswith("invalid regular expression 'def (': missing ), unterminated subpattern")
    assert "regex=false" in text
    assert err(t.run("search_text", {"pattern": ""})) == "pattern is empty; give the text to search for"


def test_search_text_skips_big_files_and_caps_its_matches():
    files = {f"src/f{i:02}.py": "needle\n" * 10 for i in range(20)} | {"huge.log": "needle\n"}
    t = make(files, {}, sizes={"huge.log": tools.SEARCH_MAX_FILE + 1})
    lines = ok(t.run("search_text", {"pattern": "needle"})).splitlines()
    assert lines[0] == "50 matches for 'needle' (6 files searched; skipped 1 over 1 MB)"
    assert len(lines) == 52 and lines[1] == "src/f00.py:1: needle"
    assert lines[-1] == "[stopped at 50 matches; there are more: narrow the pattern or use path_glob]"


def test_search_text_reads_lazily_and_stops_at_the_cap_on_twenty_thousand_files():
    class Counting(DictTree):
        reads = 0

        def read(self, path):
            Counting.reads += 1
            return super().read(path)

    tree = Counting({f"pkg{i % 50}/m{i}.py": f"value = {i}\n" for i in range(20_000)})
    t = RepoTools(tree, sorted((p, len(d)) for p, d in tree.files.items()))
    assert ok(t.run("search_text", {"pattern": "value"})).endswith("narrow the pattern or use path_glob]")
    assert Counting.reads <= tools.SEARCH_MATCHES + 1
    assert ok(t.run("search_text", {"pattern": "nothing like this"})).startswith(
        "0 matches for 'nothing like this' (20,000 files searched)")


def test_a_search_that_would_read_too_much_stops_and_says_so(monkeypatch):
    monkeypatch.setattr(tools, "SEARCH_BYTES", 25)
    t = make({f"f{i}.txt": "0123456789\n" for i in range(5)}, {})
    assert ok(t.run("search_text", {"pattern": "zzz"})) == (
        "0 matches for 'zzz' (3 files searched)\n"
        "[stopped early after 3 files (time or size limit); narrow with path_glob]")


def test_long_matching_lines_are_clipped():
    t = make({"min.js": "a" * 500 + "needle" + "b" * 500}, {})
    line = ok(t.run("search_text", {"pattern": "needle", "path_glob": "*.js"})).splitlines()[1]
    # what was found is shown, with what is around it, and how much was cut on each side
    keep = (tools.MATCH_CHARS - len("needle")) // 2
    assert line == f"min.js:1: [{500 - keep} chars] … " + "a" * keep + "needle" + "b" * keep + f" … [{500 - keep} chars]"
    t = make({"end.js": "c" * 900 + " exited with code 3"}, {})
    line = ok(t.run("search_text", {"pattern": "code", "path_glob": "*.js"})).splitlines()[1]
    assert line.endswith("c exited with code 3") and line.startswith("end.js:1: [")


# --- bad input

@pytest.mark.parametrize("name, given, expected", [
    ("write_file", {"path": "x"}, "unknown tool 'write_file'; the tools are: read_file, list_dir, search_text"),
    (None, {}, "unknown tool None"),
    ("read_file", "src/app.py", "bad input 'src/app.py': read_file takes an object with path (string), "
                                "start_line (integer, optional), end_line (integer, optional)"),
    ("read_file", None, "bad input None: read_file takes an object"),
    ("read_file", {}, "missing path: read_file takes an object with path (string)"),
    ("read_file", {"path": 3}, "path must be a string, not int 3: read_file takes"),
    ("read_file", {"path": "a", "start_line": "2"}, "start_line must be a integer, not str '2'"),
    ("read_file", {"path": "a", "start_line": True}, "start_line must be a integer, not bool True"),
    ("read_file", {"path": "a", "start_line": 1.5}, "start_line must be a integer, not float 1.5"),
    ("read_file", {"path": "a", "start_line": 0}, "start_line must be at least 1, not 0"),
    ("read_file", {"path": "a", "lines": 3}, "unexpected field 'lines': read_file takes"),
    ("list_dir", {"folder": "src"}, "unexpected field 'folder': list_dir takes an object with path (string, optional)"),
    ("list_dir", ["src"], "bad input ['src']: list_dir takes"),
    ("search_text", {"regex": True}, "missing pattern: search_text takes an object with pattern (string), "
                                     "regex (boolean, optional), path_glob (string, optional)"),
    ("search_text", {"pattern": "x", "regex": "yes"}, "regex must be a boolean, not str 'yes'"),
    ("search_text", {"pattern": None}, "pattern must be a string, not NoneType None"),
])
def test_bad_calls_get_an_error_that_says_what_was_expected(name, given, expected):
    assert expected in err(make().run(name, given))


def test_a_failing_tree_is_reported_not_raised():
    class Broken(DictTree):
        def read(self, path):
            raise OSError("disk on fire")

    t = RepoTools(Broken({"a.py": "x"}), [("a.py", 1)])
    assert err(t.run("read_file", {"path": "a.py"})) == "read_file failed: OSError: disk on fire"


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3), max_leaves=8)
inputs = st.fixed_dictionaries({}, optional={"path": st.text(max_size=20) | json_values,
                                             "start_line": st.integers(-5, 10**6) | json_values,
                                             "end_line": st.integers(-5, 10**6) | json_values,
                                             "pattern": st.text(max_size=10) | json_values,
                                             "regex": st.booleans() | json_values,
                                             "path_glob": st.text(max_size=10) | json_values}) | json_values


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(["read_file", "list_dir", "search_text", "nope"]), given_input=inputs)
def test_run_never_raises_and_never_leaks_a_secret(name, given_input):
    text, is_error = make().run(name, given_input)
    assert isinstance(text, str) and text and isinstance(is_error, bool)
    assert "hunter2" not in text and "SECRET key" not in text and "SECRET token" not in text


def test_search_refuses_a_regex_that_can_backtrack_exponentially():
    from gitforge.builders.tools import RepoTools
    from gitforge.patch.tree import DictTree

    tools = RepoTools(DictTree({"a.txt": "a" * 40 + "!\n"}), [("a.txt", 42)])
    text, is_error = tools.run("search_text", {"pattern": "(a+)+$", "regex": True})
    assert is_error and "exponential" in text
    text, is_error = tools.run("search_text", {"pattern": "a{3}!", "regex": True})
    assert not is_error and "a.txt:1" in text
