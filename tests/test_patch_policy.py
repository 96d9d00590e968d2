"""check_policy: every hostile patch is refused with a reason that names path and rule."""

from __future__ import annotations

import pytest

from gitforge.patch import DictTree, FilePatch, Hunk, check_policy, parse_patch
from gitforge.patch.policy import matches_protected

PROTECTED = [".git/", ".forge/", "otto.yaml", ".env*", "**/*.pem", "deploy/secrets/", "/ROOT_ONLY"]
TREE = DictTree({"app.py": b"a\n", "link": b"real", "docs/link2": b"../x", "docs/a.md": b"x\n",
                 "realdir/x.py": b"x\n"}, modes={"link": "link", "docs/link2": "link"})


def create(path: str, lines: int = 1) -> FilePatch:
    hunk = Hunk(0, 0, 1, lines, tuple(("+", f"{i}\n") for i in range(lines)), f"@@ -0,0 +1,{lines} @@")
    return FilePatch("create", None, path, None, None, False, (hunk,))


def check(patches, **overrides) -> list[str]:
    options = dict(max_files=25, max_lines=1500, max_file_bytes=1_000_000, protected=PROTECTED,
                   forbid_binary=True, scope=None)
    options.update(overrides)
    return check_policy(list(patches), TREE, **options)


def test_an_ordinary_patch_passes():
    patches = parse_patch("--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-a\n+b\n")
    assert check(patches) == []
    assert check([create("src/new_module.py"), create("docs/guide.md")]) == []


@pytest.mark.parametrize("path, reason", [
    ("../etc/passwd", "../etc/passwd: path leaves the repository ('..')"),
    ("src/../../x", "src/../../x: path leaves the repository ('..')"),
    ("/etc/passwd", "/etc/passwd: absolute path"),
    ("C:\\Windows\\x", "C:\\Windows\\x: absolute path"),
    ("c:/x", "c:/x: absolute path"),
    ("\\\\server\\share\\x", "\\\\server\\share\\x: path contains a backslash (absolute path)"),
    ("src\\x.py", "src\\x.py: path contains a backslash"),
    ("a//b.py", "a//b.py: path has an empty or '.' component"),
    ("./a.py", "./a.py: path has an empty or '.' component"),
    ("dir/", "dir/: path has an empty or '.' component"),
    ("", "'': empty path"),
    ("a\0b", "'a\\x00b': path contains a NUL or control character"),
    ("a\nb", "'a\\nb': path contains a NUL or control character"),
    ("a\x1b[31mb", "'a\\x1b[31mb': path contains a NUL or control character"),
])
def test_paths_that_cannot_name_a_repository_file(path, reason):
    assert check([create(path)]) == [reason]


@pytest.mark.parametrize("path", [".git/config", ".GIT/config", "sub/.git/hooks/x", ".Git/hooks/pre-commit"])
def test_git_directories_are_refused_whatever_the_protected_list(path):
    assert check([create(path)], protected=[]) == [f"{path}: inside a git directory ('.git')"]


@pytest.mark.parametrize("path, how", [
    (".git./config", "'.git.' is '.git' on NTFS (which drops trailing dots and spaces)"),
    ("GIT~1/config", "'GIT~1' is '.git' on NTFS (its 8.3 short name)"),
])
def test_git_directories_in_ntfs_disguise_say_how(path, how):
    assert check([create(path)], protected=[]) == [
        f"{path}: inside a git directory ('.git'): {how}; git refuses it (core.protectNTFS)"]


def test_gitignore_and_gitkeep_are_not_git_directories():
    assert check([create(".gitignore"), create("sub/.gitkeep")], protected=[]) == []


@pytest.mark.parametrize("path", [".forge/runs/x.json", ".FORGE/leases/1.json"])
def test_forge_state_is_refused_whatever_the_protected_list(path):
    assert check([create(path)], protected=[]) == [f"{path}: gitforge's own state ('.forge/') is never patched"]


@pytest.mark.parametrize("path, pattern", [
    ("otto.yaml", "otto.yaml"),
    ("sub/otto.yaml", "otto.yaml"),
    (".env", ".env*"),
    ("secrets/.env.local", ".env*"),
    (".ENV.production", ".env*"),
    ("key.pem", "**/*.pem"),
    ("a/b/c/key.pem", "**/*.pem"),
    ("deploy/secrets/token.txt", "deploy/secrets/"),
    ("deploy/secrets/nested/token.txt", "deploy/secrets/"),
    ("ROOT_ONLY", "/ROOT_ONLY"),
])
def test_protected_patterns(path, pattern):
    assert check([create(path)]) == [f"{path}: protected path (matches '{pattern}')"]


@pytest.mark.parametrize("path", ["environment.py", "deploy/secrets", "deploy/secretsfile.txt",
                                  "pem/readme.md", "key.pem.txt", "sub/ROOT_ONLY", "otto.yaml.bak"])
def test_protected_patterns_do_not_over_match(path):
    assert check([create(path)]) == []


