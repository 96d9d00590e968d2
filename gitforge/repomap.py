"""What the builder's prompt shows of a repository: a bounded map, and the files it needs in full.

Pure: files are read through `read(path)` (a TreeView's `read`) and the tracked file list, so the
prompt describes the base commit the diff applies to. Big repositories degrade to folder summaries
instead of blowing the prompt, and only a bounded number of files are ever read.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

Reader = Callable[[str], "bytes | None"]
Info = tuple[str, tuple[str, ...]]  # a shown file's label ("12 lines") and its symbol lines

MAX_READ_FILES = 300          # files read for line counts and symbols, per map
MAX_READ_BYTES = 3_000_000    # bytes read for them, in total
MAX_FILE_READ = 256_000       # bigger files are shown by size only
MAX_LISTED = 100              # files listed in one folder before "… N more"
MAX_SYMBOLS = 40              # symbol lines per file
_LABEL_W = 12                 # width reserved for "12,345 lines" while planning the layout
_LEGEND = "Repository map: {n:,} files, {size}. Folders end in '/'; files are indented under their folder{c}."
_COLLAPSED = "; a folder shown as 'path/  [N files: …]' is summarized (call list_dir to look inside)"
_TRUNCATED = "… (map truncated to fit; call list_dir to see more)"

_LANG = {".py": "py", ".pyi": "py", ".js": "js", ".jsx": "js", ".mjs": "js", ".cjs": "js", ".ts": "js",
         ".tsx": "js", ".go": "go", ".rs": "rs"}
_RS_PREFIX = r"(?:pub(?:\([^)]*\))?\s+)?(?:(?:async|unsafe|const)\s+)*"
_TOP = {"py": re.compile(r"(?:async\s+def|def|class)\s+\w+"),
        "js": re.compile(r"(?:export\s+(?:default\s+)?)?(?:declare\s+)?(?:async\s+)?"
                         r"(?:function\*?|(?:abstract\s+)?class|interface|enum|type)\s+[\w$]+"
                         r"|export\s+(?:const|let|var)\s+[\w$]+"),
        "go": re.compile(r"func\s+(?:\([^)]*\)\s*)?\w+|type\s+\w+\s+(?:struct|interface)\b"),
        "rs": re.compile(_RS_PREFIX + r"(?:fn|struct|enum|trait|impl|type|mod)\b")}
# members one level in, listed on the line of the container they follow (a Python class, a Rust impl/trait)
_MEMBER = {"py": re.compile(r"(?: {4}|\t)(?:async\s+)?def\s+(\w+)"),
           "rs": re.compile(r"(?: {4}|\t)" + _RS_PREFIX + r"fn\s+(\w+)")}
_CONTAINER = re.compile(r"class\b|(?:pub\s+)?(?:unsafe\s+)?(?:impl|trait)\b")
_KEEPS_CONTAINER = ("@", "#", "//", ")", "/*", "*")   # col-0 lines that do not end a class body


@dataclass
class _Dir:
    path: str                  # "" for the root, else "a/b/"
    depth: int
    files: list[tuple[str, int]] = field(default_factory=list)   # direct children
    subdirs: list[str] = field(default_factory=list)
    count: int = 0
    exts: Counter[str] = field(default_factory=Counter)           # recursive


def human_size(n: int) -> str:
    """Sizes as people read them; exact bytes only matter below a kilobyte."""
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


def is_binary(data: bytes) -> bool:
    """git's own test: a NUL byte in the first 8 KB."""
    return b"\0" in data[:8192]


