"""What every command needs: the repository, its configuration, its state and the target."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gitforge.backlog import Backlog, parse_backlog
from gitforge.config import Config, load_config
from gitforge.errors import BacklogError, RepoError, UsageError
from gitforge.git import Git
from gitforge.infra.state import Store


@dataclass
class Context:
    git: Git
    cfg: Config
    store: Store
    target: str

    @classmethod
    def open(cls, repo: Path | str = ".", overrides: Mapping[str, object] | None = None) -> Context:
        git = Git.open(repo)
        cfg = load_config(git.here, overrides=overrides)
        git.require_commits()
        target = cfg.target_branch or git.head_branch()
        if target is None:
            raise RepoError("HEAD is detached and otto.yaml sets no target_branch",
                            hint="check out the branch phases should land on (git switch BRANCH), "
                                 "or set target_branch in otto.yaml, or pass --target BRANCH")
        git.branch_tip(target)  # raises a clear error when it does not exist
        return cls(git, cfg, Store(git.root, git.common_dir), target)

    @property
    def tip(self) -> str:
        return self.git.branch_tip(self.target)

    def backlog(self, commit: str | None = None) -> Backlog:
        """The backlog as committed on the target (what a run is based on)."""
        commit = commit or self.tip
        data = self.git.read_file(commit, self.cfg.backlog)
        if data is None:
            there = (self.git.here / self.cfg.backlog).is_file()
            raise UsageError(f"{self.cfg.backlog} is not committed on {self.target}",
                             hint=f"commit it: git add {self.cfg.backlog} && git commit" if there else
                             "run `gitforge init` to write a starter backlog, then commit it")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            raise BacklogError("is not valid UTF-8", line=line, path=self.cfg.backlog) from None
        return parse_backlog(text, path=self.cfg.backlog)

    def backlog_is_dirty(self) -> bool:
        """True when the user's checkout holds BACKLOG.md edits that are not on the target yet."""
        path = self.git.root / self.cfg.backlog
        if not path.is_file() or self.git.head_branch() != self.target:
            return False
        return path.read_bytes() != (self.git.read_file(self.tip, self.cfg.backlog) or b"")
