"""repo_map, mentioned_files, file_context: bounded, deterministic prompt material from a TreeView."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from gitforge import repomap
from gitforge.patch.tree import DictTree
from gitforge.repomap import file_context, mentioned_files, repo_map

PY = b'''"""Doc."""
import os


@decorator
class Parser(Base):
    """A class."""

    def __init__(self):
        pass

    async def feed(self, data):
        def inner():
            pass


def parse(text: str) -> list[str]:  # a comment
    return []


async def fetch(
    url,
):
    pass

CONSTANT = 1
'''
JS = b"export function render(a, b) {\n}\nexport default class App extends Base {\n}\nexport const LIMIT = 3;\n" \
     b"function helper() {}\nconst local = 1;\n"
TS = b"export interface Props {\n}\nexport type Id = string;\nexport async function load(): Promise<void> {}\n"
GO = b"package main\n\nfunc main() {\n}\n\nfunc (s *Server) Serve(addr string) error {\n}\n\ntype Server struct {\n}\n"
RS = b"pub struct Tree {\n}\n\nimpl Tree {\n    pub fn new() -> Self {\n    }\n    fn walk(&self) {}\n}\n\n" \
     b"fn main() {\n}\n"


def small_tree() -> DictTree:
    return DictTree({"README.md": "# demo\nline\n", "src/parser.py": PY, "web/app.js": JS, "web/types.ts": TS,
                     "cmd/main.go": GO, "core/src/lib.rs": RS, "assets/logo.png": b"\x89PNG\0\0data",
                     "src/empty.py": b""})


def file_list(tree: DictTree) -> list[tuple[str, int]]:
    return sorted((p, len(d)) for p, d in tree.files.items())


class CountingReads:
    """A reader that records what it was asked for, to prove the map's reading is bounded."""

    def __init__(self, data: bytes = b"def f():\n    pass\n") -> None:
        self.data = data
        self.calls: list[str] = []

    def __call__(self, path: str) -> bytes:
        self.calls.append(path)
        return self.data


def synthetic(n: int, seed: int = 0) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    tops = ["src/app", "src/vendor/lib", "node_modules/pkg", "tests", "docs", "a/b/c/d/e", "tools"]
    exts = [".py", ".json", ".js", ".md", ""]
    return sorted({(f"{rng.choice(tops)}/m{rng.randrange(80)}/f{i}{rng.choice(exts)}", rng.randrange(10, 90_000))
                   for i in range(n)})


# --- repo_map

def test_a_small_repository_lists_every_file_with_line_counts_and_symbols():
    tree = small_tree()
    out = repo_map(file_list(tree), tree.read)
    assert out.splitlines()[0].startswith("Repository map: 8 files")
    for line in ["README.md  2 lines", "src/", "  parser.py  26 lines", "  empty.py  0 lines", "assets/",
                 "  logo.png  binary, 10 B", "web/", "  app.js  7 lines", "cmd/", "  main.go  10 lines",
                 "core/src/", "  lib.rs  11 lines"]:
        assert line in out.splitlines(), line
    assert "    class Parser(Base)  [__init__, feed]" in out      # methods one level in, not `inner`
    assert "    def parse(text: str) -> list[str]" in out          # no comment, no colon
    assert "    async def fetch(...)" in out                        # unclosed parameter list
    assert "CONSTANT" not in out and "import" not in out
    assert "    export function render(a, b)" in out
    assert "    export default class App extends Base" in out
    assert "    export const LIMIT" in out
    assert "    function helper()" in out and "local" not in out
    assert "    export interface Props" in out and "    export type Id" in out
    assert "    func main()" in out and "    func (s *Server) Serve(addr string) error" in out
    assert "    type Server struct" in out
    assert "    impl Tree  [new, walk]" in out and "    pub struct Tree" in out and "    fn main()" in out
    assert "summarized" not in out  # nothing collapsed: the legend does not mention list_dir


def test_the_map_is_deterministic_whatever_the_order_of_the_file_list():
    tree = small_tree()
    files = file_list(tree)
    shuffled = files[::-1]
    assert repo_map(files, tree.read) == repo_map(shuffled, tree.read)


def test_a_binary_source_file_is_not_searched_for_symbols():
    tree = DictTree({"weird.py": b"def hidden():\0\n"})
    out = repo_map(file_list(tree), tree.read)
    assert "weird.py  binary" in out and "hidden" not in out


def test_twenty_thousand_files_collapse_into_folder_summaries_within_the_limit():
    files = synthetic(20_000)
    reads = CountingReads()
    out = repo_map(files, reads, limit=12_000)
    assert len(out) <= 12_000
    assert out.startswith("Repository map: 20,000 files")
    assert "call list_dir" in out.splitlines()[0]
    summaries = [line for line in out.splitlines() if line.endswith("]") and "/  [" in line]
    assert summaries, out[:2000]
    assert any("files: " in s and ".py" in s for s in summaries)
    assert len(reads.calls) <= repomap.MAX_READ_FILES
    assert all(not p.endswith((".json", ".md")) for p in reads.calls[:10])  # source files are read first


