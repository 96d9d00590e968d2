"""The repository: trees, commits, refs, notes, checkouts and worktrees.

Objects are passed around as hex strings. Every ref move is a compare-and-swap with a
reflog reason. gitforge's own git commands never run the user's hooks.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pygit2
from pygit2.enums import FileMode

from gitforge.errors import LockBusy, PatchRefused, RepoError
from gitforge.git.locks import LOCK_WAIT
from gitforge.git.run import run_git

NOTES_REF = "refs/notes/forge/runs"
_MODES = {"file": FileMode.BLOB, "exec": FileMode.BLOB_EXECUTABLE}
_KINDS = {
    FileMode.BLOB: "file",
    FileMode.BLOB_EXECUTABLE: "exec",
    FileMode.LINK: "link",
    FileMode.TREE: "dir",
    FileMode.COMMIT: "submodule",  # a gitlink: its files are in another repository
}
@dataclass(frozen=True)
class Change:
    """One file of a new tree: `data` None deletes `path`; `old_path` is removed (rename)."""

    path: str
    data: bytes | None
    mode: Literal["file", "exec"] = "file"
    old_path: str | None = None


class CommitTree:
    """A read-only view of one commit's tree (the patch package's TreeView protocol)."""

    def __init__(self, repo: pygit2.Repository, tree: pygit2.Tree) -> None:
        self._repo = repo
        self._tree = tree

    def _entry(self, path: str) -> pygit2.Object | None:
        try:
            return self._tree[path]
        except (KeyError, ValueError):
            return None

    def kind(self, path: str) -> str | None:
        entry = self._entry(path)
        return None if entry is None else _KINDS.get(entry.filemode)

    def read(self, path: str) -> bytes | None:
        entry = self._entry(path)
        if entry is None or entry.filemode in (FileMode.TREE, FileMode.COMMIT):
            return None
        return self._repo[entry.id].data


class Git:
    def __init__(self, repo: pygit2.Repository, here: Path | None = None) -> None:
        self.repo = repo
        # The checkout the user is in: the main worktree, or a linked one. `apply`, `verify` and
        # otto.yaml work there; `.forge/` and the pool live with the main worktree (`root`).
        self.here = (here or Path(repo.workdir)).resolve()

    @classmethod
    def open(cls, path: Path | str = ".") -> Git:
        found = pygit2.discover_repository(str(path))
        if found is None:
            raise RepoError(f"{Path(path).resolve()} is not inside a git repository",
                            hint="run `git init` (and make a first commit), or cd into your repository")
        try:
            repo = pygit2.Repository(found)
        except pygit2.GitError as e:  # e.g. owned by another user (git's safe.directory)
            raise RepoError(f"cannot open the repository at {found}: {e}",
                            hint=f"if it is yours: git config --global --add safe.directory {Path(found).parent}")
        if repo.is_bare:
            raise RepoError(f"{found} is a bare repository", hint="run gitforge in a checkout")
        here = Path(repo.workdir)
        common = Path(repo.path)
        if (common / "commondir").exists():  # a linked worktree: state lives with the main one
            main = (common / (common / "commondir").read_text().strip()).resolve()
            repo = pygit2.Repository(str(main))
        return cls(repo, here)

    # -- the repository -----------------------------------------------------------------
    @property
    def root(self) -> Path:
        return Path(self.repo.workdir).resolve()

    @property
    def common_dir(self) -> Path:
        return Path(self.repo.path).resolve()

    def require_commits(self) -> None:
        if self.repo.head_is_unborn:
            raise RepoError("this repository has no commits yet",
                            hint="make a first commit (git commit --allow-empty -m init), then run gitforge again")

    def head_branch(self) -> str | None:
        if self.repo.head_is_unborn:
            ref = self.repo.references.get("HEAD")
            target = ref.target if ref is not None else None
            return target.removeprefix("refs/heads/") if isinstance(target, str) else None
        if self.repo.head_is_detached:
            return None
        return self.repo.head.shorthand

    def branches(self) -> list[str]:
        return sorted(self.repo.branches.local)

    def branch_tip(self, branch: str) -> str:
        ref = self.repo.references.get(f"refs/heads/{branch}")
        if ref is None:
            have = ", ".join(self.branches()) or "none"
            raise RepoError(f"target branch '{branch}' does not exist (branches: {have})",
                            hint=f"name an existing branch (target_branch in otto.yaml, or --target BRANCH), or "
                                 f"create this one: git branch {branch}")
        return str(ref.resolve().target)

    def tree_of(self, commit: str) -> str:
        return str(self.repo[commit].peel(pygit2.Commit).tree_id)

    def view(self, commit_or_tree: str) -> CommitTree:
        obj = self.repo[commit_or_tree]
        tree = obj if isinstance(obj, pygit2.Tree) else obj.peel(pygit2.Tree)
        return CommitTree(self.repo, tree)

    def entry(self, commit_or_tree: str, path: str) -> tuple[int, str] | None:
        """(file mode, object id) of `path` in a tree, or None when absent."""
        try:
            found = self.view(commit_or_tree)._tree[path]
        except (KeyError, ValueError):
            return None
        return int(found.filemode), str(found.id)

    def read_file(self, commit_or_tree: str, path: str) -> bytes | None:
        return self.view(commit_or_tree).read(path)

    def list_files(self, commit_or_tree: str) -> list[tuple[str, int]]:
        """Every file of a tree (not folders, not submodules) with its size in bytes, sorted."""
        out: list[tuple[str, int]] = []
        stack: list[tuple[str, pygit2.Tree]] = [("", self.view(commit_or_tree)._tree)]
        while stack:
            prefix, node = stack.pop()
            for entry in node:
                if entry.filemode == FileMode.TREE:
                    stack.append((f"{prefix}{entry.name}/", self.repo[entry.id]))
                elif entry.filemode != FileMode.COMMIT:
                    out.append((prefix + entry.name, self.repo.odb.read_header(entry.id)[1]))
        return sorted(out)

    def snapshot_tree(self, path: Path, exclude: Sequence[str] = ()) -> str:
        """The tree of everything in the worktree at `path` as it is on disk (tracked files as
        they are now, untracked ones added; ignored files and `exclude` globs left out), written
        through a temporary index: the worktree's own index is not touched."""
        index = Path(run_git(["rev-parse", "--path-format=absolute", "--git-path", "index"], path).stdout.strip())
        fd, tmp = tempfile.mkstemp(prefix="gitforge-capture-", suffix=".index", dir=index.parent)
        os.close(fd)
        try:
            if index.exists():
                shutil.copyfile(index, tmp)  # its stat cache makes `add -A` cheap
            run_git(["add", "-A", "--", ".", *[f":(exclude,glob){x}" for x in exclude]], path,
                    env={"GIT_INDEX_FILE": tmp})
            return run_git(["write-tree"], path, env={"GIT_INDEX_FILE": tmp}).stdout.strip()
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def capture_worktree(self, path: Path, branch: str, base: str,
                         exclude: Sequence[str] = ()) -> str:
        """Everything changed in the worktree at `path` since `base` -- edits, new files,
        deletions, and commits an agent made there -- as one `git diff --binary` text. The
        worktree is left as "base + those changes, uncommitted", on `branch` at `base`.
        Ignored files do not count; `exclude` adds glob pathspecs that do not either."""
        tree = self.snapshot_tree(path, exclude)
        diff = run_git(["-c", "diff.noprefix=false", "-c", "diff.mnemonicPrefix=false", "diff", "--no-ext-diff",
                        "--no-color", "--no-renames", "--binary", "--full-index", self.tree_of(base), tree],
                       path).stdout
        self.set_ref(f"refs/heads/{branch}", base, "gitforge: captured the agent's changes")
        run_git(["symbolic-ref", "HEAD", f"refs/heads/{branch}"], path)
        run_git(["reset", "--quiet"], path)
        return diff

    def parents(self, commit: str) -> list[str]:
        return [str(p) for p in self.repo[commit].parent_ids]

    def build_tree(self, base_tree: str, changes: Iterable[Change]) -> str:
        """A new tree: `base_tree` with `changes` applied, built in memory (blobs + TreeBuilder)."""
        edits: dict[str, tuple[pygit2.Oid, int] | None] = {}
        for ch in changes:
            if ch.old_path and ch.old_path != ch.path:
                edits.setdefault(ch.old_path, None)
            edits[ch.path] = None if ch.data is None else (self.repo.create_blob(ch.data), _MODES[ch.mode])
        tree = self._edit_tree(self.repo[base_tree], edits, "")
        return str(tree if tree is not None else self.repo.TreeBuilder().write())

    def _edit_tree(self, tree: pygit2.Tree | None, edits: dict, prefix: str) -> pygit2.Oid | None:
        builder = self.repo.TreeBuilder(tree) if tree is not None else self.repo.TreeBuilder()
        children: dict[str, dict] = {}
        for path, value in edits.items():
            head, sep, rest = path.partition("/")
            if sep:
                children.setdefault(head, {})[rest] = value
                continue
            existing = builder.get(head)
            if existing is not None and existing.filemode == FileMode.TREE and value is not None:
                raise PatchRefused(f"{prefix}{head}: is a directory in the tree; a patch cannot replace it with a file")
            if value is None:
                if existing is not None:
                    builder.remove(head)
            else:
                builder.insert(head, value[0], value[1])
        for name, sub in children.items():
            existing = builder.get(name)
            if existing is not None and existing.filemode != FileMode.TREE:
                raise PatchRefused(f"{prefix}{name}: is a file in the tree; a patch cannot write below it")
            subtree = self.repo[existing.id] if existing is not None else None
            new = self._edit_tree(subtree, sub, f"{prefix}{name}/")
            if new is None:
                if existing is not None:
                    builder.remove(name)
            else:
                builder.insert(name, new, FileMode.TREE)
        return builder.write() if len(builder) else None

    def signature(self) -> pygit2.Signature:
        name = os.environ.get("GIT_AUTHOR_NAME")
        email = os.environ.get("GIT_AUTHOR_EMAIL")
        if not (name and email):
            try:
                sig = self.repo.default_signature
                name, email = name or sig.name, email or sig.email
            except (KeyError, pygit2.GitError):
                name, email = name or "gitforge", email or "gitforge@localhost"
        return pygit2.Signature(name, email)

    def commit(self, tree: str, parents: Sequence[str], message: str) -> str:
        sig = self.signature()
        return str(self.repo.create_commit(None, sig, sig, message, pygit2.Oid(hex=tree),
                                           [pygit2.Oid(hex=p) for p in parents]))

    def cas_branch(self, branch: str, expected: str, new: str, reason: str) -> bool:
        """Move refs/heads/<branch> from `expected` to `new`; False if it had moved. A live git
        process holding the ref's lock is waited out (LOCK_WAIT seconds), then LockBusy."""
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            ref = self.repo.references.get(f"refs/heads/{branch}")
            if ref is None or str(ref.target) != expected:
                return False
            try:
                ref.set_target(pygit2.Oid(hex=new), reason)
                return True
            except (pygit2.GitError, OSError) as e:
                if "old reference value does not match" in str(e):
                    return False
                if "lock" not in str(e) or time.monotonic() >= deadline:
                    if "lock" in str(e):
                        raise LockBusy(f"could not move {branch}: {e}",
                                       hint=f"another git command holds refs/heads/{branch}.lock; let it finish "
                                            f"(gitforge check lists stale locks), then run the command again") from None
                    raise
                time.sleep(0.1)

    def set_ref(self, name: str, target: str, reason: str) -> None:
        """Create or move a gitforge-owned ref (forge branches, refs/forge/*)."""
        ref = self.repo.references.get(name)
        if ref is None:
            self.repo.references.create(name, pygit2.Oid(hex=target))
        else:
            ref.set_target(pygit2.Oid(hex=target), reason)

    def delete_ref(self, name: str) -> None:
        ref = self.repo.references.get(name)
        if ref is not None:
            ref.delete()

    def merge_trees(self, ancestor: str, ours: str, theirs: str) -> tuple[str | None, list[str]]:
        """Three-way merge in memory: (tree, []) or (None, conflicting paths)."""
        index = self.repo.merge_trees(self.repo[ancestor], self.repo[ours], self.repo[theirs])
        if index.conflicts is not None:
            paths = sorted({(e[1] or e[2] or e[0]).path for e in index.conflicts})
            return None, paths
        return str(index.write_tree(self.repo)), []

    def changed_paths(self, old_tree: str, new_tree: str) -> list[str]:
        diff = self.repo.diff(self.repo[old_tree], self.repo[new_tree])
        return sorted({d.delta.new_file.path for d in diff} | {d.delta.old_file.path for d in diff})

    def log(self, tip: str, limit: int = 200) -> list[tuple[str, str]]:
        """(commit, message) from tip backwards, first parents only."""
        out: list[tuple[str, str]] = []
        walker = self.repo.walk(pygit2.Oid(hex=tip))
        walker.simplify_first_parent()
        for c in walker:
            out.append((str(c.id), c.message))
            if len(out) >= limit:
                break
        return out

    # -- notes --------------------------------------------------------------------------
    def read_note(self, commit: str, ref: str = NOTES_REF) -> str | None:
        try:
            return self.repo.lookup_note(commit, ref).message
        except KeyError:
            return None

    def append_note(self, commit: str, line: str, ref: str = NOTES_REF, attempts: int = 50) -> None:
        """Append one line to the note on `commit`. The caller holds the notes lock; a user's
        concurrent `git notes` can still hold git's own ref lock, so retry on OSError."""
        sig = self.signature()
        for i in range(attempts):
            existing = self.read_note(commit, ref)
            body = (existing.rstrip("\n") + "\n" if existing else "") + line.rstrip("\n") + "\n"
            try:
                self.repo.create_note(body, sig, sig, commit, ref, True)
                return
            except (OSError, pygit2.GitError) as e:
                if i == attempts - 1:
                    raise LockBusy(f"could not write the run note on {commit[:12]}: {e}",
                                   hint=f"another git command holds {ref}.lock; once it is done, the next gitforge "
                                        f"command writes the note (gitforge check lists stale locks)") from None
                time.sleep(0.02 * (i + 1))

    # -- checkouts and worktrees ----------------------------------------------------------
    def checkouts_of(self, branch: str) -> list[Path]:
        """Working trees (main and linked) whose HEAD is `branch`."""
        out = []
        if not self.repo.head_is_detached and self.head_branch() == branch:
            out.append(self.root)
        for name in self.repo.list_worktrees():
            wt = self.repo.lookup_worktree(name)
            try:
                r = pygit2.Repository(wt.path)
            except pygit2.GitError:
                continue
            if not r.head_is_detached and not r.head_is_unborn and r.head.shorthand == branch:
                out.append(Path(wt.path).resolve())
        return out

    def local_changes(self, workdir: Path, treeish: str) -> list[str]:
        """Tracked paths whose staged or working copy differs from `treeish` (untracked files
        do not count). Against HEAD this is what `git status` calls uncommitted changes."""
        paths: set[str] = set()
        for extra in ([], ["--cached"]):
            proc = run_git(["diff", "--name-only", "-z", "--no-renames", *extra, treeish, "--"], workdir)
            paths.update(p for p in proc.stdout.split("\0") if p)
        return sorted(paths)

    def update_checkout(self, workdir: Path, old: str, new: str) -> str | None:
        """Bring a checkout whose branch moved old -> new up to date, as `git checkout` would.
        Returns None on success, or git's reason when it refused (nothing is overwritten)."""
        proc = run_git(["read-tree", "-m", "-u", old, new], workdir, check=False)
        return None if proc.returncode == 0 else (proc.stderr.strip() or proc.stdout.strip())

    def worktree_add(self, path: Path, branch: str, commit: str) -> None:
        run_git(["worktree", "add", "--force", "-B", branch, str(path), commit], self.root)

    def worktree_reset(self, path: Path, branch: str, commit: str) -> None:
        """Reuse a pooled worktree: switch it to `branch` at `commit`, drop untracked files
        (ignored ones such as caches stay, which is what makes a pool fast)."""
        run_git(["checkout", "--quiet", "--force", "-B", branch, commit], path)
        run_git(["clean", "-ffdq"], path)

    def commit_worktree(self, path: Path, branch: str, tree: str, parents: Sequence[str], message: str) -> str:
        """Commit `tree` on a worktree's branch and sync its index (files already match)."""
        commit = self.commit(tree, parents, message)
        self.set_ref(f"refs/heads/{branch}", commit, "gitforge: verified candidate")
        run_git(["reset", "--quiet"], path)
        return commit

    def worktree_detach(self, path: Path) -> None:
        run_git(["checkout", "--quiet", "--force", "--detach"], path)

    def worktree_prune(self) -> None:
        run_git(["worktree", "prune"], self.root, check=False)

    def worktree_remove(self, path: Path) -> None:
        run_git(["worktree", "remove", "--force", "--force", str(path)], self.root, check=False)
        run_git(["worktree", "prune"], self.root, check=False)

    def worktree_paths(self) -> list[Path]:
        """Every linked worktree's folder (pooled ones included)."""
        return [Path(self.repo.lookup_worktree(name).path) for name in self.repo.list_worktrees()]

    def branch_checked_out_at(self, branch: str) -> Path | None:
        return next(iter(self.checkouts_of(branch)), None)

    def delete_branch(self, branch: str) -> None:
        self.delete_ref(f"refs/heads/{branch}")
