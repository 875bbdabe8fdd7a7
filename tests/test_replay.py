"""Replay, fact survival and per-turn diffs over every memory type, at the edges."""

from __future__ import annotations

import pytest

from fakes import FakeClient
from memstore import MEMORY_TYPES, Chat, FactSet, MemorySettings, SqlStore
from memstore.replay import ScriptTurn, diff_frames, fact_survival, mentions, replay, word_diff

SCRIPT = [
    ScriptTurn("My name is Alice.", "Nice to meet you, Alice."),
    ScriptTurn("I love green tea.", "Green tea is lovely."),
    ScriptTurn("I live in Oslo.", "Oslo is a beautiful city."),
    ScriptTurn("I work as a nurse.", "Thank you for your work."),
    ScriptTurn("My cat is called Miso.", "Miso is a cute name."),
    ScriptTurn("What is my name?", "Your name is Alice."),
]
ALL = [MemorySettings(name, window_turns=2, max_tokens=40) for name in MEMORY_TYPES]


def by_type(results):
    return {r.memory_type: r for r in results}


@pytest.mark.parametrize("settings", ALL, ids=lambda s: s.memory_type)
def test_replay_sends_exactly_what_a_live_chat_would(settings):
    echo_script = [ScriptTurn(t.user, f"echo: {t.user}") for t in SCRIPT]  # what the live fake model answers
    results = replay(echo_script, [settings], FakeClient(), user_id="u")
    live = Chat(SqlStore.in_memory(), FakeClient(), user_id="u")
    conv = live.new_conversation("live", settings)
    for frame, turn in zip(results[0].frames, echo_script):
        run = live.send(conv.id, turn.user, FactSet())
        run.run()
        live.after_turn(conv.id)
        assert frame.payload.messages == run.payload.messages
        assert frame.payload.sections == run.payload.sections
    assert [f.turn for f in results[0].frames] == list(range(1, 7))


def test_replay_never_calls_the_chat_model_and_summaries_are_counted():
    client = FakeClient()
    results = by_type(replay(SCRIPT, ALL, client, user_id="u"))
    memory_calls = ("You keep a running summary", "You keep short notes")  # summaries; entity memory's notes
    assert all(r[0].content.startswith(memory_calls) for r in client.requests), "the chat model is never called"
    assert results["entity"].summary_calls == 6
    assert results["summary"].summary_calls == 6 and results["summary"].summary_tokens > 0
    assert results["window"].summary_calls == 0 and results["buffer"].summary_tokens == 0
    assert results["buffer"].prompt_tokens > results["window"].prompt_tokens > results["none"].prompt_tokens


def test_fact_survival_per_type():
    results = replay(SCRIPT, ALL + [MemorySettings("window", window_turns=0)], FakeClient(), user_id="u")
    survival = fact_survival(results, fact_turn=1, needle="Alice")
    got = {(s.memory_type, i): s for i, s in enumerate(survival)}
    by_name = {name: s for (name, i), s in got.items() if i < len(ALL)}
    assert by_name["buffer"].status == "kept" and by_name["buffer"].last_verbatim_turn == 6
    assert (by_name["window"].status, by_name["window"].last_verbatim_turn, by_name["window"].lost_at_turn) == (
        "evicted",
        3,
        4,
    )  # k=2: turn 1 is sent at turns 2 and 3, gone from turn 4
    assert by_name["none"].status == "never_sent" and by_name["none"].lost_at_turn == 2
    assert by_name["summary"].status == "folded" and by_name["summary"].summary_mentions is True
    assert by_name["summary_buffer"].status == "folded"
    forgetful = replay(SCRIPT, [MemorySettings("summary")], FakeClient(["The user likes tea."] * 6), user_id="u")
    lost = fact_survival(forgetful, fact_turn=1, needle="Alice")[0]
    assert (lost.status, lost.summary_mentions) == ("folded", False)  # folded, but the summary dropped it
    k0 = survival[-1]
    assert (k0.memory_type, k0.status, k0.last_verbatim_turn) == ("window", "never_sent", None)


def test_a_token_limit_smaller_than_one_message_sends_no_history():
    long_script = [ScriptTurn("word " * 50, "reply " * 50) for _ in range(3)]
    results = replay(long_script, [MemorySettings("token_window", max_tokens=10)], FakeClient(), user_id="u")
    assert all(f.sent_turns == () for f in results[0].frames)
    assert fact_survival(results, 1, "word")[0].status == "never_sent"


def test_diff_shows_turns_entering_and_leaving_and_the_summary_change():
    results = by_type(replay(SCRIPT, ALL, FakeClient(), user_id="u"))
    window = results["window"].frames
    d4 = diff_frames(window[2], window[3])
    assert (d4.entered, d4.left) == ((3,), (1,))
    assert diff_frames(None, window[0]).entered == ()
    summary = results["summary"].frames
    d = diff_frames(summary[1], summary[2])
    assert d.summary_changed and any(op == "insert" for op, _ in d.summary_ops)
    assert word_diff("a b c", "a x c") == (("equal", "a"), ("delete", "b"), ("insert", "x"), ("equal", "c"))


def test_facts_and_mentions():
    from memstore import Preference, select_facts
    from memstore.schema import utcnow

    facts = select_facts({"mood": "calm"}, [Preference("name", "Alice", True, utcnow())])
    results = replay(SCRIPT[:2], [MemorySettings("none")], FakeClient(), user_id="u", facts=facts)
    assert "- name: Alice" in results[0].frames[1].payload.messages[0].content
    assert mentions("The user's name is Alice; she likes tea.", "My name is Alice")
    assert not mentions("The user likes tea.", "Alice")


