"""The defects found by attacking the running app, each replayed against memstore: nothing lost, nothing leaked."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from fakes import FakeClient
from memstore import Chat, FactSet, InvalidInput, LLMError, MemorySettings, OpenAIClient, SqlStore
from memstore.config import Limits
from memstore.llm.base import StreamState
from memstore.outbox import Outbox
from memstore.transfer import export_conversations, import_export, to_markdown
from openai_server import FakeOpenAIServer

ME = "local"
SECRET = "sk-test-ECHOED-BY-THE-SERVER-0123456789"


@pytest.fixture
def db(tmp_path, monkeypatch):
    """A SQLite file store that gives up on a lock after 0.2 s (the app waits 10 s)."""
    monkeypatch.setattr("memstore.database.SQLITE_BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "attack.db"
    store = SqlStore.open(f"sqlite:///{path}")
    yield store, path
    store.close()


@pytest.fixture
def server():
    with FakeOpenAIServer() as srv:
        yield srv


def openai_client(server, **kw):
    return OpenAIClient(
        model="gpt-4o-mini",
        api_key=kw.pop("api_key", None),
        base_url=server.base_url,
        timeout_s=10,
        max_retries=0,
        **kw,
    )


class Lock:
    """Another process's exclusive lock on the database file, held until released."""

    def __init__(self, path):
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def take(self) -> None:
        self.conn.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


