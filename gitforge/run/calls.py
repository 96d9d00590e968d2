"""Model calls as gitforge makes them: the budget checked first, the usage and cost recorded
after, and a redacted transcript line kept under the run's folder for `gitforge show`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gitforge.llm import KEY_VAR, Client, LLMError, Reply, Usage
from gitforge.infra.redact import redact_obj
from gitforge.run.spend import Meter
from gitforge.infra.state import append_jsonl, now_iso, read_jsonl

TRANSCRIPT = "transcript.jsonl"
_NO_USAGE = Usage()


class Caller:
    def __init__(self, client: Client, meter: Meter, run_dir: Path, secrets: Sequence[str],
                 on_call: Callable[[dict], None] | None = None) -> None:
        self.client = client
        self.meter = meter
        self.run_dir = run_dir
        self.secrets = list(secrets)
        self.on_call = on_call
        # id(messages list) -> (that list, how many of its messages are in the transcript); holding
        # the list keeps its id from being reused by a new conversation
        self._logged: dict[int, tuple[list, int]] = {}

    def call(self, role: str, *, model: str, system: Sequence[Mapping[str, Any]],
             messages: list[dict[str, Any]], tools: Sequence[Mapping[str, Any]] = (),
             tool_choice: Mapping[str, Any] | None = None, max_tokens: int, attempt: int | None = None) -> Reply:
        chars = len(json.dumps([system, messages, tools], default=str))
        estimate = self.meter.check(role, model, chars, max_tokens)
        start = time.monotonic()
        try:
            reply = self.client.create(model=model, system=system, messages=messages, tools=tools,
                                       tool_choice=tool_choice, max_tokens=max_tokens)
        except LLMError as e:
            if e.kind == "timeout":  # the server may have worked (and billed) before we gave up
                self.meter.record(role, model, _NO_USAGE, usd=round(estimate * e.attempts, 6), estimated=True,
                                  stop_reason=None, attempt=attempt, error=e.message)
            else:  # refused or unreachable: not counted as spend, so its reservation goes
                self.meter.release()
            self._transcribe(role, model, system, messages, tools, {"error": e.message, "kind": e.kind,
                                                                     "status": e.status}, attempt)
            raise
        call = self.meter.record(role, model, reply.usage, stop_reason=reply.stop_reason, attempt=attempt,
                                 duration=reply.duration, wall=round(time.monotonic() - start, 3),
                                 estimate_usd=round(estimate, 6),
                                 request_id=reply.request_id)
        self._transcribe(role, model, system, messages, tools,
                         {"stop_reason": reply.stop_reason, "content": reply.content, "usage": call}, attempt)
        if self.on_call:
            self.on_call(call)
        return reply

    def _transcribe(self, role: str, model: str, system, messages: list, tools, response: dict,
                    attempt: int | None) -> None:
        """One line per call: the system prompt and tool names the first time a conversation is
        seen, then only the messages it has not logged yet, and the reply."""
        key = id(messages)
        seen = self._logged[key][1] if key in self._logged else None
        line: dict[str, Any] = {"at": now_iso(), "role": role, "model": model, "attempt": attempt}
        if seen is None:
            line["system"] = [b.get("text", "") for b in system]
            line["tools"] = [t.get("name") for t in tools]
        line["messages"] = messages[seen or 0:]
        line["response"] = response
        self._logged[key] = (messages, len(messages))
        append_jsonl(self.run_dir / TRANSCRIPT, redact_obj(line, self.secrets))


def read_transcript(run_dir: Path) -> list[dict]:
    return read_jsonl(run_dir / TRANSCRIPT)


def api_key(environ: Mapping[str, str]) -> str | None:
    key = environ.get(KEY_VAR, "").strip()
    return key or None
