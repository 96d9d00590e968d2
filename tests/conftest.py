"""Hermetic fixtures: real temporary git repositories, a sealed environment, the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def sealed_env(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        if key.startswith(("GITFORGE", "GIT_")) or key == "ANTHROPIC_API_KEY":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Author")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "author@example.com")
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n[user]\n\tname = Test Author\n"
                                     "\temail = author@example.com\n")
    yield home


def git(*args: str, cwd: Path, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True)  # bytes: keep CRLF as it is
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode("utf-8", "surrogateescape")


def write(root: Path, files: dict[str, str | bytes | None]) -> None:
    for rel, content in files.items():
        path = root / rel
        if content is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def commit_all(root: Path, message: str = "change") -> str:
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", message, cwd=root)
    return git("rev-parse", "HEAD", cwd=root).strip()


def make_diff(base: dict[str, str], new: dict[str, str | None], tmp: Path) -> str:
    """The real `git diff` that turns files `base` into `base` updated with `new`."""
    scratch = tmp / f"diff-{len(list(tmp.glob('diff-*')))}"
    scratch.mkdir()
    git("init", "-q", cwd=scratch)
    write(scratch, base)
    if base:
        commit_all(scratch, "base")
    write(scratch, new)
    git("add", "-A", cwd=scratch)
    return git("diff", "--cached", cwd=scratch)


def phase_md(pid: str, title: str, *, status: str = "Not started", deps: str = "None",
             priority: str = "medium", checks: tuple[str, ...] = (), patch: str | None = None) -> str:
    parts = [f"## Phase {pid}: {title}", f"**Status:** {status}", f"**Dependencies:** {deps}",
             f"**Priority:** {priority}", "", "### Tasks", "1. Do it.", ""]
    if checks:
        parts += ["### Verification", *[f"- `{c}`" for c in checks], ""]
    if patch is not None:
        parts += ["### Patch", "````diff", patch.rstrip("\n"), "````", ""]
    return "\n".join(parts) + "\n"


@pytest.fixture
def make_repo(tmp_path):
    """A real repository on main with `files`, a BACKLOG.md of `phases` and an otto.yaml."""

    def make(files: dict[str, str] | None = None, phases: list[str] | None = None,
             otto: str | None = "verify: []\n", name: str = "repo") -> Path:
        root = tmp_path / name
        root.mkdir()
        git("init", "-q", "-b", "main", cwd=root)
        content = {"README.md": "# project\n", **(files or {})}
        if phases is not None:
            content["BACKLOG.md"] = "# Backlog\n\n" + "\n".join(phases)
        if otto is not None:
            content["otto.yaml"] = textwrap.dedent(otto)
        write(root, content)
        commit_all(root, "initial")
        return root

    return make


def run_cli(*args: str, cwd: Path, input: str | None = None, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line, in a child process: what a user types."""
    return subprocess.run([sys.executable, "-m", "gitforge", *args], cwd=cwd, capture_output=True, text=True,
                          input=input, timeout=timeout, env={**os.environ, **(env or {})})


PY = sys.executable