def count(path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_a_lock_taken_while_the_reply_streams_keeps_the_reply_and_its_ledger_row(db, server, tmp_path):
    store, path = db
    lock = Lock(path)
    server.expect(("hook", lock.take, "the whole reply, streamed while another writer holds the database"))
    chat = Chat(store, openai_client(server), user_id=ME)
    conv = chat.new_conversation(settings=MemorySettings("buffer"))
    result = chat.send(conv.id, "hello", FactSet()).run()
    assert not result.saved and "could not be saved" in result.save_error and "busy" in result.save_error
    assert result.reply.content == "the whole reply, streamed while another writer holds the database"
    kept = Outbox(tmp_path / "outbox").put(result.unsaved)  # what the page does with it
    lock.release()
    assert count(path, "messages") == 1 and count(path, "model_calls") == 0  # nothing half-written
    # After a reload the kept copy is read back from disk and saved, reply and ledger row together.
    again = Outbox(tmp_path / "outbox").items(ME, conv.id)
    assert [i.id for i in again] == [kept.id]
    message = chat.save_unsent(again[0])
    assert (message.role, message.status, message.content) == ("assistant", "complete", result.reply.content)
    call = chat.last_chat_call(conv.id)
    assert call.reply == result.reply.content and call.request[-1].content == "hello"


def test_a_locked_database_refuses_the_message_with_a_sentence_and_changes_nothing(db):
    store, path = db
    lock = Lock(path)
    chat = Chat(store, FakeClient(["never called"]), user_id=ME)
    conv = chat.new_conversation()
    lock.take()
    try:
        with pytest.raises(Exception) as refused:
            chat.send(conv.id, "typed while another process holds the lock", FactSet())
    finally:
        lock.release()
    assert "busy" in str(refused.value) and chat.client.requests == []
    assert count(path, "messages") == 0


def test_a_conversation_deleted_while_its_reply_streams_gives_a_sentence(db, server):
    store, _ = db
    chat = Chat(store, openai_client(server), user_id=ME)
    conv = chat.new_conversation()
    server.expect(("hook", lambda: store.delete_conversation(ME, conv.id), "a reply to a chat that is gone"))
    result = chat.send(conv.id, "hello", FactSet()).run()
    assert not result.saved and "deleted" in result.save_error and result.unsaved is None
    assert result.reply.content == "a reply to a chat that is gone"


def test_an_empty_reply_is_a_failure_with_a_retry_not_a_blank_bubble(db, server):
    store, _ = db
    server.expect(("reply", ""), ("reply", "second try"))
    chat = Chat(store, openai_client(server), user_id=ME)
    conv = chat.new_conversation()
    result = chat.send(conv.id, "hello", FactSet()).run()
    assert result.error.kind == "empty" and result.reply.status == "failed"
    assert "finished without writing anything" in result.error.message
    assert chat.retry(conv.id, FactSet()).run().reply.content == "second try"


def test_an_emoji_split_across_two_chunks_is_kept_whole(db, server):
    store, _ = db
    server.expect(("json_deltas", ['"Hi \\ud83d"', '"\\ude00 there"', '" and a lone \\ud83d"']))
    chat = Chat(store, openai_client(server), user_id=ME)
    conv = chat.new_conversation()
    run = chat.send(conv.id, "hello", FactSet())
    deltas = list(run.stream())
    assert run.result.ok and "".join(deltas) == "Hi \U0001f600 there and a lone "
    stored = store.page(ME, conv.id)[-1].content
    assert stored == "Hi \U0001f600 there and a lone \ufffd"  # the unpaired half becomes U+FFFD, not a crash
    assert chat.last_chat_call(conv.id).reply == stored


@pytest.mark.parametrize("size, delta_chars", [(2_000_000, 65_536), (100_000, 4)])
def test_long_replies_are_stored_exactly_as_the_server_sent_them(db, server, size, delta_chars):
    store, _ = db
    text = ("All work and no play makes a reply long. " * (size // 40 + 1))[:size]
    server.expect(("chunks", text, delta_chars))
    chat = Chat(store, openai_client(server), user_id=ME)
    conv = chat.new_conversation()
    result = chat.send(conv.id, "write a lot", FactSet()).run()
    assert result.ok and result.reply.status == "complete"
    assert store.page(ME, conv.id)[-1].content == text


def test_stream_text_costs_o_delta():
    """50,000 deltas: the text is joined once, not copied at every delta (a quadratic stream stalled the app)."""
    state = StreamState([], {})
    for _ in range(50_000):
        state._received("abcd")
    assert len(state._pieces) == 50_000 and state.text == "abcd" * 50_000 and state._pieces == []


def test_two_retries_of_one_failed_turn_make_one_call(db, server):
    store, _ = db
    server.expect(("status", 500), ("sleep", 1.0))
    chat = Chat(store, openai_client(server), user_id=ME)
    conv = chat.new_conversation()
    assert not chat.send(conv.id, "hello", FactSet()).run().ok
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def retry() -> None:
        tab = Chat(store, chat.client, user_id=ME)
        barrier.wait()
        try:
            outcomes.append(tab.retry(conv.id, FactSet()).run().reply.status)
        except InvalidInput as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=retry) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [
        "This turn is already being retried (in another tab); its reply will appear here.",
        "complete",
    ]
    assert len(server.chat_requests) == 2  # the failed call and one retry
    assert [m.status for m in store.page(ME, conv.id) if m.role == "assistant"] == ["failed", "complete"]


def test_a_server_that_echoes_the_key_never_gets_it_stored_or_shown(db, server):
    store, path = db
    server.expect(("echo_key",))
    chat = Chat(store, openai_client(server, api_key=SECRET), user_id=ME)
    conv = chat.new_conversation()
    result = chat.send(conv.id, "hello", FactSet()).run()
    assert result.error.kind == "bad_request" and "[API key removed]" in result.error.message
    assert SECRET not in result.error.message
    with sqlite3.connect(path) as conn:
        for table in ("messages", "model_calls"):
            assert SECRET not in " ".join(map(str, conn.execute(f"SELECT * FROM {table}").fetchall()))


def test_a_failed_turn_is_not_sent_or_counted_and_requests_alternate(db):
    store, _ = db
    chat = Chat(store, FakeClient(["one", LLMError("server_error", "failed"), "three", "four"]), user_id=ME)
    conv = chat.new_conversation(settings=MemorySettings("window", window_turns=2))
    for text in ("first", "second, never answered", "third"):
        chat.send(conv.id, text, FactSet()).run()
    run = chat.send(conv.id, "fourth", FactSet())
    roles = [m.role for m in run.payload.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]  # valid for strict servers
    assert [m.content for m in run.payload.messages if m.role == "user"] == ["first", "third", "fourth"]
    assert any("Turn 2 got no reply" in note for note in run.payload.view.notes)


def test_markdown_exports_cannot_load_images_run_html_or_add_headings(db):
    store, _ = db
    chat = Chat(
        store, FakeClient(["![pixel](http://127.0.0.1:9/reply.png) <img src=http://127.0.0.1:9/r>"]), user_id=ME
    )
    conv = chat.new_conversation("# Title ![t](http://127.0.0.1:9/title.png)")
    chat.send(conv.id, "> quoted ![q](http://127.0.0.1:9/q.png)\n# injected heading\n```\nfence\n```", FactSet()).run()
    markdown = to_markdown(export_conversations(store, ME))
    outside, fence = [], None
    for line in markdown.splitlines():
        if fence is None and line.startswith("```"):
            fence = line[: len(line) - len(line.lstrip("`"))]
        elif fence is not None and line == fence:
            fence = None
        elif fence is None:
            outside.append(line)
    assert not any("![" in line or "<img" in line for line in outside)  # prose holds no image and no HTML
    assert [line for line in outside if line.startswith("#")] == [
        "# \\# Title \\!\\[t\\]\\(http\\:\\/\\/127\\.0\\.0\\.1\\:9\\/title\\.png\\)"
    ]
    # Each message sits in a fence longer than any backtick run inside it, so it is shown verbatim.
    assert "````text\n> quoted ![q](http://127.0.0.1:9/q.png)\n# injected heading\n```\nfence\n```\n````" in markdown


def export_file(*messages: dict) -> bytes:
    return json.dumps(
        {
            "format": "memorylab.conversations/1",
            "conversations": [
                {
                    "title": "ok",
                    "messages": [{"role": "user", "content": "fine"}, {"role": "assistant", "content": "fine"}],
                },
                {"title": "bad", "messages": list(messages)},
            ],
        }
    ).encode()


def test_an_import_with_a_lone_surrogate_is_refused_whole(db):
    store, path = db
    raw = export_file({"role": "user", "content": "hi"}, {"role": "assistant", "content": "broken \ud800 half"})
    with pytest.raises(InvalidInput, match="not valid Unicode"):
        import_export(store, ME, raw, FakeClient().counter())
    assert count(path, "conversations") == 0 and count(path, "messages") == 0


def test_a_deeply_nested_file_gets_a_sentence(db):
    store, path = db
    raw = b'{"format": "memorylab.conversations/1", "conversations": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(InvalidInput, match="nests its data too deeply"):
        import_export(store, ME, raw, FakeClient().counter())
    assert count(path, "conversations") == 0


def test_the_message_limit_is_one_setting_honoured_by_the_turn(tmp_path):
    limits = Limits(max_message_chars=100_000)
    store = SqlStore.open(f"sqlite:///{tmp_path / 'limits.db'}", limits=limits)
    try:
        chat = Chat(store, FakeClient(["ok"]), user_id=ME)  # no limits passed: the store's are the setting
        conv = chat.new_conversation()
        assert chat.send(conv.id, "x" * 40_000, FactSet()).run().ok
        with pytest.raises(InvalidInput, match="the limit is 100,000"):
            chat.send(conv.id, "x" * 100_001, FactSet())
    finally:
        store.close()


def replay_file(turns, types) -> bytes:
    return json.dumps({"format": "memorylab.replay/1", "title": "t", "turns": turns, "types": types}).encode()


@pytest.mark.parametrize(
    "raw, sentence",
    [
        (replay_file([{"user": "hi", "assistant": "hello"}], []), "names no memory type"),
        (
            replay_file(
                [{"user": "hi", "assistant": "half \ud800 an emoji"}], [{"settings": {"memory_type": "summary"}}]
            ),
            "not valid Unicode",
        ),
        (replay_file([{"user": "hi", "assistant": 7}], [{"settings": {"memory_type": "buffer"}}]), "must be text"),
        (b'{"format": "memorylab.replay/1", "turns": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "too deeply"),
    ],
)
def test_a_bad_replay_file_gets_one_sentence(raw, sentence):
    from memstore.replay import parse_replay_file

    with pytest.raises(InvalidInput, match=sentence):
        parse_replay_file(raw)
