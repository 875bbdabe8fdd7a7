"""The chat turn with a scripted model: saving first, failures, partial replies, retries, summaries."""

from __future__ import annotations

import threading

import pytest

from fakes import Cut, FakeClient
from memstore import (
    Chat,
    FactSet,
    InvalidInput,
    LLMError,
    MemorySettings,
    Preference,
    SqlStore,
    select_facts,
    with_session_fact,
)
from memstore.schema import utcnow
from memstore.tokens import counter_for_model

ME = "alice"


def new_chat(store, script=(), settings=None, **kw):
    chat = Chat(store, FakeClient(script, **kw), user_id=ME)
    conv = chat.new_conversation("chat", settings or MemorySettings("buffer"))
    return chat, conv


def rows(store, conv_id):
    return [(m.turn, m.role, m.status, m.content) for m in store.page(ME, conv_id, limit=100)]


def test_a_turn_streams_saves_both_messages_and_the_exact_request(store):
    chat, conv = new_chat(store, ["Hello Alice, nice to meet you"])
    run = chat.send(conv.id, "Hi, I am Alice", FactSet())
    assert rows(store, conv.id) == [(1, "user", "complete", "Hi, I am Alice")]  # saved before the call
    deltas = list(run.stream())
    assert "".join(deltas) == "Hello Alice, nice to meet you" and len(deltas) > 1
    assert run.result.ok
    assert rows(store, conv.id)[-1] == (1, "assistant", "complete", "Hello Alice, nice to meet you")
    call = chat.last_chat_call(conv.id)
    assert list(call.request) == chat.client.requests[0]  # the ledger holds exactly what was sent
    assert call.reply == "Hello Alice, nice to meet you" and call.finish_reason == "stop"
    assert call.usage.prompt_tokens == 11 and call.counted_prompt_tokens == run.payload.total_tokens
    assert call.sections == run.payload.tokens_by_section() and call.turn == 1


def test_failed_call_keeps_the_message_records_the_error_and_retry_works(store):
    chat, conv = new_chat(store, [LLMError("server_error", "The model server failed (500)."), "Second try works"])
    run = chat.send(conv.id, "Tell me a joke", FactSet())
    assert list(run.stream()) == []
    assert run.result.error.kind == "server_error" and run.result.reply.status == "failed"
    assert rows(store, conv.id) == [(1, "user", "complete", "Tell me a joke"), (1, "assistant", "failed", "")]
    failed_call = chat.last_chat_call(conv.id)
    assert failed_call.error_kind == "server_error" and "500" in failed_call.error

    retry = chat.retry(conv.id, FactSet())
    assert retry.user_message.content == "Tell me a joke"
    assert "".join(retry.stream()) == "Second try works"
    sent = chat.client.requests[1]
    assert [m.content for m in sent if m.role == "user"] == ["Tell me a joke"]  # the message is sent once
    assert rows(store, conv.id)[-1] == (1, "assistant", "complete", "Second try works")
    with pytest.raises(InvalidInput, match="already has a complete reply"):
        chat.retry(conv.id, FactSet())


def test_interrupted_stream_keeps_what_arrived_as_partial(store):
    chat, conv = new_chat(store, [Cut("The answer is forty", LLMError("truncated", "The connection ended early."))])
    run = chat.send(conv.id, "What is the answer?", FactSet())
    assert "".join(run.stream()) == "The answer is forty"
    assert run.result.reply.status == "partial" and run.result.reply.content == "The answer is forty"
    assert chat.last_chat_call(conv.id).error_kind == "truncated"
    # The partial reply stays in memory for the next turn, and the turn can be retried.
    assert chat.retry(conv.id, FactSet()).user_message.turn == 1


def test_page_that_stops_reading_keeps_the_partial_reply(store):
    chat, conv = new_chat(store, ["one two three four five"])
    run = chat.send(conv.id, "count", FactSet())
    stream = run.stream()
    assert next(stream) == "one" and next(stream) == " two"
    stream.close()  # what Streamlit does when the script reruns mid-stream
    assert run.result.reply.status == "partial" and run.result.reply.content == "one two"
    assert run.result.error.kind == "stopped"


