"""Helpers for the browser tests: the app on a free loopback port, Debian's Chromium through Playwright."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from streamlit_server import CHROMIUM, CHROMIUM_ARGS, run_streamlit

from memstore import SqlStore

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
sync_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed, so the browser tests did not run", allow_module_level=True)


@contextmanager
def serve_app(tmp_path: Path, **extra_env: str):
    """`streamlit run app.py` on a free 127.0.0.1 port with these settings; yields its URL."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'browser.db'}",
        "MEMORYLAB_DATA_DIR": str(tmp_path / "data"),
        **extra_env,
    }
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"):
        if name not in extra_env:
            env.pop(name, None)
    with run_streamlit(sys.executable, "app.py", ROOT, env, tmp_path / "streamlit.log") as (url, _):
        yield url


@contextmanager
def browser_page(height: int = 1100, pages: int = 1):
    """Headless Debian Chromium with fresh pages of one browser context."""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": height})
        context.set_default_timeout(60_000)  # a busy 2-core machine runs two browsers, two apps and a model
        try:
            opened = [context.new_page() for _ in range(pages)]
            yield opened[0] if pages == 1 else opened
        finally:
            browser.close()


def wait_for_chat_call(store: SqlStore, timeout_s: float = 180):
    """The newest chat call once the turn has stored it (a real model takes its time)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        calls = store.list_calls("local", purpose="chat", limit=1)
        if calls:
            return calls[0]
        time.sleep(0.5)
    raise AssertionError("no chat call was stored")


def message_texts(page) -> list[str]:
    """Each chat bubble's message as the reader sees it, without the bubble's menu."""
    return page.get_by_test_id("stChatMessageContent").evaluate_all(
        "els => els.map(e => (e.querySelector('[data-testid=stText], [data-testid=stMarkdownContainer], "
        "[data-testid=stCode], [data-testid=stCaptionContainer]') || e).innerText)"
    )
