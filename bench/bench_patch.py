#!/usr/bin/env python3
"""gitforge's patch engine on real release-to-release diffs of PyPI packages, next to `git apply`,
`git apply -C1` and GNU `patch --fuzz=2`: identical results on clean diffs, throughput, and success
on the damaged copies that bench/damage.py makes. Stdlib and gitforge only; the sdists are cached
under ~/.cache/gitforge-bench ($GITFORGE_BENCH_CACHE); everything else lives in a temporary folder.

    python bench/bench_patch.py [--out docs/patch-engine.md] [--quick] [--repros DIR]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import importlib.metadata
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import damage  # noqa: E402

from gitforge.errors import PatchRefused  # noqa: E402
from gitforge.patch import DictTree, apply_patches, parse_patch  # noqa: E402

PAIRS = [("requests", "2.31.0", "2.32.0"), ("click", "8.1.7", "8.1.8"), ("attrs", "23.1.0", "23.2.0"),
         ("packaging", "23.2", "24.0"), ("packaging", "24.0", "24.1"), ("idna", "3.6", "3.7"),
         ("six", "1.15.0", "1.16.0")]
QUICK_PAIRS = [("attrs", "23.1.0", "23.2.0"), ("six", "1.15.0", "1.16.0")]
SEED, VARIANTS = 20240603, 6  # VARIANTS: modified files per pair also diffed as CRLF and as no-final-newline copies
CACHE = Path(os.environ.get("GITFORGE_BENCH_CACHE", "~/.cache/gitforge-bench")).expanduser()
TOOLS = {"gitforge": None, "git apply": ["git", "apply"], "git apply -C1": ["git", "apply", "-C1"],
         "patch --fuzz=2": ["patch", "-p1", "--fuzz=2", "--batch", "--no-backup-if-mismatch", "-i"]}
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "GIT_CONFIG_NOSYSTEM": "1",
       "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_ATTR_NOSYSTEM": "1"}  # HOME and a ceiling: set in main()


@dataclass
class Case:
    name: str
    path: str
    pre: bytes | None  # None: no such file before (after, for post)
    post: bytes | None
    diff: str  # decoded with surrogateescape, so any bytes survive


def sdist(pkg: str, version: str) -> Path:
    """The release's sdist, downloaded once into the cache and checked against PyPI's sha256."""
    meta = json.load(urllib.request.urlopen(f"https://pypi.org/pypi/{pkg}/json", timeout=60))
    info = next(f for f in meta["releases"][version] if f["packagetype"] == "sdist")
    path, digest = CACHE / info["filename"], info["digests"]["sha256"]
    if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
        url = info["url"]  # some mirrors answer with a relative URL
        if not url.startswith("https://"):
            url = "https://files.pythonhosted.org/packages/" + re.search(r"packages/(\w\w/\w\w/\w+/[^/]+)$", url)[1]
        data = urllib.request.urlopen(url, timeout=120).read()
        assert hashlib.sha256(data).hexdigest() == digest, f"{url}: sha256 mismatch"
        CACHE.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return path


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def tree(path: str, data: bytes | None) -> dict[str, bytes]:
    return {path: data} if data is not None else {}


def build_corpus(pairs, tmp: Path) -> tuple[list[Case], list[list]]:
    """Per-file `git diff`s of each pair, plus CRLF and no-final-newline copies of a few files."""
    cases, rows = [], []
    for pkg, old, new in pairs:
        work = tmp / f"{pkg}-{old}-{new}"
        for side, version in (("a", old), ("b", new)):
            with tarfile.open(sdist(pkg, version)) as tar:
                tar.extractall(work / "x", filter="data")
            (top,) = (work / "x").iterdir()
            top.rename(work / side)
        a, b = files(work / "a"), files(work / "b")
        modified = [p for p in sorted(a.keys() & b.keys()) if a[p] != b[p] and b"\0" not in a[p] + b[p]
                    and b"\r" not in a[p] + b[p]]
        rng = random.Random(f"{SEED}/{pkg}/{old}")
        copies = [("crlf", p, a[p].replace(b"\n", b"\r\n"), b[p].replace(b"\n", b"\r\n"))
                  for p in rng.sample(modified, min(VARIANTS, len(modified)))]
        copies += [("noeol", p, a[p].rstrip(b"\n"), b[p].rstrip(b"\n") + b"\nlast line")  # ends with the marker
                   for p in rng.sample(modified, min(VARIANTS, len(modified)))]
        for folder, p, before, after in copies:
            for side, data in (("a", before), ("b", after)):
                (work / side / folder / p).parent.mkdir(parents=True, exist_ok=True)
                (work / side / folder / p).write_bytes(data)
        a, b = files(work / "a"), files(work / "b")
        out = subprocess.run(["git", "diff", "--no-index", "--no-prefix", "--no-renames", "a", "b"],
                             cwd=work, env=ENV, capture_output=True).stdout.decode("utf-8", "surrogateescape")
        counts = collections.Counter()
        for chunk in re.split(r"^(?=diff --git )", out, flags=re.M)[1:]:
            first, rest = chunk.split("\n", 1)
            names = first[len("diff --git "):]  # "a/P b/P" (or b/P b/P, a/P a/P: one side is /dev/null)
            path = names[2:2 + (len(names) - 5) // 2]
            if "\nBinary files " in "\n" + rest.split("\n@@", 1)[0] or '"' in first or "\n@@ " not in rest:
                continue  # binary, a quoted name, or a mode change alone
            kind = ("copies" if path.split("/")[0] in ("crlf", "noeol") else "added" if path not in a
                    else "deleted" if path not in b else "modified")
            counts.update({kind: 1, "lines": sum(line[:1] in "+-" for line in rest.split("\n")) - 2})
            cases.append(Case(f"{pkg} {old}..{new}: {path}", path, a.get(path), b.get(path),
                              f"diff --git a/{path} b/{path}\n{rest}"))
        rows.append([pkg, old, new] + [counts[k] for k in ("modified", "added", "deleted", "copies", "lines")])
    return cases, rows


def run_gitforge(diff: str, path: str, pre: bytes | None) -> tuple[str, dict[str, bytes] | str]:
    """("applied", the tree after), ("refused", why) or ("crashed", the traceback)."""
    try:
        changes = apply_patches(parse_patch(diff), DictTree(tree(path, pre)))
    except PatchRefused as e:
        return "refused", "\n".join([e.message] + e.reasons)
    except Exception:  # noqa: BLE001 - a bug in the engine, reported as such
        return "crashed", traceback.format_exc(limit=-3)
    after = tree(path, pre)
    for c in changes:
        after.pop(c.old_path or c.path, None)
        after.update(tree(c.path, c.data))
    return "applied", after


def run_tool(cmd: list[str], diff: str, path: str, pre: bytes | None, tmp: Path) -> tuple[str, object, float]:
    """A command run on the patch file in a scratch folder holding the preimage; and its seconds."""
    scratch = Path(tempfile.mkdtemp(dir=tmp))
    (scratch / "patch.diff").write_bytes(diff.encode("utf-8", "surrogateescape"))
    (scratch / "tree" / path).parent.mkdir(parents=True)
    if pre is not None:
        (scratch / "tree" / path).write_bytes(pre)
    start = time.perf_counter()
    proc = subprocess.run(cmd + [str(scratch / "patch.diff")], cwd=scratch / "tree", env=ENV, capture_output=True)
    seconds = time.perf_counter() - start
    result = ("applied", files(scratch / "tree")) if proc.returncode == 0 else (
        "refused", (proc.stderr or proc.stdout).decode(errors="replace")[-300:])
    shutil.rmtree(scratch)
    return (*result, seconds)


def save_repro(root: Path, label: str, diff: str, path: str, pre, expected, got) -> str:
    """patch.diff, tree/<path> (the preimage), expected, got; returns the folder's name."""
    folder = root / re.sub(r"[^\w.-]+", "-", label)[:80]
    (folder / "tree" / path).parent.mkdir(parents=True, exist_ok=True)
    (folder / "patch.diff").write_bytes(diff.encode("utf-8", "surrogateescape"))
    if pre is not None:
        (folder / "tree" / path).write_bytes(pre)
    for name, value in (("expected", expected), ("got", got)):
        value = value.get(path, value) if isinstance(value, dict) and len(value) < 2 else value
        data = value if isinstance(value, bytes) else f"<{value}>\n".encode("utf-8", "surrogateescape")
        (folder / name).write_bytes(data)  # <{}>: no file; <{'x': ...}>: another file; <why>: refused
    return folder.name


def pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "-"


def clean(cases: list[Case], tmp: Path, repros: Path) -> tuple[list[str], int]:
    """Every clean diff through gitforge and `git apply`: the same files, byte for byte?"""
    same, out = 0, []
    for c in cases:
        got = run_gitforge(c.diff, c.path, c.pre)
        status, after, _ = run_tool(TOOLS["git apply"], c.diff, c.path, c.pre, tmp)
        if got == (status, after) or (got[0] == status != "applied"):
            same += 1
            continue
        folder = save_repro(repros, f"clean-{len(out) + 1}-{c.path}", c.diff, c.path, c.pre, after, got[1])
        why = f"gitforge {got[0]}, git apply {status}" + (f": {got[1]}" if got[0] != "applied" else "")
        out.append(f"- {c.name}: {why.splitlines()[0][:200]} (`{folder}`)")
    return [f"**{same} of {len(cases)} ({pct(same, len(cases))})** per-file diffs gave byte-identical "
            "files with gitforge (in memory) and `git apply` (in a scratch folder)."] + (
        ["", "Not identical:", ""] + out if out else []), same


def throughput(cases: list[Case], rounds: int, tmp: Path) -> tuple[list[str], float]:
    """gitforge's parse + apply in process against `git apply` in a subprocess per diff, best of `rounds`."""
    git_seconds = min(sum(run_tool(TOOLS["git apply"], c.diff, c.path, c.pre, tmp)[2] for c in cases)
                      for _ in range(rounds))
    prepared = [(c.diff, DictTree(tree(c.path, c.pre))) for c in cases]
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for diff, tree_ in prepared:
            try:
                apply_patches(parse_patch(diff), tree_)
            except Exception:  # noqa: BLE001,S110 - counted by clean()
                pass
        best = min(best, time.perf_counter() - start)
    n = len(cases)
    return ["| | diffs | seconds | diffs/s |", "| --- | ---: | ---: | ---: |",
            f"| gitforge: parse + apply in memory (best of {rounds}) | {n} | {best:.3f} | {n / best:,.0f} |",
            f"| `git apply`: one subprocess per diff (best of {rounds}) | {n} | {git_seconds:.3f} | "
            f"{n / git_seconds:,.0f} |", "",
            f"gitforge has **{git_seconds / best:.1f}x** the throughput of `git apply` in a subprocess (the "
            "time of the subprocess alone; writing the scratch files is not counted)."], git_seconds / best