def test_shallow_structure_is_shown_before_deep_folders():
    files = synthetic(20_000, seed=3)
    out = repo_map(files, CountingReads(), limit=3_000)
    lines = out.splitlines()
    assert any(line.startswith("node_modules/") for line in lines)
    assert any(line.startswith("tools/") for line in lines)
    assert not any(line.startswith("a/b/c/d/e/m") for line in lines)


def test_large_files_are_shown_by_size_and_not_read():
    files = [("big.py", repomap.MAX_FILE_READ + 1), ("small.py", 10)]
    reads = CountingReads()
    out = repo_map(files, reads)
    assert reads.calls == ["small.py"]
    assert "big.py  250.0 KB" in out and "small.py  2 lines" in out


def test_a_crowded_folder_lists_its_first_files_and_summarizes_the_rest():
    files = [(f"f{i:04}.json", 5) for i in range(repomap.MAX_LISTED + 30)]
    out = repo_map(files, CountingReads(b"{}"), limit=50_000)
    assert "… 30 more here [30 files: 30 .json]" in out
    assert "f0000.json" in out and f"f{repomap.MAX_LISTED:04}.json" not in out


def test_when_even_the_top_level_does_not_fit_the_map_is_cut_with_a_note():
    files = [(f"file_with_a_long_name_{i}.txt", 5) for i in range(80)]
    out = repo_map(files, CountingReads(b"x\n"), limit=1_000)
    assert len(out) <= 1_000
    assert out.endswith("call list_dir to see more)")


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 400), limit=st.integers(0, 4_000), seed=st.integers(0, 9))
def test_the_map_never_exceeds_its_limit(n, limit, seed):
    out = repo_map(synthetic(n, seed), CountingReads(PY), limit=limit)
    assert len(out) <= limit


# --- mentioned_files

PATHS = ["src/parser.py", "src/util/io.py", "lib/io.py", "Makefile", "notes", "docs/guide.md", ".env.example"]


def test_exact_paths_and_unique_names_in_order_of_first_mention():
    text = ("Fix `parser.py` so that docs/guide.md is right (see src/parser.py:12 and ./docs/guide.md). "
            "Also touch the Makefile, and src/util/io.py.")
    assert mentioned_files(text, PATHS) == ["src/parser.py", "docs/guide.md", "Makefile", "src/util/io.py"]


def test_ambiguous_names_and_plain_words_do_not_count():
    assert mentioned_files("change io.py and write some notes", PATHS) == []
    assert mentioned_files("copy .env.example, then b/lib/io.py.", PATHS) == [".env.example", "lib/io.py"]
    assert mentioned_files("src/parser.pyc and xsrc/parser.py", PATHS) == []
    assert mentioned_files("", PATHS) == []


# --- file_context

def test_files_are_shown_raw_in_fences_with_a_header():
    tree = DictTree({"a.py": "x = 1\ny = 2\n", "b.txt": "no newline", "md.md": "```py\ncode\n```\n",
                     "img.bin": b"\0\1", "a.py.orig": "z\n"})
    out = file_context(["a.py", "b.txt", "md.md", "img.bin", "gone.py", "a.py"], tree.read)
    assert "a.py  (2 lines)\n```\nx = 1\ny = 2\n```" in out
    assert "b.txt  (1 line, no newline at end of file)\n```\nno newline\n```" in out
    assert "md.md  (3 lines)\n````\n```py\ncode\n```\n````" in out
    assert "img.bin: binary file, 2 bytes (not shown)" in out
    assert "gone.py: not in the repository at the base commit (skipped)" in out
    assert out.count("a.py  (2 lines)") == 1
    assert "1\tx" not in out


def test_past_the_limit_a_file_is_cut_at_a_line_and_the_rest_are_named():
    big = "".join(f"line {i}\n" for i in range(1, 2_001))
    tree = DictTree({"big.py": big, "later.py": "x\n" * 600, "last.py": "y\n" * 600, "tiny.py": "z\n"})
    out = file_context(["big.py", "later.py", "last.py", "tiny.py"], tree.read, limit=5_000)
    assert len(out) <= 5_000
    assert "big.py  (2,000 lines)" in out
    cut = out.split("[truncated after line ")[1]
    shown = int(cut.split(" ")[0])
    assert f"line {shown}\n" in out and f"line {shown + 1}\n" not in out
    assert f"call read_file with path='big.py' and start_line={shown + 1}]" in out
    assert out.endswith("(call read_file for them): later.py, last.py, tiny.py")  # in order, after the first miss


@settings(max_examples=50, deadline=None)
@given(sizes=st.lists(st.integers(0, 3_000), max_size=6), limit=st.integers(0, 8_000))
def test_file_context_never_exceeds_its_limit(sizes, limit):
    tree = DictTree({f"f{i}.txt": "ab\n" * n for i, n in enumerate(sizes)})
    assert len(file_context(list(tree.files), tree.read, limit=limit)) <= limit
