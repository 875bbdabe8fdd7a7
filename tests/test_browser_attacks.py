"""The attacks on the running app, replayed in real Chromium: nothing leaks, nothing typed or received is lost."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

from browser import ARTIFACTS, browser_page, message_texts, serve_app
from memstore import MemorySettings, SqlStore
from memstore.database_identity import DatabaseIdentity
from memstore.outbox import Outbox, new_unsent
from memstore.records import CallDraft, ChatMessage
from openai_server import FakeOpenAIServer

PAGES = ["", "preferences", "conversations", "model_calls", "compare", "lessons"]


class Canary:
    """An HTTP server on 127.0.0.1 that records every request: any hit means the browser fetched stored text."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        canary = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                canary.hits.append(self.path)
                self.send_response(204)
                self.end_headers()

            do_POST = do_HEAD = do_GET

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def hostile(port: int, where: str) -> str:
    """Text that would fetch from the canary if any sink rendered it as Markdown or HTML."""
    return (
        f'![{where}](http://127.0.0.1:{port}/{where}.png) <img src="http://127.0.0.1:{port}/{where}-html.png"> '
        f"$\\rule{{9em}}{{9em}}$ :red[{where}]"
    )


def seed(db_url: str, data_dir: Path, port: int) -> None:
    """Hostile text in every field the app shows: titles, messages, errors, ledger, summaries, entities, facts."""
    store = SqlStore.open(db_url)
    try:
        for memory_type in ("entity", "summary_buffer"):
            conv = store.create_conversation(
                "local",
                hostile(port, f"title-{memory_type}")[:200],
                MemorySettings(memory_type, window_turns=1, max_tokens=60),
            )
            for turn in range(1, 4):
                message = store.add_user_message(
                    "local", conv.id, hostile(port, f"user{turn}"), tokens=40, tokenizer="t"
                )
                draft = CallDraft(
                    purpose="chat",
                    conversation_id=conv.id,
                    turn=turn,
                    memory_type=memory_type,
                    model=hostile(port, "model")[:60],
                    provider="openai-compatible",
                    host="127.0.0.1",
                    params={},
                    request=(ChatMessage("user", hostile(port, "request")),),
                    reply=hostile(port, "ledger-reply"),
                    error=hostile(port, "ledger-error"),
                    error_kind="http_error",
                    sections={"history": 10},
                    details={
                        "recall": {
                            "recalled": [
                                {
                                    "turn": 1,
                                    "same_conversation": False,
                                    "score": 0.5,
                                    "rank": 1,
                                    "conversation_title": hostile(port, "recall-title"),
                                }
                            ],
                            "min_score": 0.1,
                            "searched": 3,
                            "missed": [],
                        },
                        "entities": {"injected": [{"name": hostile(port, "entity-detail")}], "known": 1},
                        "facts_left_out": [{"key": hostile(port, "left-key"), "reason": "budget"}],
                    },
                )
                store.add_reply(
                    "local",
                    conv.id,
                    message.turn,
                    hostile(port, f"reply{turn}"),
                    status="partial",
                    tokens=40,
                    tokenizer="t",
                    error=hostile(port, "reply-error"),
                    call=draft,
                )
            store.add_summary(
                "local",
                conv.id,
                memory_type,
                hostile(port, "summary"),
                from_turn=1,
                through_turn=2,
                tokens=20,
                call=None,
            )
            store.add_entity_versions(
                "local",
                conv.id,
                [(f"![e](http://127.0.0.1:{port}/ent.png)", hostile(port, "entity-note"))],
                turn=1,
                call=None,
            )
        store.set_preference("local", f"![k](http://127.0.0.1:{port}/key.png)", hostile(port, "pref-value"))
        store.apply_fact_changes(
            "local",
            [(f"![c](http://127.0.0.1:{port}/chg.png)", hostile(port, "auto-fact"))],
            conversation_id=1,
            turn=1,
            call_id=None,
        )
        outbox = Outbox.beside(data_dir)
        outbox.put(
            new_unsent(
                "local", 1, "message", hostile(port, "unsent"), hostile(port, "unsent-error"), database=store.identity()
            )
        )
        elsewhere = DatabaseIdentity("f" * 32, hostile(port, "other-database"))  # an item of another database
        item = new_unsent("local", 1, "reply", hostile(port, "foreign"), hostile(port, "f-error"), database=elsewhere)
        outbox.put(replace(item, turn=1, instance=hostile(port, "instance")))
    finally:
        store.close()


