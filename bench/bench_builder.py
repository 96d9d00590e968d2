"""What the anthropic builder costs gitforge itself, with the model taken out of the picture.

A repository of --files Python files gets one phase without a patch. The real CLI runs it
with builder.kind: anthropic against the loopback Messages API (tests/fake_api.py), which
answers at once with a scripted tool loop: read_file, search_text, list_dir, then
submit_patch. So the wall time is gitforge's own: the SDK import, the repository map and
context, the read-only tools, the pipeline, the gates, the landing. The fake also models
prompt caching (tokens ~ characters / 4), which shows how much of each prompt the cache
breakpoints cover.

    python bench/bench_builder.py [--files 2000] [--runs 5] [--out docs/builder.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from fake_api import FakeAnthropic, message, tool_use  # noqa: E402

PY = sys.executable
CALC = "def add(a, b):\n    return a + b\n"
DIFF = ("--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,5 @@\n def add(a, b):\n     return a + b\n+\n"
        "+def mul(a, b):\n+    return a * b\n")


def sh(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


def make_repo(root: Path, n_files: int, with_patch: bool = False) -> None:
    sh("git", "init", "-q", "-b", "main", cwd=root)
    for i in range(n_files):
        pkg = root / f"pkg{i % 20}" / f"sub{i % 7}"
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / f"mod{i}.py").write_text(f"class Thing{i}:\n    def run(self):\n        return {i}\n\n\n"
                                        f"def helper_{i}(x):\n    return x + {i}\n")
    (root / "calc.py").write_text(CALC)
    check = f"{PY} -c 'from calc import mul; assert mul(2, 3) == 6'"
    (root / "otto.yaml").write_text(f"verify:\n  - {{name: check, run: {json.dumps(check)}}}\n"
                                    "builder: {kind: anthropic}\npilot: false\n")
    (root / "BACKLOG.md").write_text("# Backlog\n\n## Phase 1: Add mul\n**Status:** Not started\n"
                                     "**Dependencies:** None\n**Priority:** medium\n\n### Tasks\n"
                                     "1. Add `mul(a, b)` to calc.py.\n"
                                     + (f"\n### Patch\n```diff\n{DIFF}```\n" if with_patch else ""))
    sh("git", "add", "-A", cwd=root)
    sh("git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init", cwd=root)


def one_run(n_files: int, api: FakeAnthropic, with_patch: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="gitforge-bench-builder-") as tmp:
        root = Path(tmp)
        make_repo(root, n_files, with_patch)
        if with_patch:  # the same run with the phase's own patch: no SDK, no model calls
            start = time.perf_counter()
            subprocess.run([PY, "-m", "gitforge", "next"], cwd=root, check=True, capture_output=True,
                           env={**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b",
                                "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"})
            return {"wall": time.perf_counter() - start}
        api.reset_cache()
        api.script(message(tool_use("read_file", {"path": "calc.py"})),
                   message(tool_use("search_text", {"pattern": "def add"})),
                   message(tool_use("list_dir", {"path": "pkg3"})),
                   message(tool_use("submit_patch", {"diff": DIFF, "summary": "adds mul"})))
        env = {**os.environ, **api.env(), "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b",
               "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
        start = time.perf_counter()
        proc = subprocess.run([PY, "-m", "gitforge", "next"], cwd=root, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"gitforge next failed:\n{proc.stdout}\n{proc.stderr}")
        (path,) = (root / ".forge" / "runs").glob("*.json")
        rec = json.loads(path.read_text())
        calls = [json.loads(line)["response"]["usage"] for line in
                 (root / ".forge" / "runs" / rec["run_id"] / "transcript.jsonl").read_text().splitlines()]
        context = api.bodies()[-1]["messages"][0]["content"][0]["text"]
        return {"wall": wall, "api": sum(c["duration"] for c in calls), "calls": calls, "context_chars": len(context)}


def import_time() -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([PY, "-c", "import anthropic"], check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    with FakeAnthropic() as api:
        runs = [one_run(args.files, api) for _ in range(args.runs)]
        patch_walls = [one_run(args.files, api, with_patch=True)["wall"] for _ in range(args.runs)]
    walls = [r["wall"] for r in runs]
    last = runs[-1]
    prompt = [c["input_tokens"] + c["cache_read_tokens"] + c["cache_write_tokens"] for c in last["calls"]]
    cached = [c["cache_read_tokens"] for c in last["calls"]]
    imp = import_time()
    lines = [
        f"# The anthropic builder's own cost ({args.files:,} files, {args.runs} runs, {os.cpu_count()} cores)", "",
        "`python bench/bench_builder.py` — the real CLI and SDK against the loopback Messages API, which",
        "answers at once: a 4-call tool loop (read_file, search_text, list_dir, submit_patch), one gate.", "",
        "| measure | value |", "| --- | ---: |",
        f"| `gitforge next`, wall time, median (min–max) | {statistics.median(walls):.2f} s "
        f"({min(walls):.2f}–{max(walls):.2f}) |",
        f"| the same phase carrying its own patch (no SDK, no model calls), median | "
        f"{statistics.median(patch_walls):.2f} s |",
        f"| of which HTTP round trips to the loopback API (last run) | {last['api']:.3f} s |",
        f"| `import anthropic` alone (min of 3) | {imp:.2f} s |",
        f"| repository context sent (map + named files) | {last['context_chars']:,} chars |",
        "", "Prompt tokens per call in the last run (the fake counts ~4 characters per token):", "",
        "| call | prompt tokens | from the cache | share |", "| --- | ---: | ---: | ---: |",
    ]
    for i, (p, c) in enumerate(zip(prompt, cached), 1):
        lines.append(f"| {i} | {p:,} | {c:,} | {c / p:.0%} |")
    total_p, total_c = sum(prompt), sum(cached)
    lines += [f"| all | {total_p:,} | {total_c:,} | {total_c / total_p:.0%} |", "",
              "The fake reads the cache only at the breakpoints a request carries; the real API also",
              "finds earlier cached prefixes up to 20 blocks back, so these shares are a lower bound.", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
