"""Long-term memory: recall by meaning, automatic facts with history and undo, entity notes, the facts budget."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from fakes import FakeClient
from memstore import Chat, FactSet, MemorySettings, SqlStore
from memstore.embeddings import WordLlamaEmbedder, dequantize, to_bytes, unit_rows
from memstore.errors import InvalidInput, NotFound
from memstore.extraction import parse_json_object
from memstore.facts import Fact, facts_lines, select_facts
from memstore.memory import MemoryView
from memstore.payload import RECALL_HEADER, build_payload
from memstore.records import Preference
from memstore.tokens import counter_for_model

ME = "me"
RECALL_SET = json.loads((Path(__file__).parent / "data" / "recall_set.json").read_text())


@pytest.fixture(scope="module")
def wordllama():
    return WordLlamaEmbedder()


def seed_recall_set(store, chat):
    """The bundled conversations, stored as real turns; returns their ids in file order."""
    ids = []
    for conv in RECALL_SET["conversations"]:
        created = chat.new_conversation(
            conv["title"],
            MemorySettings("retrieval", window_turns=0, recall_turns=3, recall_min_score=-1.0, recall_scope="all"),
        )
        for user, reply in conv["turns"]:
            chat.replay_turn(created.id, user, reply, FactSet())
        chat.long_term(created.id).index(len(conv["turns"]))
        ids.append(created.id)
    return ids


def test_recall_finds_the_right_turn_in_its_top_three_for_eight_of_ten_questions(sql_store, wordllama):
    chat = Chat(sql_store, FakeClient(), user_id=ME, embedder=wordllama)
    ids = seed_recall_set(sql_store, chat)
    asking = ids[0]
    hits, misses = 0, []
    for q in RECALL_SET["questions"]:
        report = chat.long_term(asking, q["question"]).recall(
            sql_store.get_conversation(ME, asking).settings, before_turn=10_000
        )
        found = {(r.conversation_id, r.turn.number) for r in report.recalled}
        if (ids[q["conversation"]], q["turn"]) in found:
            hits += 1
        else:
            misses.append(q["question"])
    assert hits >= 8, f"only {hits}/10; missed: {misses}"


def recalling_chat(store, embedder, conversation: int, **settings):
    """A retrieval chat holding one bundled conversation, ready for its next message."""
    chat = Chat(store, FakeClient(), user_id=ME, embedder=embedder)
    conv = chat.new_conversation("r", MemorySettings("retrieval", **settings))
    for user, reply in RECALL_SET["conversations"][conversation]["turns"]:
        chat.replay_turn(conv.id, user, reply, FactSet())
    return chat, conv


def test_a_retrieval_turn_sends_the_recalled_turn_and_logs_why(store, wordllama):
    chat, conv = recalling_chat(store, wordllama, 0, window_turns=1, recall_turns=1, recall_min_score=0.1)
    run = chat.send(conv.id, "What breed is my dog?", FactSet())
    result = run.run()
    recall = run.payload.view.recall
    assert [r.turn.number for r in recall.recalled] == [2]
    assert "border collie" in run.payload.messages[0].content and RECALL_HEADER in run.payload.messages[0].content
    assert run.payload.section("recalled").tokens > 0 and run.payload.section("recalled").items == 1
    assert "#1 most similar" in recall.recalled[0].why(recall.min_score)
    logged = result.call.details["recall"]
    assert logged["recalled"][0]["turn"] == 2 and logged["searched"] == 7  # turn 8 is in the window: not searched
    assert store.calls_for_turn(ME, conv.id, 9)[0].details["recall"]["recalled"][0]["turn"] == 2


def test_the_minimum_score_leaves_out_weak_matches_and_says_which_missed(store, wordllama):
    chat, conv = recalling_chat(store, wordllama, 1, window_turns=0, recall_turns=2, recall_min_score=0.99)
    run = chat.send(conv.id, "Which airport am I flying out of?", FactSet())
    assert run.payload.view.recall.recalled == ()
    assert run.payload.view.recall.missed and run.payload.section("recalled").tokens == 0


def scanned(scan):
    return [(int(c), int(t)) for c, t in zip(scan.conversation_ids, scan.turns)]


def test_turn_vectors_are_stored_once_and_read_newest_first_within_scope(store):
    a = store.create_conversation(ME, "a", MemorySettings())
    b = store.create_conversation(ME, "b", MemorySettings())
    vec = [to_bytes(np.eye(4, dtype=np.float32)[i]) for i in range(4)]
    assert store.add_turn_vectors(ME, a.id, "e", [(1, vec[0]), (2, vec[1])]) == 2
    assert store.add_turn_vectors(ME, a.id, "e", [(2, vec[3]), (3, vec[2])]) == 1  # turn 2 is not re-embedded
    store.add_turn_vectors(ME, b.id, "e", [(1, vec[3])])
    store.add_turn_vectors(ME, a.id, "other-model", [(4, vec[3])])
    assert store.vector_watermark(ME, a.id, "e") == 3 and store.vector_watermark(ME, b.id, "nothing") == 0
    own = store.recent_vectors(ME, "e", conversation_id=a.id, before_turn=3, all_conversations=False, limit=10)
    assert scanned(own) == [(a.id, 2), (a.id, 1)]
    assert np.allclose(dequantize(own.vectors), np.eye(4)[[1, 0]], atol=1e-2)
    both = store.recent_vectors(ME, "e", conversation_id=a.id, before_turn=3, all_conversations=True, limit=10)
    assert scanned(both) == [(a.id, 2), (a.id, 1), (b.id, 1)]
    assert len(store.recent_vectors(ME, "e", conversation_id=a.id, before_turn=9, all_conversations=True, limit=2)) == 2
    with pytest.raises(InvalidInput):
        store.recent_vectors(ME, "e", conversation_id=a.id, before_turn=9, all_conversations=False, limit=0)
    store.delete_conversation(ME, b.id)
    assert {
        c
        for c, _ in scanned(
            store.recent_vectors(ME, "e", conversation_id=a.id, before_turn=9, all_conversations=True, limit=10)
        )
    } == {a.id}


def test_many_turn_vectors_read_back_whole_in_order_across_sealed_blocks(store):
    conv = store.create_conversation(ME, "many", MemorySettings())
    rng = np.random.default_rng(7)
    matrix = unit_rows(rng.standard_normal((300, 8)))
    store.add_turn_vectors(ME, conv.id, "e", [(t, to_bytes(matrix[t - 1])) for t in range(1, 201)])
    for t in range(201, 301):  # then one at a time, as turns happen
        store.add_turn_vectors(ME, conv.id, "e", [(t, to_bytes(matrix[t - 1]))])
    assert store.add_turn_vectors(ME, conv.id, "e", [(5, to_bytes(matrix[0]))]) == 0  # sealed long ago: skipped
    scan = store.recent_vectors(ME, "e", conversation_id=conv.id, before_turn=290, all_conversations=False, limit=1_000)
    turns = [t for _, t in scanned(scan)]
    assert turns == list(range(289, 0, -1))  # each turn once, newest first, across blocks and loose rows
    assert store.vector_watermark(ME, conv.id, "e") == 300
    first = turns.index(100)
    assert np.allclose(dequantize(scan.vectors[first]), matrix[99], atol=1e-2)
    window = store.recent_vectors(ME, "e", conversation_id=conv.id, before_turn=301, all_conversations=False, limit=50)
    assert [t for _, t in scanned(window)] == list(range(300, 250, -1))


# -- automatic facts -------------------------------------------------------------------------------


def facts_chat(sql_store, *replies):
    """A chat whose model answers the turn, then the facts extraction with each scripted reply in turn."""
    script = []
    for reply in replies:
        script += ["Noted.", reply]
    return Chat(sql_store, FakeClient(script), user_id=ME, preferences=sql_store)


def test_extracted_facts_are_added_changed_with_history_and_undone(sql_store):
    chat = facts_chat(
        sql_store,
        '{"name": "Ada", "home_city": "Oslo"}',
        'Sure: {"home_city": "Bergen"}',
        '{"home_city": "Bergen", "name": "Ada"}',
    )
    conv = chat.new_conversation()
    chat.send(conv.id, "I'm Ada and I live in Oslo.", FactSet()).run()
    first = chat.after_turn(conv.id, extract=True).facts
    assert [(c.key, c.old_value, c.new_value, c.kind) for c in first.changes] == [
        ("name", None, "Ada", "added"),
        ("home_city", None, "Oslo", "added"),
    ]
    assert first.call.purpose == "facts" and sql_store.list_calls(ME, conversation_id=conv.id, purpose="facts")

    chat.send(conv.id, "I moved to Bergen last week.", FactSet()).run()
    moved = chat.after_turn(conv.id, extract=True).facts
    assert [(c.key, c.old_value, c.new_value, c.kind, c.turn) for c in moved.changes] == [
        ("home_city", "Oslo", "Bergen", "changed", 2)
    ]
    assert {p.key: p.value for p in sql_store.list_preferences(ME)} == {"name": "Ada", "home_city": "Bergen"}
    history = sql_store.preference_history(ME, key="home_city")
    assert [(h.old_value, h.new_value, h.turn) for h in history] == [("Oslo", "Bergen", 2), (None, "Oslo", 1)]

    chat.send(conv.id, "Still Ada, still in Bergen.", FactSet()).run()
    assert chat.after_turn(conv.id, extract=True).facts.changes == ()  # nothing new: no notice

    undo = sql_store.undo_preference_change(ME, moved.changes[0].id)
    assert (undo.kind, undo.old_value, undo.new_value, undo.undoes) == ("undone", "Bergen", "Oslo", moved.changes[0].id)
    assert {p.key: p.value for p in sql_store.list_preferences(ME)}["home_city"] == "Oslo"
    sql_store.undo_preference_change(ME, first.changes[0].id)  # undoing an addition removes the key
    assert "name" not in {p.key for p in sql_store.list_preferences(ME)}
    with pytest.raises(InvalidInput):  # the value moved on since (it was undone): a stale undo does not clobber it
        sql_store.undo_preference_change(ME, moved.changes[0].id)
    with pytest.raises(NotFound):
        sql_store.undo_preference_change("someone else", moved.changes[0].id)


def test_only_the_newest_change_to_a_key_can_be_undone_and_hand_edits_count(sql_store):
    added = sql_store.apply_fact_changes(ME, [("home_city", "Oslo")], conversation_id=None, turn=1, call_id=None)[0]
    moved = sql_store.apply_fact_changes(ME, [("home_city", "Bergen")], conversation_id=None, turn=2, call_id=None)[0]
    back = sql_store.apply_fact_changes(ME, [("home_city", "Oslo")], conversation_id=None, turn=3, call_id=None)[0]
    for stale in (added, moved):  # the value is "Oslo" again, but undoing turn 1's addition would delete it
        with pytest.raises(InvalidInput):
            sql_store.undo_preference_change(ME, stale.id)
    sql_store.set_preference(ME, "home_city", "Trondheim")  # a hand edit joins the history...
    with pytest.raises(InvalidInput):  # ...so the automatic change before it can no longer be undone over it
        sql_store.undo_preference_change(ME, back.id)
    assert [(h.source, h.new_value) for h in sql_store.preference_history(ME)][:2] == [
        ("user", "Trondheim"),
        ("auto", "Oslo"),
    ]
    sql_store.delete_preference(ME, "home_city")
    assert sql_store.preference_history(ME)[0].kind == "removed"


def test_a_bad_extraction_reply_changes_nothing_and_is_still_in_the_ledger(sql_store):
    chat = facts_chat(sql_store, "I could not find any facts, sorry.", '{"": "x", "name": "Ada"}')
    conv = chat.new_conversation()
    chat.send(conv.id, "hello", FactSet()).run()
    update = chat.after_turn(conv.id, extract=True).facts
    assert update.error and update.changes == () and sql_store.list_preferences(ME) == []
    assert sql_store.list_calls(ME, purpose="facts")[0].reply == "I could not find any facts, sorry."
    chat.send(conv.id, "I'm Ada", FactSet()).run()
    update = chat.after_turn(conv.id, extract=True).facts
    assert [c.key for c in update.changes] == ["name"] and update.skipped == ("",)


def test_facts_are_not_extracted_when_switched_off_or_in_a_temporary_chat(sql_store):
    chat = facts_chat(sql_store, '{"name": "Ada"}')
    conv = chat.new_conversation()
    chat.send(conv.id, "I'm Ada", FactSet()).run()
    assert chat.after_turn(conv.id, extract=False).facts is None
    temporary = Chat(SqlStore.in_memory(), FakeClient(["Hi", '{"name": "Ada"}']), user_id=ME, preferences=sql_store)
    tconv = temporary.new_conversation()
    temporary.send(tconv.id, "I'm Ada", FactSet()).run()
    assert temporary.after_turn(tconv.id, extract=True).facts is None and sql_store.list_preferences(ME) == []


def test_json_is_found_inside_prose_and_code_fences():
    assert parse_json_object('Here you go:\n```json\n{"a": {"b": 1}}\n```') == {"a": {"b": 1}}
    assert parse_json_object('{not json} then {"k": "v"}') == {"k": "v"}
    with pytest.raises(InvalidInput):
        parse_json_object("[1, 2]")


# -- entity memory -------------------------------------------------------------------------------


def test_entity_notes_are_versioned_and_injected_only_when_named(store):
    client = FakeClient(
        [
            "Nice!",
            '{"Biscuit": "The user\'s border collie."}',
            "Fun!",
            '{"Biscuit": "The user\'s border collie, who loves frisbee.", "Lisbon": "Where the user\'s sister lives."}',
            "Ok.",
        ]
    )
    chat = Chat(store, client, user_id=ME)
    conv = chat.new_conversation("e", MemorySettings("entity", window_turns=0))
    chat.send(conv.id, "My dog Biscuit is a border collie.", FactSet()).run()
    first = chat.after_turn(conv.id).entities
    assert [(e.name, e.versions) for e in first.entities] == [("Biscuit", 1)]
    chat.send(conv.id, "Biscuit loves frisbee; my sister lives in Lisbon.", FactSet()).run()
    chat.after_turn(conv.id)
    known = {e.name: e for e in store.list_entities(ME, conv.id)}
    assert known["Biscuit"].versions == 2 and "frisbee" in known["Biscuit"].summary and known["Lisbon"].turn == 2
    run = chat.send(conv.id, "What tricks could biscuit learn?", FactSet())
    assert [e.name for e in run.payload.view.entities.injected] == ["Biscuit"]  # named (any case); Lisbon is not
    assert "frisbee" in run.payload.messages[0].content and "Lisbon" not in run.payload.messages[0].content
    assert run.payload.section("entities").items == 1
    assert run.run().call.details["entities"]["injected"][0]["name"] == "Biscuit"
    assert [c.purpose for c in store.calls_for_turn(ME, conv.id, 2)] == ["chat", "entities"]


# -- the facts budget ----------------------------------------------------------------------------


def prefs(*pairs):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [Preference(k, v, True, start + timedelta(days=i)) for i, (k, v) in enumerate(pairs)]


@pytest.mark.parametrize("budget", [0, 1])
def test_a_tiny_budget_leaves_every_fact_out_and_says_why(budget):
    facts = select_facts(
        {"mood": "good"}, prefs(("name", "Ada")), counter=counter_for_model("gpt-4o-mini"), budget_tokens=budget
    )
    assert facts.injected == () and facts.used_tokens == 0
    assert [(f.key, "budget" in why) for f, why in facts.left_out] == [("mood", True), ("name", True)]


def test_the_budget_keeps_the_newest_facts_and_drops_the_oldest_at_the_exact_edge():
    counter = counter_for_model("gpt-4o-mini")
    items = prefs(("oldest", "a"), ("middle", "b"), ("newest", "c"))
    facts = {p.key: Fact("preference", p.key, p.value) for p in items}
    two = counter.count(facts_lines([facts["middle"], facts["newest"]]))  # exactly what the prompt would carry
    fits = select_facts({}, items, counter=counter, budget_tokens=two)
    assert [f.key for f in fits.injected] == ["middle", "newest"] and fits.used_tokens == two
    assert [f.key for f, _ in fits.left_out] == ["oldest"]
    short = select_facts({}, items, counter=counter, budget_tokens=two - 1)
    assert [f.key for f in short.injected] == ["newest"]
    assert short.used_tokens == counter.count(facts_lines([facts["newest"]])) <= two - 1
    everything = select_facts({}, items, counter=counter, budget_tokens=10_000)
    assert len(everything.injected) == 3 and everything.left_out == ()
    with pytest.raises(InvalidInput):
        select_facts({}, items, counter=counter, budget_tokens=-1)


def test_the_facts_meter_matches_the_prompts_facts_section():
    counter = counter_for_model("gpt-4o-mini")
    facts = select_facts(
        {"mood": "curious"}, prefs(("name", "Ada"), ("home_city", "Oslo")), counter=counter, budget_tokens=500
    )
    payload = build_payload(MemorySettings(), MemoryView("none"), facts, "hi", counter, context_tokens=8_192)
    assert payload.section("facts").tokens == facts.used_tokens > 0


def test_an_openai_compatible_embeddings_endpoint_drives_recall(store, fake_server):
    from memstore.embeddings import OpenAIEmbedder

    embedder = OpenAIEmbedder("test-embed", api_key="k", base_url=fake_server.base_url)
    chat, conv = recalling_chat(store, embedder, 0, window_turns=0, recall_turns=1, recall_min_score=0.2)
    run = chat.send(conv.id, "Tell me about my dog Biscuit the border collie", FactSet())
    assert [r.turn.number for r in run.payload.view.recall.recalled] == [2]
    assert embedder.name.startswith("openai:test-embed@") and fake_server.embedding_requests
    assert store.vector_watermark(ME, conv.id, embedder.name) == 8  # every earlier turn embedded, once


def test_an_unreachable_embeddings_endpoint_leaves_the_turn_working(store):
    from memstore.embeddings import OpenAIEmbedder

    embedder = OpenAIEmbedder("test-embed", api_key="k", base_url="http://127.0.0.1:9/v1", timeout_s=2)
    chat = Chat(store, FakeClient(), user_id=ME, embedder=embedder)
    conv = chat.new_conversation("o", MemorySettings("retrieval", window_turns=1))
    chat.replay_turn(conv.id, "first", "reply", FactSet())
    run = chat.send(conv.id, "second", FactSet())
    assert run.run().ok and run.payload.view.recall.recalled == ()
    assert any("could not be indexed" in n or "Recall skipped" in n for n in run.payload.view.notes)
