"""Forgetting: one message from everywhere the store holds it, and everything about one user and nobody else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakes import FakeClient
from memstore import Chat, FactSet, InvalidInput, MemorySettings, NotFound, SqlStore
from memstore.sql.forgetting import FORGOTTEN_MARK
from memstore.transfer import export_conversations, to_json

ME, OTHER = "me@example.org", "other@example.org"
SECRET = "my locker code is tangerine-4417"


def chat_with_secret(store, user=ME, memory="summary_buffer", script=("Noted.", "Sure.", "Fine.", "Ok.")):
    """Four turns; the secret is said in turn 2 and travels in every later request of a buffer-like memory."""
    chat = Chat(store, FakeClient(list(script) + ["a summary"] * 20), user_id=user)
    conv = chat.new_conversation("secret", MemorySettings(memory, 3, 2_000))
    for text in ["hello there", SECRET, "what is the weather", "and tomorrow?"]:
        chat.send(conv.id, text, FactSet()).run()
        chat.after_turn(conv.id)
    return chat, conv


def secret_message(store, conv, user=ME):
    return next(m for m in store.page(user, conv.id) if m.content == SECRET)


def test_forgetting_a_message_says_what_will_change_then_removes_the_text_everywhere(store):
    chat, conv = chat_with_secret(store, memory="buffer")
    message = secret_message(store, conv)
    plan = store.forget_plan(ME, conv.id, message.id)
    # turns 2, 3 and 4 sent it (buffer memory): three chat calls
    assert plan.model_calls == 3 and plan.turn == 2 and plan.role == "user"
    assert plan.sentence() == "This message appears in 3 model calls."

    done = store.forget_message(ME, conv.id, message.id)
    assert done.model_calls == 3
    stored = [m for m in store.page(ME, conv.id) if m.id == message.id][0]
    assert stored.status == "forgotten" and stored.content == "" and "forgotten on" in (stored.error or "")
    assert [m.turn for m in store.page(ME, conv.id)] == [1, 1, 2, 2, 3, 3, 4, 4]  # turn numbers stay put
    calls = store.list_calls(ME, conversation_id=conv.id, limit=100)
    assert calls and all(SECRET not in json.dumps([m.as_dict() for m in c.request]) for c in calls)
    assert sum(FORGOTTEN_MARK in m.content for c in calls for m in c.request) == 3  # the rest of each record kept
    exported = to_json(export_conversations(store, ME, [conv.id]))
    assert SECRET not in exported
    # the next request does not carry it either
    assert all(SECRET not in m.content for m in chat.preview(conv.id, FactSet()).messages)


def test_forgetting_twice_another_users_or_an_unknown_message_changes_nothing(store):
    _, conv = chat_with_secret(store, memory="buffer")
    message = secret_message(store, conv)
    with pytest.raises(NotFound):
        store.forget_message(OTHER, conv.id, message.id)
    with pytest.raises(NotFound):
        store.forget_message(ME, conv.id, 999_999)
    assert secret_message(store, conv).content == SECRET  # untouched by the refusals
    store.forget_message(ME, conv.id, message.id)
    with pytest.raises(InvalidInput, match="already forgotten"):
        store.forget_message(ME, conv.id, message.id)
    with pytest.raises(InvalidInput, match="already forgotten"):
        store.forget_plan(ME, conv.id, message.id)


def test_summaries_and_entity_notes_from_the_turn_are_removed_and_rebuilt(store):
    chat, conv = chat_with_secret(store, memory="summary")
    assert store.latest_summary(ME, conv.id, "summary") is not None
    message = secret_message(store, conv)
    plan = store.forget_message(ME, conv.id, message.id)
    assert plan.summaries >= 1
    kept = store.latest_summary(ME, conv.id, "summary")
    assert kept is None or kept.through_turn < plan.turn  # every version that folded turn 2 is gone
    chat.send(conv.id, "next", FactSet()).run()  # the memory rebuilds from what is left
    chat.after_turn(conv.id)
    summary = store.latest_summary(ME, conv.id, "summary")
    assert summary is not None and SECRET not in summary.text


def test_a_reply_that_repeats_the_message_word_for_word_loses_the_quote_too(store):
    chat = Chat(store, FakeClient(), user_id=ME)  # the scripted model echoes: "echo: <your message>"
    conv = chat.new_conversation("echo", MemorySettings("buffer"))
    chat.send(conv.id, SECRET, FactSet()).run()
    plan = store.forget_plan(ME, conv.id, secret_message(store, conv).id)
    assert plan.quoted_in == 1 and "1 other message quoting it" in plan.sentence()
    store.forget_message(ME, conv.id, plan.message_id)
    assert [m.content for m in store.page(ME, conv.id)] == ["", f"echo: {FORGOTTEN_MARK}"]


def test_a_short_message_is_replaced_only_where_it_is_the_whole_text(store):
    chat = Chat(store, FakeClient(["this is fine", "ok"]), user_id=ME)
    conv = chat.new_conversation("short", MemorySettings("buffer"))
    chat.send(conv.id, "hi", FactSet()).run()
    chat.send(conv.id, "this history is long", FactSet()).run()
    hi = next(m for m in store.page(ME, conv.id) if m.content == "hi")
    store.forget_message(ME, conv.id, hi.id)
    texts = [m.content for c in store.list_calls(ME, conversation_id=conv.id) for m in c.request]
    assert "this history is long" in texts and "hi" not in texts  # "this", "history" keep their letters


def test_forget_everything_about_me_deletes_my_rows_and_not_one_byte_of_anyone_elses(store):
    chat_with_secret(store, ME)
    store.set_preference(ME, "name", "Ada")
    chat_with_secret(store, OTHER)
    store.set_preference(OTHER, "name", "Grace")
    theirs_before = dump_user(store, OTHER)
    counts = store.user_data(ME)
    assert counts.conversations == 1 and counts.messages == 8 and counts.preferences == 1 and counts.model_calls >= 4
    assert "1 conversation (8 messages)" in counts.sentence()

    deleted = store.forget_user(ME)
    assert deleted == counts
    assert store.user_data(ME).total == 0
    assert store.list_conversations(ME) == [] and store.list_preferences(ME) == [] and store.list_calls(ME) == []
    assert dump_user(store, OTHER) == theirs_before


def dump_user(store, user):
    """Everything a user owns, read through the store, as comparable text."""
    parts = []
    for conv in store.list_conversations(user):
        parts.append(repr(conv))
        parts += [repr(m) for m in store.page(user, conv.id, limit=500)]
        parts += [repr(e) for e in store.list_entities(user, conv.id)]
        parts.append(repr(store.latest_summary(user, conv.id, "summary_buffer")))
    parts += [repr(c) for c in store.list_calls(user, limit=500)]
    parts += [repr(p) for p in store.list_preferences(user)]
    parts += [repr(p) for p in store.preference_history(user)]
    return parts


def test_forgotten_text_is_not_in_the_sqlite_file_or_its_write_ahead_log(tmp_path):
    path = tmp_path / "memorylab.db"
    store = SqlStore.open(f"sqlite:///{path}")
    _, conv = chat_with_secret(store, memory="buffer")
    assert any(SECRET.encode() in file_bytes(p) for p in database_files(path))  # it was there
    store.forget_message(ME, conv.id, secret_message(store, conv).id)
    assert not any(SECRET.encode() in file_bytes(p) for p in database_files(path))
    chat_with_secret(store, OTHER)
    store.forget_user(OTHER)
    assert not any(SECRET.encode() in file_bytes(p) for p in database_files(path))
    assert store.list_conversations(ME)  # my conversation is still there
    store.close()


def database_files(path: Path) -> list[Path]:
    return [p for p in (path, path.with_name(path.name + "-wal")) if p.exists()]


def file_bytes(path: Path) -> bytes:
    return path.read_bytes()


def test_clearing_a_conversations_memory_keeps_the_transcript_and_can_be_undone_until_the_next_turn(store):
    chat, conv = chat_with_secret(store, memory="summary_buffer")
    assert any(SECRET in m.content for m in chat.preview(conv.id, FactSet()).messages)
    cleared = store.clear_memory(ME, conv.id)
    assert cleared.memory_from_turn == 5 and cleared.memory_cleared
    payload = chat.preview(conv.id, FactSet(), draft="hi")
    assert all(SECRET not in m.content for m in payload.messages)
    assert [m.role for m in payload.messages] == ["system", "user"]  # no history, no summary
    assert payload.view.summary is None and any("Memory was cleared after turn 4" in n for n in payload.view.notes)
    assert len(store.page(ME, conv.id)) == 8  # the transcript stays
    with pytest.raises(InvalidInput, match="already empty"):
        store.clear_memory(ME, conv.id)

    store.undo_clear_memory(ME, conv.id)  # nothing ran since: it comes back
    assert any(SECRET in m.content for m in chat.preview(conv.id, FactSet()).messages)

    store.clear_memory(ME, conv.id)
    chat.send(conv.id, "a fresh start", FactSet()).run()
    chat.after_turn(conv.id)
    with pytest.raises(InvalidInput, match="no longer be brought back"):
        store.undo_clear_memory(ME, conv.id)
    sent = chat.last_chat_call(conv.id).request
    assert [m.content for m in sent if m.role != "system"] == ["a fresh start"]


def test_after_a_clear_summaries_and_entity_notes_start_over(store):
    chat, conv = chat_with_secret(store, memory="summary")
    store.add_entity_versions(ME, conv.id, [("Locker", "code tangerine-4417")], turn=2, call=None)
    store.clear_memory(ME, conv.id)
    assert store.latest_summary(ME, conv.id, "summary") is None
    assert store.list_entities(ME, conv.id) == []
    chat.send(conv.id, "new topic entirely", FactSet()).run()
    chat.after_turn(conv.id)
    summary = store.latest_summary(ME, conv.id, "summary")
    assert summary is not None and summary.from_turn == 5


def age(store, conversation_id: int, days: int) -> None:
    """Make a conversation and its ledger rows look `days` old."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from memstore.schema import ConversationRow, ModelCallRow

    when = datetime.now(UTC) - timedelta(days=days)
    with store.engine.begin() as conn:
        conn.execute(update(ConversationRow).where(ConversationRow.id == conversation_id).values(updated_at=when))
        conn.execute(
            update(ModelCallRow).where(ModelCallRow.conversation_id == conversation_id).values(created_at=when)
        )


