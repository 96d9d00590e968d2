"""The commented otto.yaml that `gitforge init` writes: every default, spelled out."""

from __future__ import annotations

import yaml

from gitforge.config import HINT, Config


def _flow(value: object) -> str:
    """A value as one line of YAML, quoted only where YAML needs it."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1 << 16)
    return text.removesuffix("\n...\n").strip()


def render_default_config(target_branch: str, verify: list[dict] | None = None) -> str:
    """The commented otto.yaml that `gitforge init` writes: the defaults, spelled out."""
    d = Config()
    b, p, w, budgets, llm = d.builder, d.policy, d.worktrees, d.budgets, d.llm
    gates = "".join(f"\n  - {_flow(gate)}" for gate in verify or [])
    example = "" if verify else '\n#  - {name: tests, run: "pytest -q", timeout: 600}'
    return f"""\
# gitforge configuration. {HINT}
# Precedence: command-line flag > environment (GITFORGE_*) > this file > defaults.

target_branch: {_flow(target_branch)}
backlog: {d.backlog}
progress: {d.progress}

# Gates, run in order inside the task worktree; all must pass before a change lands.
verify:{gates or " []"}{example}
gates:
  pythonpath: null              # folders put first on PYTHONPATH; null: the worktree root and src/
  import_check: true            # a gate whose Python imports this project from elsewhere is not green
  edits: refuse                 # gates that change files: refuse | land (the tree they tested)

builder:
  kind: {b.kind}                   # patch | anthropic | command
  #   patch:     apply the phase's ### Patch block; no AI needed
  #   anthropic: ask the Anthropic API (needs ANTHROPIC_API_KEY) with `model`
  #   command:   run a coding-agent CLI in the worktree; {{prompt}} and {{prompt_file}}
  #              are replaced, else the prompt is the last argument, e.g.
  #              command: "claude -p --permission-mode acceptEdits"
  model: {b.model}
  command: null
  timeout: {b.timeout:g}                 # seconds (the agent command)
  env_allowlist: {_flow(b.env_allowlist)}
  max_turns: {b.max_turns}                 # model calls per attempt (anthropic)
  max_tokens: {b.max_tokens}             # per reply (anthropic)

planner: {{enabled: {_flow(d.planner.enabled)}, model: {d.planner.model}}}
pilot: {_flow(d.pilot)}                     # failure triage ("doctor") between attempts
llm:
  max_retries: {llm.max_retries}                # SDK retries on 429, 529, 5xx and lost connections
  timeout: {llm.timeout:g}                  # seconds per request
  pilot_model: {llm.pilot_model}
  pilot_strong_model: {llm.pilot_strong_model}   # asked when the pilot is unsure
  escalate_below: {llm.escalate_below:g}
# prices:                        # USD per million tokens; built in for current Claude models
#   my-model: {{input: 3, output: 15, cache_write: 3.75, cache_read: 0.3}}
max_attempts: {d.max_attempts}
parallel: {d.parallel}
budgets:
  usd_per_phase: {budgets.usd_per_phase:g}
  usd_per_run: {budgets.usd_per_run:g}
  doctor_calls_per_phase: {budgets.doctor_calls_per_phase}
  doctor_calls_per_run: {budgets.doctor_calls_per_run}
  failures_per_run: {budgets.failures_per_run}
merge: {{strategy: {d.merge.strategy}}}       # squash | merge

policy:
  max_files: {p.max_files}
  max_lines: {p.max_lines}
  max_file_bytes: {p.max_file_bytes}
  protected_paths: {_flow(p.protected_paths)}
  forbid_binary: {_flow(p.forbid_binary)}
  scope: {p.scope}                   # warn | refuse a patch outside the planner's files

worktrees:
  setup: null                   # a command run in each new worktree, e.g. "npm ci"
  include: []                   # gitignored files to copy in, e.g. [".env.test"]
  pool_size: {w.pool_size}

# The pilot may run fix commands in the worktree (no shell; each must start with one of
# `commands`, e.g. ["ruff check --fix", "npm install"]); off unless enabled.
execute_fix: {{enabled: false, commands: []}}

# Gates the pre-push hook (gitforge hooks install) runs on each pushed branch tip; none by
# default, e.g. - {{name: quick, run: "pytest -q -x", timeout: 300}}
pre_push: []
# push_with: the pre-push hook also pushes the run notes (refs/notes/forge/*) to that remote.
notes: {{push_with: {_flow(d.notes.push_with)}}}
"""
