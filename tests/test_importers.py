"""Importing other apps' memory: LangChain SQLChatMessageHistory, LangGraph SqliteSaver and ChatGPT exports.

The sources are written by the real libraries (pinned in the dev requirements); the ChatGPT file follows the
published export format. Every import is read-only on the source, all or nothing, and replays like any conversation.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import tracemalloc
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from fakes import FakeClient
from memstore import MEMORY_TYPES, InvalidInput, MemorySettings, SqlStore
from memstore.importers import ChatGPTExport, LangChainSqlHistory, LangGraphCheckpoints, import_source, preview_source
from memstore.replay import replay, script_from_conversation
from memstore.tokens import counter_for_model
from memstore.transfer import export_conversations, fork_conversation
from sources import chatgpt_conversation, langchain_sql_db, langgraph_db, langgraph_update, write_chatgpt_export

ME = "alice"
COUNTER = counter_for_model("gpt-4o-mini")


def folder_state(folder: Path) -> dict[str, str]:
    """Every file in the folder and a hash of its bytes: the source must be exactly as it was."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def stored(store, conv) -> list[tuple[int, str, str]]:
    return [(m.turn, m.role, m.content) for m in store.page(ME, conv.id, limit=500)]


@pytest.fixture
def lc_db(tmp_path):
    folder = tmp_path / "langchain-app"
    folder.mkdir()
    path = folder / "chat.db"
    langchain_sql_db(
        path,
        {
            "ada": [
                SystemMessage("You are a terse assistant."),
                HumanMessage("My name is Ada and I am allergic to peanuts."),
                AIMessage("Noted, Ada."),
                HumanMessage(
                    content=[
                        {"type": "text", "text": "What is in this picture?"},
                        {"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/canary.png"}},
                    ]
                ),
                AIMessage("", tool_calls=[{"name": "look", "args": {}, "id": "c1"}]),
                ToolMessage("a cat on a mat", tool_call_id="c1"),
                AIMessage("A cat."),
                HumanMessage("What am I allergic to?"),
                AIMessage("Peanuts."),
            ],
            "bob": [HumanMessage("hello <img src=x onerror=alert(1)>"), AIMessage("Hi Bob.")],
        },
    )
    with sqlite3.connect(path) as db:  # a row of a type LangChain does not know
        db.execute(
            "INSERT INTO message_store (session_id, message) VALUES ('bob', ?)",
            (json.dumps({"type": "banana", "data": {"content": "?"}}),),
        )
    return path


def test_langchain_preview_lists_sessions_and_what_is_not_a_turn(lc_db, sql_store):
    previews = {p.key: p for p in preview_source(LangChainSqlHistory(path=lc_db), sql_store, ME)}
    assert set(previews) == {"ada", "bob"}
    ada, bob = previews["ada"], previews["bob"]
    assert (ada.message_count, ada.turns, ada.first_line) == (9, 3, "My name is Ada and I am allergic to peanuts.")
    assert ada.left_out == {"tool call": 1, "tool message": 1, "image_url part (not text)": 1}
    assert bob.left_out == {"message of unknown type 'banana'": 1}
    assert ada.importable and bob.importable


def test_langchain_import_keeps_turns_and_system_prompt_and_leaves_the_source_untouched(lc_db, sql_store):
    before = folder_state(lc_db.parent)
    result = import_source(sql_store, ME, LangChainSqlHistory(url=f"sqlite:///{lc_db}"), COUNTER)
    assert folder_state(lc_db.parent) == before  # not a byte changed, no journal left beside it
    by_title = {c.title: c for c in result.created}
    ada = by_title["LangChain session ada"]
    assert ada.settings.system_prompt == "You are a terse assistant."
    assert stored(sql_store, ada) == [
        (1, "user", "My name is Ada and I am allergic to peanuts."),
        (1, "assistant", "Noted, Ada."),
        (2, "user", "What is in this picture?"),
        (2, "assistant", "A cat."),
        (3, "user", "What am I allergic to?"),
        (3, "assistant", "Peanuts."),
    ]
    assert stored(sql_store, by_title["LangChain session bob"])[0][2] == "hello <img src=x onerror=alert(1)>"
    assert "1 × message of unknown type 'banana'" in result.sentence()
    again = import_source(sql_store, ME, LangChainSqlHistory(path=lc_db), COUNTER)
    assert (len(again.created), again.already_imported) == (0, 2)
    assert len(sql_store.list_conversations(ME)) == 2


