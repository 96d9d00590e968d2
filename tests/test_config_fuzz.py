"""otto.yaml never crashes or hangs gitforge: 300 mutated files (tests/config_mutations.py) and
hostile environment values, each loaded in process; every one loads or is a ConfigError that
names where, within a second. A loaded config holds nothing that fails later (non-finite
numbers, paths outside the repository)."""

from __future__ import annotations

import collections
import contextlib
import json
import signal
import time
from pathlib import Path

import pytest
from config_mutations import DOCUMENTS, mutations
from conftest import run_cli

from gitforge.config import CONFIG_FILE, Config, load_config
from gitforge.errors import ConfigError

LIMIT = 1.0  # seconds per file


class Hung(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise Hung in this (the main) thread if the block runs past `seconds`."""
    def ring(signum, frame):
        raise Hung(f"still running after {seconds}s")
    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def outcome(load) -> tuple[str, object]:
    """('ok', Config) or ('error', message); anything else fails the test, naming the case."""
    start = time.monotonic()
    try:
        with deadline(LIMIT * 3):  # a hang fails here instead of stopping the suite
            result = ("ok", load())
    except ConfigError as exc:
        result = ("error", exc.message)
    elapsed = time.monotonic() - start
    assert elapsed < LIMIT, f"took {elapsed:.2f}s"
    return result


def sound(cfg: Config) -> None:
    """Nothing in a loaded config can fail later: numbers finite, paths inside the repository."""
    dumped = json.dumps(cfg.model_dump(mode="json"), allow_nan=False)
    assert "\\u0000" not in dumped
    for path in (cfg.backlog, cfg.progress, *cfg.worktrees.include):
        parts = path.split("/")
        assert path and not path.startswith(("/", "~")) and ".." not in parts, path
        assert ".git" not in [p.lower() for p in parts] and parts[0] != ".forge", path
    assert cfg.progress != cfg.backlog and CONFIG_FILE not in (cfg.backlog, cfg.progress)


def test_three_hundred_mutated_files_load_or_refuse_quickly(tmp_path: Path) -> None:
    counts: collections.Counter[str] = collections.Counter()
    failures = []
    for label, data in mutations(300):
        (tmp_path / CONFIG_FILE).write_bytes(data)
        try:
            kind, value = outcome(lambda: load_config(tmp_path, environ={}))
            if kind == "ok":
                sound(value)
            else:
                assert value.startswith(CONFIG_FILE), value  # names the file (and the line where known)
            counts[kind] += 1
        except (AssertionError, Exception) as exc:  # collect them all: one run shows every hole
            failures.append(f"{label}: {exc!r}"[:300])
    assert not failures, f"{len(failures)} of 300 failed:\n" + "\n".join(failures)
    assert counts["ok"] >= 10 and counts["error"] >= 150, counts  # the mutations reach both outcomes


HOSTILE_ENV = {
    "GITFORGE_VERIFY": "[" + ", ".join([f"&l0 [{', '.join(['lol'] * 9)}]"] + [  # a one-line alias bomb
        f"&l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]) + "]",
    "GITFORGE_BUILDER": "&b {model: *b}",
    "GITFORGE_PRE_PUSH": "[" * 5000 + "]" * 5000,
    "GITFORGE_PRICES": "{m: {input: .inf, output: 1, cache_write: 1, cache_read: 1}}",
    "GITFORGE_MAX_ATTEMPTS": "9" * 5000,
    "GITFORGE_POLICY__MAX_FILES": "\x1b[2J",
    "GITFORGE_PARALLEL": "caf\udce9",  # a non-UTF-8 byte, as os.environ holds it
    "GITFORGE_WORKTREES__INCLUDE": "[.git/config]",
    "GITFORGE_BUDGETS__USD_PER_RUN": ".nan",
    "GITFORGE_LLM__TIMEOUT": "1.0e+308",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_ENV))
def test_hostile_environment_values_are_refused_quickly(tmp_path: Path, name: str) -> None:
    kind, message = outcome(lambda: load_config(tmp_path, environ={name: HOSTILE_ENV[name]}))
    assert kind == "error" and message.startswith(f"environment variable {name}: "), message
    assert "invalid YAML" not in message and "expected" not in message, message  # refused for what it is


def test_environment_values_say_where_the_yaml_breaks(tmp_path: Path) -> None:
    _, message = outcome(lambda: load_config(tmp_path, environ={"GITFORGE_POLICY__MAX_FILES": "12\x07"}))
    assert message == ("environment variable GITFORGE_POLICY__MAX_FILES: cannot read '12\\x07' as a YAML "
                       "value: the control character U+0007 at offset 2; YAML allows only printable "
                       "characters, tabs and newlines (write it as an escape inside double quotes, "
                       "e.g. \"\\x01\") (column 3)")
    _, message = outcome(lambda: load_config(tmp_path, environ={"GITFORGE_PARALLEL": "caf\udce9"}))
    assert message == ("environment variable GITFORGE_PARALLEL: cannot read 'caf\\udce9' as a YAML value: "
                       "byte 0xe9 at offset 3 is not UTF-8; the text must be UTF-8 (column 4)")


@pytest.mark.parametrize("text, expected", [
    ("pilot: true\nbacklog: BACK\x01LOG.md\n",
     "otto.yaml:2:14: the control character U+0001 at offset 25;"),
    ("alias: &a [x]\n" + DOCUMENTS["alias bomb"],
     "otto.yaml:5:12: aliases here expand to more than 5,000 values (an alias bomb?)"),
    ("verify: &a [*a]\n", "otto.yaml:1:9: an alias refers to a value that contains it (a recursive alias)"),
    ("pilot: true\nverify: " + "[" * 100 + "]" * 100 + "\n",
     "otto.yaml:2:29: nested more than 20 levels deep; no gitforge setting is nested that deep"),
    ("verify: " + "[" * 120_000 + "\n", "otto.yaml:1:29: nested more than 20 levels deep"),
    ("verify:\n" + "".join(" " * i + "- \n" for i in range(0, 60, 2)), "otto.yaml:21:39: nested more than 20"),
    ("target_branch: 2024-13-45\n", "otto.yaml:1:16: cannot read '2024-13-45' as timestamp: month must be in 1..12"),
    ("max_attempts: " + "1" * 40 + "\n", "otto.yaml:1:15: the number 11111111111111111111… has more than 30 digits"),
    ("pilot: true\nprogress: ../x\n",
     "otto.yaml:2: 'progress': '../x' leaves the repository ('..'); give a file path relative to the repository"),
    ("backlog: /srv/BACKLOG.md\n", "otto.yaml:1: 'backlog': '/srv/BACKLOG.md' is absolute;"),
    ("progress: .git/P.md\n", "otto.yaml:1: 'progress': '.git/P.md' is under .git/;"),
    ("backlog: .forge/B.md\n", "otto.yaml:1: 'backlog': '.forge/B.md' is under .forge/ (gitforge's own state);"),
    ("progress: BACKLOG.md\n", "otto.yaml:1: 'progress': 'BACKLOG.md' is the backlog itself;"),
    ("progress: otto.yaml\n", "otto.yaml:1: 'progress': 'otto.yaml' is otto.yaml itself;"),
    ("worktrees: {include: [.git/config]}\n", "otto.yaml:1: 'worktrees.include': '.git/config' is under .git/;"),
    ("verify:\n  - {name: t, run: x, timeout: .inf}\n",
     "otto.yaml:2: 'verify[0].timeout' must be a finite number, got inf (a number)"),
    ("builder:\n  timeout: 1.0e+308\n", "otto.yaml:2: 'builder.timeout' must be at most 604,800, got 1e+308"),
    ("budgets: {usd_per_phase: .nan}\n", "otto.yaml:1: 'budgets.usd_per_phase' must be a finite number, got nan"),
    ("worktrees: {pool_size: 1000000000}\n", "otto.yaml:1: 'worktrees.pool_size' must be at most 64"),
    ('verify:\n  - {name: t, run: "pytest\\0"}\n', "otto.yaml:2: 'verify[0].run': must not contain a NUL"),
])
def test_each_hazard_names_the_line_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / CONFIG_FILE).write_text(text, encoding="utf-8")
    kind, message = outcome(lambda: load_config(tmp_path, environ={}))
    assert kind == "error" and message.startswith(expected), message


def test_a_file_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_bytes(b"pilot: true\nbuilder:\n  model: caf\xe9\n")
    _, message = outcome(lambda: load_config(tmp_path, environ={}))
    assert message == ("otto.yaml:3:13: byte 0xe9 at offset 33 is not UTF-8 (invalid continuation byte); "
                       "the file must be UTF-8 text")


def test_anchors_and_merge_keys_used_normally_still_work(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text(DOCUMENTS["merge used normally"] + "backlog: ./docs//B.md\n")
    cfg = load_config(tmp_path, environ={})
    assert [(g.name, g.run, g.timeout) for g in cfg.verify] == [("unit", "pytest -q", 300),
                                                                ("lint", "ruff check .", 300)]
    assert cfg.pre_push == cfg.verify[:1] and cfg.backlog == "docs/B.md"


def test_the_cli_refuses_hostile_files_with_exit_2(make_repo) -> None:
    """A few of the hazards through the real command line: exit 2, the file and line named."""
    root = make_repo(otto=None)
    for name in ("alias bomb", "recursive map", "control character", "invalid utf-8", "progress in .git"):
        (root / CONFIG_FILE).write_bytes(DOCUMENTS[name] if isinstance(DOCUMENTS[name], bytes)
                                         else DOCUMENTS[name].encode())
        start = time.monotonic()
        proc = run_cli("status", cwd=root, timeout=30)
        assert proc.returncode == 2, (name, proc.stderr)
        assert "otto.yaml:" in proc.stderr and "Traceback" not in proc.stderr, (name, proc.stderr)
        assert time.monotonic() - start < 10, name
