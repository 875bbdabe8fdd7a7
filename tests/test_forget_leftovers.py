"""Forgetting leaves nothing behind: not in the title, not in a reply that was streaming, not in the journal."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from fakes import FakeClient
from memstore import Chat, FactSet, MemorySettings, OpenAIClient, SqlStore
from memstore.records import CallDraft, ChatMessage
from memstore.sql.forgetting import FORGOTTEN_MARK
from memstore.titles import DEFAULT_TITLE
from openai_server import FakeOpenAIServer

ME = "local"
PASSPORT = "My passport number is ZEBRA-7781-QX"
LONG_PASSPORT = "My passport number is ZEBRA-7781-QX and it expires in March of next year, please remember it"
LONG_TITLE = "My passport number is ZEBRA-7781-QX and it…"  # what the app makes of it: 48 characters, cut at a word


@pytest.fixture
def server():
    with FakeOpenAIServer() as srv:
        yield srv


def openai_client(server):
    return OpenAIClient(model="gpt-4o-mini", api_key=None, base_url=server.base_url, timeout_s=10, max_retries=0)


def first_message_chat(store, first: str, then: tuple[str, ...] = ("And what about the weather?",)):
    chat = Chat(store, FakeClient(["Noted."] * 10), user_id=ME)
    conv = chat.new_conversation(settings=MemorySettings("buffer"))
    for text in (first, *then):
        chat.send(conv.id, text, FactSet()).run()
    first_message = next(m for m in store.page(ME, conv.id) if m.content == first)
    return chat, conv, first_message


def database_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def wal_bytes(path: Path) -> bytes:
    wal = path.with_name(path.name + "-wal")
    return wal.read_bytes() if wal.exists() else b""


# -- item 3: the title made from the forgotten message ------------------------------------------------


def test_forgetting_the_first_message_replaces_the_title_made_from_it(store):
    _, conv, first = first_message_chat(store, PASSPORT)
    assert store.get_conversation(ME, conv.id).title == PASSPORT
    plan = store.forget_plan(ME, conv.id, first.id)
    assert "title" in plan.sentence()  # the confirmation says the title changes too
    store.forget_message(ME, conv.id, first.id)
    # the title now comes from what is left, made the same way
    assert store.get_conversation(ME, conv.id).title == "And what about the weather?"
    assert all("ZEBRA" not in c.title for c in store.list_conversations(ME))
    assert store.list_conversations(ME, search="ZEBRA") == []


def test_a_cut_title_goes_too_and_a_conversation_with_nothing_left_is_untitled(store):
    _, conv, first = first_message_chat(store, LONG_PASSPORT, then=())
    assert store.get_conversation(ME, conv.id).title == LONG_TITLE
    store.forget_message(ME, conv.id, first.id)
    assert store.get_conversation(ME, conv.id).title == DEFAULT_TITLE


def test_a_fork_named_after_the_message_is_renamed_when_its_copy_is_forgotten(store):
    """A fork's title is its source's, then "(fork at turn …)": made from the message as much as the source's is."""
    from memstore.transfer import fork_conversation

    _, conv, _ = first_message_chat(store, PASSPORT)
    fork = fork_conversation(store, ME, conv.id, 2, MemorySettings("window", window_turns=2))
    assert fork.title.startswith(PASSPORT + " (fork at turn 2")
    for conversation_id in (fork.id, conv.id):
        copy = next(m for m in store.page(ME, conversation_id) if m.content == PASSPORT)
        assert "title" in store.forget_plan(ME, conversation_id, copy.id).sentence()
        store.forget_message(ME, conversation_id, copy.id)
    titles = sorted(c.title for c in store.list_conversations(ME))
    assert titles == ["And what about the weather?", "And what about the weather? (fork at turn 2, window)"]


def test_a_title_the_user_chose_is_kept(store):
    _, conv, first = first_message_chat(store, PASSPORT)
    store.rename_conversation(ME, conv.id, "Travel papers")
    plan = store.forget_message(ME, conv.id, first.id)
    assert "title" not in plan.sentence()
    assert store.get_conversation(ME, conv.id).title == "Travel papers"