def cell(n: collections.Counter, best: int) -> str:
    """`92.1%, 3 wrong (1 no-op), 2 crashed`, the rate in bold if it is the best of its row."""
    rate = pct(n["correct"], n["cases"])
    text = (f"**{rate}**" if best and n["correct"] == best else rate) + f", {n['wrong']} wrong"
    return text + (f" ({n['no-op']} no-op)" if n["no-op"] else "") + (f", {n['crashed']} crashed" if n["crashed"] else "")


def damaged(cases: list[Case], tmp: Path, repros: Path) -> tuple[list[str], dict]:
    """Each damage of bench/damage.py on every diff it applies to, through the four tools."""
    stats = {kind: {tool: collections.Counter() for tool in TOOLS} for kind in damage.KINDS}
    wrong, refused = collections.defaultdict(list), collections.defaultdict(collections.Counter)
    saved = collections.Counter()  # cases saved per kind
    for kind, fn in damage.KINDS.items():
        print(f"bench: damage: {kind}", file=sys.stderr)
        for c in cases:
            made = fn(c.diff, c.pre, random.Random(f"{SEED}/{kind}/{c.name}"))
            if made is None or made == (c.diff, c.pre):
                continue
            diff, pre = made
            expected = tree(c.path, damage.expected_postimage(c.diff, c.pre, pre, c.post))
            outcome, got = {}, None
            for tool in TOOLS:
                status, after = (run_gitforge(diff, c.path, pre) if TOOLS[tool] is None
                                 else run_tool(TOOLS[tool], diff, c.path, pre, tmp)[:2])
                outcome[tool] = status if status != "applied" else "correct" if after == expected else "wrong"
                stats[kind][tool].update([outcome[tool], "cases"] + ["no-op"] * (after == tree(c.path, pre)))
                got = after if tool == "gitforge" else got
            others = [tool for tool in TOOLS if outcome[tool] == "correct"]
            if outcome["gitforge"] in ("wrong", "crashed") or (others and outcome["gitforge"] == "refused"):
                saved[kind] += 1
                folder = save_repro(repros, f"{outcome['gitforge']}-{kind}-{saved[kind]}", diff, c.path, pre,
                                    expected, got)
                if outcome["gitforge"] == "refused":
                    refused[kind].update(others + ["gitforge"])
                else:
                    wrong[kind].append(f"{c.name} (`{folder}`)")
    tools, total = list(TOOLS), {tool: collections.Counter() for tool in TOOLS}
    out = ["| damage | cases | " + " | ".join(tools) + " |", "| --- | ---: |" + " ---: |" * len(tools)]
    for kind, row in list(stats.items()) + [("**all**", total)]:
        for tool in tools:
            total[tool].update(row[tool] if row is not total else {})
        best = max(row[t]["correct"] for t in tools)
        out.append(f"| {kind} | {row[tools[0]]['cases']} | " + " | ".join(cell(row[t], best) for t in tools) + " |")
    out += ["", "Each cell: the share applied correctly (the intended file, byte for byte, and no other file), "
            "and how many were applied wrongly (success reported, a different result; *no-op*: the file left "
            "as it was). The rest were refused. Bold: the best of the row.", "",
            "### gitforge applied wrongly or crashed", ""]
    out += [f"- {kind}: {len(names)}, e.g. " + "; ".join(names[:3]) for kind, names in wrong.items()] or ["None."]
    out += ["", "### Refused by gitforge, applied correctly by another tool", ""]
    out += [f"- {kind}: {counts['gitforge']} (" + ", ".join(f"{t} {counts[t]}" for t in tools[1:] if counts[t]) + ")"
            for kind, counts in refused.items()] or ["None."]
    return out, total


