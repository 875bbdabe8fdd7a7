"""What a user meets at the app's edge, in real Chromium (issue 24, items 13 and 14).

- An unexpected error shows one sentence: no traceback, no server path, no "Ask Google / Ask ChatGPT".
- The app opens by its loopback names (the Host check lets the browser in), and a title with bidi
  controls is drawn with their codes in the sidebar, the header and the Conversations page.
"""

from __future__ import annotations

import os
import sys

import pytest
from streamlit_server import run_streamlit

from browser import ROOT, browser_page, serve_app
from memstore import MemorySettings, SqlStore
from memstore.bidi import BIDI_CONTROLS

pytestmark = pytest.mark.browser
HOSTILE = "Invoice \u202egpj.exe"


def test_an_unexpected_error_shows_a_sentence_without_paths_or_outside_links(tmp_path):
    """Any uncaught error, under the app's own config (.streamlit/config.toml in the working folder)."""
    secret_path = "/srv/memorylab/private/lab.db"
    script = tmp_path / "boom.py"
    script.write_text(f"import streamlit as st\nst.write('before')\nraise RuntimeError('cannot open {secret_path}')\n")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "MEMORYLAB_DATA_DIR": str(tmp_path)}
    with (
        run_streamlit(sys.executable, str(script), ROOT, env, tmp_path / "streamlit.log") as (url, _),
        browser_page() as page,
    ):
        page.goto(url)
        box = page.get_by_test_id("stException")
        box.wait_for(timeout=60_000)
        shown = box.inner_text()
        links = page.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.href)")
        whole = page.inner_text("body")
    assert "This app has encountered an error" in shown
    for leak in (secret_path, str(tmp_path), "boom.py", "Traceback", "RuntimeError", "site-packages"):
        assert leak not in whole, leak
    assert "Ask Google" not in whole and "Ask ChatGPT" not in whole
    assert not [h for h in links if not h.startswith(url)], links
    assert secret_path in (tmp_path / "streamlit.log").read_text()  # the details are in the server's log


def test_the_app_opens_by_localhost_and_shows_a_bidi_title_with_its_codes(tmp_path):
    store = SqlStore.open(f"sqlite:///{tmp_path / 'browser.db'}")
    conv = store.create_conversation("local", HOSTILE, MemorySettings("buffer"))
    msg = store.add_user_message("local", conv.id, "hello", tokens=1, tokenizer="t")
    store.add_reply("local", conv.id, msg.turn, "hi", status="complete", tokens=1, tokenizer="t")
    store.close()
    with serve_app(tmp_path) as url, browser_page() as page:
        local = url.replace("127.0.0.1", "localhost")
        seen = {}
        for name, address in (("chat", local), ("conversations", f"{local}/conversations")):
            page.goto(address)
            picker = page.locator("[data-testid=stSelectbox] input[value*='Invoice [U+202E]gpj.exe']")
            picker.first.wait_for(state="attached", timeout=60_000)  # the sidebar's Open; the page's Conversation
            page.wait_for_timeout(1_500)
            seen[name] = page.evaluate(DRAWN)
    assert "Invoice [U+202E]gpj.exe" in seen["chat"]["body"][0]  # the chat header
    assert "Invoice [U+202E]gpj.exe" in seen["chat"]["inputs"]  # the sidebar picker
    assert "Invoice [U+202E]gpj.exe (#1)" in seen["conversations"]["inputs"]  # the page's picker
    assert "Invoice [U+202E]gpj.exe" in seen["conversations"]["cells"]  # the table's title cell
    for drawn in seen.values():
        assert not [t for texts in drawn.values() for t in texts if set(t) & BIDI_CONTROLS], drawn


# What the reader sees: the page's text, each input's value (a picker shows its choice there), each table cell.
DRAWN = """() => ({
    body: [document.body.innerText],
    inputs: [...document.querySelectorAll('input')].map(i => i.value),
    cells: [...document.querySelectorAll('[role=gridcell]')].map(c => c.textContent),
})"""
