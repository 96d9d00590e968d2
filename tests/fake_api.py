"""A loopback fake of the Anthropic Messages API, for tests.

It speaks the real wire format, so the real ``anthropic`` SDK talks to it unchanged: pass
``base_url=api.url`` to ``anthropic.Anthropic``, or hand ``api.env()`` to a child process.
Model replies are scripted in a FIFO queue; every request is recorded.

    with FakeAnthropic() as api:
        api.script(message([tool_use("write_file", {"path": "a.py"})]), message("done"))
        client = anthropic.Anthropic(api_key="sk-ant-test", base_url=api.url, max_retries=0)
        ...
        assert api.unexpected == 0

Standard library only: ThreadingHTTPServer on 127.0.0.1 in a daemon thread.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import socket
import threading
import traceback
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = ["FakeAnthropic", "message", "text", "tool_use", "error", "delay", "Message", "Error",
           "Delay", "ERROR_TYPES"]

_ids = itertools.count(1)


def _uid(prefix: str) -> str:
    return f"{prefix}{next(_ids):06d}fake"


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


# ---------------------------------------------------------------- content blocks and replies

def text(s: str) -> dict:
    """A text content block."""
    return {"type": "text", "text": s}


def tool_use(name: str, input: dict | None = None, id: str | None = None) -> dict:
    """A tool_use content block; the id defaults to a unique ``toolu_...``."""
    return {"type": "tool_use", "id": id or _uid("toolu_"), "name": name,
            "input": {} if input is None else input}


class Message:
    """A scripted 200 reply (see ``message``)."""

    def __init__(self, content, stop_reason=None, usage=None, model=None):
        if isinstance(content, str):
            content = [text(content)]
        elif isinstance(content, dict):
            content = [content]
        self.content = list(content)
        if stop_reason is None:
            stop_reason = ("tool_use" if any(b.get("type") == "tool_use" for b in self.content)
                           else "end_turn")
        self.stop_reason = stop_reason
        self.usage = usage
        self.model = model

    def __repr__(self) -> str:
        return f"message({self.content!r}, stop_reason={self.stop_reason!r})"


class Error:
    """A scripted error reply (see ``error``)."""

    def __init__(self, status: int, type: str | None = None, message: str | None = None,
                 headers: dict | None = None):
        self.status = int(status)
        self.type = type or ERROR_TYPES.get(self.status) or (
            "api_error" if self.status >= 500 else "invalid_request_error")
        self.message = message if message is not None else f"fake_api: scripted {self.type}"
        hdrs: dict[str, str] = {}
        if self.status == 429 or self.status >= 500:
            hdrs["retry-after-ms"] = "1"  # the SDK's automatic retry then waits 1 ms
        for k, v in (headers or {}).items():
            if v is None:
                hdrs.pop(k.lower(), None)
            else:
                hdrs[k.lower()] = str(v)
        self.headers = hdrs

    def __repr__(self) -> str:
        return f"error({self.status}, {self.type!r})"


class Delay:
    """Sleep, then produce another reply (see ``delay``)."""

    def __init__(self, seconds: float, then: Any):
        self.seconds = float(seconds)
        self.then = then

    def __repr__(self) -> str:
        return f"delay({self.seconds}, {self.then!r})"


def message(content: str | dict | list, stop_reason: str | None = None, usage: dict | None = None,
            model: str | None = None) -> Message:
    """A 200 Messages API reply.

    ``content``: a list of blocks (``text(...)``, ``tool_use(...)`` or raw dicts); a plain string
    means one text block. ``stop_reason`` defaults to "tool_use" when a tool_use block is present,
    else "end_turn". ``usage`` entries override the simulated ones. ``model`` defaults to the
    request's model.
    """
    return Message(content, stop_reason, usage, model)


def error(status: int, type: str | None = None, message: str | None = None,
          headers: dict | None = None) -> Error:
    """An HTTP error reply in the API's error shape.

    ``type`` defaults from the status (400 invalid_request_error ... 529 overloaded_error).
    429 and 5xx carry ``retry-after-ms: 1`` unless ``headers`` overrides it (a None value
    removes a header); e.g. ``headers={"x-should-retry": "false"}`` stops SDK retries.
    """
    return Error(status, type, message, headers)


def delay(seconds: float, then: Any) -> Delay:
    """Wait ``seconds`` (without blocking other requests; cut short at shutdown), then reply
    ``then``."""
    return Delay(seconds, then)


# ---------------------------------------------------------------- usage simulation

def _tokens(chars: int) -> int:
    return max(1, chars // 4)


def _prompt_blocks(body: dict) -> list[tuple[str, bool]]:
    """The request's prompt in cache-prefix order (tools -> system -> messages), as
    (serialized block without cache_control, has cache_control)."""
    out: list[tuple[str, bool]] = []

    def add(kind: str, role: str | None, block: Any) -> None:
        cc = isinstance(block, dict) and "cache_control" in block
        if cc:
            block = {k: v for k, v in block.items() if k != "cache_control"}
        out.append((json.dumps([kind, role, block], sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False, default=str), cc))

    for tool in body.get("tools") or []:
        add("tool", None, tool)
    system = body.get("system")
    if isinstance(system, str):
        if system:
            add("system", None, text(system))
    elif isinstance(system, list):
        for block in system:
            add("system", None, block)
    for msg in body.get("messages") or []:
        if not isinstance(msg, dict):
            add("message", None, msg)
            continue
        role, content = msg.get("role"), msg.get("content")
        if isinstance(content, list):
            for block in content:
                add("message", role, block)
        else:
            add("message", role, text(content) if isinstance(content, str) else content)
    return out


# ---------------------------------------------------------------- server

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not stall shutdown
    fake: "FakeAnthropic"

    def handle_error(self, request, client_address):  # quiet about clients hanging up
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self):
        super().setup()
        self.server.fake._track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, False)

    def log_message(self, format, *args):
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self):
        try:
            raw = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        status, headers, payload = self.server.fake._respond(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:  # the client gave up (e.g. its timeout fired during a delay)
            self.close_connection = True

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _handle

    def do_HEAD(self):  # no body allowed
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()


def protocol_errors(body: dict) -> list[str]:
    """The checks of the real Messages API that a client can get wrong: non-empty content and
    text, every tool_use answered by a tool_result in the very next user message (and no
    tool_result without its tool_use), tool_results first in their message, at most 4
    cache_control breakpoints, the first message from the user."""
    problems: list[str] = []
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["messages: at least one message is required"]
    if messages[0].get("role") != "user":
        problems.append("messages.0: the first message must use the user role")
    marks = sum(isinstance(b, dict) and "cache_control" in b
                for part in (body.get("tools") or [], body.get("system") if isinstance(body.get("system"), list)
                             else [], *[m.get("content") if isinstance(m.get("content"), list) else []
                                        for m in messages]) for b in part)
    if marks > 4:
        problems.append(f"a maximum of 4 blocks with cache_control may be provided; found {marks}")
    owed: set[str] = set()
    for i, m in enumerate(messages):
        content = m.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list) or not blocks:
            problems.append(f"messages.{i}: all messages must have non-empty content")
            continue
        for j, b in enumerate(blocks):
            if b.get("type") == "text" and not str(b.get("text", "")).strip():
                problems.append(f"messages.{i}.content.{j}: text content blocks must contain non-whitespace text")
        results = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
        if m.get("role") == "user":
            if owed and not owed <= set(results):
                problems.append(f"messages.{i}: tool_use ids {sorted(owed - set(results))} have no tool_result "
                                "in the next message")
            stray = set(results) - owed
            if stray:
                problems.append(f"messages.{i}: tool_result for unknown tool_use ids {sorted(stray)}")
            kinds = [b.get("type") for b in blocks]
            if results and kinds[:len(results)] != ["tool_result"] * len(results):
                problems.append(f"messages.{i}: tool_result blocks must come first")
            owed = set()
        else:
            if owed:
                problems.append(f"messages.{i}: tool_use ids {sorted(owed)} were never answered")
            owed = {b.get("id") for b in blocks if b.get("type") == "tool_use"}
    return problems


class FakeAnthropic:
    """A scripted Anthropic Messages API on 127.0.0.1 (a context manager)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._lock = threading.Lock()
        self._queue: deque = deque()
        self._cache: dict[str, int] = {}
        self._conns: set = set()
        self._closing = threading.Event()
        self.requests: list[dict] = []
        self.unexpected = 0
        self.failures: list[str] = []  # why each unexpected request was unexpected
        self._server = _Server((host, port), _Handler)
        self._server.fake = self
        self.host, self.port = self._server.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-anthropic-{self.port}", daemon=True)
        self._thread.start()

    # -- lifecycle
    def __enter__(self) -> "FakeAnthropic":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._closing.is_set():
            return
        self._closing.set()  # wakes any delay() in progress
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)

    def _track(self, conn, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    # -- scripting and inspection
    def env(self, key: str = "sk-ant-test-KEY0123456789") -> dict[str, str]:
        """Environment for a child process whose SDK should talk to this fake."""
        return {"ANTHROPIC_BASE_URL": self.url, "ANTHROPIC_API_KEY": key}

    def client(self, api_key: str = "sk-ant-test-KEY0123456789", max_retries: int = 0, **kwargs):
        """A real ``anthropic.Anthropic`` client pointed at this fake."""
        import anthropic
        return anthropic.Anthropic(api_key=api_key, base_url=self.url, max_retries=max_retries, **kwargs)

    def script(self, *replies: Any) -> "FakeAnthropic":
        """Queue replies (message/error/delay/callable/str/list), consumed one per POST /v1/messages."""
        with self._lock:
            self._queue.extend(replies)
        return self

    @property
    def pending(self) -> int:
        """Scripted replies not yet consumed."""
        with self._lock:
            return len(self._queue)

    def bodies(self) -> list:
        with self._lock:
            return [r["body"] for r in self.requests]

    def last(self) -> dict:
        """The most recent request record."""
        with self._lock:
            if not self.requests:
                raise AssertionError("fake_api: no requests received")
            return self.requests[-1]

    def reset_cache(self) -> None:
        """Forget every prompt-cache prefix seen so far."""
        with self._lock:
            self._cache.clear()

    # -- request handling (runs in handler threads)
    def _unexpected(self, why: str) -> None:
        with self._lock:
            self.unexpected += 1
            self.failures.append(why)

    def _respond(self, method: str, target: str, headers: dict, raw: bytes) -> tuple[int, dict, bytes]:
        parts = urlsplit(target)
        path = parts.path
        body: Any
        try:
            body = json.loads(raw) if raw else None
            bad_json = False
        except ValueError:
            body, bad_json = raw.decode("utf-8", "replace"), True
        record = {"method": method, "path": path, "query": parts.query, "headers": headers,
                  "body": body, "status": None}
        with self._lock:
            self.requests.append(record)
            reply = None
            invalid = protocol_errors(body) if isinstance(body, dict) else []
            if method == "POST" and path.rstrip("/") == "/v1/messages" and not bad_json and not invalid:
                reply = self._queue.popleft() if self._queue else None
        if invalid:  # what the real API refuses with a 400: a bug in the client, never scripted
            self._unexpected(f"{method} {target}: invalid request: {'; '.join(invalid)}")
            result = self._error_response(Error(400, message="fake_api: " + "; ".join(invalid)))
        elif method != "POST" or path.rstrip("/") != "/v1/messages":
            self._unexpected(f"{method} {target}: no such endpoint in the fake")
            result = self._error_response(Error(404, message=f"fake_api: no route {method} {path}"))
        elif bad_json or not isinstance(body, dict):
            self._unexpected(f"{method} {target}: body is not a JSON object")
            result = self._error_response(Error(400, message="fake_api: body is not a JSON object"))
        elif reply is None:
            self._unexpected(f"{method} {target}: script exhausted")
            result = self._error_response(Error(500, "api_error", "fake_api: script exhausted"))
        else:
            try:
                result = self._produce(reply, body)
            except Exception:
                tb = traceback.format_exc()
                self._unexpected(f"{method} {target}: scripted reply raised\n{tb}")
                result = self._error_response(Error(500, "api_error", f"fake_api: scripted reply raised: {tb}"))
        with self._lock:
            record["status"] = result[0]
        return result

    def _produce(self, reply: Any, body: dict) -> tuple[int, dict, bytes]:
        for _ in range(100):
            if isinstance(reply, Delay):
                self._closing.wait(reply.seconds)
                reply = reply.then
            elif isinstance(reply, (Message, Error)):
                break
            elif isinstance(reply, (str, list)) or (isinstance(reply, dict) and "type" in reply):
                reply = Message(reply)
            elif callable(reply):
                reply = reply(body)
            else:
                raise TypeError(f"fake_api: not a reply: {reply!r}")
        if isinstance(reply, Error):
            return self._error_response(reply)
        if not isinstance(reply, Message):
            raise TypeError(f"fake_api: reply did not resolve to message/error: {reply!r}")
        return self._message_response(reply, body)

    def _error_response(self, err: Error) -> tuple[int, dict, bytes]:
        req_id = _uid("req_")
        payload = {"type": "error", "error": {"type": err.type, "message": err.message},
                   "request_id": req_id}
        headers = {"content-type": "application/json", "request-id": req_id}
        headers.update(err.headers)
        return err.status, headers, json.dumps(payload).encode()

    def _usage(self, body: dict, content: list) -> dict:
        blocks = _prompt_blocks(body)
        h = hashlib.sha256()
        chars = 0
        breakpoints: list[tuple[str, int]] = []
        for ser, cc in blocks:
            h.update(ser.encode("utf-8", "surrogatepass") + b"\x00")
            chars += len(ser)
            if cc:
                breakpoints.append((h.hexdigest(), _tokens(chars)))
        total = _tokens(chars)
        with self._lock:
            seen = [tok for digest, tok in breakpoints if digest in self._cache]
            read = max(seen, default=0)
            created = 0
            if breakpoints and breakpoints[-1][0] not in self._cache:
                created = breakpoints[-1][1] - read
            for digest, tok in breakpoints:
                self._cache[digest] = tok
        return {"input_tokens": max(0, total - read - created),
                "cache_creation_input_tokens": created,
                "cache_read_input_tokens": read,
                "output_tokens": _tokens(len(json.dumps(content)))}

    def _message_response(self, msg: Message, body: dict) -> tuple[int, dict, bytes]:
        usage = self._usage(body, msg.content)
        usage.update(msg.usage or {})
        req_id = _uid("req_")
        payload = {"id": _uid("msg_"), "type": "message", "role": "assistant",
                   "model": msg.model or body.get("model") or "claude-fake",
                   "content": msg.content, "stop_reason": msg.stop_reason,
                   "stop_sequence": None, "usage": usage}
        if body.get("stream"):
            return 200, {"content-type": "text/event-stream", "cache-control": "no-cache",
                         "request-id": req_id}, _sse(payload)
        return 200, {"content-type": "application/json", "request-id": req_id}, json.dumps(payload).encode()


def _sse(payload: dict) -> bytes:
    """The message as a Messages API event stream."""
    events: list[tuple[str, dict]] = []
    usage = payload["usage"]
    start = dict(payload, content=[], stop_reason=None, usage=dict(usage, output_tokens=1))
    events.append(("message_start", {"type": "message_start", "message": start}))
    for i, block in enumerate(payload["content"]):
        kind = block.get("type")
        deltas: list[dict] = []
        if kind == "text":
            first = dict(block, text="")
            s = block.get("text", "")
            deltas = [{"type": "text_delta", "text": s[j:j + 64]} for j in range(0, len(s), 64)]
        elif kind in ("tool_use", "server_tool_use"):
            first = dict(block, input={})
            js = json.dumps(block.get("input", {}))
            deltas = [{"type": "input_json_delta", "partial_json": js[j:j + 64]} for j in range(0, len(js), 64)]
        elif kind == "thinking":
            first = dict(block, thinking="", signature="")
            deltas = [{"type": "thinking_delta", "thinking": block.get("thinking", "")},
                      {"type": "signature_delta", "signature": block.get("signature", "")}]
        else:
            first = block
        events.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": first}))
        for d in deltas:
            events.append(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    events.append(("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": payload["stop_reason"], "stop_sequence": None},
                                     "usage": usage}))
    events.append(("message_stop", {"type": "message_stop"}))
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()