def test_langchain_custom_table_and_one_session(tmp_path, sql_store):
    path = tmp_path / "custom.db"
    langchain_sql_db(path, {"s1": [HumanMessage("one"), AIMessage("1")], "s2": [HumanMessage("two")]}, table="chats")
    with pytest.raises(InvalidInput, match="no table 'message_store'.*chats"):
        LangChainSqlHistory(path=path)
    source = LangChainSqlHistory(path=path, table_name="chats")
    result = import_source(sql_store, ME, source, COUNTER, keys={"s2"})
    assert [stored(sql_store, c) for c in result.created] == [[(1, "user", "two")]]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b"this is not a database at all" * 100), "cannot be read"),
        (lambda p: sqlite3.connect(p).execute("CREATE TABLE notes (x)").connection.commit(), "tables found: notes"),
    ],
)
def test_a_bad_langchain_source_gets_one_sentence(tmp_path, sql_store, make, message):
    path = tmp_path / "bad.db"
    make(path)
    with pytest.raises(InvalidInput, match=message):
        LangChainSqlHistory(path=path)
    for url, why in [("mysql://x/y", "SQLite or PostgreSQL"), ("sqlite://", "file path"), ("::", "not a database")]:
        with pytest.raises(InvalidInput, match=why):
            LangChainSqlHistory(url=url)
    with pytest.raises(InvalidInput, match="table name"):
        LangChainSqlHistory(path=path, table_name="x; DROP TABLE y")
    assert sql_store.list_conversations(ME) == []


def test_langchain_on_postgresql_is_read_only(postgres_url, sql_store):
    """A SQLChatMessageHistory table on PostgreSQL: imported, and the session cannot write to it."""
    from sqlalchemy import create_engine, text

    langchain_pg(postgres_url)
    owner = create_engine(postgres_url)
    try:
        source = LangChainSqlHistory(url=postgres_url)
        result = import_source(sql_store, ME, source, COUNTER)
        assert [stored(sql_store, c) for c in result.created] == [
            [(1, "user", "from postgres"), (1, "assistant", "ok")]
        ]
        with source.engine.connect() as connection, pytest.raises(Exception, match="read-only"):
            connection.execute(text("DELETE FROM message_store"))
        source.close()
        with owner.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM message_store")).scalar() == 2
    finally:
        with owner.begin() as connection:  # the other tests expect Memory Lab's tables only
            connection.execute(text("DROP TABLE IF EXISTS message_store"))
        owner.dispose()


@pytest.fixture
def postgres_url():
    import postgres
    from conftest import NOT_RUN, POSTGRES, _reset_postgres

    if not postgres.available():
        pytest.skip(NOT_RUN["postgresql"])
    url = POSTGRES.start()
    _reset_postgres(url)
    return url


def langchain_pg(url: str) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langchain_community.chat_message_histories import SQLChatMessageHistory
    history = SQLChatMessageHistory(session_id="pg", connection=url.replace("postgresql://", "postgresql+psycopg://"))
    history.clear()
    history.add_messages([HumanMessage("from postgres"), AIMessage("ok")])


# -- LangGraph ---------------------------------------------------------------------------------------------------


@pytest.fixture
def lg_db(tmp_path):
    folder = tmp_path / "langgraph-app"
    folder.mkdir()
    path = folder / "checkpoints.db"
    langgraph_db(
        path,
        {"ada": ["My name is Ada.", "What is my name?"], "bob": ["hi"]},
        ["Hello Ada.", "Ada.", "Hello Bob."],
    )
    langgraph_update(path, "bob", [ToolMessage("weather: sunny", tool_call_id="t1")])
    return path


def test_langgraph_threads_come_from_the_newest_checkpoint(lg_db, sql_store):
    before = folder_state(lg_db.parent)
    source = LangGraphCheckpoints(lg_db)
    previews = {p.key: p for p in preview_source(source, sql_store, ME)}
    assert {k: (p.message_count, p.turns) for k, p in previews.items()} == {"ada": (4, 2), "bob": (3, 1)}
    assert previews["bob"].left_out == {"tool message": 1}
    result = import_source(sql_store, ME, source, COUNTER)
    source.close()
    assert folder_state(lg_db.parent) == before
    by_title = {c.title: stored(sql_store, c) for c in result.created}
    assert by_title["LangGraph thread ada"] == [
        (1, "user", "My name is Ada."),
        (1, "assistant", "Hello Ada."),
        (2, "user", "What is my name?"),
        (2, "assistant", "Ada."),
    ]


@dataclass
class Canary:
    """Writes a file when it is built: a checkpoint holding one must not make the importer build it."""

    path: str = ""

    def __post_init__(self) -> None:
        if self.path:
            Path(self.path).write_text("built")


