"""Hostile servers on 127.0.0.1 for the model probes: one that redirects, one that records, one that drips."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a probe that hangs up early is expected


class _Served:
    """A ThreadingHTTPServer on a free loopback port, started on enter and stopped on exit."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = _Quiet(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Recorder(_Served):
    """Another origin (another port): records the headers of every request, and lists a model."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                recorder.headers.append({k.lower(): v for k, v in self.headers.items()})
                body = json.dumps({"object": "list", "data": [{"id": "stolen-model"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

        super().__init__(Handler)


class Redirector(_Served):
    """Answers every request with `status` and a Location on another origin (the path kept)."""

    def __init__(self, status: int, target_origin: str) -> None:
        self.hits = 0
        redirector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                redirector.hits += 1
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(status)
                self.send_header("Location", target_origin + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET

        super().__init__(Handler)


class Drip:
    """A server that answers one byte every `interval_s`, forever: from the status line on (`headers=True`), or
    after complete headers that promise a large JSON body."""

    def __init__(self, interval_s: float = 0.5, *, headers: bool = True) -> None:
        self.interval_s = interval_s
        self.headers = headers
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self.connections += 1
            thread = threading.Thread(target=self._drip, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _drip(self, conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
        with conn:
            try:
                conn.recv(65536)  # the request
                if not self.headers:
                    conn.sendall(head)
                stream = head + b'{"data": [' if self.headers else b'{"data": ['
                n = 0
                while not self._stop.wait(self.interval_s):
                    conn.sendall(stream[n : n + 1] if n < len(stream) else b" ")
                    n += 1
            except OSError:
                pass  # the probe hung up: what a deadline should do

    def __enter__(self) -> Drip:
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._acceptor.join()
        for thread in self._threads:
            thread.join()
        self.listener.close()