def test_retention_reports_per_user_then_deletes_only_what_is_older(store):
    from memstore.retention import RetentionSchedule, cutoff

    _, old_mine = chat_with_secret(store, ME, memory="buffer")
    _, new_mine = chat_with_secret(store, ME, memory="buffer")
    _, old_theirs = chat_with_secret(store, OTHER, memory="buffer")
    age(store, old_mine.id, 40)
    age(store, old_theirs.id, 40)
    report = {r.user_id: r for r in store.expired(cutoff(30))}
    assert set(report) == {ME, OTHER} and report[ME].conversations == 1 and report[OTHER].conversations == 1
    assert store.get_conversation(ME, old_mine.id)  # the dry run changed nothing
    assert store.expired(cutoff(60)) == []

    schedule = RetentionSchedule(30)
    deleted = schedule.due_run(store)
    assert deleted is not None and {r.user_id for r in deleted} == {ME, OTHER}
    assert schedule.due_run(store) is None  # not again within the day
    assert [c.id for c in store.list_conversations(ME)] == [new_mine.id]
    assert store.list_conversations(OTHER) == []
    assert store.list_calls(ME, conversation_id=old_mine.id) == []
    assert len(store.page(ME, new_mine.id)) == 8


def test_retention_command_dry_run_prints_counts_and_deletes_nothing(tmp_path, monkeypatch, capsys):
    from memstore.retention import main

    url = f"sqlite:///{tmp_path / 'r.db'}"
    store = SqlStore.open(url)
    _, conv = chat_with_secret(store, ME, memory="buffer")
    age(store, conv.id, 10)
    store.close()
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["--days", "7", "--dry-run"]) == 0
    assert f"{ME}: would delete 1 conversation idle for longer" in capsys.readouterr().out
    assert main(["--days", "0"]) == 2 and "Retention is 1 to" in capsys.readouterr().err
    store = SqlStore.open(url)
    assert store.list_conversations(ME)
    store.close()
    assert main(["--days", "7"]) == 0 and "deleted 1 conversation" in capsys.readouterr().out
    store = SqlStore.open(url)
    assert store.list_conversations(ME) == []
    store.close()


