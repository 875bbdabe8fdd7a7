"""Forgetting reaches the outbox too: a kept reply cannot bring a forgotten message back (issue 24, items 4 and 5)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from fakes import FakeClient
from memstore import Chat, FactSet, MemorySettings, SqlStore
from memstore.forgotten import FORGOTTEN_MARK
from memstore.outbox import Outbox

ME = "local"
SECRET = "My passport number is ZEBRA-7781-QX"


@pytest.fixture(autouse=True)
def short_lock_wait(monkeypatch):
    monkeypatch.setattr("memstore.database.SQLITE_BUSY_TIMEOUT_MS", 200)


def kept_reply_quoting_the_secret(path, outbox: Outbox):
    """Turn 1 says the secret; its reply (which repeats it) is refused by a locked database and kept."""
    store = SqlStore.open(f"sqlite:///{path}")
    chat = Chat(store, FakeClient([f"Noted. {SECRET}."]), user_id=ME)
    conv = chat.new_conversation(settings=MemorySettings("buffer"))
    run = chat.send(conv.id, SECRET, FactSet())
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        result = run.run()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert result.unsaved is not None
    outbox.put(result.unsaved)
    return store, chat, conv.id, run.user_message.id


def file_bytes(path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_a_kept_reply_saved_after_its_message_was_forgotten_holds_no_copy(tmp_path):
    outbox = Outbox(tmp_path / "outbox")
    path = tmp_path / "lab.db"
    store, chat, conversation_id, message_id = kept_reply_quoting_the_secret(path, outbox)
    try:
        done = store.forget_message(ME, conversation_id, message_id)
        assert done.forgotten_text == SECRET
        assert outbox.redact(ME, done.forgotten_text) == 1
        on_disk = "".join(p.read_text() for p in (tmp_path / "outbox").rglob("*.json"))
        assert "ZEBRA" not in on_disk and FORGOTTEN_MARK in on_disk
        (item,) = outbox.items(ME)
        saved = chat.save_unsent(item)  # Save again, after the forget
        assert "ZEBRA" not in saved.content and FORGOTTEN_MARK in saved.content
        (call,) = store.calls_for_turn(ME, conversation_id, 1)
        assert all("ZEBRA" not in m.content for m in call.request) and "ZEBRA" not in call.reply
        assert outbox.redact(ME, done.forgotten_text) == 0  # nothing left to change
    finally:
        store.close()
    assert b"ZEBRA" not in file_bytes(path)


def test_a_short_forgotten_text_is_replaced_only_where_it_is_a_whole_message(tmp_path):
    outbox = Outbox(tmp_path / "outbox")
    store, chat, conversation_id, message_id = kept_reply_quoting_the_secret(tmp_path / "lab.db", outbox)
    try:
        assert outbox.redact(ME, "Noted") == 0  # too short to cut out of words; no message is exactly it
        assert outbox.redact("someone else", SECRET) == 0  # another user's items are not theirs to change
        (item,) = outbox.items(ME)
        assert SECRET in item.text
    finally:
        store.close()


@pytest.mark.parametrize(
    "crafted",
    [
        {"id": "a/b"},
        {"id": "a\u0000b"},
        {"text": ["not", "text"]},
        {"created_at": 1},
        {"conversation_id": "1"},
        {"turn": True},
        {"call": {"request": [{"role": "user", "content": 5}]}},
    ],
)
def test_a_crafted_item_file_is_skipped_and_the_real_items_are_still_listed_and_redacted(tmp_path, crafted):
    outbox = Outbox(tmp_path / "outbox")
    store, _, _, _ = kept_reply_quoting_the_secret(tmp_path / "lab.db", outbox)
    store.close()
    (real,) = outbox.items(ME)
    good = json.loads(next((tmp_path / "outbox").rglob("*.json")).read_text())
    bad = {**good, "id": "0000bad", **crafted}
    folder = next((tmp_path / "outbox").rglob("*.json")).parent
    (folder / "0000bad.json").write_text(json.dumps(bad))  # sorted before the real one
    assert [i.id for i in outbox.items(ME)] == [real.id]  # listed without raising, the crafted one skipped
    assert outbox.redact(ME, SECRET) == 1
    assert "ZEBRA" not in (folder / f"{real.id}.json").read_text()
