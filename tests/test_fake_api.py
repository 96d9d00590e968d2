"""The loopback Anthropic fake, exercised through the real SDK."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import anthropic
import pytest

from fake_api import FakeAnthropic, delay, error, message, text, tool_use

KEY = "sk-ant-test-KEY0123456789"
MODEL = "claude-test-model"


def client(api, **kw):
    kw.setdefault("max_retries", 0)
    return anthropic.Anthropic(api_key=KEY, base_url=api.url, **kw)


def sent_key(record):
    """The API key a request carried (SDK 2.x sends `authorization: Bearer`, older ones `x-api-key`)."""
    h = record["headers"]
    return h.get("x-api-key") or h.get("authorization", "").removeprefix("Bearer ")


def ask(c, **kw):
    kw.setdefault("model", MODEL)
    kw.setdefault("max_tokens", 256)
    kw.setdefault("messages", [{"role": "user", "content": "hi"}])
    return c.messages.create(**kw)


TOOLS = [{"name": "write_file", "description": "Write a file.",
          "input_schema": {"type": "object", "properties": {"path": {"type": "string"}},
                           "required": ["path"]}}]


def test_tool_use_reply_is_parsed_and_request_recorded():
    with FakeAnthropic() as api:
        api.script(message([text("Writing."), tool_use("write_file", {"path": "a.py"}, id="toolu_1")]))
        resp = ask(client(api), tools=TOOLS, tool_choice={"type": "tool", "name": "write_file"})
        assert resp.stop_reason == "tool_use"
        assert resp.model == MODEL
        assert resp.id.startswith("msg_")
        assert resp._request_id and resp._request_id.startswith("req_")
        block = resp.content[1]
        assert isinstance(block, anthropic.types.ToolUseBlock)
        assert (block.id, block.name, block.input) == ("toolu_1", "write_file", {"path": "a.py"})
        assert resp.content[0].text == "Writing."
        rec = api.last()
        assert rec["path"] == "/v1/messages" and rec["status"] == 200
        assert sent_key(rec) == KEY
        assert rec["headers"]["anthropic-version"]
        assert rec["body"]["model"] == MODEL
        assert rec["body"]["tools"] == TOOLS
        assert rec["body"]["tool_choice"] == {"type": "tool", "name": "write_file"}
        assert api.bodies() == [rec["body"]]
        assert api.unexpected == 0 and api.pending == 0


def test_defaults_text_reply_and_unique_tool_ids():
    a, b = tool_use("x", {}), tool_use("x", {})
    assert a["id"].startswith("toolu_") and a["id"] != b["id"]
    with FakeAnthropic() as api:
        api.script("plain", message([text("m")], model="claude-other", stop_reason="max_tokens"))
        c = client(api)
        r1, r2 = ask(c), ask(c)
        assert (r1.content[0].text, r1.stop_reason, r1.stop_sequence) == ("plain", "end_turn", None)
        assert (r2.model, r2.stop_reason) == ("claude-other", "max_tokens")
        assert r1.usage.input_tokens >= 1 and r1.usage.output_tokens >= 1
        assert r1.usage.cache_creation_input_tokens == 0 and r1.usage.cache_read_input_tokens == 0


def test_prompt_cache_created_then_read():
    system = [{"type": "text", "text": "You are gitforge. " * 200, "cache_control": {"type": "ephemeral"}}]
    with FakeAnthropic() as api:
        api.script(message("one"), message("two"), message("three", usage={"output_tokens": 7}))
        c = client(api)
        u1 = ask(c, system=system).usage
        u2 = ask(c, system=system, messages=[{"role": "user", "content": "different question"}]).usage
        assert u1.cache_creation_input_tokens > 100 and u1.cache_read_input_tokens == 0
        assert u2.cache_read_input_tokens == u1.cache_creation_input_tokens
        assert u2.cache_creation_input_tokens == 0
        assert 0 < u2.input_tokens < 50
        # a longer breakpoint over a cached one: read the old prefix, create the rest
        msgs = [{"role": "user", "content": [{"type": "text", "text": "context " * 100,
                                              "cache_control": {"type": "ephemeral"}}]}]
        u3 = ask(c, system=system, messages=msgs).usage
        assert u3.cache_read_input_tokens == u1.cache_creation_input_tokens
        assert u3.cache_creation_input_tokens > 100
        assert u3.output_tokens == 7
        assert api.unexpected == 0


def test_overloaded_twice_then_success_with_retries():
    with FakeAnthropic() as api:
        api.script(error(529), error(529), message("ok"))
        t0 = time.monotonic()
        resp = ask(client(api, max_retries=2))
        assert time.monotonic() - t0 < 2
        assert resp.content[0].text == "ok"
        assert [r["status"] for r in api.requests] == [529, 529, 200]
        assert len(api.bodies()) == 3 and api.unexpected == 0


def test_overloaded_without_retries_raises():
    with FakeAnthropic() as api:
        api.script(error(529, message="Overloaded"))
        with pytest.raises(anthropic.InternalServerError) as info:
            ask(client(api))
        err = info.value
        assert isinstance(err, anthropic.APIStatusError) and err.status_code == 529
        assert err.body == {"type": "overloaded_error", "message": "Overloaded"} or \
            err.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}
        assert err.request_id and err.request_id.startswith("req_")


def test_client_errors_raise_their_classes_and_are_not_retried():
    with FakeAnthropic() as api:
        api.script(error(400, message="bad"), error(401), error(429, headers={"x-should-retry": "false"}))
        c = client(api, max_retries=2)
        with pytest.raises(anthropic.BadRequestError) as info:
            ask(c)
        assert info.value.status_code == 400 and "bad" in str(info.value)
        with pytest.raises(anthropic.AuthenticationError):
            ask(c)
        with pytest.raises(anthropic.RateLimitError):
            ask(c)
        assert [r["status"] for r in api.requests] == [400, 401, 429]


def test_delay_trips_the_sdk_timeout_without_stalling_shutdown():
    t0 = time.monotonic()
    with FakeAnthropic() as api:
        api.script(delay(30, message("late")), message("next"))
        c = client(api, timeout=0.5)
        with pytest.raises(anthropic.APITimeoutError):
            ask(c)
        assert ask(c).content[0].text == "next"  # other requests are not blocked
        assert len(api.requests) == 2 and api.unexpected == 0
    assert time.monotonic() - t0 < 3


def test_callable_reply_sees_the_request():
    def echo(body):
        return message(f"{len(body['messages'])} messages")
    with FakeAnthropic() as api:
        api.script(echo)
        resp = ask(client(api), messages=[{"role": "user", "content": "a"},
                                          {"role": "assistant", "content": "b"},
                                          {"role": "user", "content": "c"}])
        assert resp.content[0].text == "3 messages"


def test_exhausted_script_and_unknown_paths_count_as_unexpected():
    with FakeAnthropic() as api:
        c = client(api)
        with pytest.raises(anthropic.InternalServerError) as info:
            ask(c)
        assert "script exhausted" in str(info.value)
        assert api.unexpected == 1
        with pytest.raises(anthropic.NotFoundError):
            c.models.list()
        assert api.unexpected == 2
        assert [r["status"] for r in api.requests] == [500, 404]


def test_streaming_reply_assembles():
    with FakeAnthropic() as api:
        api.script(message([text("x" * 150), tool_use("write_file", {"path": "p" * 100})]))
        with client(api).messages.stream(model=MODEL, max_tokens=64,
                                         messages=[{"role": "user", "content": "hi"}]) as stream:
            final = stream.get_final_message()
        assert final.content[0].text == "x" * 150
        assert final.content[1].input == {"path": "p" * 100}
        assert final.stop_reason == "tool_use" and final.usage.output_tokens > 1
        assert api.last()["body"]["stream"] is True


def test_child_process_uses_env():
    with FakeAnthropic() as api:
        api.script(message("from child"))
        code = ("import anthropic; c = anthropic.Anthropic(max_retries=0); "
                "print(c.messages.create(model='m', max_tokens=5, "
                "messages=[{'role': 'user', 'content': 'hi'}]).content[0].text)")
        env = {**os.environ, **api.env()}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "from child"
        assert sent_key(api.last()) == api.env()["ANTHROPIC_API_KEY"]