def count_lines(data: bytes) -> int:
    """Lines as a diff counts them: a last line without a newline still counts."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def plural(n: int, word: str) -> str:
    """`1 line`, `2 lines`, `3 matches`: the model reads these, so they should read right."""
    return f"{n:,} {word}" + ("" if n == 1 else "es" if word.endswith(("s", "x", "ch", "sh")) else "s")


def repo_map(files: Sequence[tuple[str, int]], read: Reader, limit: int = 12_000) -> str:
    """A deterministic outline of the repository that fits in `limit` characters.

    The layout is planned from paths and sizes alone (shallow folders expanded first, the rest
    summarized), then a bounded number of shown files are read for line counts and symbols, and
    budget left over expands more folders: structure first, because the model can read files.
    """
    files = sorted(files)
    dirs = _build(files)
    summaries = {p: f"{p}  [{_kinds(d.count, d.exts)}]" for p, d in dirs.items()}
    size = human_size(sum(s for _, s in files))
    budget = limit - len(_LEGEND.format(n=len(files), size=size, c=_COLLAPSED)) - len(_TRUNCATED) - 2
    expanded = {""}
    used = _own_cost(dirs[""], summaries)
    used += _expand(dirs, summaries, expanded, int(budget * 0.7) - used)
    infos = _read_some([f for p in expanded for f in dirs[p].files[:MAX_LISTED]], read)
    with_symbols: set[str] = set()
    for path, (_, symbols) in infos.items():  # in reading priority: source first, shallow first
        cost = sum(len(s) + 5 for s in symbols)
        if cost and used + cost <= budget:
            with_symbols.add(path)
            used += cost
    _expand(dirs, summaries, expanded, budget - used)
    head = _LEGEND.format(n=len(files), size=size, c=_COLLAPSED if len(expanded) < len(dirs) else "")
    return _fit([head, *_render(dirs, summaries, expanded, infos, with_symbols)], limit, _TRUNCATED)


def _build(files: Sequence[tuple[str, int]]) -> dict[str, _Dir]:
    """Every folder with its direct files, subfolders, and recursive count by extension."""
    dirs = {"": _Dir("", 0)}
    for path, size in files:
        ext = _ext(path)
        node = dirs[""]
        node.count += 1
        node.exts[ext] += 1
        prefix = ""
        for i, part in enumerate(path.split("/")[:-1]):
            prefix += part + "/"
            child = dirs.get(prefix)
            if child is None:
                child = dirs[prefix] = _Dir(prefix, i + 1)
                node.subdirs.append(prefix)
            child.count += 1
            child.exts[ext] += 1
            node = child
        node.files.append((path, size))
    for d in dirs.values():
        d.subdirs.sort()
    return dirs


def _ext(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def _kinds(count: int, exts: Counter[str]) -> str:
    """`312 files: 200 .py, 112 .json`, naming the three commonest extensions."""
    top = [(e, c) for e, c in exts.most_common() if e][:3]
    rest = count - sum(c for _, c in top)
    return plural(count, "file") + ": " + ", ".join([f"{c:,} {e}" for e, c in top] + [f"{rest:,} other"] * bool(rest))


def _more(files: list[tuple[str, int]], indent: str) -> str:
    rest = files[MAX_LISTED:]
    return f"{indent}… {len(rest):,} more here [{_kinds(len(rest), Counter(_ext(p) for p, _ in rest))}]"


def _own_cost(d: _Dir, summaries: dict[str, str]) -> int:
    """Characters the folder takes once expanded: header, listed files, subfolder summaries."""
    indent = 2 if d.path else 0
    cost = len(d.path) + 1 if d.path and d.files else 0
    cost += sum(indent + len(p) - p.rfind("/") + 2 + _LABEL_W for p, _ in d.files[:MAX_LISTED])
    if len(d.files) > MAX_LISTED:
        cost += len(_more(d.files, " " * indent)) + 1
    return cost + sum(len(summaries[s]) + 1 for s in d.subdirs)


def _expand(dirs: dict[str, _Dir], summaries: dict[str, str], expanded: set[str], budget: int) -> int:
    """Expand collapsed folders, shallowest first, while they fit; returns the characters used."""
    frontier = [(dirs[s].depth, s) for e in expanded for s in dirs[e].subdirs if s not in expanded]
    heapq.heapify(frontier)
    used = 0
    while frontier:
        _, path = heapq.heappop(frontier)
        delta = _own_cost(dirs[path], summaries) - len(summaries[path]) - 1
        if used + delta <= budget:
            expanded.add(path)
            used += delta
            for s in dirs[path].subdirs:
                heapq.heappush(frontier, (dirs[s].depth, s))
    return used


def _read_some(shown: list[tuple[str, int]], read: Reader) -> dict[str, Info]:
    """Line counts and symbols for a bounded set of the shown files: source, then non-test, then shallow."""
    order = sorted(shown, key=lambda f: (_ext(f[0]) not in _LANG, "test" in f[0], f[0].count("/"), f[0]))
    infos: dict[str, Info] = {}
    total = 0
    for path, size in order[:MAX_READ_FILES]:
        data = read(path) if size <= MAX_FILE_READ and total < MAX_READ_BYTES else None
        if data is None:
            continue
        total += len(data)
        lang = _LANG.get(_ext(path))
        infos[path] = (f"binary, {human_size(len(data))}", ()) if is_binary(data) else (
            plural(count_lines(data), "line"), _symbols(data.decode("utf-8", "replace"), lang) if lang else ())
    return infos


def _symbols(text: str, lang: str) -> tuple[str, ...]:
    """Top-level definitions by regex; members are named on their container's line."""
    top, member = _TOP[lang], _MEMBER.get(lang)
    found: list[list[str]] = []   # [signature, member names...]
    container: list[str] | None = None
    for line in text.splitlines():
        if not line or line[0] in " \t":
            if member and container is not None and (m := member.match(line)):
                container.append(m[1])
        elif m := top.match(line):
            found.append([_signature(line, m[0])])
            container = found[-1] if _CONTAINER.match(line) else None
        elif not line.startswith(_KEEPS_CONTAINER):
            container = None
    out = [s[0] + (f"  [{', '.join(s[1:16])}{', …' * (len(s) > 16)}]" if len(s) > 1 else "") for s in found]
    return tuple(out[:MAX_SYMBOLS] + [f"… {len(out) - MAX_SYMBOLS} more definitions"] * (len(out) > MAX_SYMBOLS))