def test_bad_messages_are_refused_before_anything_is_saved(store):
    chat, conv = new_chat(store)
    for bad in ["", "   ", "a\x00b", "x" * 32_001]:
        with pytest.raises(InvalidInput):
            chat.send(conv.id, bad, FactSet())
    assert rows(store, conv.id) == [] and chat.client.requests == []


def test_switching_memory_type_applies_from_the_next_turn(store):
    chat, conv = new_chat(store, settings=MemorySettings("buffer"))
    for text in ["one", "two", "three"]:
        chat.send(conv.id, text, FactSet()).run()
    chat.update_settings(conv.id, MemorySettings("window", window_turns=1))
    chat.send(conv.id, "four", FactSet()).run()
    last = chat.client.requests[-1]
    assert [m.content for m in last if m.role != "system"] == ["three", "echo: three", "four"]
    assert len(store.page(ME, conv.id, limit=100)) == 8  # nothing stored was removed


def test_session_facts_and_preferences_are_injected_and_listed(store):
    chat, conv = new_chat(store)
    now = utcnow()
    prefs = [
        Preference("name", "Alice", True, now),
        Preference("diet", "vegan", False, now),
        Preference("city", "Oslo", True, now),
    ]
    session = with_session_fact({}, "mood", "curious")
    session = with_session_fact(session, "city", "Bergen")
    facts = select_facts(session, prefs)
    run = chat.send(conv.id, "hello", facts)
    system = run.payload.messages[0].content
    assert "- name: Alice" in system and "- mood: curious" in system and "- city: Bergen" in system
    assert "vegan" not in system and "Oslo" not in system
    assert {(f.source, f.key) for f in facts.injected} == {
        ("preference", "name"),
        ("session", "mood"),
        ("session", "city"),
    }
    assert {f.key: why for f, why in facts.left_out} == {
        "diet": "switched off",
        "city": "overridden by a session fact",
    }
    assert run.payload.section("facts").items == 3 and run.payload.section("facts").tokens > 0
    with pytest.raises(InvalidInput):
        with_session_fact(session, "", "x")


def test_summary_memory_folds_each_turn_with_a_ledgered_call(store):
    chat, conv = new_chat(store, settings=MemorySettings("summary"))
    chat.send(conv.id, "My name is Alice", FactSet()).run()
    update = chat.update_memory(conv.id)
    assert update.summary is not None and update.summary.through_turn == 1 and "Alice" in update.summary.text
    assert update.call.purpose == "summary" and update.call.reply.startswith("SUMMARY")
    run = chat.send(conv.id, "What is my name?", FactSet())
    sent = run.payload.messages
    assert [m.role for m in sent] == ["system", "user"]  # no verbatim history: only the summary
    assert update.summary.text in sent[0].content and run.payload.section("summary").tokens > 0
    summary_calls = store.list_calls(ME, conversation_id=conv.id, purpose="summary")
    assert len(summary_calls) == 1 and summary_calls[0].request[0].role == "system"


def test_summary_catches_up_before_the_call_when_behind(store):
    chat, conv = new_chat(store, settings=MemorySettings("buffer"))
    chat.send(conv.id, "I live in Lisbon", FactSet()).run()
    chat.update_settings(conv.id, MemorySettings("summary"))
    run = chat.send(conv.id, "Where do I live?", FactSet())
    assert len(run.summary_updates) == 1 and run.summary_updates[0].folded == (1, 1)
    assert "Lisbon" in run.payload.messages[0].content


def test_summary_failure_keeps_the_turn_going(store):
    chat, conv = new_chat(
        store, [LLMError("rate_limit", "Slow down (429)."), "still answered"], settings=MemorySettings("buffer")
    )
    store.add_user_message(ME, conv.id, "old turn", tokens=1, tokenizer="x")
    chat.update_settings(conv.id, MemorySettings("summary"))
    run = chat.send(conv.id, "new turn", FactSet())
    assert run.summary_updates[0].error.kind == "rate_limit"
    assert any("could not be updated" in n for n in run.payload.view.notes)
    assert run.run().reply.content == "still answered"
    assert store.list_calls(ME, conversation_id=conv.id, purpose="summary")[0].error_kind == "rate_limit"


