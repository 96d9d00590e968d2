"""Builders produce a unified diff for a phase. This version ships the patch builder (the
phase's own `### Patch` block); `make_builder` says clearly what to do for any other phase."""

from __future__ import annotations

from gitforge.backlog import Phase
from gitforge.builders.patch import PatchBuilder
from gitforge.config import Config
from gitforge.errors import UsageError

__all__ = ["PatchBuilder", "make_builder"]


def make_builder(cfg: Config, phase: Phase) -> PatchBuilder:
    if phase.patch is not None:
        return PatchBuilder(phase)
    if cfg.builder.kind == "patch":
        raise UsageError(f"phase {phase.id} ({phase.title}) has no ### Patch block and no builder is configured "
                         f"(builder.kind is 'patch')",
                         hint="add a ```diff block under '### Patch' in the phase. The AI builders "
                              "(builder.kind: anthropic, or command with e.g. \"claude -p\") are not in this "
                              "version of gitforge yet")
    raise UsageError(f"phase {phase.id} ({phase.title}) has no ### Patch block, and builder.kind "
                     f"'{cfg.builder.kind}' is not available in this version of gitforge",
                     hint="add a ```diff block under '### Patch' in the phase for now")
