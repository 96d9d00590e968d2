"""Builders produce a unified diff for a phase (DESIGN.md §2 step 6):

- patch: the phase's own `### Patch` block, no AI;
- anthropic: a tool loop over the Messages API (`api.ApiBuilder`);
- command: a coding-agent CLI run in the worktree, its edits captured (`command.CommandBuilder`).

`make_builder` runs before anything is claimed and fails fast when the builder cannot work.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from gitforge.backlog import Phase
from gitforge.builders.patch import PatchBuilder
from gitforge.run.calls import api_key
from gitforge.config import Config
from gitforge.errors import UsageError

__all__ = ["PatchBuilder", "make_builder", "WAYS_OUT"]

WAYS_OUT = ("three ways out:\n"
            "  1. export ANTHROPIC_API_KEY=... (a key from console.anthropic.com) and run again;\n"
            "  2. let a coding-agent CLI build it: in otto.yaml set\n"
            "       builder: {kind: command, command: \"claude -p --permission-mode acceptEdits\"}\n"
            "  3. write the change yourself as a ```diff block under '### Patch' in the phase.")

# builder.kind: patch refuses a phase without a patch whatever the environment: a key alone does not help.
PATCH_WAYS_OUT = ("two ways out:\n"
                  "  1. let a builder write it: in otto.yaml set builder.kind: anthropic (with ANTHROPIC_API_KEY\n"
                  "     exported), or builder: {kind: command, command: \"claude -p --permission-mode acceptEdits\"};\n"
                  "  2. write the change yourself as a ```diff block under '### Patch' in the phase.")


def make_builder(cfg: Config, phase: Phase, environ: Mapping[str, str] | None = None):
    environ = os.environ if environ is None else environ
    if phase.patch is not None:
        return PatchBuilder(phase)
    kind = cfg.builder.kind
    if kind == "patch":
        raise UsageError(f"phase {phase.id} ({phase.title}) has no ### Patch block, and builder.kind is 'patch'",
                         hint=PATCH_WAYS_OUT)
    if kind == "anthropic":
        if api_key(environ) is None:
            raise UsageError(f"phase {phase.id} ({phase.title}) needs the anthropic builder, and "
                             "ANTHROPIC_API_KEY is not set", hint=WAYS_OUT)
        from gitforge.builders.api import ApiBuilder

        b = cfg.builder
        return ApiBuilder(b.model, b.max_turns, b.max_tokens)
    from gitforge.builders.command import CommandBuilder  # checks the command is there

    return CommandBuilder(cfg.builder, phase, environ)