def _signature(line: str, head: str) -> str:
    """The definition line without comment or body opener, cut short; an unclosed `(` becomes `(...)`."""
    if re.match(r"export\s+(?:const|let|var)\b", head):
        return head
    sig = re.sub(r"\s*[:{]?\s*$", "", re.sub(r"\s+(?:#|//).*$", "", line.strip()))
    if sig.count("(") > sig.count(")"):
        sig = sig[:sig.index("(")] + "(...)"
    return sig if len(sig) <= 100 else sig[:99] + "…"


def _render(dirs: dict[str, _Dir], summaries: dict[str, str], expanded: set[str], infos: dict[str, Info],
            with_symbols: set[str]) -> list[str]:
    out: list[str] = []

    def walk(d: _Dir) -> None:
        indent = "  " if d.path else ""
        if d.path and d.files:
            out.append(d.path)
        for path, size in d.files[:MAX_LISTED]:
            label, symbols = infos.get(path, (human_size(size), ()))
            out.append(f"{indent}{path.rsplit('/', 1)[-1]}  {label}")
            out.extend(f"{indent}  {s}" for s in symbols if path in with_symbols)
        if len(d.files) > MAX_LISTED:
            out.append(_more(d.files, indent))
        for s in d.subdirs:
            walk(dirs[s]) if s in expanded else out.append(summaries[s])

    walk(dirs[""])
    return out