def test_summary_buffer_folds_turns_as_they_fall_out(store):
    chat, conv = new_chat(store, settings=MemorySettings("summary_buffer", max_tokens=40))
    for i in range(1, 7):
        chat.send(conv.id, f"fact number {i}", FactSet()).run()
        chat.update_memory(conv.id)
    payload = chat.preview(conv.id, FactSet(), draft="next")
    view = payload.view
    assert view.turns and view.summary is not None and view.summary_pending is None
    assert view.summary.through_turn == view.turns[0].number - 1  # summary ends where the buffer begins
    assert view.summary.from_turn == 1
    versions = store.list_calls(ME, conversation_id=conv.id, purpose="summary")
    assert len(versions) >= 2


def test_summaries_survive_a_restart(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    store = SqlStore.open(url)
    chat, conv = new_chat(store, settings=MemorySettings("summary"))
    chat.send(conv.id, "Remember: the code word is heron", FactSet()).run()
    chat.update_memory(conv.id)
    store.close()
    reopened = SqlStore.open(url)
    chat2 = Chat(reopened, FakeClient(), user_id=ME)
    payload = chat2.preview(conv.id, FactSet(), draft="code word?")
    assert "heron" in payload.messages[0].content and payload.view.summary_pending is None
    reopened.close()


def test_temporary_chat_writes_nothing_to_the_database(tmp_path):
    sql = SqlStore.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    temp = SqlStore.in_memory()
    chat, conv = new_chat(temp, ["temporary reply"])
    chat.send(conv.id, "forget me", FactSet(select_facts({}, sql.list_preferences(ME)).injected)).run()
    assert [m.content for m in temp.page(ME, conv.id)] == ["forget me", "temporary reply"]
    assert temp.get_conversation(ME, conv.id).temporary
    assert sql.list_conversations(ME) == [] and sql.list_calls(ME) == []
    sql.close()


def test_temporary_stores_are_private_to_their_session_and_safe_across_threads():
    """Each browser session gets its own in-memory database; Streamlit runs a session's reruns on any thread."""
    mine, theirs = SqlStore.in_memory(), SqlStore.in_memory()
    conv = mine.create_conversation(ME, "mine", MemorySettings())
    assert theirs.list_conversations(ME) == []
    errors: list[BaseException] = []

    def send(worker: int) -> None:
        try:
            for n in range(25):
                mine.add_user_message(ME, conv.id, f"worker {worker} message {n}", tokens=1, tokenizer="t")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = mine.page(ME, conv.id, limit=500)
    assert len(stored) == 100 and [m.seq for m in stored] == list(range(1, 101))
    assert mine.get_conversation(ME, conv.id).message_count == 100
    mine.close()
    theirs.close()


def test_exact_token_counts_with_the_real_tokenizer(store):
    counter = counter_for_model("gpt-4o-mini")
    chat, conv = new_chat(store, counter=counter, model="gpt-4o-mini")
    payload = chat.preview(conv.id, FactSet(), draft="hello world")
    assert payload.exact_tokens and payload.tokenizer == "o200k_base"
    # "hello world" is 2 o200k tokens; a message costs 4 framing tokens; a reply is primed with 3.
    assert payload.section("new_message").tokens == 2 + 4 + 3
    assert counter_for_model("some-local-model").exact is False


def test_without_a_model_the_message_is_kept_and_the_error_says_what_to_set(store):
    from memstore.llm import UnconfiguredClient

    chat = Chat(store, UnconfiguredClient(), user_id=ME)
    conv = chat.new_conversation()
    run = chat.send(conv.id, "hello?", FactSet())
    run.run()
    assert run.result.error.kind == "not_configured" and "OPENAI_API_KEY" in run.result.error.message
    assert rows(store, conv.id) == [(1, "user", "complete", "hello?"), (1, "assistant", "failed", "")]
    assert chat.preview(conv.id, FactSet()).total_tokens > 0


def test_first_message_names_a_new_chat(store):
    chat = Chat(store, FakeClient(), user_id=ME)
    conv = chat.new_conversation()
    named = chat.new_conversation("My own title")
    chat.send(named.id, "this does not rename it", FactSet()).run()
    assert store.get_conversation(ME, named.id).title == "My own title"
    chat.send(conv.id, "Plan a weekend in Porto with my two kids, on a budget", FactSet()).run()
    assert store.get_conversation(ME, conv.id).title == "Plan a weekend in Porto with my two kids, on a…"
    chat.send(conv.id, "second message", FactSet()).run()
    assert store.get_conversation(ME, conv.id).title.startswith("Plan a weekend")