def test_the_title_quoted_in_another_conversations_recall_is_replaced(store):
    """Recall from all conversations quotes the other conversation's title in the request and the ledger details."""
    _, conv, first = first_message_chat(store, LONG_PASSPORT, then=())
    other = store.create_conversation(ME, "Another chat", MemorySettings("retrieval"))
    store.add_user_message(ME, other.id, "what do you remember?", tokens=4, tokenizer="t")
    recall = f"Recalled turns:\n[turn 1 of “{LONG_TITLE}”]\nuser: [forgotten]"
    draft = CallDraft(
        purpose="chat",
        conversation_id=other.id,
        turn=1,
        memory_type="retrieval",
        model="m",
        provider="p",
        host="h",
        params={},
        request=(ChatMessage("system", recall), ChatMessage("user", "what do you remember?")),
        details={"recall": {"recalled": [{"conversation_id": conv.id, "conversation_title": LONG_TITLE}]}},
    )
    store.add_reply(ME, other.id, 1, "I recall it.", status="complete", tokens=3, tokenizer="t", call=draft)
    plan = store.forget_message(ME, conv.id, first.id)
    assert plan.model_calls >= 2  # its own turn, and the other conversation's recall
    held = [json.dumps([m.as_dict() for m in c.request]) + json.dumps(c.details) for c in store.list_calls(ME)]
    assert not any("ZEBRA" in text for text in held)


def test_the_old_title_is_not_left_in_the_sqlite_file_or_its_log(tmp_path):
    path = tmp_path / "title.db"
    store = SqlStore.open(f"sqlite:///{path}")
    _, conv, first = first_message_chat(store, LONG_PASSPORT)
    assert b"ZEBRA-7781-QX and it" in database_bytes(path)
    store.forget_message(ME, conv.id, first.id)
    assert b"ZEBRA" not in database_bytes(path)
    store.close()


# -- item 4a: a reply that was streaming while the message was forgotten ------------------------------


def test_a_message_forgotten_while_a_reply_streams_stays_out_of_that_turns_ledger_row(store, server):
    chat = Chat(store, openai_client(server), user_id=ME)
    conv = chat.new_conversation(settings=MemorySettings("buffer"))
    server.expect(("reply", "Noted."))
    chat.send(conv.id, PASSPORT, FactSet()).run()
    secret = next(m for m in store.page(ME, conv.id) if m.content == PASSPORT)
    # another tab forgets it after the request was sent, while the reply (which repeats it) streams
    server.expect(("hook", lambda: store.forget_message(ME, conv.id, secret.id), f"You said: {PASSPORT}"))
    result = chat.send(conv.id, "What did I tell you?", FactSet()).run()
    assert result.saved and result.call is not None
    assert PASSPORT in json.dumps(server.chat_requests[-1])  # it was sent before the forget
    for call in store.list_calls(ME, conversation_id=conv.id, limit=10):
        assert "ZEBRA" not in json.dumps([m.as_dict() for m in call.request]) + call.reply
    assert "ZEBRA" not in json.dumps([m.as_dict() for m in result.call.request]) + result.call.reply
    assert any(FORGOTTEN_MARK in m.content for m in result.call.request)  # the rest of the record is kept
    assert all("ZEBRA" not in m.content for m in store.page(ME, conv.id))
    assert "ZEBRA" not in result.reply.content


def test_forgetting_the_very_message_being_answered_keeps_it_out_of_the_saved_turn(store, server):
    chat = Chat(store, openai_client(server), user_id=ME)
    conv = chat.new_conversation(settings=MemorySettings("window", 2))

    def forget_newest() -> None:
        newest = store.page(ME, conv.id)[-1]
        store.forget_message(ME, conv.id, newest.id)

    server.expect(("hook", forget_newest, "Understood, I will keep that in mind."))
    result = chat.send(conv.id, PASSPORT, FactSet()).run()
    assert result.saved
    call = store.list_calls(ME, conversation_id=conv.id, limit=1)[0]
    assert "ZEBRA" not in json.dumps([m.as_dict() for m in call.request])
    assert call.request[-1].content == FORGOTTEN_MARK
    assert all("ZEBRA" not in c.title for c in store.list_conversations(ME))


def test_the_streamed_turn_writes_no_copy_into_the_sqlite_file_or_log(tmp_path, server):
    path = tmp_path / "stream.db"
    store = SqlStore.open(f"sqlite:///{path}")
    chat = Chat(store, openai_client(server), user_id=ME)
    conv = chat.new_conversation(settings=MemorySettings("buffer"))
    server.expect(("reply", "Noted."))
    chat.send(conv.id, PASSPORT, FactSet()).run()
    secret = next(m for m in store.page(ME, conv.id) if m.content == PASSPORT)
    server.expect(("hook", lambda: store.forget_message(ME, conv.id, secret.id), f"You said: {PASSPORT}"))
    chat.send(conv.id, "What did I tell you?", FactSet()).run()
    assert b"ZEBRA" not in database_bytes(path)
    store.close()


