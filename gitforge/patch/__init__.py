"""Patches as pure functions: parse a diff, check it against the policy, apply it to a
tree in memory, and audit the result. Nothing here touches git, the disk, or the LLM."""

from gitforge.patch.apply import FileChange, apply_patches
from gitforge.patch.place import Placement, summarize
from gitforge.patch.audit import audit
from gitforge.patch.parse import FilePatch, Hunk, parse_patch
from gitforge.patch.policy import check_policy
from gitforge.patch.tree import DictTree, TreeView

__all__ = [
    "DictTree", "FileChange", "FilePatch", "Hunk", "TreeView",
    "apply_patches", "audit", "check_policy", "parse_patch", "Placement", "summarize"]