def test_hostile_text_in_every_field_never_makes_the_browser_fetch_anything(tmp_path):
    canary = Canary()
    port = canary.port
    db_url = f"sqlite:///{tmp_path / 'browser.db'}"
    seed(db_url, tmp_path / "data", port)
    requests: list[str] = []
    try:
        with FakeOpenAIServer() as server:
            server.models = ["gpt-4o-mini", f"![m](http://127.0.0.1:{port}/listed-model.png)"]
            server.expect(("reply", hostile(port, "live-reply")), ("status", 500))
            with (
                serve_app(
                    tmp_path, OPENAI_BASE_URL=server.base_url, OPENAI_MODEL="gpt-4o-mini", OPENAI_MAX_RETRIES="0"
                ) as url,
                browser_page(height=1400) as page,
            ):
                origin = urlparse(url).netloc
                page.on("request", lambda r: requests.append(r.url))
                page.goto(url)
                box = page.get_by_test_id("stChatInputTextArea")
                box.wait_for(timeout=60_000)
                box.fill(hostile(port, "typed"))
                box.press("Enter")
                page.get_by_text("typed", exact=False).first.wait_for(timeout=30_000)
                page.wait_for_timeout(3_000)
                for tab in ("Holds now", "Next request", "Last request", "Summary call", "Timeline"):
                    page.get_by_role("tab", name=tab).click()
                    page.wait_for_timeout(600)
                page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first.click()  # the model list
                page.wait_for_timeout(500)
                page.keyboard.press("Escape")
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "browser-hostile-chat.png"), full_page=True)
                for name in PAGES[1:]:
                    page.goto(f"{url}/{name}")
                    page.wait_for_timeout(2_500)
                    if name == "compare":
                        page.get_by_text("A saved conversation").click()
                        page.get_by_role("button", name="Replay").click()
                        page.wait_for_timeout(4_000)
                    if name == "conversations":
                        for expander in page.get_by_test_id("stExpander").all():
                            expander.click()
                        page.wait_for_timeout(800)
                    page.screenshot(path=str(ARTIFACTS / f"browser-hostile-{name.lower()}.png"), full_page=True)
                    assert page.get_by_test_id("stException").count() == 0, name
        assert canary.hits == []
        foreign = [u for u in requests if urlparse(u).netloc not in (origin, "") and not u.startswith("data:")]
        assert foreign == []  # no font host, no CDN: an offline machine makes no request outside the app
    finally:
        canary.close()


def test_a_url_in_a_message_is_shown_exactly_as_typed(tmp_path):
    typed = "read https://example.com/foo-bar_baz.html and www.example.org/a_b (mail me: a_b@example.com)"
    with (
        FakeOpenAIServer() as server,
        serve_app(tmp_path, OPENAI_BASE_URL=server.base_url, OPENAI_MODEL="gpt-4o-mini") as url,
        browser_page() as page,
    ):
        page.goto(url)
        box = page.get_by_test_id("stChatInputTextArea")
        box.wait_for(timeout=60_000)
        box.fill(typed)
        box.press("Enter")
        page.get_by_text("echo: read").first.wait_for(timeout=30_000)
        bubbles = message_texts(page)
        assert bubbles[0].strip() == typed
        heading = page.locator("h3").filter(has_text="read https").first.inner_text()
        assert "\\" not in heading and heading.startswith("read https://example.com/foo-bar_baz.html")


def stored(db_url: str) -> list[tuple[str, str, str]]:
    store = SqlStore.open(db_url)
    try:
        return [
            (m.role, m.status, m.content)
            for c in store.list_conversations("local")
            for m in store.page("local", c.id, limit=500)
        ]
    finally:
        store.close()


def test_fast_sending_from_one_and_several_tabs_stores_or_visibly_refuses_every_message(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'browser.db'}"
    accepted: list[str] = []
    refused = 0
    with (
        FakeOpenAIServer() as server,
        serve_app(tmp_path, OPENAI_BASE_URL=server.base_url, OPENAI_MODEL="gpt-4o-mini") as url,
        browser_page(pages=3) as tabs,
    ):
        for tab in tabs:
            tab.goto(url)
            tab.get_by_test_id("stChatInputTextArea").wait_for(timeout=60_000)
        for n in range(20):  # one tab, a message every 0.1 s
            text = f"fast {n}"
            if send_if_enabled(tabs[0], text):
                accepted.append(text)
            else:
                refused += 1
            time.sleep(0.1)
        for n in range(8):  # three tabs in turn, as fast as the box allows
            for i, tab in enumerate(tabs):
                text = f"tab {i} message {n}"
                if send_if_enabled(tab, text):
                    accepted.append(text)
                else:
                    refused += 1
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            users = [c for role, _, c in stored(db_url) if role == "user"]
            if len(users) >= len(accepted) and all(idle(tab) for tab in tabs):
                break
            time.sleep(1)
        tabs[0].screenshot(path=str(ARTIFACTS / "browser-fast-sending.png"), full_page=True)
    rows = stored(db_url)
    users = sorted(c for role, _, c in rows if role == "user")
    (ARTIFACTS / "fast-sending.txt").write_text(
        f"missing {sorted(set(accepted) - set(users))}\nextra {sorted(set(users) - set(accepted))}\n{rows}\n"
    )
    assert users == sorted(accepted)  # every accepted message stored once; every other one refused visibly
    assert len(accepted) >= 10 and refused + len(accepted) == 44  # enough sends got through to mean something
    replies = [r for r in rows if r[0] == "assistant"]
    assert all(status in ("complete", "partial") for _, status, _ in replies)  # partial only when Stop was pressed