# -- item 4b: a reader holding a snapshot keeps the log from being erased ------------------------------


@pytest.fixture
def quick_locks(monkeypatch):
    """The app waits 10 s for a lock; these tests wait 0.2 s."""
    monkeypatch.setattr("memstore.database.SQLITE_BUSY_TIMEOUT_MS", 200)
    monkeypatch.setattr("memstore.sql.hotpath.CHECKPOINT_WAIT_S", 0.2)


def hold_snapshot(path: Path) -> sqlite3.Connection:
    """Another connection in the middle of a read: its snapshot keeps the write-ahead log in use."""
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM messages").fetchone()
    return reader


def test_a_reader_holding_a_snapshot_is_reported_and_the_log_is_erased_on_the_next_write(tmp_path, quick_locks):
    path = tmp_path / "reader.db"
    store = SqlStore.open(f"sqlite:///{path}")
    _, conv, first = first_message_chat(store, PASSPORT)
    assert not store.journal_pending()
    reader = hold_snapshot(path)
    store.forget_message(ME, conv.id, first.id)
    # forgotten everywhere the app reads, and the store says truthfully that the log still holds the old copy
    assert all("ZEBRA" not in m.content for m in store.page(ME, conv.id))
    assert store.journal_pending()
    assert b"ZEBRA" in wal_bytes(path)
    reader.execute("COMMIT")
    reader.close()
    store.set_preference(ME, "tea", "green")  # the next write erases it
    assert not store.journal_pending()
    assert b"ZEBRA" not in database_bytes(path)
    store.close()


def test_a_pending_erase_is_done_when_the_store_closes_or_opens_again(tmp_path, quick_locks):
    path = tmp_path / "later.db"
    store = SqlStore.open(f"sqlite:///{path}")
    _, conv, first = first_message_chat(store, PASSPORT)
    reader = hold_snapshot(path)
    store.forget_message(ME, conv.id, first.id)
    assert store.journal_pending()
    store.close()  # the reader still holds its snapshot: the log cannot be erased yet
    assert b"ZEBRA" in wal_bytes(path)
    reader.execute("COMMIT")
    again = SqlStore.open(f"sqlite:///{path}")  # the next start erases it before anything else
    assert b"ZEBRA" not in database_bytes(path)
    assert again.get_conversation(ME, conv.id).title == "And what about the weather?"
    again.close()
    reader.close()
    # and with the reader gone before close, close erases it
    store = SqlStore.open(f"sqlite:///{path}")
    _, conv, first = first_message_chat(store, LONG_PASSPORT)
    reader = hold_snapshot(path)
    store.forget_message(ME, conv.id, first.id)
    reader.execute("COMMIT")
    reader.close()
    store.close()
    assert b"ZEBRA" not in database_bytes(path)


def test_forgets_racing_the_saves_of_replies_that_carried_the_message_never_leave_it(sql_store):
    """Thirty rounds: a turn whose request carries a message is saved while another thread forgets that message
    (every third round the forget ends before the save begins, the others race it)."""
    store, rounds = sql_store, 30
    for i in range(rounds):
        secret = f"My passport number is ZEBRA-{i:04d}-QX"
        chat = Chat(store, FakeClient(["Noted.", f"You said: {secret}"]), user_id=ME)
        conv = chat.new_conversation(settings=MemorySettings("buffer"))
        chat.send(conv.id, secret, FactSet()).run()
        said = next(m for m in store.page(ME, conv.id) if m.content == secret)
        run = chat.send(conv.id, "What did I tell you?", FactSet())  # the request is built: it carries the secret
        start = threading.Barrier(2)

        def forget(conversation_id: int = conv.id, message_id: int = said.id, start=start) -> None:
            start.wait()
            store.forget_message(ME, conversation_id, message_id)

        other = threading.Thread(target=forget)
        other.start()
        start.wait()
        if i % 3 == 0:
            other.join()
        result = run.run()
        other.join()
        assert result.saved
    conversations = store.list_conversations(ME, limit=100)
    calls = store.list_calls(ME, limit=500)
    assert (len(conversations), len(calls)) == (rounds, 2 * rounds)  # every turn and its ledger row were kept
    assert sum(len(store.page(ME, c.id)) for c in conversations) == 4 * rounds
    assert not any("ZEBRA" in json.dumps([m.as_dict() for m in c.request]) + c.reply for c in calls)
    assert not any("ZEBRA" in m.content for c in conversations for m in store.page(ME, c.id))
    assert not any("ZEBRA" in c.title for c in conversations)
