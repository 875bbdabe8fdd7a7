"""A small OpenAI-compatible chat server on 127.0.0.1 for tests: streams, fails and drops on request."""

from __future__ import annotations

import json
import re
import threading
import time
import zlib
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _chunk(model: str, *, content: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {"content": content} if content is not None else {}
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


class FakeOpenAIServer:
    """Serves /v1/chat/completions. Queue behaviours with `expect(...)`; default is a streamed echo.

    Behaviours: ("reply", text), ("status", code), ("drop", text) — stream text then close
    without a finish reason, ("reset", text) — stream text then break the chunked body,
    ("garbage",), ("sleep", seconds), ("chunks", text, size) — text in deltas of `size` characters,
    ("json_deltas", [raw JSON string literals]) — each delta's content written as given (so an emoji's
    two surrogate halves can go in two events), ("echo_key",) — a 400 whose message quotes the key sent,
    ("hook", callable, text) — call `callable()` after the first delta, then stream the rest.
    """

    MEMORY_CALLS = ("You pick out lasting facts", "You keep short notes", "You keep a running summary")

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """Requests of the chat itself, without memory calls (facts, entity notes, summaries)."""
        return [r for r in self.requests if not r["messages"][0]["content"].startswith(self.MEMORY_CALLS)]

    def __init__(self, port: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.behaviours: deque[tuple] = deque()
        self.embedding_requests: list[dict[str, Any]] = []
        self.models: list[str] = ["gpt-4o-mini", "test-model"]  # what GET /v1/models lists
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if not self.path.rstrip("/").endswith("/models"):
                    self.send_error(404)
                    return
                payload = json.dumps(
                    {
                        "object": "list",
                        "data": [{"id": name, "object": "model", "owned_by": "test"} for name in server.models],
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/").endswith("/embeddings"):
                    server.embedding_requests.append(body)
                    server.respond_embeddings(self, body)
                    return
                server.requests.append(body)
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                behaviour = server.behaviours.popleft() if server.behaviours else ("echo",)
                server.respond(self, body, behaviour)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients hanging up on kept-alive connections are expected here

        self.httpd = Server(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def expect(self, *behaviours: tuple) -> None:
        self.behaviours.extend(behaviours)

    def __enter__(self) -> FakeOpenAIServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- responses ----------------------------------------------------------------------------

    def respond_embeddings(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        """Deterministic bag-of-words vectors (64 hashed dimensions): texts sharing words are similar."""
        texts = body.get("input") or []
        texts = [texts] if isinstance(texts, str) else texts
        data = []
        for i, text in enumerate(texts):
            vector = [0.0] * 64
            for word in re.findall(r"[a-z]+", text.lower()):
                vector[zlib.crc32(word.encode()) % 64] += 1.0
            data.append({"object": "embedding", "index": i, "embedding": vector})
        payload = json.dumps(
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": 0, "total_tokens": 0},
            }
        ).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def respond(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], behaviour: tuple) -> None:
        kind = behaviour[0]
        model = body.get("model", "test-model")
        if kind == "status":
            code = behaviour[1]
            payload = json.dumps({"error": {"message": f"test error {code}", "type": "test", "code": code}}).encode()
            handler.send_response(code)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        if kind == "echo_key":
            key = handler.headers.get("Authorization", "").removeprefix("Bearer ")
            payload = json.dumps(
                {"error": {"message": f"Invalid request for key {key}: bad parameter", "type": "invalid_request_error"}}
            ).encode()
            handler.send_response(400)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        if kind == "sleep":
            time.sleep(behaviour[1])
            kind, behaviour = "echo", ("echo",)
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

        def send(data: str) -> None:
            raw = data.encode()
            handler.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
            handler.wfile.flush()

        def event(obj: Any) -> None:
            send("data: " + (obj if isinstance(obj, str) else json.dumps(obj)) + "\n\n")

        if kind == "garbage":
            event(_chunk(model, content="Hel"))
            send("data: {this is not json\n\n")
            handler.wfile.write(b"0\r\n\r\n")
            return
        if kind == "json_deltas":
            for raw in behaviour[1]:
                send(
                    f'data: {{"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "{model}", '
                    f'"choices": [{{"index": 0, "delta": {{"content": {raw}}}, "finish_reason": null}}]}}\n\n'
                )
            event(_chunk(model, finish="stop"))
            event("[DONE]")
            handler.wfile.write(b"0\r\n\r\n")
            return
        if kind == "chunks":
            text, size = behaviour[1], behaviour[2]
            for start in range(0, len(text), size):
                event(_chunk(model, content=text[start : start + size]))
            event(_chunk(model, finish="stop"))
            event("[DONE]")
            handler.wfile.write(b"0\r\n\r\n")
            return
        if kind == "hook":
            words = behaviour[2].split(" ")
            event(_chunk(model, content=words[0]))
            behaviour[1]()
            for word in words[1:]:
                event(_chunk(model, content=" " + word))
            event(_chunk(model, finish="stop"))
            event("[DONE]")
            handler.wfile.write(b"0\r\n\r\n")
            return
        if kind == "echo" and body.get("messages", [{}])[0].get("content", "").startswith(self.MEMORY_CALLS[:2]):
            text = "{}"  # a facts or entity call, answered as a well-behaved model with nothing to report
        elif kind == "echo":
            last = next((m["content"] for m in reversed(body.get("messages", [])) if m["role"] == "user"), "")
            text = f"echo: {last[-200:]}"
        else:
            text = behaviour[1]
        words = text.split(" ")
        for i, word in enumerate(words):
            event(_chunk(model, content=word if i == 0 else " " + word))
        if kind == "drop":
            handler.wfile.write(b"0\r\n\r\n")  # a clean end of body, but no finish reason and no [DONE]
            handler.close_connection = True
            return
        if kind == "reset":
            handler.wfile.write(b"40\r\npartial-chunk")  # promise 64 bytes, send fewer, then hang up
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        event(_chunk(model, finish="stop"))
        prompt_tokens = sum(len(m.get("content", "").split()) for m in body.get("messages", []))
        event(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(words),
                    "total_tokens": prompt_tokens + len(words),
                },
            }
        )
        event("[DONE]")
        handler.wfile.write(b"0\r\n\r\n")


if __name__ == "__main__":  # serve until interrupted: python tests/openai_server.py
    with FakeOpenAIServer() as running:
        print(running.base_url, flush=True)
        running.thread.join()