def test_protected_patterns_are_not_regular_expressions():
    assert not matches_protected("aXb", "a.b")
    assert not matches_protected("src/x.py", "(.*)")
    assert matches_protected("a.b", "a.b")
    assert matches_protected("notes/todo[1].md", "todo[[]1].md")
    assert not matches_protected("x", "")
    assert not matches_protected("x", "# comment")


def test_rename_checks_both_paths():
    (fp,) = parse_patch("diff --git a/app.py b/.env\nsimilarity index 100%\nrename from app.py\nrename to .env\n")
    assert check([fp]) == [".env: protected path (matches '.env*')"]
    (fp,) = parse_patch("diff --git a/otto.yaml b/x.yaml\nsimilarity index 100%\n"
                        "rename from otto.yaml\nrename to x.yaml\n")
    assert check([fp]) == ["otto.yaml: protected path (matches 'otto.yaml')"]


def test_writes_through_a_symlink_prefix_are_refused():
    assert check([create("link/x.py")]) == ["link/x.py: writes through symlink 'link'"]
    assert check([create("docs/link2/a/b.py")]) == ["docs/link2/a/b.py: writes through symlink 'docs/link2'"]
    (fp,) = parse_patch("diff --git a/link/a.py b/safe.py\nsimilarity index 100%\n"
                        "rename from link/a.py\nrename to safe.py\n")
    assert check([fp]) == ["link/a.py: writes through symlink 'link'"]


def test_creating_or_changing_a_symlink_is_refused():
    (fp,) = parse_patch("diff --git a/ln b/ln\nnew file mode 120000\nindex 0000000..1111111\n"
                        "--- /dev/null\n+++ b/ln\n@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n")
    assert check([fp]) == ["ln: symlinks cannot be created or changed (mode 120000)"]
    (fp,) = parse_patch("diff --git a/link b/link\nindex 1..2 120000\n--- a/link\n+++ b/link\n"
                        "@@ -1 +1 @@\n-real\n\\ No newline at end of file\n+/etc\n\\ No newline at end of file\n")
    assert check([fp]) == ["link: symlinks cannot be created or changed (mode 120000)"]
    (fp,) = parse_patch("diff --git a/app.py b/app.py\nold mode 100644\nnew mode 120000\n")
    assert check([fp]) == ["app.py: symlinks cannot be created or changed (mode 120000)"]


def test_a_plain_diff_onto_an_existing_symlink_is_refused():
    (fp,) = parse_patch("--- a/link\n+++ b/link\n@@ -1 +1 @@\n-real\n+fake\n")
    assert check([fp]) == ["link: symlinks cannot be created or changed ('link' is a symlink)"]


def test_submodules_are_refused():
    (fp,) = parse_patch("diff --git a/vendor/lib b/vendor/lib\nindex 1111111..2222222 160000\n"
                        "--- a/vendor/lib\n+++ b/vendor/lib\n@@ -1 +1 @@\n-Subproject commit 1111111\n"
                        "+Subproject commit 2222222\n")
    assert check([fp]) == ["vendor/lib: submodules cannot be changed (mode 160000)"]


GIT_BINARY = ("diff --git a/img.png b/img.png\nindex 8876..3e33 100644\nGIT binary patch\nliteral 5\n"
              "McmZQzO3KUw00MIXJOBUy\n\nliteral 5\nMcmZQzOv=my00M6TI{*Lx\n\n")


@pytest.mark.parametrize("text", [GIT_BINARY, "Binary files a/img.png and b/img.png differ\n"])
def test_binary_patches_are_refused_when_forbidden(text):
    patches = parse_patch(text)
    assert check(patches) == ["img.png: binary patch refused (forbid_binary)"]
    assert check(patches, forbid_binary=False) == []


def test_too_many_files():
    patches = [create(f"f{i}.py") for i in range(4)]
    assert check(patches, max_files=4) == []
    assert check(patches, max_files=3) == ["the patch touches 4 files, over the limit of 3 (max_files)"]


def test_too_many_lines():
    (fp,) = parse_patch("--- a/app.py\n+++ b/app.py\n@@ -1 +1,3 @@\n-a\n+b\n+c\n+d\n")
    assert check([fp], max_lines=4) == []
    assert check([fp], max_lines=3) == ["the patch changes 4 lines, over the limit of 3 (max_lines)"]


def test_scope_from_the_plan():
    patches = [create("src/a.py"), create("tests/test_a.py"), create("README.md")]
    assert check(patches, scope={"src/a.py", "tests/"}) == ["README.md: outside the plan's scope"]
    assert check(patches, scope=None) == []


def test_every_problem_is_reported_once():
    patches = [create("../x"), create(".git/config"), create(".git/config"), create("secrets/.env")]
    assert check(patches, max_files=2) == [
        "../x: path leaves the repository ('..')",
        ".git/config: inside a git directory ('.git')",
        "secrets/.env: protected path (matches '.env*')",
        "the patch touches 3 files, over the limit of 2 (max_files)",
    ]
