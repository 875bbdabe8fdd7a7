"""The outbox keeps what the database refused, and saves it only into the database it belongs to (issue 24, item 5)."""

from __future__ import annotations

import json
import sqlite3

import pytest
from sqlalchemy.engine import make_url

from fakes import FakeClient
from memstore import Chat, FactSet, InvalidInput, MemorySettings, SqlStore
from memstore.database import create_db_engine, upgrade
from memstore.database_identity import where_is
from memstore.outbox import Outbox, new_unsent, sort_items

ME = "local"
TABLES = ("conversations", "messages", "model_calls")


@pytest.fixture(autouse=True)
def short_lock_wait(monkeypatch):
    """A locked SQLite file gives up after 0.2 s (the app waits 10 s)."""
    monkeypatch.setattr("memstore.database.SQLITE_BUSY_TIMEOUT_MS", 200)


def counts(path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def refused_reply(path, outbox: Outbox):
    """A turn on the database at `path` whose reply the database refused (another process held it): kept."""
    store = SqlStore.open(f"sqlite:///{path}")
    chat = Chat(store, FakeClient(["the reply A refused"]), user_id=ME)
    conv = chat.new_conversation(settings=MemorySettings("buffer"))
    run = chat.send(conv.id, "a question asked on A", FactSet())
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        result = run.run()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert not result.saved and result.unsaved is not None
    store.close()
    return outbox.put(result.unsaved), conv.id


def other_database_with_conversation(path, conversation_id: int) -> SqlStore:
    """Database B, with a conversation of the same number whose turn 1 waits for its reply."""
    store = SqlStore.open(f"sqlite:///{path}")
    chat = Chat(store, FakeClient(["unused"]), user_id=ME)
    conv = chat.new_conversation(settings=MemorySettings("buffer"))
    assert conv.id == conversation_id
    store.add_user_message(ME, conv.id, "B's own question", tokens=3, tokenizer="test")
    return store


def test_a_reply_refused_by_one_database_is_never_saved_into_another_with_the_same_conversation_number(tmp_path):
    outbox = Outbox(tmp_path / "outbox")
    a_path, b_path = tmp_path / "a.db", tmp_path / "b.db"
    item, conversation_id = refused_reply(a_path, outbox)
    b = other_database_with_conversation(b_path, conversation_id)
    before = counts(b_path)
    chat_b = Chat(b, FakeClient([]), user_id=ME)
    with pytest.raises(InvalidInput) as refused:
        chat_b.save_unsent(item)
    sentence = str(refused.value)
    assert str(a_path) in sentence and "nothing was saved" in sentence.lower()
    b.close()
    assert counts(b_path) == before  # no message, no ledger row holding A's messages
    assert [i.id for i in outbox.items(ME)] == [item.id]  # still kept
    assert item.database == str(a_path) and item.instance  # the item says where it belongs, and who kept it
    a = SqlStore.open(f"sqlite:///{a_path}")  # back on A: saved, with its ledger row
    try:
        message = Chat(a, FakeClient([]), user_id=ME).save_unsent(outbox.items(ME)[0])
        assert (message.role, message.content) == ("assistant", "the reply A refused")
    finally:
        a.close()
    assert counts(a_path) == {"conversations": 1, "messages": 2, "model_calls": 1}


def test_a_message_kept_for_one_database_is_not_sent_into_another(tmp_path):
    a = SqlStore.open(f"sqlite:///{tmp_path / 'a.db'}")
    item = new_unsent(ME, 1, "message", "typed while A was locked", "busy", database=a.identity())
    a.close()
    b = other_database_with_conversation(tmp_path / "b.db", 1)
    before = counts(tmp_path / "b.db")
    client = FakeClient(["never called"])
    try:
        with pytest.raises(InvalidInput):
            Chat(b, client, user_id=ME).send_unsent(item, 1, FactSet())
    finally:
        b.close()
    assert counts(tmp_path / "b.db") == before and client.requests == []


def test_a_database_deleted_and_created_again_at_the_same_path_is_another_database(tmp_path):
    path = tmp_path / "lab.db"
    first = SqlStore.open(f"sqlite:///{path}")
    item = new_unsent(ME, 1, "reply", "kept", "busy", database=first.identity(), turn=1)
    first.close()
    for leftover in tmp_path.glob("lab.db*"):
        leftover.unlink()
    second = other_database_with_conversation(path, 1)
    try:
        assert second.identity().id != item.database_id and second.identity().where == item.database
        with pytest.raises(InvalidInput):
            Chat(second, FakeClient([]), user_id=ME).save_unsent(item)
    finally:
        second.close()
    assert counts(path)["messages"] == 1


def test_one_file_named_two_ways_is_one_database(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    a = SqlStore.open(f"sqlite:///{tmp_path / 'lab.db'}")
    chat = Chat(a, FakeClient([]), user_id=ME)
    conv = chat.new_conversation()
    a.add_user_message(ME, conv.id, "question", tokens=1, tokenizer="test")
    item = new_unsent(ME, conv.id, "reply", "kept reply", "busy", database=a.identity(), turn=1)
    a.close()
    monkeypatch.chdir(tmp_path / "sub")
    again = SqlStore.open("sqlite+pysqlite:///../sub/../lab.db")
    try:
        assert again.identity() == item_identity(item)
        assert Chat(again, FakeClient([]), user_id=ME).save_unsent(item).content == "kept reply"
    finally:
        again.close()


def item_identity(item):
    from memstore.database_identity import DatabaseIdentity

    return DatabaseIdentity(item.database_id, item.database)


def test_every_database_gets_its_own_id_and_keeps_it(tmp_path, sql_store):
    first = SqlStore.open(f"sqlite:///{tmp_path / 'one.db'}")
    second = SqlStore.open(f"sqlite:///{tmp_path / 'two.db'}")  # both copied from this process's template
    memory = SqlStore.in_memory()
    ids = [s.identity().id for s in (first, second, memory, sql_store)]
    assert len(set(ids)) == 4 and all(len(i) == 32 for i in ids)
    first.close()
    reopened = SqlStore.open(f"sqlite:///{tmp_path / 'one.db'}")
    assert reopened.identity().id == ids[0]
    for store in (reopened, second, memory):
        store.close()


def test_a_database_made_before_ids_gets_one_when_first_opened(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_db_engine(url)
    with engine.connect() as conn:
        upgrade(conn, "0010")
    engine.dispose()
    store = SqlStore.open(url)
    found = store.identity().id
    store.close()
    assert len(found) == 32
    again = SqlStore.open(url)
    assert again.identity().id == found
    again.close()


def test_where_a_database_is_said_without_its_password():
    said = where_is(make_url("postgresql+psycopg://alice:hunter2@db.example:5433/lab?password=hunter3&sslmode=x"))
    assert said == "postgresql://db.example:5433/lab" and "hunter" not in said and "alice" not in said


def test_an_item_kept_before_ids_were_recorded_is_never_saved(tmp_path):
    store = other_database_with_conversation(tmp_path / "b.db", 1)
    outbox = Outbox(tmp_path / "outbox")
    item = outbox.put(new_unsent(ME, 1, "reply", "old reply", "busy", database=store.identity(), turn=1))
    path = next((tmp_path / "outbox").rglob("*.json"))
    data = json.loads(path.read_text())
    for name in ("database_id", "database", "instance"):
        data.pop(name)  # what an outbox file written by an earlier version holds
    path.write_text(json.dumps(data))
    old = outbox.items(ME)[0]
    assert old.id == item.id and old.database_id == ""
    try:
        with pytest.raises(InvalidInput) as refused:
            Chat(store, FakeClient([]), user_id=ME).save_unsent(old)
    finally:
        store.close()
    assert "which database" in str(refused.value) and counts(tmp_path / "b.db")["messages"] == 1


def test_items_are_sorted_into_this_conversation_other_conversations_and_other_databases(tmp_path):
    a = SqlStore.open(f"sqlite:///{tmp_path / 'a.db'}")
    b = SqlStore.open(f"sqlite:///{tmp_path / 'b.db'}")
    here = new_unsent(ME, 1, "message", "here", "busy", database=b.identity())
    other = new_unsent(ME, 2, "message", "in conversation 2", "busy", database=b.identity())
    foreign = new_unsent(ME, 1, "reply", "A's reply", "busy", database=a.identity(), turn=1)
    a.close()
    b.close()
    kept = sort_items([here, other, foreign], b.identity(), 1)
    assert kept.here == (here,) and kept.elsewhere == (other,) and kept.foreign == (foreign,)


def test_processes_opening_a_database_without_an_id_at_once_agree_on_one(sql_store):
    """Racing opens (SQLite waits for the writer; PostgreSQL's second insert loses on the key and reads the first)."""
    import threading

    url = sql_store.engine.url.render_as_string(hide_password=False)
    with sql_store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM database_identity")  # as a database made before 0011 opens
    found: list[str] = []
    start = threading.Barrier(6)

    def open_one() -> None:
        start.wait()
        store = SqlStore.open(url)
        found.append(store.identity().id)
        store.close()

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with sql_store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT id FROM database_identity").fetchall()
    assert len(found) == 6 and len(set(found)) == 1 and rows == [(found[0],)]


def test_an_outbox_file_naming_its_database_with_other_types_is_an_item_of_no_database(tmp_path):
    outbox = Outbox(tmp_path / "outbox")
    store = SqlStore.open(f"sqlite:///{tmp_path / 'lab.db'}")
    item = outbox.put(new_unsent(ME, 1, "message", "my words", "busy", database=store.identity()))
    path = next((tmp_path / "outbox").rglob("*.json"))
    data = json.loads(path.read_text())
    data.update(database_id=[store.identity().id], database={"path": "/etc"}, instance=7)
    path.write_text(json.dumps(data))
    [crafted] = outbox.items(ME)
    try:
        assert crafted.text == "my words" and crafted.id == item.id  # still shown, to copy or discard
        assert (crafted.database_id, crafted.database, crafted.instance) == ("", "", "")
        with pytest.raises(InvalidInput):
            Chat(store, FakeClient([]), user_id=ME).send_unsent(crafted, 1, FactSet())
    finally:
        store.close()