def send_if_enabled(tab, text: str) -> bool:
    """Type and send; returns whether the box took the message. Refused is visible: the box is disabled while a
    turn runs (nothing can be typed), or the text is still in the box."""
    from playwright.sync_api import Error

    box = tab.get_by_test_id("stChatInputTextArea")
    try:
        if box.is_disabled():
            return False
        box.fill(text, timeout=200)
    except Error:
        return False  # disabled before the text was in: nothing was typed
    try:
        box.press("Enter", timeout=200)
    except Error:
        pass  # disabled under the key press: what the box holds now tells whether it was sent
    tab.wait_for_timeout(80)
    try:
        return box.input_value(timeout=2_000) != text
    except Error:
        return True


def idle(tab) -> bool:
    return not tab.get_by_test_id("stChatInputTextArea").is_disabled()


@pytest.mark.parametrize("size, delta_chars", [(2_000_000, 65_536), (100_000, 4)])  # the app cut these at 64 KB
def test_a_long_reply_streams_to_the_end_and_is_stored_whole(tmp_path, size, delta_chars):
    db_url = f"sqlite:///{tmp_path / 'browser.db'}"
    text = ("A long reply goes on and on. " * (size // 29 + 1))[:size]
    with (
        FakeOpenAIServer() as server,
        serve_app(tmp_path, OPENAI_BASE_URL=server.base_url, OPENAI_MODEL="gpt-4o-mini") as url,
        browser_page() as page,
    ):
        server.expect(("chunks", text, delta_chars))
        page.goto(url)
        box = page.get_by_test_id("stChatInputTextArea")
        box.wait_for(timeout=60_000)
        box.fill("write a very long reply")
        box.press("Enter")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not [r for r in stored(db_url) if r[0] == "assistant"]:
            time.sleep(0.5)
        page.get_by_text("Show the rest of this reply").first.wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / f"browser-long-reply-{size}.png"))
    replies = [r for r in stored(db_url) if r[0] == "assistant"]
    assert [(role, status) for role, status, _ in replies] == [("assistant", "complete")]
    assert replies[0][2] == text


def counted(path: Path) -> dict[str, int]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("messages", "model_calls")}


def test_a_reply_refused_by_one_database_is_never_saved_into_the_next_one_on_the_same_data_folder(tmp_path):
    """Issue 24, item 5: a reply database A refused, then the app restarted on database B (same data folder)."""
    import sqlite3

    a_path, b_path = tmp_path / "a.db", tmp_path / "b.db"
    lock = sqlite3.connect(a_path, isolation_level=None, check_same_thread=False)
    reply = "the reply database A refused"
    with FakeOpenAIServer() as server:
        server.expect(("hook", lambda: lock.execute("BEGIN EXCLUSIVE"), reply))  # another process takes A
        with (
            serve_app(tmp_path, DATABASE_URL=f"sqlite:///{a_path}", OPENAI_BASE_URL=server.base_url) as url,
            browser_page() as page,
        ):
            page.goto(url)
            box = page.get_by_test_id("stChatInputTextArea")
            box.wait_for(timeout=60_000)
            box.fill("a question asked on A")
            box.press("Enter")
            # The app waits 10 s for the lock, then says so; Save again is there at once, with no other rerun.
            page.get_by_role("button", name="Save again").wait_for(timeout=60_000)
            assert page.get_by_text(str(a_path), exact=False).count() >= 1  # the item names its database
            lock.execute("ROLLBACK")
            lock.close()
    assert counted(a_path) == {"messages": 1, "model_calls": 0}

    b = SqlStore.open(f"sqlite:///{b_path}")  # B has a conversation of the same number, waiting for its reply
    conv = b.create_conversation("local", "B's own conversation", MemorySettings("buffer"))
    b.add_user_message("local", conv.id, "B's own question", tokens=3, tokenizer="t")
    b.close()
    assert conv.id == 1
    before = counted(b_path)
    with (
        FakeOpenAIServer() as server,
        serve_app(tmp_path, DATABASE_URL=f"sqlite:///{b_path}", OPENAI_BASE_URL=server.base_url) as url,
        browser_page() as page,
    ):
        page.goto(url)
        page.get_by_text("1 unsaved item of another database").wait_for(timeout=60_000)
        assert page.get_by_text(reply).count() >= 1  # the text is still shown
        assert page.get_by_text(str(a_path), exact=False).count() >= 1
        assert page.get_by_role("button", name="Save again").count() == 0
        page.get_by_role("button", name="Copy text").click()
        page.get_by_test_id("stCode").filter(has_text=reply).first.wait_for(timeout=10_000)  # with its copy button
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "browser-outbox-other-database.png"), full_page=True)
    assert counted(b_path) == before  # nothing of A's was written into B

    with (
        FakeOpenAIServer() as server,
        serve_app(tmp_path, DATABASE_URL=f"sqlite:///{a_path}", OPENAI_BASE_URL=server.base_url) as url,
        browser_page() as page,
    ):
        page.goto(url)
        page.get_by_role("button", name="Save again").click(timeout=60_000)
        page.get_by_text("Saved.").wait_for(timeout=30_000)
    assert counted(a_path) == {"messages": 2, "model_calls": 1}
    assert not list((tmp_path / "data" / "outbox").rglob("*.json"))  # saved, so no longer kept
