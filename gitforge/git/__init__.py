"""The git boundary: the only package that imports pygit2 or runs `git`.

`repo` holds the repository, its trees, commits, refs, notes and worktrees; `settings` reads
and writes git config; `notes` fetches, merges and pushes run notes (refs/notes/forge/*);
`ranges` lists the commits a push carries.
"""

from gitforge.git.create import init_repo
from gitforge.git.repo import NOTES_REF, Change, CommitTree, Git
from gitforge.git.run import clean_env, run_git

__all__ = ["NOTES_REF", "Change", "CommitTree", "Git", "clean_env", "init_repo", "run_git"]