def test_replay_reuses_summaries_from_the_ledger(tmp_path):
    cache = SqlStore.open(f"sqlite:///{tmp_path / 'cache.db'}")
    client = FakeClient()
    settings = [MemorySettings("summary")]
    first = replay(SCRIPT, settings, client, user_id="u", cache=cache)
    calls_after_first = len(client.requests)
    assert calls_after_first == 6 and len(cache.list_calls("u", purpose="summary")) == 6
    progress = []
    second = replay(SCRIPT, settings, client, user_id="u", cache=cache, on_progress=lambda d, t: progress.append(d))
    assert len(client.requests) == calls_after_first  # every summary came from the ledger
    assert sum(f.cached_summaries for f in second[0].frames) == 6
    assert [f.payload.messages for f in second[0].frames] == [f.payload.messages for f in first[0].frames]
    assert progress == list(range(1, 7))
    assert replay(SCRIPT, settings, client, user_id="someone else", cache=cache) and len(client.requests) == 12
    cache.close()


def test_a_replay_exports_as_json_and_markdown_and_imports_back():
    import json

    from memstore import InvalidInput
    from memstore.replay import export_replay, parse_replay_file, replay_markdown

    results = replay(SCRIPT, ALL, FakeClient(), user_id="u")
    exported = export_replay("Names", SCRIPT, results)
    window = next(t for t in exported["types"] if t["settings"]["memory_type"] == "window")
    assert window["frames"][3]["sent_turns"] == [2, 3] and window["frames"][3]["diff"]["left"] == [1]
    assert window["frames"][3]["tokens"] == sum(window["frames"][3]["sections"].values())
    summary = next(t for t in exported["types"] if t["settings"]["memory_type"] == "summary")
    assert summary["frames"][2]["summary"]["through_turn"] == 2 and summary["frames"][2]["summary_calls"]
    markdown = replay_markdown(exported)
    assert "### Turn 4" in markdown and "stopped sending turns 1" in markdown
    title, script, settings = parse_replay_file(json.dumps(exported).encode())
    assert (title, script, settings) == ("Names", SCRIPT, [r.settings for r in results])
    again = replay(script, settings, FakeClient(), user_id="u")
    assert [f.payload.messages for f in again[2].frames] == [f.payload.messages for f in results[2].frames]
    for bad in (
        b"not json",
        json.dumps({"format": "other"}).encode(),
        json.dumps({**exported, "types": [{"settings": {"memory_type": "telepathy"}}]}).encode(),
    ):
        with pytest.raises(InvalidInput):
            parse_replay_file(bad)


def test_fork_copies_turns_up_to_n_and_branches_compare(store):
    from memstore.transfer import compare_branches, fork_conversation

    chat = Chat(store, FakeClient(), user_id="u")
    conv = chat.new_conversation("Original", MemorySettings("buffer"))
    for turn in SCRIPT[:4]:
        chat.send(conv.id, turn.user, FactSet()).run()
    fork = fork_conversation(store, "u", conv.id, 2, MemorySettings("window", window_turns=1))
    assert fork.title == "Original (fork at turn 2, window)" and fork.last_turn == 2
    assert [m.content for m in store.page("u", fork.id)] == [m.content for m in store.page("u", conv.id)][:4]
    assert store.get_conversation("u", conv.id).message_count == 8  # the original is untouched
    chat.send(fork.id, "Branch question", FactSet()).run()
    rows = compare_branches(store, "u", conv.id, fork.id)
    assert [r.turn for r in rows] == [1, 2, 3, 4]
    assert rows[2].a_reply == "echo: I live in Oslo." and rows[2].b_reply == "echo: Branch question"
    assert rows[2].b_tokens < rows[2].a_tokens  # the window branch sends less than the buffer
    assert rows[0].b_tokens is None and rows[3].b_tokens is None
    from memstore import InvalidInput, NotFound

    with pytest.raises(InvalidInput):
        fork_conversation(store, "u", conv.id, 9, MemorySettings())
    with pytest.raises(NotFound):
        fork_conversation(store, "intruder", conv.id, 1, MemorySettings())


def test_pinned_preferences_reach_every_type_and_costs_accumulate():
    from memstore import Preference, select_facts
    from memstore.costs import Price
    from memstore.replay import preference_survival, running_cost
    from memstore.schema import utcnow

    facts = select_facts({}, [Preference("name", "Alice", True, utcnow())])
    results = replay(SCRIPT, ALL, FakeClient(), user_id="u", facts=facts)
    assert {s.status for s in preference_survival(results, "name")} == {"kept"}
    assert {s.status for s in preference_survival(results, "missing")} == {"never_sent"}
    buffer = next(r for r in results if r.memory_type == "buffer")
    costs = running_cost(buffer, Price(1_000_000.0, 0.0))  # one dollar a token makes the sum readable
    assert costs == sorted(costs) and costs[-1] == pytest.approx(buffer.prompt_tokens)


def test_replay_reuses_entity_notes_from_the_ledger(tmp_path):
    cache = SqlStore.open(f"sqlite:///{tmp_path / 'cache.db'}")
    notes = ['{"Alice": "The user."}', "{}", '{"Oslo": "Where the user lives."}', "{}", '{"Miso": "The cat."}', "{}"]
    client = FakeClient(notes)
    settings = [MemorySettings("entity", window_turns=1)]
    first = replay(SCRIPT, settings, client, user_id="u", cache=cache)
    assert len(client.requests) == 6 and len(cache.list_calls("u", purpose="entities")) == 6
    second = replay(SCRIPT, settings, client, user_id="u", cache=cache)
    assert len(client.requests) == 6  # every entity call came from the ledger
    assert [f.payload.messages for f in second[0].frames] == [f.payload.messages for f in first[0].frames]
    cache.close()
