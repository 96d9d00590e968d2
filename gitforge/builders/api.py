"""The `anthropic` builder: a bounded tool loop over the Messages API.

The model sees the phase, the plan, a map of the repository and the files the plan (or the
phase text) names; it may read more with read-only tools, and ends by calling `submit_patch`.
One conversation spans the phase's attempts: a refused patch or a failing gate is answered as
the result of that `submit_patch` call, so the model fixes its own work with all it has read.

Prompt caching: the system prompt (which follows the tool definitions in the cached prefix)
and the context message carry `cache_control`; a third, moving breakpoint sits on the newest
message so each turn re-reads the conversation so far from the cache.
"""

from __future__ import annotations

from gitforge.builders import prompts
from gitforge.builders.base import Built, Job, Plan
from gitforge.builders.tools import READ_TOOLS, RepoTools
from gitforge.run.calls import Caller
from gitforge.repomap import file_context, mentioned_files, repo_map

MAP_CHARS = 12_000
FILE_CHARS = 60_000


class ApiBuilder:
    kind = "anthropic"

    def __init__(self, model: str, max_turns: int, max_tokens: int) -> None:
        self.model = model
        self.max_turns = max_turns
        self.max_tokens = max_tokens
        self.messages: list[dict] = []
        self._open_submit: str | None = None     # the submit_patch call the next attempt answers
        self._pending: list[dict] = []           # tool results owed with it
        self._note: str | None = None            # text owed to the model (e.g. it was cut off)

    def describe(self) -> dict:
        return {"kind": self.kind, "model": self.model}

    def start(self, job: Job, caller: Caller) -> None:
        self.job, self.caller = job, caller
        self.tools = RepoTools(job.view, job.files, job.protected)
        self._begin(job.plan)

    def replan(self, plan: Plan | None, why: str) -> None:
        """Start a fresh conversation (a new plan, or the pilot judged the approach wrong)."""
        self.job.plan = plan
        self._begin(plan, why)

    def _begin(self, plan: Plan | None, why: str | None = None) -> None:
        job = self.job
        hidden = self.tools.hidden()  # protected files: neither listed nor shown, as read_file refuses them
        files = [(p, n) for p, n in job.files if p not in hidden]
        paths = [p for p, _ in files]
        named = list(plan.files) if plan else []
        named += [p for p in mentioned_files(job.phase.text, paths) if p not in named]
        read = job.view.read
        context = ("# Repository map (base commit)\n\n" + repo_map(files, read, MAP_CHARS) + "\n\n"
                   + "# Files\n\n" + (file_context([p for p in named if p in set(paths)], read, FILE_CHARS)
                                      or "(none named yet: read what you need)") + "\n")
        task = prompts.phase_block(job.phase.text)
        if plan:
            task += f"\n# The plan\n\n{plan.render()}\n"
        if why:
            task += f"\n# Why this is a fresh start\n\n{why}\n"
        task += "\nRead what you need, then call submit_patch with the complete diff."
        self.messages = [{"role": "user", "content": [prompts.cached(context), {"type": "text", "text": task}]}]
        self._open_submit, self._pending, self._note = None, [], None
        self.generation = getattr(self, "generation", 0) + 1  # one transcript conversation per start

    # -- one attempt ----------------------------------------------------------------------
    def build(self, attempt: int, feedback: str | None) -> Built:
        if self._open_submit or self._note or len(self.messages) > 1:  # not a fresh conversation
            self._answer(feedback or "Try again.")
        for _ in range(self.max_turns):
            self._move_breakpoint()
            reply = self.caller.call("builder", model=self.model, system=prompts.system(prompts.BUILDER_SYSTEM),
                                     messages=self.messages, tools=[*READ_TOOLS, prompts.SUBMIT_PATCH],
                                     max_tokens=self.max_tokens, attempt=attempt)
            if reply.truncated:  # never applied: an unfinished diff is not a diff
                self._note = (f"Your last reply was cut off at the {self.max_tokens}-token limit before it was "
                              "complete, so nothing was applied. Send a smaller diff: only the lines that change, "
                              "with 3 lines of context.")
                return Built.failed(f"the model's reply was cut off at max_tokens ({self.max_tokens}); "
                                    "nothing was applied")
            content = [b for b in reply.content if not (b.get("type") == "text" and not b.get("text", "").strip())]
            if content:  # the API refuses an empty assistant turn in the history
                self.messages.append({"role": "assistant", "content": content})
            uses = reply.tool_uses()
            submit = next((u for u in uses if u["name"] == "submit_patch"), None)
            results = [self._run_tool(u) if u["name"] != "submit_patch" else
                       _result(u["id"], "ignored: only the first submit_patch of a reply is used", True)
                       for u in uses if u is not submit]
            if submit is not None:
                self._open_submit, self._pending = submit["id"], results
                return self._read_submission(submit.get("input"))
            if not uses:
                results = [{"type": "text", "text": "Call submit_patch with the complete diff when you are "
                                                    "ready; plain text is not applied."}]
            self._add_user(results)
        self._note = f"You used all {self.max_turns} turns of the last attempt without calling submit_patch."
        return Built.failed(f"the model used all {self.max_turns} turns (builder.max_turns) without calling "
                            "submit_patch")

    def _read_submission(self, data: object) -> Built:
        problems = []
        if not isinstance(data, dict):
            problems.append("the input is not an object")
            data = {}
        diff, summary = data.get("diff"), data.get("summary", "")
        if not isinstance(diff, str) or not diff.strip():
            problems.append("'diff' must be a non-empty string holding the unified diff")
        if not isinstance(summary, str):
            problems.append("'summary' must be a string")
        if problems:
            return Built.failed("the submit_patch call was malformed: " + "; ".join(problems) + "; nothing was applied")
        return Built(diff=diff, summary=summary.strip())

    def _run_tool(self, use: dict) -> dict:
        return _result(use["id"], *self.tools.run(use["name"], use.get("input")))

    # -- the conversation -----------------------------------------------------------------
    def _answer(self, feedback: str) -> None:
        text = "\n\n".join(t for t in (self._note, feedback) if t)
        self._note = None
        if self._open_submit:
            text += "\n\nThat patch was discarded: send a complete new diff against the base files."
            self._add_user([*self._pending, _result(self._open_submit, text, True)])
            self._open_submit, self._pending = None, []
        else:
            self._add_user([{"type": "text", "text": text}])

    def _add_user(self, blocks: list[dict]) -> None:
        """Consecutive user turns are one message (a reply cut off is dropped, not kept)."""
        last = self.messages[-1]
        if last["role"] == "user":
            last["content"] = [*last["content"], *blocks]
        else:
            self.messages.append({"role": "user", "content": blocks})

    def _move_breakpoint(self) -> None:
        for i, msg in enumerate(self.messages):
            for j, block in enumerate(msg["content"]):
                if "cache_control" in block and not (i == 0 and j == 0):
                    msg["content"][j] = {k: v for k, v in block.items() if k != "cache_control"}
        last = self.messages[-1]["content"]
        if len(self.messages) > 1 or len(last) > 1:
            last[-1] = {**last[-1], "cache_control": {"type": "ephemeral"}}


def _result(tool_use_id: str, content: str, is_error: bool = False) -> dict:
    block = {"type": "tool_result", "tool_use_id": tool_use_id, "content": content or "(empty)"}
    if is_error:
        block["is_error"] = True
    return block
