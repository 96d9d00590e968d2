"""The Anthropic boundary: the only importer of `anthropic` (about 3 s to import, so only when
a call is really made). It knows nothing of git, phases or budgets: a request goes in, a
`Reply` made of plain dicts comes out, or an `LLMError` that says what went wrong.

Retries for 429, 529, 5xx and dropped connections are the SDK's own (`max_retries`, with
its backoff and the server's retry-after); each request also has a timeout.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

KEY_VAR = "ANTHROPIC_API_KEY"


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Reply:
    model: str
    stop_reason: str | None
    content: list[dict[str, Any]]
    usage: Usage
    request_id: str | None = None
    duration: float = 0.0

    def tool_uses(self, name: str | None = None) -> list[dict[str, Any]]:
        return [b for b in self.content if b.get("type") == "tool_use" and (name is None or b.get("name") == name)]

    @property
    def text(self) -> str:
        return "\n".join(b.get("text", "") for b in self.content if b.get("type") == "text").strip()

    @property
    def truncated(self) -> bool:
        return self.stop_reason == "max_tokens"


@dataclass
class LLMError(Exception):
    """kind: auth | request | unavailable | timeout | connection | status."""

    message: str
    kind: str
    status: int | None = None
    request_id: str | None = None
    attempts: int = field(default=1)

    def __str__(self) -> str:
        return self.message


class Client:
    def __init__(self, api_key: str, *, base_url: str | None = None, max_retries: int = 4,
                 timeout: float = 300.0) -> None:
        self._settings = {"api_key": api_key, "base_url": base_url, "max_retries": max_retries,
                          "timeout": timeout}
        self._sdk = None

    def _client(self):
        if self._sdk is None:
            import anthropic  # lazy: see the module docstring

            self._sdk = anthropic.Anthropic(**{k: v for k, v in self._settings.items() if v is not None})
        return self._sdk

    def create(self, *, model: str, system: Sequence[Mapping[str, Any]], messages: Sequence[Mapping[str, Any]],
               tools: Sequence[Mapping[str, Any]] = (), tool_choice: Mapping[str, Any] | None = None,
               max_tokens: int) -> Reply:
        import anthropic

        request: dict[str, Any] = {"model": model, "system": list(system), "messages": list(messages),
                                   "max_tokens": max_tokens}
        if tools:
            request["tools"] = list(tools)
        if tool_choice:
            request["tool_choice"] = dict(tool_choice)
        retries = self._settings["max_retries"]
        sdk = self._client()  # the first call pays the import: not part of the request's time
        start = time.monotonic()
        try:
            msg = sdk.messages.create(**request)
        except anthropic.APIStatusError as e:
            raise _status_error(e, model, retries) from None
        except anthropic.APITimeoutError:
            raise LLMError(f"the Anthropic API did not answer within {self._settings['timeout']:g}s "
                           f"({retries + 1} tries)", "timeout", attempts=retries + 1) from None
        except anthropic.APIConnectionError as e:
            raise LLMError(f"cannot reach the Anthropic API ({_cause(e)}; {retries + 1} tries)", "connection",
                           attempts=retries + 1) from None
        usage = msg.usage
        return Reply(model=msg.model, stop_reason=msg.stop_reason, content=[_block(b) for b in msg.content],
                     usage=Usage(usage.input_tokens or 0, usage.output_tokens or 0,
                                 getattr(usage, "cache_creation_input_tokens", None) or 0,
                                 getattr(usage, "cache_read_input_tokens", None) or 0),
                     request_id=getattr(msg, "_request_id", None), duration=round(time.monotonic() - start, 3))


def _block(block) -> dict[str, Any]:
    """An SDK content block as the plain dict the API takes back in the next request."""
    if block.type == "text":
        return {"type": "text", "text": block.text}
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return block.model_dump(mode="json", exclude_none=True)


def _cause(e: BaseException) -> str:
    inner = e.__cause__ or e.__context__
    return f"{type(inner).__name__}: {inner}" if inner else str(e)


def _status_error(e, model: str, retries: int) -> LLMError:
    status = e.status_code
    body = e.body if isinstance(e.body, dict) else {}
    detail = (body.get("error") or {}).get("message") if isinstance(body.get("error"), dict) else None
    detail = detail or str(e)
    rid = getattr(e, "request_id", None)
    if status == 401:
        return LLMError(f"the Anthropic API refused the key (401: {detail})", "auth", status, rid)
    if status == 403:
        return LLMError(f"the key may not use this API or model (403: {detail})", "auth", status, rid)
    if status == 404:
        return LLMError(f"model '{model}' was not found (404: {detail})", "request", status, rid)
    if status in (400, 413, 422):
        return LLMError(f"the Anthropic API rejected the request ({status}: {detail})", "request", status, rid)
    if status == 429 or status >= 500:
        what = {429: "rate limited", 529: "overloaded"}.get(status, "failing")
        return LLMError(f"the Anthropic API is {what} ({status}: {detail}); gave up after {retries + 1} tries",
                        "unavailable", status, rid, attempts=retries + 1)
    return LLMError(f"the Anthropic API answered {status}: {detail}", "status", status, rid)