def _fit(lines: list[str], limit: int, note: str) -> str:
    """Whole lines up to `limit` characters; when some are dropped, `note` says so (within the limit)."""
    if sum(len(line) + 1 for line in lines) - 1 <= limit:
        return "\n".join(lines)
    total, kept = len(note), 0
    while kept < len(lines) and total + len(lines[kept]) + 1 <= limit:
        total, kept = total + len(lines[kept]) + 1, kept + 1
    return "\n".join([*lines[:kept], note])[:limit]


_TOKEN = re.compile(r"[^\s`'\"()<>\[\]{},;:*|]+")


def mentioned_files(text: str, paths: Iterable[str]) -> list[str]:
    """Repository paths a task description names, in order of first mention: exact paths (also as
    `./path`, or `a/path` / `b/path` from a diff) and file names only one path has (`parser.py`).
    Names without a dot count only when capitalized (`Makefile`), so ordinary words never match."""
    paths = list(paths)
    exact = set(paths)
    by_name: dict[str, list[str]] = {}
    for p in paths:
        by_name.setdefault(p.rsplit("/", 1)[-1], []).append(p)
    found: dict[str, None] = {}
    for m in _TOKEN.finditer(text):
        token = m[0].rstrip(".!?")
        token = token[2:] if token.startswith("./") else token
        if "/" not in token and not ("." in token[1:] or token[:1] == "." or token[:1].isupper()):
            continue  # a plain word, even if a file at the root has that name
        if token in exact:
            found.setdefault(token)
        elif token[:2] in ("a/", "b/") and token[2:] in exact:
            found.setdefault(token[2:])
        elif len(by_name.get(token, ())) == 1:
            found.setdefault(by_name[token][0])
    return list(found)


def file_context(paths: Iterable[str], read: Reader, limit: int = 60_000) -> str:
    """The files' raw contents, fenced, for the model to write a diff against (no line numbers: it
    would copy them). Binary and missing files get a one-line note; past `limit`, the last file
    shown is cut at a line and the rest are named with a pointer to `read_file`."""
    blocks: list[str] = []
    omitted: list[str] = []
    used = 0
    for path in dict.fromkeys(paths):
        room = limit - used - 400  # kept for the note naming omitted files
        data = read(path) if not omitted and room > 0 else b"\0"
        if omitted or room <= 0:
            block: str | None = None  # keep the caller's order: nothing after the first file left out
        elif data is None:
            block = f"{path}: not in the repository at the base commit (skipped)"
        elif is_binary(data):
            block = f"{path}: binary file, {len(data):,} bytes (not shown)"
        else:
            block = _fenced(path, data, room)
        if block is None or len(block) > room:
            omitted.append(path)
        else:
            blocks.append(block)
            used += len(block) + 2
    if omitted:
        note = "Not shown, to stay within the context limit (call read_file for them): " + ", ".join(omitted)
        room = max(0, limit - used)
        blocks.append(note if len(note) <= room else note[:max(0, room - 1)] + "…")
    return "\n\n".join(blocks)[:limit]


def _fenced(path: str, data: bytes, room: int) -> str | None:
    """One file as a header and a fenced block; cut at a line boundary to fit `room`, or None."""
    text = data.decode("utf-8", "replace")
    n = count_lines(data)
    fence = "`" * max([3, *(len(r) + 1 for r in re.findall(r"`{3,}", text))])
    ends = text.endswith("\n") or not text
    head = f"{path}  ({plural(n, 'line')}{'' if ends else ', no newline at end of file'})\n{fence}\n"
    body = text if ends else text + "\n"
    if len(head) + len(body) + len(fence) <= room:
        return head + body + fence
    if room < 1_000:
        return None
    kept, size = [], len(head) + len(fence) + 200
    for i, line in enumerate(re.findall(r"[^\n]*\n", body)):
        if size + len(line) > room:
            note = f"[truncated after line {i:,} of {n:,}: call read_file with path='{path}' and start_line={i + 1}]"
            return head + "".join(kept) + fence + "\n" + note
        kept.append(line)
        size += len(line)
    return head + "".join(kept) + fence
