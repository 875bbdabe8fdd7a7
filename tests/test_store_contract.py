"""The storage contract, run against every store: SQLite, temporary (and PostgreSQL when configured)."""

from __future__ import annotations

import pytest

from memstore import InvalidInput, MemorySettings, NewMessage, NotFound, SqlStore
from memstore.records import CallDraft, ChatMessage, Usage

ME, OTHER = "alice", "bob"


def add_turn(store, conv_id, user_text, reply_text, *, status="complete", user=ME):
    msg = store.add_user_message(user, conv_id, user_text, tokens=len(user_text) // 4, tokenizer="t")
    reply, _ = store.add_reply(
        user, conv_id, msg.turn, reply_text, status=status, tokens=len(reply_text) // 4, tokenizer="t"
    )
    return msg, reply


def test_conversation_round_trip(store):
    settings = MemorySettings("token_window", window_turns=0, max_tokens=77, system_prompt="Be brief. ünïcødé ✓")
    conv = store.create_conversation(ME, "  My   first chat ", settings)
    assert conv.title == "My first chat"
    got = store.get_conversation(ME, conv.id)
    assert got.settings == settings
    assert got.created_at.tzinfo is not None
    renamed = store.rename_conversation(ME, conv.id, "Renamed'); DROP TABLE conversations; --")
    assert store.get_conversation(ME, conv.id).title == renamed.title == "Renamed'); DROP TABLE conversations; --"
    changed = store.update_settings(ME, conv.id, MemorySettings("window", 1, 10))
    assert store.get_conversation(ME, conv.id).settings == changed.settings


def test_messages_round_trip_unchanged_and_ordered(store):
    conv = store.create_conversation(ME, "chat", MemorySettings())
    texts = ["Hello <b>there</b>", "'; DROP TABLE messages; --", "emoji 🧠 and\nnewlines\n\n", "x" * 32_000]
    for text in texts:
        add_turn(store, conv.id, text, "reply to " + text[:10])
    page = store.page(ME, conv.id, limit=50)
    assert [m.content for m in page if m.role == "user"] == texts
    assert [m.seq for m in page] == list(range(1, 9))
    assert [m.turn for m in page] == [1, 1, 2, 2, 3, 3, 4, 4]
    conv = store.get_conversation(ME, conv.id)
    assert (conv.message_count, conv.last_turn) == (8, 4)


def test_pages_walk_backwards_without_gaps(store):
    conv = store.create_conversation(ME, "long", MemorySettings())
    store.import_messages(
        ME, conv.id, [NewMessage("user" if i % 2 == 0 else "assistant", f"m{i}", 1, "t") for i in range(120)]
    )
    newest = store.page(ME, conv.id, limit=50)
    assert [m.content for m in newest] == [f"m{i}" for i in range(70, 120)]
    older = store.page(ME, conv.id, limit=50, before_seq=newest[0].seq)
    assert [m.content for m in older] == [f"m{i}" for i in range(20, 70)]
    oldest = store.page(ME, conv.id, limit=50, before_seq=older[0].seq)
    assert [m.content for m in oldest] == [f"m{i}" for i in range(0, 20)]
    with pytest.raises(InvalidInput):
        store.page(ME, conv.id, limit=100_000)


def test_last_turns_reads_only_the_window(store):
    conv = store.create_conversation(ME, "w", MemorySettings())
    for i in range(1, 11):
        add_turn(store, conv.id, f"q{i}", f"a{i}")
    rows = store.last_turns(ME, conv.id, 3, through_turn=10)
    assert [m.content for m in rows] == ["q8", "a8", "q9", "a9", "q10", "a10"]
    assert store.last_turns(ME, conv.id, 0, through_turn=10) == []
    assert [m.content for m in store.last_turns(ME, conv.id, 2, through_turn=5)] == ["q4", "a4", "q5", "a5"]
    assert len(store.last_turns(ME, conv.id, 50, through_turn=10)) == 20


def test_failed_and_partial_attempts_are_kept_not_rewritten(store):
    conv = store.create_conversation(ME, "f", MemorySettings())
    msg = store.add_user_message(ME, conv.id, "question", tokens=1, tokenizer="t")
    store.add_reply(ME, conv.id, msg.turn, "", status="failed", tokens=0, tokenizer="t", error="server down")
    store.add_reply(ME, conv.id, msg.turn, "half an ans", status="partial", tokens=3, tokenizer="t", error="cut")
    store.add_reply(ME, conv.id, msg.turn, "full answer", status="complete", tokens=2, tokenizer="t")
    rows = store.turns_between(ME, conv.id, 1, 1)
    assert [(m.role, m.status, m.content) for m in rows] == [
        ("user", "complete", "question"),
        ("assistant", "failed", ""),
        ("assistant", "partial", "half an ans"),
        ("assistant", "complete", "full answer"),
    ]
    assert rows[1].error == "server down"
    with pytest.raises(InvalidInput):
        store.add_reply(ME, conv.id, 2, "no such turn", status="complete", tokens=1, tokenizer="t")


def test_summaries_are_versioned_and_latest_wins(store):
    conv = store.create_conversation(ME, "s", MemorySettings("summary"))
    assert store.latest_summary(ME, conv.id, "summary") is None
    s1, _ = store.add_summary(ME, conv.id, "summary", "first", from_turn=1, through_turn=1, tokens=1, call=None)
    draft = CallDraft(
        purpose="summary",
        conversation_id=conv.id,
        turn=2,
        memory_type="summary",
        model="m",
        provider="p",
        host="h",
        params={},
        request=(ChatMessage("user", "fold"),),
        reply="second",
        usage=Usage(5, 1, 6),
    )
    s2, call = store.add_summary(ME, conv.id, "summary", "second", from_turn=1, through_turn=2, tokens=1, call=draft)
    assert store.latest_summary(ME, conv.id, "summary") == s2
    assert store.latest_summary(ME, conv.id, "summary_buffer") is None
    assert s2.call_id == call.id and call.reply == "second" and call.usage.total_tokens == 6
    assert s1.id != s2.id


def test_ledger_records_exact_request_and_filters(store):
    conv = store.create_conversation(ME, "l", MemorySettings())
    msg = store.add_user_message(ME, conv.id, "hi", tokens=1, tokenizer="t")
    request = (ChatMessage("system", "sys"), ChatMessage("user", "hi ✓"))
    draft = CallDraft(
        purpose="chat",
        conversation_id=conv.id,
        turn=msg.turn,
        memory_type="window",
        model="m",
        provider="openai",
        host="127.0.0.1:1",
        params={"temperature": 0.5},
        request=request,
        reply="hello",
        finish_reason="stop",
        usage=Usage(9, 2, 11),
        counted_prompt_tokens=10,
        sections={"system": 5, "new_message": 5},
        latency_ms=12.5,
    )
    _, call = store.add_reply(ME, conv.id, msg.turn, "hello", status="complete", tokens=1, tokenizer="t", call=draft)
    assert call.request == request and call.params == {"temperature": 0.5}
    listed = store.list_calls(ME, conversation_id=conv.id)
    assert listed[0].id == call.id and listed[0].sections == {"system": 5, "new_message": 5}
    assert listed[0].usage == Usage(9, 2, 11) and listed[0].latency_ms == 12.5
    assert store.list_calls(ME, conversation_id=conv.id, purpose="summary") == []
    assert store.list_calls(OTHER) == []


def test_delete_cascades_to_messages_summaries_and_calls(store):
    conv = store.create_conversation(ME, "d", MemorySettings())
    keep = store.create_conversation(ME, "keep", MemorySettings())
    add_turn(store, conv.id, "a", "b")
    add_turn(store, keep.id, "c", "d")
    store.add_summary(ME, conv.id, "summary", "x", from_turn=1, through_turn=1, tokens=1, call=None)
    store.record_call(
        ME,
        CallDraft(
            purpose="chat",
            conversation_id=conv.id,
            turn=1,
            memory_type="buffer",
            model="m",
            provider="p",
            host="h",
            params={},
            request=(),
        ),
    )
    store.delete_conversation(ME, conv.id)
    with pytest.raises(NotFound):
        store.get_conversation(ME, conv.id)
    with pytest.raises(NotFound):
        store.page(ME, conv.id)
    assert store.list_calls(ME, conversation_id=conv.id) == []
    assert [c.id for c in store.list_conversations(ME)] == [keep.id]
    assert len(store.page(ME, keep.id)) == 2


def test_another_users_conversation_is_invisible(store):
    conv = store.create_conversation(ME, "private", MemorySettings())
    add_turn(store, conv.id, "secret", "ok")
    assert store.list_conversations(OTHER) == []
    for call in (
        lambda: store.get_conversation(OTHER, conv.id),
        lambda: store.page(OTHER, conv.id),
        lambda: store.last_turns(OTHER, conv.id, 3, through_turn=1),
        lambda: store.turns_between(OTHER, conv.id, 1, 1),
        lambda: store.latest_summary(OTHER, conv.id, "summary"),
        lambda: store.add_user_message(OTHER, conv.id, "intrude", tokens=1, tokenizer="t"),
        lambda: store.add_reply(OTHER, conv.id, 1, "intrude", status="complete", tokens=1, tokenizer="t"),
        lambda: store.rename_conversation(OTHER, conv.id, "mine now"),
        lambda: store.update_settings(OTHER, conv.id, MemorySettings()),
        lambda: store.delete_conversation(OTHER, conv.id),
        lambda: store.add_summary(OTHER, conv.id, "summary", "x", from_turn=1, through_turn=1, tokens=1, call=None),
        lambda: store.import_messages(OTHER, conv.id, [NewMessage("user", "x", 1, "t")]),
    ):
        with pytest.raises(NotFound):
            call()
    assert store.get_conversation(ME, conv.id).title == "private"
    assert [m.content for m in store.page(ME, conv.id)] == ["secret", "ok"]


def test_list_search_is_literal_and_newest_first(store):
    a = store.create_conversation(ME, "Trip to Rome", MemorySettings())
    b = store.create_conversation(ME, "100% sure_thing", MemorySettings())
    add_turn(store, a.id, "newest activity", "ok")
    assert [c.id for c in store.list_conversations(ME)] == [a.id, b.id]
    assert [c.title for c in store.list_conversations(ME, search="rome")] == ["Trip to Rome"]
    assert [c.title for c in store.list_conversations(ME, search="100%")] == ["100% sure_thing"]
    assert store.list_conversations(ME, search="_") == [store.get_conversation(ME, b.id)]


@pytest.mark.parametrize(
    "bad",
    [
        lambda s, c: s.add_user_message(ME, c, "", tokens=0, tokenizer="t"),
        lambda s, c: s.add_user_message(ME, c, "   \n\t", tokens=0, tokenizer="t"),
        lambda s, c: s.add_user_message(ME, c, "nul\x00byte", tokens=1, tokenizer="t"),
        lambda s, c: s.add_user_message(ME, c, "x" * 32_001, tokens=1, tokenizer="t"),
        lambda s, c: s.rename_conversation(ME, c, "   "),
        lambda s, c: s.update_settings(ME, c, MemorySettings("window", window_turns=-1)),
        lambda s, c: s.update_settings(ME, c, MemorySettings("token_window", max_tokens=0)),
        lambda s, c: s.update_settings(ME, c, MemorySettings("telepathy")),
        lambda s, c: s.import_messages(ME, c, [NewMessage("user", "ok", 1, "t"), NewMessage("system", "no", 1, "t")]),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(store, bad):
    conv = store.create_conversation(ME, "guarded", MemorySettings("window", 2, 50))
    add_turn(store, conv.id, "before", "reply")
    before = store.get_conversation(ME, conv.id)
    with pytest.raises(InvalidInput) as info:
        bad(store, conv.id)
    assert str(info.value)  # a sentence, not an empty error
    after = store.get_conversation(ME, conv.id)
    assert (after.title, after.settings, after.message_count) == (before.title, before.settings, before.message_count)
    assert [m.content for m in store.page(ME, conv.id)] == ["before", "reply"]


def test_unknown_conversation_is_not_found(store):
    with pytest.raises(NotFound):
        store.get_conversation(ME, 999_999)


def test_calls_for_a_turn_are_an_indexed_owned_read(store):
    conv = store.create_conversation(ME, "t", MemorySettings())
    msg = store.add_user_message(ME, conv.id, "q", tokens=1, tokenizer="t")
    draft = CallDraft(
        purpose="chat",
        conversation_id=conv.id,
        turn=msg.turn,
        memory_type="window",
        model="m",
        provider="p",
        host="h",
        params={},
        request=(ChatMessage("user", "q"),),
        reply="a",
    )
    store.add_reply(ME, conv.id, msg.turn, "a", status="complete", tokens=1, tokenizer="t", call=draft)
    store.record_call(
        ME,
        CallDraft(
            purpose="summary",
            conversation_id=conv.id,
            turn=msg.turn,
            memory_type="summary",
            model="m",
            provider="p",
            host="h",
            params={},
            request=(),
        ),
    )
    assert [c.purpose for c in store.calls_for_turn(ME, conv.id, 1)] == ["chat", "summary"]
    assert store.calls_for_turn(ME, conv.id, 2) == []
    with pytest.raises(NotFound):
        store.calls_for_turn(OTHER, conv.id, 1)
    from memstore.records import request_hash

    assert store.find_call(ME, request_hash("m", (), {})).purpose == "summary"
    assert store.find_call(OTHER, request_hash("m", (), {})) is None
    assert store.find_call(ME, request_hash("m", (ChatMessage("user", "q"),), {})) is None, (
        "chat calls are never reused"
    )


def test_every_public_store_function_scopes_to_its_user(store):
    """Each function the store offers, called with another user's ids, finds nothing and changes nothing."""
    from memstore.records import request_hash

    conv = store.create_conversation(ME, "mine", MemorySettings("summary"))
    add_turn(store, conv.id, "private question", "private answer")
    store.add_summary(ME, conv.id, "summary", "private summary", from_turn=1, through_turn=1, tokens=1, call=None)
    draft = CallDraft(
        purpose="chat",
        conversation_id=conv.id,
        turn=1,
        memory_type="summary",
        model="m",
        provider="p",
        host="h",
        params={},
        request=(ChatMessage("user", "private question"),),
    )
    store.record_call(ME, draft)
    store.add_turn_vectors(ME, conv.id, "e", [(1, b"\x00" * 8)])
    store.add_entity_versions(ME, conv.id, [("Oslo", "where the user lives")], turn=1, call=None)
    change_id = None
    if hasattr(store, "set_preference"):
        store.set_preference(ME, "secret", "value")
        change_id = store.apply_fact_changes(ME, [("city", "Oslo")], conversation_id=conv.id, turn=1, call_id=None)[
            0
        ].id
    c = conv.id
    first_id = store.page(ME, c)[0].id
    store.conversation_for_source(ME, "langchain:private", title="private", settings=MemorySettings())
    store.set_flag(ME, "tour_done")
    nothing = {  # method name: call with OTHER, and what "nothing" looks like (None means NotFound is raised)
        "create_conversation": None,
        "import_messages": lambda: store.import_messages(OTHER, c, []),
        "import_conversations": None,  # creates only the caller's own conversations
        "find_conversation": (lambda: store.find_conversation(OTHER, source="langchain:private"), None),
        "find_messages": (lambda: store.find_messages(OTHER, containing="private"), []),
        "has_flag": (lambda: store.has_flag(OTHER, "tour_done"), False),
        "set_flag": None,  # writes only the caller's own flag
        "find_sources": (lambda: store.find_sources(OTHER, ["langchain:private"]), {}),
        "conversation_for_source": None,  # creates only the caller's own (test_conversation_for_source_…)
        "get_conversation": lambda: store.get_conversation(OTHER, c),
        "list_conversations": (lambda: store.list_conversations(OTHER), []),
        "rename_conversation": lambda: store.rename_conversation(OTHER, c, "x"),
        "update_settings": lambda: store.update_settings(OTHER, c, MemorySettings()),
        "delete_conversation": lambda: store.delete_conversation(OTHER, c),
        "claim_retry": lambda: store.claim_retry(OTHER, c, 1, hold_s=60),
        "release_retry": (lambda: store.release_retry(OTHER, c, 1), None),
        "add_user_message": lambda: store.add_user_message(OTHER, c, "x", tokens=1, tokenizer="t"),
        "begin_turn": lambda: store.begin_turn(OTHER, c, "x", tokens=1, tokenizer="t"),
        "add_reply": lambda: store.add_reply(OTHER, c, 1, "x", status="complete", tokens=1, tokenizer="t"),
        "last_turns": lambda: store.last_turns(OTHER, c, 3, through_turn=1),
        "turns_between": lambda: store.turns_between(OTHER, c, 1, 1),
        "page": lambda: store.page(OTHER, c),
        "latest_summary": lambda: store.latest_summary(OTHER, c, "summary"),
        "add_summary": lambda: store.add_summary(
            OTHER, c, "summary", "x", from_turn=1, through_turn=1, tokens=1, call=None
        ),
        "record_call": lambda: store.record_call(OTHER, draft),
        "find_call": (lambda: store.find_call(OTHER, request_hash("m", draft.request, {})), None),
        "calls_for_turn": lambda: store.calls_for_turn(OTHER, c, 1),
        "list_calls": (lambda: store.list_calls(OTHER, conversation_id=c), []),
        "list_preferences": (lambda: store.list_preferences(OTHER), []),
        "set_preference": None,
        "replace_preferences": None,  # they write only the caller's own rows
        "delete_preference": lambda: store.delete_preference(OTHER, "secret"),
        "close": None,
        "write_problem": None,  # about the database, not any user's data
        "journal_pending": None,  # about the database file's journal, not any user's data
        "identity": None,  # the database's own id and where it is, not any user's data
        "in_memory": None,  # opens a new, empty store
        "add_turn_vectors": lambda: store.add_turn_vectors(OTHER, c, "e", [(1, b"\x01" * 8)]),
        "vector_watermark": lambda: store.vector_watermark(OTHER, c, "e"),
        "recent_vectors": lambda: store.recent_vectors(
            OTHER, "e", conversation_id=c, before_turn=9, all_conversations=True, limit=10
        ),
        "add_entity_versions": lambda: store.add_entity_versions(OTHER, c, [("Oslo", "x")], turn=1, call=None),
        "list_entities": lambda: store.list_entities(OTHER, c),
        "forget_plan": lambda: store.forget_plan(OTHER, c, first_id),
        "clear_memory": lambda: store.clear_memory(OTHER, c),
        "undo_clear_memory": lambda: store.undo_clear_memory(OTHER, c),
        "forget_message": lambda: store.forget_message(OTHER, c, first_id),
        "user_data": (lambda: store.user_data(OTHER).total, 0),
        "expired": None,  # every user's rows, by age (the retention setting), tested in test_forgetting
        "delete_expired": None,
        "forget_user": (lambda: store.forget_user(OTHER).total, 0),  # another user has nothing here to delete
        "apply_fact_changes": None,  # writes only the caller's own rows
        "undo_preference_change": lambda: store.undo_preference_change(OTHER, change_id),
        "preference_history": (lambda: store.preference_history(OTHER), []),
    }
    public = {
        name
        for name in dir(store)
        if not name.startswith("_") and callable(getattr(store, name)) and name not in ("open",)
    }
    assert public <= set(nothing), f"add these to the isolation test: {public - set(nothing)}"
    for name in sorted(public):
        check = nothing[name]
        if check is None:
            continue
        if isinstance(check, tuple):
            assert check[0]() == check[1], name
        else:
            with pytest.raises(NotFound):
                check()
    if hasattr(store, "replace_preferences"):
        store.replace_preferences(OTHER, [("secret", "theirs", True)])
        assert [(p.key, p.value) for p in store.list_preferences(ME)] == [("city", "Oslo"), ("secret", "value")]
    assert [m.content for m in store.page(ME, c)] == ["private question", "private answer"]
    assert store.latest_summary(ME, c, "summary").text == "private summary"
    assert store.get_conversation(ME, c).title == "mine"
    mine = store.recent_vectors(ME, "e", conversation_id=c, before_turn=9, all_conversations=True, limit=10)
    assert list(mine.turns) == [1] and mine.vectors.tobytes() == b"\x00" * 8
    assert [(e.name, e.summary) for e in store.list_entities(ME, c)] == [("Oslo", "where the user lives")]


def test_begin_turn_returns_the_conversation_as_it_stands_after_the_message(store):
    conv = store.create_conversation(ME, "b", MemorySettings("window", window_turns=2))
    add_turn(store, conv.id, "first", "reply")
    message, after = store.begin_turn(ME, conv.id, "second question", tokens=3, tokenizer="t")
    assert (message.turn, message.role, message.content) == (2, "user", "second question")
    assert after == store.get_conversation(ME, conv.id)
    assert (after.last_turn, after.message_count, after.settings.window_turns) == (2, 3, 2)
    assert after.token_total == conv.token_total + len("first") // 4 + len("reply") // 4 + 3


def test_one_retry_of_a_turn_at_a_time(store):
    conv = store.create_conversation(ME, "r", MemorySettings())
    store.begin_turn(ME, conv.id, "question", tokens=1, tokenizer="t")
    assert store.claim_retry(ME, conv.id, 1, hold_s=60)
    assert not store.claim_retry(ME, conv.id, 1, hold_s=60)  # a second tab is refused
    store.release_retry(OTHER, conv.id, 1)  # another user cannot free it
    assert not store.claim_retry(ME, conv.id, 1, hold_s=60)
    store.release_retry(ME, conv.id, 1)
    assert store.claim_retry(ME, conv.id, 1, hold_s=0)  # a claim that has run out does not block
    assert store.claim_retry(ME, conv.id, 1, hold_s=60)


def sqlite_steps(store, fn) -> int:
    """SQLite virtual-machine steps a call takes: a count of the rows it reads, give or take a constant."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    raw = store.engine.raw_connection()  # the memory engine's one connection, or a pooled file connection
    connection = raw.dbapi_connection
    connection.set_progress_handler(count, 1)
    try:
        fn()
    finally:
        connection.set_progress_handler(None, 1)
        raw.close()
    return steps


def test_the_newest_call_of_a_kind_reads_a_bounded_number_of_rows():
    """No summary call yet: finding that out must not read the whole ledger (it did: 2.2 s at 100,000 messages)."""
    store = SqlStore.in_memory()  # one connection, so the progress handler sees every statement
    conv = store.create_conversation(ME, "big", MemorySettings("summary"))
    draft = CallDraft(
        purpose="chat",
        conversation_id=conv.id,
        turn=1,
        memory_type="summary",
        model="m",
        provider="p",
        host="h",
        params={},
        request=(ChatMessage("user", "q"),),
    )

    def newest_summary_steps() -> int:
        return sqlite_steps(store, lambda: store.list_calls(ME, conversation_id=conv.id, purpose="summary", limit=1))

    def newest_summary_of_user_steps() -> int:
        return sqlite_steps(store, lambda: store.list_calls(ME, purpose="summary", limit=1))

    for _ in range(20):
        store.record_call(ME, draft)
    small, small_user = newest_summary_steps(), newest_summary_of_user_steps()
    for _ in range(2_000):
        store.record_call(ME, draft)
    assert newest_summary_steps() < small + 50 and newest_summary_of_user_steps() < small_user + 50
    store.close()


def _imported(title, pairs, source=None):
    from memstore.store_api import ImportedConversation, NewMessage

    def messages():
        for question, answer in pairs:
            yield NewMessage("user", question, 2, "t")
            if answer is not None:
                yield NewMessage("assistant", answer, 3, "t")

    return ImportedConversation(title, MemorySettings("buffer"), messages(), source=source)


def test_import_conversations_creates_all_with_turns_counted(store):
    created = store.import_conversations(
        ME, [_imported("one", [("q1", "a1"), ("q2", "a2")], "x:1"), _imported("two", [("q", None)], "x:2")]
    )
    assert [(c.title, c.message_count, c.last_turn, c.token_total) for c in created] == [
        ("one", 4, 2, 10),
        ("two", 1, 1, 2),
    ]
    assert [(m.turn, m.role, m.content) for m in store.page(ME, created[0].id)] == [
        (1, "user", "q1"),
        (1, "assistant", "a1"),
        (2, "user", "q2"),
        (2, "assistant", "a2"),
    ]
    assert store.find_conversation(ME, source="x:2").id == created[1].id
    assert store.find_conversation(ME, source="x:3") is None


def test_import_conversations_is_all_or_nothing(store):
    """A bad message in the last conversation leaves no trace of the ones before it."""
    before = store.list_conversations(ME)
    with pytest.raises(InvalidInput):
        store.import_conversations(
            ME, [_imported("good", [("q", "a")] * 3, "y:1"), _imported("bad", [("q", "a"), ("", "a")], "y:2")]
        )
    assert store.list_conversations(ME) == before
    assert store.find_conversation(ME, source="y:1") is None


def test_a_source_is_imported_once(store):
    store.import_conversations(ME, [_imported("first", [("q", "a")], "z:1")])
    with pytest.raises(InvalidInput, match="imported before"):
        store.import_conversations(ME, [_imported("new", [("q", "a")], "z:2"), _imported("again", [], "z:1")])
    assert [c.title for c in store.list_conversations(ME)] == ["first"]


def test_conversation_for_source_returns_the_same_conversation(store):
    first = store.conversation_for_source(ME, "langchain:abc", title="abc", settings=MemorySettings())
    again = store.conversation_for_source(ME, "langchain:abc", title="other title", settings=MemorySettings())
    assert again.id == first.id and again.title == "abc"
    assert len(store.list_conversations(ME)) == 1
    theirs = store.conversation_for_source(OTHER, "langchain:abc", title="abc", settings=MemorySettings())
    assert theirs.id != first.id and store.list_conversations(OTHER) == [theirs]


def test_find_sources_and_skip_existing(store):
    first = store.import_conversations(ME, [_imported("first", [("q", "a")], "s:1")])[0]
    assert store.find_sources(ME, ["s:1", "s:2"]) == {"s:1": first.id}
    created = store.import_conversations(
        ME, [_imported("again", [("q", "a")], "s:1"), _imported("new", [("q", "a")], "s:2")], skip_existing=True
    )
    assert [c.title for c in created] == ["new"]
    assert sorted(c.title for c in store.list_conversations(ME)) == ["first", "new"]


def test_flags_are_per_user_and_set_once(sql_store):
    assert not sql_store.has_flag(ME, "tour_done")
    sql_store.set_flag(ME, "tour_done")
    sql_store.set_flag(ME, "tour_done")
    assert sql_store.has_flag(ME, "tour_done") and not sql_store.has_flag(OTHER, "tour_done")
    with pytest.raises(InvalidInput):
        sql_store.set_flag(ME, "Tour; DROP TABLE x")
    sql_store.forget_user(ME)
    assert not sql_store.has_flag(ME, "tour_done")


def test_find_messages_by_text_role_and_status(store):
    conv = store.create_conversation(ME, "c", MemorySettings())
    add_turn(store, conv.id, "My name is Ada_100%", "Hello Ada")
    add_turn(store, conv.id, "unrelated", "ok", status="failed")
    assert [m.content for m in store.find_messages(ME, containing="NAME IS ada_100%", role="user")] == [
        "My name is Ada_100%"
    ]
    assert store.find_messages(ME, containing="ada_1000") == []  # % and _ are matched literally
    assert [m.content for m in store.find_messages(ME, status="failed")] == ["ok"]
