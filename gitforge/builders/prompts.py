"""What gitforge says to the models, and the forced tools they answer with. The system prompts
and the repository context are the stable prefix that prompt caching keeps."""

from __future__ import annotations

BUILDER_SYSTEM = """\
You are the builder inside gitforge, a tool that turns the phases of a repository's BACKLOG.md \
into verified commits. You write the change one phase asks for, as a unified diff.

How to work:
- Read what you need first with the read-only tools (read_file, list_dir, search_text). The \
repository map and the files already shown are from the base commit your diff applies to.
- Then call submit_patch once, with the whole change as one unified diff (`diff --git a/x b/x`, \
`--- a/x`, `+++ b/x`, `@@ -l,n +l,n @@` hunks; `--- /dev/null` for a new file, `+++ /dev/null` to \
delete one). Copy context lines exactly as they are in the file, with 3 lines of context. Never \
include the line numbers that read_file shows.
- Keep the change to what the phase asks. Do not touch .git/, .forge/, otto.yaml or protected \
files; do not add binary files.
- gitforge applies your diff in a clean worktree and runs the project's gates (tests, linters). \
If the patch does not apply or a gate fails, you get the reason and the output, and you send a \
new complete diff against the same base files (your previous patch is discarded, not kept).
"""

PLANNER_SYSTEM = """\
You are the planner inside gitforge. Given a repository map and one phase of its BACKLOG.md, \
you decide which files the change will touch and how, before a builder writes the diff. Name \
every file that will be created, edited or deleted (paths relative to the repository root; a \
folder ending in "/" covers everything under it). Be brief and concrete. Answer only by \
calling submit_plan.
"""

PILOT_SYSTEM = """\
You are the pilot inside gitforge: between attempts at one phase you triage the failure and \
decide what happens next. Answer only by calling submit_decision.
- retry_with_fix: the builder should try again; give it a precise hint (what is wrong, where, \
what to change). The usual choice when the failure is understandable and fixable.
- replan: the approach is wrong (wrong files, wrong design); plan again from scratch.
- skip_phase: the phase cannot or need not be done (already done, obsolete, impossible here).
- rollback_run: throw this run's work away; a later run starts clean.
- mark_fatal: stop; a person must look (broken environment, missing credentials, a gate that \
fails on the base commit, a phase that contradicts itself).
- execute_fix: run whitelisted commands in the worktree (only when offered), e.g. a formatter \
or a missing dependency install, then re-run the gates on the same change.
Give a confidence between 0 and 1 that your decision is right.
"""

SUBMIT_PATCH = {
    "name": "submit_patch",
    "description": "Submit the complete change for this phase as one unified diff against the base commit. "
                   "Call it exactly once, when you are done reading.",
    "input_schema": {
        "type": "object",
        "properties": {
            "diff": {"type": "string", "description": "The unified diff (git format) of every file changed."},
            "summary": {"type": "string", "description": "One or two sentences: what the change does."},
        },
        "required": ["diff", "summary"],
        "additionalProperties": False,
    },
}

SUBMIT_PLAN = {
    "name": "submit_plan",
    "description": "Submit the plan for this phase.",
    "input_schema": {
        "type": "object",
        "properties": {
            "files": {"type": "array", "items": {"type": "string"},
                      "description": "Every path the change will create, edit or delete."},
            "approach": {"type": "string", "description": "How the change will be made, in a few sentences."},
            "risks": {"type": "array", "items": {"type": "string"}},
            "checks": {"type": "array", "items": {"type": "string"},
                       "description": "How to tell the change works (tests to add or run)."},
        },
        "required": ["files", "approach"],
        "additionalProperties": False,
    },
}

ACTIONS = ("retry_with_fix", "replan", "skip_phase", "rollback_run", "mark_fatal", "execute_fix")


def submit_decision(actions: tuple[str, ...]) -> dict:
    return {
        "name": "submit_decision",
        "description": "Submit what happens next for this phase.",
        "input_schema": {
            "type": "object",
            "properties": {
                "action": {"type": "string", "enum": list(actions)},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "hint": {"type": "string", "description": "For retry_with_fix: what the builder must change."},
                "reason": {"type": "string", "description": "Why, in one or two sentences."},
                "commands": {"type": "array", "items": {"type": "string"},
                             "description": "For execute_fix: the commands to run, each starting with an "
                                            "allowed command."},
            },
            "required": ["action", "confidence", "reason"],
            "additionalProperties": False,
        },
    }


def phase_block(phase_text: str) -> str:
    return f"# The phase to build\n\n{phase_text.strip()}\n"


def cached(text: str) -> dict:
    """A text block that ends a stable prefix: the API caches everything up to it."""
    return {"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}


def system(text: str) -> list[dict]:
    return [cached(text)]