def test_a_checkpoint_cannot_make_the_importer_build_its_objects(tmp_path, sql_store):
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.sqlite import SqliteSaver

    canary = tmp_path / "canary"
    path = tmp_path / "hostile.db"
    with SqliteSaver.from_conn_string(str(path)) as saver:
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {
            "messages": [HumanMessage("hi"), AIMessage("hello"), Canary(str(canary))],
        }
        saver.put({"configurable": {"thread_id": "t", "checkpoint_ns": ""}}, checkpoint, {}, {})
    canary.unlink()  # built once above, by the test itself
    previews = list(preview_source(LangGraphCheckpoints(path), sql_store, ME))
    assert not canary.exists()
    assert previews[0].left_out == {"message of unknown type 'dict'": 1}  # reported, not dropped, not built


def test_a_file_that_is_not_langgraph_gets_one_sentence(tmp_path, lc_db):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"\x00garbage" * 1000)
    for path in (junk, lc_db):
        with pytest.raises(InvalidInput, match="SQLite database LangGraph|no checkpoints table"):
            LangGraphCheckpoints(path)


# -- ChatGPT -----------------------------------------------------------------------------------------------------


def chatgpt_file(tmp_path) -> Path:
    folder = tmp_path / "export"
    folder.mkdir(exist_ok=True)
    tools = [
        dict(role="assistant", content={"content_type": "code", "text": "print(1)"}, recipient="python"),
        dict(role="tool", content={"content_type": "execution_output", "text": "1"}, name="python"),
        dict(
            role="user",
            content={
                "content_type": "multimodal_text",
                "parts": [{"content_type": "image_asset_pointer", "asset_pointer": "file-service://x"}],
            },
        ),
        dict(role="assistant", content={"content_type": "text", "parts": ["A diagram."]}),
    ]
    return write_chatgpt_export(
        folder / "conversations.json",
        [
            chatgpt_conversation(
                "Trip to Oslo",
                [("I am going to Oslo in May.", "Nice!"), ("Where am I going?", "Oslo.")],
                conversation_id="c-oslo",
                edited_first="I am going to Rome.",
                extra=tools,
            ),
            chatgpt_conversation("Empty title", [("hi", "hello")], conversation_id="c-2"),
        ],
    )


def test_chatgpt_import_follows_the_active_branch(tmp_path, sql_store):
    path = chatgpt_file(tmp_path)
    before = folder_state(path.parent)
    previews = list(preview_source(ChatGPTExport(path=path), sql_store, ME))
    assert [(p.key, p.title, p.turns) for p in previews] == [("c-oslo", "Trip to Oslo", 3), ("c-2", "Empty title", 1)]
    assert previews[0].left_out == {"tool message": 2, "image_asset_pointer part (not text)": 1}
    result = import_source(sql_store, ME, ChatGPTExport(path=path), COUNTER)
    assert folder_state(path.parent) == before
    oslo = result.created[0]
    assert stored(sql_store, oslo) == [
        (1, "user", "I am going to Oslo in May."),
        (1, "assistant", "Nice!"),
        (2, "user", "[image_asset_pointer not imported]"),
        (2, "assistant", "A diagram."),
        (3, "user", "Where am I going?"),
        (3, "assistant", "Oslo."),
    ]
    assert oslo.created_at.year == 2023  # the export's create_time, not the import's
    assert "Rome" not in json.dumps(stored(sql_store, oslo))  # the edited-away branch is not the conversation


def test_chatgpt_zip_and_uploaded_bytes(tmp_path, sql_store):
    raw = chatgpt_file(tmp_path).read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("chat.html", "<html></html>")
        archive.writestr("conversations.json", raw)
    result = import_source(sql_store, ME, ChatGPTExport(data=buffer.getvalue(), name="export.zip"), COUNTER)
    assert [c.title for c in result.created] == ["Trip to Oslo", "Empty title"]


@pytest.mark.parametrize(
    "raw, message",
    [
        (b'{"not": "a list"}', "holds a list of conversations"),
        (b"[" + b'{"title": "x", "mapping": {}},' * 3 + b'{"title": "cut off', "not valid JSON"),
        (b'[{"title": "no tree"}]', "not in ChatGPT's export format"),
        (b"PK\x03\x04 not really a zip", "not a ChatGPT export|damaged"),
        (b"[" * 100_000 + b"]" * 100_000, "deeper than 64 levels"),
        (b"[1, 2]", "not in ChatGPT's export format"),
    ],
)
def test_a_bad_chatgpt_file_gets_one_sentence_and_writes_nothing(tmp_path, sql_store, raw, message):
    good = json.loads(chatgpt_file(tmp_path).read_text())
    with pytest.raises(InvalidInput, match=message):
        source = ChatGPTExport(data=raw)
        import_source(sql_store, ME, source, COUNTER)
    # A good conversation before a broken one: all or nothing.
    broken = json.dumps(good)[:-1].encode() + b', {"title": "broken", "mapping": '
    with pytest.raises(InvalidInput, match="not valid JSON"):
        import_source(sql_store, ME, ChatGPTExport(data=broken), COUNTER)
    assert sql_store.list_conversations(ME) == []