def machine() -> list[str]:
    def first_line(*cmd: str) -> str:
        out = subprocess.run(cmd, cwd=Path(__file__).resolve().parent, capture_output=True, text=True).stdout
        return (out.splitlines() or ["not a git checkout"])[0]
    return [f"- nproc: {os.cpu_count()}", f"- Python {platform.python_version()} ({sys.executable})",
            f"- {first_line('git', '--version')}, {first_line('patch', '--version')}",
            f"- gitforge {importlib.metadata.version('gitforge')} ({first_line('git', 'describe', '--always', '--dirty')})",
            f"- {platform.system()} {platform.release()} {platform.machine()}"]


INTRO = """Per-file `git diff --no-renames` between the sdists of consecutive releases on PyPI (text files
only; *copies*: in each pair {n} modified files are also diffed as CRLF copies under `crlf/` and {n} as
copies without the final newline, and with a line added at the end, under `noeol/`)."""
DAMAGED = """Copies of the same diffs, damaged the ways language models damage them (`bench/damage.py`,
seed {seed}). A damage is used only where it applies: a `\\ No newline` marker is dropped only where the
file lacks the final newline before and after; lines are inserted above a hunk only where it starts with
context. Where the damage changes the file too (drift, CRLF), the intended result is the release's file
with the same change. Each tool runs on the damaged diff and file: gitforge in memory, `git apply`,
`git apply -C1` and `patch -p1 --fuzz=2 --batch --no-backup-if-mismatch` in a scratch folder."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="also write the report to this file")
    ap.add_argument("--quick", action="store_true", help="two small release pairs, one timing round")
    ap.add_argument("--repros", type=Path, default=Path(tempfile.gettempdir()) / "bench-repros",
                    help="where the cases gitforge got wrong, or refused, are saved (default: %(default)s)")
    args = ap.parse_args()
    began = time.perf_counter()
    args.repros.mkdir(parents=True, exist_ok=True)
    for old in args.repros.iterdir():  # the cases this script saved last time
        if re.match(r"(clean|wrong|crashed|refused)-", old.name) and (old / "patch.diff").exists():
            shutil.rmtree(old)
    with tempfile.TemporaryDirectory(prefix="gitforge-bench-") as t:
        ENV.update(HOME=t, GIT_CEILING_DIRECTORIES=t)
        cases, rows = build_corpus(QUICK_PAIRS if args.quick else PAIRS, Path(t))
        print(f"bench: {len(cases)} per-file diffs", file=sys.stderr)
        identity, same = clean(cases, Path(t), args.repros)
        speed, ratio = throughput(cases, 1 if args.quick else 3, Path(t))
        broken, total = damaged(cases, Path(t), args.repros)
    rate = {tool: total[tool]["correct"] / max(1, total[tool]["cases"]) for tool in TOOLS}
    command = " ".join(["python bench/bench_patch.py"] + sys.argv[1:])
    lines = ["# Patch engine benchmark", "", "Produced by `bench/bench_patch.py` (see `bench/README.md`):", "",
             f"    {command}", "", "## Summary", "",
             f"- clean diffs, the same files as `git apply`: {pct(same, len(cases))} (goal: 100%)",
             f"- throughput: {ratio:.1f}x `git apply` in a subprocess (goal: at least 4x)",
             f"- damaged diffs: gitforge applied {pct(total['gitforge']['correct'], total['gitforge']['cases'])}"
             f" correctly (best of the others: {max(v for k, v in rate.items() if k != 'gitforge'):.1%}) and "
             f"{total['gitforge']['wrong']} wrongly (goal: the highest rate, and none wrongly)",
             "", "## Corpus", "", INTRO.format(n=VARIANTS), "",
             "| package | from | to | modified | added | deleted | copies | +/- lines |",
             "| --- | --- | --- |" + " ---: |" * 5]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    lines += ["", f"{len(cases)} per-file diffs in all.", "", "## Machine", ""] + machine()
    lines += ["", "## Clean diffs: the same result as `git apply`", ""] + identity
    lines += ["", "## Throughput", ""] + speed
    lines += ["", "## Damaged diffs", "", DAMAGED.format(seed=SEED), ""] + broken
    lines += ["", f"The cases named above (patch.diff, tree/ with the preimage, expected, got) were saved under "
              f"`{args.repros}`. The run took {time.perf_counter() - began:.0f} s."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
