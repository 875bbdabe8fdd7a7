"""Forgetting in real Chromium: the title made from the message changes, a reply streaming meanwhile keeps no copy,
and a reader holding the database open is reported, not hidden."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from browser import ARTIFACTS, browser_page, message_texts, serve_app
from memstore import SqlStore
from openai_server import FakeOpenAIServer

PASSPORT = "My passport number is ZEBRA-7781-QX"
CHAT_INPUT = "stChatInputTextArea"


@pytest.fixture
def app(tmp_path):
    with (
        FakeOpenAIServer() as server,
        serve_app(tmp_path, OPENAI_BASE_URL=server.base_url, OPENAI_MODEL="gpt-4o-mini", OPENAI_MAX_RETRIES="0") as url,
    ):
        yield url, server, tmp_path / "browser.db"


def send(page, text: str, reply: str) -> None:
    box = page.get_by_test_id(CHAT_INPUT)
    box.wait_for(timeout=30_000)
    page.wait_for_function(f"() => !document.querySelector('[data-testid={CHAT_INPUT}]').disabled")
    box.fill(text)
    box.press("Enter")
    page.get_by_text(reply).first.wait_for(timeout=60_000)
    page.wait_for_function(f"() => !document.querySelector('[data-testid={CHAT_INPUT}]').disabled")  # turn saved


def forget_first_message(page) -> None:
    """The first bubble's menu, "Forget this message…", then the confirmation's "Forget it"."""
    page.get_by_test_id("stPopover").first.click()
    page.get_by_role("button", name="Forget this message…").click()
    page.get_by_role("button", name="Forget it").click()


def database_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def heading(page) -> str:
    return page.get_by_role("heading", level=3).first.inner_text()


def test_forgetting_the_first_message_changes_the_title_and_a_held_reader_is_reported(app):
    url, server, db = app
    with browser_page() as page:
        page.goto(url)
        send(page, PASSPORT, f"echo: {PASSPORT}")
        send(page, "And what about the weather?", "echo: And what about the weather?")
        page.get_by_role("heading", name=PASSPORT).wait_for()
        reader = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM messages").fetchone()  # another program in the middle of a read
        forget_first_message(page)
        note = page.get_by_text("An old copy is still in the database's journal")
        note.wait_for(timeout=60_000)
        assert page.get_by_text("Forgotten everywhere the app reads.").count() == 1
        page.get_by_role("heading", name="And what about the weather?").wait_for()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "browser-forget-title.png"))
        assert "ZEBRA" not in page.inner_text("body")
        picker = page.get_by_test_id("stSelectbox").filter(has_text="Open")
        assert "ZEBRA" not in picker.locator("input").input_value() + picker.inner_text()
        assert b"ZEBRA" in database_bytes(db)  # what the page said: the journal still holds it
        reader.execute("COMMIT")
        reader.close()
        send(page, "One more thing", "echo: One more thing")  # the next save erases it
        assert b"ZEBRA" not in database_bytes(db)
        page.reload()
        page.get_by_role("heading", name="And what about the weather?").wait_for(timeout=60_000)
        assert "ZEBRA" not in page.inner_text("body")
        assert page.get_by_test_id("stException").count() == 0
    store = SqlStore.open(f"sqlite:///{db}")
    try:
        (conversation,) = store.list_conversations("local")
        assert conversation.title == "And what about the weather?"
    finally:
        store.close()


def hold_next_chat_reply(server: FakeOpenAIServer, reply: str) -> tuple[threading.Event, threading.Event]:
    """The next chat request (not a memory call) streams its first word, then waits until released."""
    started, released = threading.Event(), threading.Event()
    respond = server.respond

    def hold() -> None:
        started.set()
        released.wait(timeout=120)

    def respond_once(handler, body, behaviour):
        first = body["messages"][0]["content"]
        if behaviour == ("echo",) and not first.startswith(server.MEMORY_CALLS) and not started.is_set():
            behaviour = ("hook", hold, reply)
        respond(handler, body, behaviour)

    server.respond = respond_once  # type: ignore[method-assign]
    return started, released


def test_a_message_forgotten_in_another_tab_while_a_reply_streams_leaves_no_copy(app):
    url, server, db = app
    with browser_page(pages=2) as (streaming, forgetting):
        streaming.goto(url)
        send(streaming, PASSPORT, f"echo: {PASSPORT}")
        started, released = hold_next_chat_reply(server, f"You told me: {PASSPORT}")
        box = streaming.get_by_test_id(CHAT_INPUT)
        streaming.wait_for_function(f"() => !document.querySelector('[data-testid={CHAT_INPUT}]').disabled")
        box.fill("What did I tell you?")
        box.press("Enter")
        assert started.wait(timeout=60)  # the request, carrying the passport number, is out; the reply streams
        try:
            forgetting.goto(url)  # the same conversation, in another tab
            forgetting.get_by_text("What did I tell you?").first.wait_for(timeout=60_000)
            forget_first_message(forgetting)
            forgetting.get_by_text("Forgotten.").first.wait_for(timeout=60_000)
        finally:
            released.set()
        streaming.get_by_text("You told me:").first.wait_for(timeout=60_000)
        streaming.wait_for_function(f"() => !document.querySelector('[data-testid={CHAT_INPUT}]').disabled")
        assert PASSPORT in str(server.chat_requests[-1])  # it was sent before the forget
        streaming.reload()
        streaming.get_by_role("heading", name="What did I tell you?").wait_for(timeout=60_000)
        streaming.get_by_text("You told me: [forgotten]").first.wait_for(timeout=60_000)
        assert "ZEBRA" not in streaming.inner_text("body")
        assert not any("ZEBRA" in text for text in message_texts(streaming))
    store = SqlStore.open(f"sqlite:///{db}")
    try:
        calls = store.list_calls("local", limit=50)
        assert len([c for c in calls if c.purpose == "chat"]) == 2
        assert not any("ZEBRA" in str(c.request) + c.reply for c in calls)
        assert all(
            "ZEBRA" not in m.content for c in store.list_conversations("local") for m in store.page("local", c.id)
        )
    finally:
        store.close()
    assert b"ZEBRA" not in database_bytes(db)