def test_a_chatgpt_export_is_streamed(tmp_path, sql_store):
    """Previewing a 20 MB export holds one conversation at a time, not the file."""
    conversations = [
        chatgpt_conversation(f"c{n}", [("question " * 50, "answer " * 200)] * 20, conversation_id=f"id{n}")
        for n in range(300)
    ]
    path = write_chatgpt_export(tmp_path / "conversations.json", conversations)
    size = path.stat().st_size
    del conversations
    assert size > 15_000_000
    tracemalloc.start()
    count = sum(1 for _ in preview_source(ChatGPTExport(path=path), sql_store, ME))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 300
    assert peak < size / 5, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"


# -- after import: a conversation like any other -------------------------------------------------------------------


def test_imported_conversations_replay_through_every_type(lc_db, sql_store):
    """The buffer sends exactly the source's messages; every type replays; fork and export work."""
    result = import_source(sql_store, ME, LangChainSqlHistory(path=lc_db), COUNTER)
    ada = next(c for c in result.created if c.title.endswith("ada"))
    script = script_from_conversation(sql_store, ME, ada.id)
    settings = [MemorySettings(t, system_prompt=ada.settings.system_prompt) for t in MEMORY_TYPES]
    replays = {r.memory_type: r for r in replay(script, settings, FakeClient(), user_id=ME)}
    assert set(replays) == set(MEMORY_TYPES) and all(len(r.frames) == 3 for r in replays.values())
    sent = [(m.role, m.content) for m in replays["buffer"].frames[-1].payload.messages]
    assert sent == [
        ("system", "You are a terse assistant."),
        ("user", "My name is Ada and I am allergic to peanuts."),
        ("assistant", "Noted, Ada."),
        ("user", "What is in this picture?"),
        ("assistant", "A cat."),
        ("user", "What am I allergic to?"),
    ]
    window = replays["window"].frames[-1].payload.messages
    assert len(window) <= len(sent)
    fork = fork_conversation(sql_store, ME, ada.id, 2, MemorySettings("window", window_turns=1))
    assert fork.last_turn == 2
    exported = export_conversations(sql_store, ME, [ada.id])
    assert [m["content"] for m in exported["conversations"][0]["messages"]][-1] == "Peanuts."


# -- the Conversations page ----------------------------------------------------------------------------------------


def test_conversations_page_previews_looks_inside_and_imports(app_env, lc_db, tmp_path, monkeypatch):
    from conftest import plain, run_page

    url = f"sqlite:///{tmp_path / 'app.db'}"
    at = run_page("app_pages/conversations.py", timeout=30)
    at.radio(key="import_kind").set_value("langchain").run()
    at.text_input(key="import_location_langchain").set_value(str(tmp_path / "app.db")).run()
    at.button(key="import_preview_button").click().run()
    assert "Memory Lab's own database" in plain(at.error[0].value)  # every user's data: never a source
    at.text_input(key="import_location_langchain").set_value(str(lc_db)).run()
    at.button(key="import_preview_button").click().run()
    assert not at.exception and not at.error
    frame = at.dataframe[-1].value
    assert list(frame["title"]) == ["LangChain session ada", "LangChain session bob"]
    assert list(frame["turns"]) == [3, 1] and list(frame["import"]) == ["yes", "yes"]
    assert "2 conversations (12 messages)" in plain("\n".join(c.value for c in at.caption))
    at.expander(key="import_look_open").open = True
    at.session_state["import_look_open"] = True
    at.run()
    at.selectbox(key="import_look_key").set_value("ada").run()
    shown = [t.value for t in at.text]
    assert "a cat on a mat" in shown and "(no text)" in shown  # the tool result and the tool call, shown
    assert any("tool · not a turn" in plain(c.value) for c in at.caption)
    at.radio(key="import_how").set_value("some").run()
    at.multiselect(key="import_pick").set_value(["bob"]).run()
    at.button(key="import_go").click().run()
    assert not at.exception
    assert "Imported 1 conversation" in plain(at.success[0].value)
    store = SqlStore.open(url)
    assert [c.title for c in store.list_conversations("local")] == ["LangChain session bob"]
    store.close()
    assert list(at.dataframe[0].value["title"]) == ["LangChain session bob"]  # the list at the top, redrawn
