"""A small Hugging Face Hub on 127.0.0.1 for tests: serves files to hf_hub_download, fails and drops on request."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote

# huggingface_hub 2.4.0 reads, on HEAD /{repo}/resolve/{revision}/{file}: X-Repo-Commit (required), X-Linked-Etag
# or ETag (required), X-Linked-Size or Content-Length; on GET: Content-Range or Content-Length. It only switches to
# the Xet protocol when a response carries X-Xet-Hash plus a refresh route, so this server never sends those.
# Errors are typed from X-Error-Code (EntryNotFound, RepoNotFound, RevisionNotFound, GatedRepo), as on the Hub.
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<filename>.+)$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_PIECE_BYTES = 16 * 1024
NO_SIZE = -1  # a Lie's head_size that sends no size at all

_STATUS_FAULTS: dict[int, tuple[str | None, str]] = {
    401: ("GatedRepo", "Access to this model is restricted. You must be authenticated to access it."),
    403: ("GatedRepo", "Access to this model is restricted and you are not in the authorized list."),
    404: ("EntryNotFound", "Entry not found"),
    500: (None, "Internal Error"),
    503: (None, "Service Unavailable"),
}


@dataclass(frozen=True)
class HubRequest:
    """One request the hub saw, so a test can check what huggingface_hub asked for."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def range(self) -> str | None:
        return self.headers.get("range")


@dataclass(frozen=True)
class Lie:
    """What a hostile Hub says about one file instead of the truth; None keeps the true value."""

    etag: str | None = None  # sent as ETag and X-Linked-Etag (huggingface_hub builds its blob path from it)
    commit: str | None = None  # sent as X-Repo-Commit (huggingface_hub builds its snapshot path from it)
    head_size: int | None = None  # the size a HEAD announces (X-Linked-Size, Content-Length); NO_SIZE: none
    body: bytes | None = None  # what a GET sends instead of the file, with its own Content-Length
    ignore_range: bool = False  # answer a Range request with 200 and the whole body
    redirect_to: str | None = None  # an endpoint: HEAD and GET answer 302 to the same path there, as the Hub's CDN


@dataclass(frozen=True)
class _Fault:
    kind: str | int
    method: str | None = None  # None: any method for a status, GET for the body faults
    after_bytes: int = 0
    seconds: float = 0.0

    def applies_to(self, method: str) -> bool:
        if self.method is not None:
            return self.method == method
        return isinstance(self.kind, int) or method == "GET"


