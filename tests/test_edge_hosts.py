"""A page on another site name cannot talk to the app (issue 24, item 13): the Host header is checked.

DNS rebinding: a page on evil.example re-points its own name at 127.0.0.1, so the browser sends
`Host: evil.example` and `Origin: http://evil.example` (same-origin to the browser). The app's
`server.allowedHosts` (.streamlit/config.toml) refuses the WebSocket every page runs on.
"""

from __future__ import annotations

import base64
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
from streamlit_server import run_streamlit

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def app_port(tmp_path_factory):
    """The real app (`streamlit run app.py`, the project's config) on a free 127.0.0.1 port."""
    tmp = tmp_path_factory.mktemp("hosts")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp / 'hosts.db'}", "MEMORYLAB_DATA_DIR": str(tmp / "data")}
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"):
        env.pop(name, None)
    with run_streamlit(sys.executable, "app.py", ROOT, env, tmp / "streamlit.log") as (url, _):
        yield urlparse(url).port


def handshake(port: int, host: str, origin: str | None) -> str:
    """The status line the app answers a WebSocket upgrade of /_stcore/stream with."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /_stcore/stream HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: streamlit",
    ]
    if origin:
        lines.append(f"Origin: {origin}")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0].decode("latin-1")


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "localhost.evil.example:{port}",
        "127.0.0.1.nip.io:{port}",
        "0.0.0.0:{port}",
        "[::ffff:127.0.0.1]:{port}",
        "user@127.0.0.1:{port}",
    ],
)
def test_a_foreign_host_and_origin_cannot_open_the_apps_websocket(app_port, host):
    name = host.format(port=app_port)
    status = handshake(app_port, name, f"http://{name}")
    assert status.startswith("HTTP/1.1 ") and " 101 " not in status, status


def test_a_foreign_host_with_no_origin_cannot_open_it_either(app_port):
    """A program (no Origin header) must also name the app's own address."""
    assert " 101 " not in handshake(app_port, f"evil.example:{app_port}", None)


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "LOCALHOST:{port}"])
def test_the_loopback_names_still_open_it(app_port, host):
    name = host.format(port=app_port)
    assert " 101 " in handshake(app_port, name, f"http://{name}")


def test_a_loopback_host_with_a_foreign_origin_is_refused(app_port):
    """A page on evil.example that calls http://127.0.0.1:port directly (no rebinding): Streamlit's Origin check."""
    assert " 101 " not in handshake(app_port, f"127.0.0.1:{app_port}", "http://evil.example")


def test_the_config_lists_only_the_loopback_names():
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert sorted(config["server"]["allowedHosts"]) == ["127.0.0.1", "::1", "localhost"]


@pytest.mark.parametrize(
    ("address", "allowed", "says"),
    [
        ("127.0.0.1", ["localhost", "127.0.0.1", "::1"], None),
        ("0.0.0.0", ["lab.example.org", "localhost"], None),
        ("0.0.0.0", ["localhost", "127.0.0.1", "::1"], "Other machines are refused"),
        ("", ["localhost"], "Other machines are refused"),
        ("127.0.0.1", [], "Any site name can reach this app"),
        ("127.0.0.1", [" "], "Any site name can reach this app"),
        ("0.0.0.0", ["*"], "Any site name can reach this app"),
    ],
)
def test_every_page_says_when_the_host_check_is_off_or_refuses_other_machines(address, allowed, says):
    from ui.page import host_check_note

    note = host_check_note(address, allowed)
    assert note is None if says is None else note.startswith(says)
