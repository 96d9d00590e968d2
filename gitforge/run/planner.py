"""The planner: one forced `submit_plan` call before the builder starts (planner.enabled). Its
file list becomes the patch's scope; policy.scope decides whether a patch outside it is
refused or only flagged."""

from __future__ import annotations

from gitforge.builders import prompts
from gitforge.builders.base import Job, Plan
from gitforge.run.calls import Caller
from gitforge.repomap import repo_map

MAX_TOKENS = 4000


class PlanFailed(Exception):
    """The planner answered, but not with a usable plan: the build goes on without one."""


def make_plan(caller: Caller, model: str, job: Job, failure: str | None = None,
              previous: Plan | None = None) -> Plan:
    context = "# Repository map (base commit)\n\n" + repo_map(job.files, job.view.read) + "\n"
    task = prompts.phase_block(job.phase.text)
    if previous is not None:
        task += f"\n# The previous plan\n\n{previous.render()}\n"
    if failure:
        task += f"\n# Why the previous approach failed\n\n{failure}\n\nPlan a different approach.\n"
    messages = [{"role": "user", "content": [prompts.cached(context), {"type": "text", "text": task}]}]
    reply = caller.call("planner", model=model, system=prompts.system(prompts.PLANNER_SYSTEM), messages=messages,
                        tools=[prompts.SUBMIT_PLAN], tool_choice={"type": "tool", "name": "submit_plan"},
                        max_tokens=MAX_TOKENS)
    if reply.truncated:
        raise PlanFailed(f"the planner's reply was cut off at max_tokens ({MAX_TOKENS})")
    uses = reply.tool_uses("submit_plan")
    if not uses:
        raise PlanFailed("the planner did not call submit_plan")
    return read_plan(uses[0].get("input"))


def read_plan(data: object) -> Plan:
    if not isinstance(data, dict):
        raise PlanFailed("the submit_plan input is not an object")
    files, approach = data.get("files"), data.get("approach")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise PlanFailed("submit_plan 'files' must be a list of paths")
    if not isinstance(approach, str) or not approach.strip():
        raise PlanFailed("submit_plan 'approach' must be a non-empty string")
    clean = []
    for f in files:
        path = f.strip().removeprefix("./").lstrip("/")
        if path and path not in clean:
            clean.append(path)
    return Plan(tuple(clean), approach.strip(), _strings(data.get("risks")), _strings(data.get("checks")))


def _strings(value: object) -> tuple[str, ...]:
    return tuple(v.strip() for v in value if isinstance(v, str) and v.strip()) if isinstance(value, list) else ()