CRASH_MIDWAY = """
import os, sys
sys.path.insert(0, {root!r})
from memstore import SqlStore
from memstore.sql.forgetting import ForgetSql
store = SqlStore.open({url!r})
def die(*args, **kwargs):
    os._exit(9)  # like SIGKILL: no rollback, no cleanup, after the ledger and the message were rewritten
ForgetSql._drop_turn_vector = die
store.forget_message({user!r}, {conv}, {message})
"""


def test_a_process_killed_midway_through_forgetting_leaves_everything_as_it_was(tmp_path):
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'crash.db'}"
    store = SqlStore.open(url)
    _, conv = chat_with_secret(store, memory="buffer")
    message = secret_message(store, conv)
    before = dump_user(store, ME)
    store.close()
    script = CRASH_MIDWAY.format(
        root=str(Path(__file__).resolve().parent.parent), url=url, user=ME, conv=conv.id, message=message.id
    )
    assert subprocess.run([sys.executable, "-c", script], timeout=60).returncode == 9
    store = SqlStore.open(url)
    assert dump_user(store, ME) == before  # nothing half-forgotten
    assert secret_message(store, conv).content == SECRET
    store.forget_message(ME, conv.id, message.id)  # and it can still be forgotten whole
    assert all(SECRET not in m.content for m in store.page(ME, conv.id))
    store.close()