class FakeHub:
    """Serves `/{repo_id}/resolve/{revision}/{filename}` for files added with `add_file`; default is a well-behaved Hub.

    Faults, each used by the next matching request (`fail_next(kind, ...)`; `method=` narrows it to HEAD or GET):
      404 / 401 / 403 / 500 / 503 — answer HEAD or GET with that status (401/403 as a gated repo, 404 as a
      missing file);
      "drop"  — on a GET: send `after_bytes` of the body, then close the connection cleanly (a short body);
      "reset" — on a GET: send `after_bytes` of the body, then reset the connection (TCP RST);
      "stall" — on a GET: send `after_bytes`, then say nothing for `seconds`, then close;
                with method="HEAD": say nothing for `seconds`, then close (a Hub that does not answer).
    `bytes_per_s` throttles every body (None = as fast as possible), so a browser can watch a progress bar.
    `lie(repo_id, filename, Lie(...))` makes the Hub hostile for one file: a path as its ETag or commit, a HEAD
    that announces one size while the GET sends another body.
    Unknown repositories answer 401 RepoNotFound and unknown files 404 EntryNotFound, like the real Hub; the revision
    may be "main" (commit `COMMIT`) or any 40-hex commit, which is echoed back (so pinned model lists work).
    """

    COMMIT = "0123456789abcdef0123456789abcdef01234567"

    def __init__(self, *, bytes_per_s: int | None = None) -> None:
        self.files: dict[tuple[str, str], bytes] = {}
        self.lies: dict[tuple[str, str], Lie] = {}
        self.requests: list[HubRequest] = []
        self.faults: deque[_Fault] = deque()
        self.bytes_per_s = bytes_per_s
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                hub._serve(self, body=False)

            def do_GET(self) -> None:
                hub._serve(self, body=True)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients hanging up mid-body (and our own resets) are expected here

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- set-up ------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add_file(self, repo_id: str, filename: str, path_or_bytes: str | Path | bytes) -> str:
        """Serve these bytes (or this file's bytes) as `filename` in `repo_id`; returns their sha256."""
        data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
        self.files[(repo_id, filename)] = data
        return hashlib.sha256(data).hexdigest()

    def lie(self, repo_id: str, filename: str, lie: Lie) -> None:
        """From now on, answer for this file with these lies (the file must have been added)."""
        if (repo_id, filename) not in self.files:
            raise KeyError(f"add {repo_id}/{filename} first")
        self.lies[(repo_id, filename)] = lie

    def fail_next(
        self, kind: str | int, *, method: str | None = None, after_bytes: int = 0, seconds: float = 0.0, times: int = 1
    ) -> None:
        if kind not in _STATUS_FAULTS and kind not in ("drop", "reset", "stall"):
            raise ValueError(f"unknown fault {kind!r}")
        if method not in (None, "HEAD", "GET") or (kind in ("drop", "reset") and method == "HEAD"):
            raise ValueError(f"fault {kind!r} cannot apply to {method}")
        with self._lock:
            self.faults.extend(_Fault(kind, method, after_bytes, seconds) for _ in range(times))

    def requests_for(self, method: str) -> list[HubRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method]

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- responses ---------------------------------------------------------------------------

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            if self.faults and self.faults[0].applies_to(method):
                return self.faults.popleft()
            return None

    def _serve(self, handler: BaseHTTPRequestHandler, *, body: bool) -> None:
        with self._lock:
            self.requests.append(
                HubRequest(handler.command, handler.path, {k.lower(): v for k, v in handler.headers.items()})
            )
        match = _RESOLVE.match(handler.path.split("?", 1)[0])
        if not match:
            self._status(handler, 404, None, "Not found", body=body)
            return
        repo_id, revision, filename = match["repo"], unquote(match["revision"]), unquote(match["filename"])
        fault = self._take_fault(handler.command)
        if fault is not None and fault.kind == "stall" and not body:
            time.sleep(fault.seconds)
            handler.close_connection = True
            return
        if fault is not None and isinstance(fault.kind, int):
            code, message = _STATUS_FAULTS[fault.kind]
            self._status(handler, fault.kind, code, message, body=body)
            return
        if not any(repo == repo_id for repo, _ in self.files):
            self._status(handler, 401, "RepoNotFound", "Repository not found", body=body, commit=None)
            return
        if revision != "main" and not _COMMIT.match(revision):
            self._status(handler, 404, "RevisionNotFound", "Invalid rev id", body=body, commit=None)
            return
        commit = self.COMMIT if revision == "main" else revision  # any pinned commit holds the same files
        data = self.files.get((repo_id, filename))
        if data is None:
            self._status(handler, 404, "EntryNotFound", "Entry not found", body=body, commit=commit)
            return
        lie = self.lies.get((repo_id, filename), Lie())
        self._file(handler, data, fault, body=body, commit=lie.commit or commit, lie=lie)

    def _status(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        error_code: str | None,
        message: str,
        *,
        body: bool,
        commit: str | None = COMMIT,
    ) -> None:
        payload = json.dumps({"error": message}).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.send_header("X-Error-Message", message)
        if error_code:
            handler.send_header("X-Error-Code", error_code)
        if commit:
            handler.send_header("X-Repo-Commit", commit)
        handler.end_headers()
        if body:
            handler.wfile.write(payload)

    def _file(
        self,
        handler: BaseHTTPRequestHandler,
        data: bytes,
        fault: _Fault | None,
        *,
        body: bool,
        commit: str,
        lie: Lie,
    ) -> None:
        etag = lie.etag or hashlib.sha256(data).hexdigest()  # the Hub's ETag for an LFS file is its sha256
        if lie.redirect_to is not None:
            handler.send_response(302)
            handler.send_header("Location", lie.redirect_to + handler.path)
            handler.send_header("Content-Length", "0")
            handler.send_header("X-Linked-Etag", f'"{etag}"')
            handler.send_header("X-Linked-Size", str(len(data)))
            handler.send_header("X-Repo-Commit", commit)
            handler.end_headers()
            return
        if body and lie.body is not None:
            data = lie.body
        size = lie.head_size if not body and lie.head_size is not None else len(data)
        start, end = 0, size - 1
        requested = None if lie.ignore_range else handler.headers.get("Range")
        if requested:
            match = _RANGE.match(requested.strip())
            if not match or int(match[1]) >= size:
                handler.send_response(416)
                handler.send_header("Content-Range", f"bytes */{size}")
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                return
            start, end = int(match[1]), min(int(match[2]) if match[2] else size - 1, size - 1)
        handler.send_response(206 if requested else 200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Accept-Ranges", "bytes")
        if size != NO_SIZE:
            handler.send_header("Content-Length", str(max(end - start + 1, 0)))  # a lie stays in X-Linked-Size
            handler.send_header("X-Linked-Size", str(size))
        if requested:
            handler.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        handler.send_header("ETag", f'"{etag}"')
        handler.send_header("X-Linked-Etag", f'"{etag}"')
        handler.send_header("X-Repo-Commit", commit)
        handler.end_headers()
        if not body:
            return
        chunk = data[start : end + 1]
        limit = len(chunk) if fault is None else min(fault.after_bytes, len(chunk))
        self._send_body(handler, chunk[:limit])
        if fault is None:
            return
        handler.close_connection = True
        if fault.kind == "stall":
            time.sleep(fault.seconds)
        elif fault.kind == "reset":
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.connection.close()
            return
        handler.connection.shutdown(socket.SHUT_RDWR)

    def _send_body(self, handler: BaseHTTPRequestHandler, data: bytes) -> None:
        began = time.monotonic()
        for offset in range(0, len(data), _PIECE_BYTES):
            handler.wfile.write(data[offset : offset + _PIECE_BYTES])
            handler.wfile.flush()
            rate = self.bytes_per_s
            if rate:
                ahead_s = (offset + _PIECE_BYTES) / rate - (time.monotonic() - began)
                if ahead_s > 0:
                    time.sleep(ahead_s)


if __name__ == "__main__":  # serve one file until interrupted: python tests/fake_hub.py REPO FILENAME PATH
    parser = argparse.ArgumentParser(description="Serve one file the way the Hugging Face Hub does.")
    parser.add_argument("repo_id")
    parser.add_argument("filename")
    parser.add_argument("path", type=Path)
    parser.add_argument("--bytes-per-s", type=int, default=None, help="throttle bodies, to watch a progress bar")
    args = parser.parse_args()
    with FakeHub(bytes_per_s=args.bytes_per_s) as running:
        sha256 = running.add_file(args.repo_id, args.filename, args.path)
        print(running.endpoint, flush=True)
        print(f"serving {args.repo_id}/{args.filename} ({args.path.stat().st_size} bytes, sha256 {sha256})", flush=True)
        try:
            running.thread.join()
        except KeyboardInterrupt:
            pass
