"""One contract for every memory type, plus each type's own promise, at the edges."""

from __future__ import annotations

import pytest

from fakes import FakeClient
from memstore import MEMORY_TYPES, Chat, FactSet, MemorySettings
from memstore.memory import HistoryReader
from memstore.tokens import CharEstimateCounter

ME = "alice"
COUNTER = CharEstimateCounter()


def build(store, n_turns, settings, *, reply="ok"):
    """A conversation with `n_turns` stored turns: user 'q{i}', assistant '{reply}{i}'."""
    chat = Chat(store, FakeClient(), user_id=ME)
    conv = chat.new_conversation("t", settings)
    for i in range(1, n_turns + 1):
        msg = store.add_user_message(ME, conv.id, f"q{i}", tokens=COUNTER.count(f"q{i}"), tokenizer=COUNTER.name)
        store.add_reply(
            ME,
            conv.id,
            msg.turn,
            f"{reply}{i}",
            status="complete",
            tokens=COUNTER.count(f"{reply}{i}"),
            tokenizer=COUNTER.name,
        )
    return chat, store.get_conversation(ME, conv.id)


def history_of(payload):
    return [(m.role, m.content) for m in payload.messages if m.role != "system"][:-1]


EDGES = [0, 1, 2, 3, 4, 9]


@pytest.mark.parametrize("memory_type", sorted(MEMORY_TYPES))
@pytest.mark.parametrize("n_turns", EDGES)
def test_every_type_keeps_the_contract(store, memory_type, n_turns):
    settings = MemorySettings(memory_type, window_turns=3, max_tokens=30, system_prompt="SYS")
    chat, conv = build(store, n_turns, settings)
    before = store.page(ME, conv.id, limit=100)
    payload = chat.preview(conv.id, FactSet(), draft="NEW")
    # The request is: system prompt first, the new message last, whole turns in between, oldest first.
    assert payload.messages[0].role == "system" and payload.messages[0].content.startswith("SYS")
    assert (payload.messages[-1].role, payload.messages[-1].content) == ("user", "NEW")
    sent = history_of(payload)
    stored = [(m.role, m.content) for m in before]
    assert len(sent) % 2 == 0
    if sent:  # what is sent verbatim is a contiguous run of stored turns ending at the newest one
        assert stored[-len(sent) :] == sent
    # Nothing is deleted or rewritten by reading memory.
    assert store.page(ME, conv.id, limit=100) == before
    # Token sections add up and the history section counts exactly what is sent.
    assert payload.total_tokens == sum(s.tokens for s in payload.sections)
    assert payload.section("history").items == len(sent)
    # The view accounts for every past turn: sent, dropped, summarized or pending.
    view = payload.view
    pending = view.summary_pending[1] - view.summary_pending[0] + 1 if view.summary_pending else 0
    summarized = view.summary.through_turn - view.summary.from_turn + 1 if view.summary else 0
    assert len(view.turns) + view.dropped_count + pending + summarized == n_turns
    assert MEMORY_TYPES[memory_type].explanation


@pytest.mark.parametrize(
    "n_turns,k,expected",
    [
        (0, 3, []),
        (2, 3, [1, 2]),
        (3, 3, [1, 2, 3]),
        (9, 3, [7, 8, 9]),
        (9, 0, []),
        (9, 1, [9]),
    ],
)
def test_window_sends_the_last_k_turns(store, n_turns, k, expected):
    chat, conv = build(store, n_turns, MemorySettings("window", window_turns=k))
    payload = chat.preview(conv.id, FactSet(), draft="NEW")
    assert [t.number for t in payload.view.turns] == expected
    assert len(history_of(payload)) == 2 * len(expected)  # k turns = 2k messages
    assert payload.view.dropped_count == n_turns - len(expected)
    if payload.view.dropped_recent:
        newest_dropped = payload.view.dropped_recent[0]
        assert newest_dropped.turn.number == n_turns - k
        assert newest_dropped.left_at_turn == n_turns - k + k + 1


def test_buffer_sends_everything_and_none_sends_nothing(store):
    chat, conv = build(store, 5, MemorySettings("buffer"))
    assert [t.number for t in chat.preview(conv.id, FactSet()).view.turns] == [1, 2, 3, 4, 5]
    none = chat.preview(conv.id, FactSet(), settings=MemorySettings("none"), draft="x")
    assert [m.role for m in none.messages] == ["system", "user"]
    assert none.view.dropped_count == 5


def test_buffer_never_exceeds_the_context_window(store):
    chat, conv = build(store, 40, MemorySettings("buffer"), reply="r" * 400)
    chat.client.context_tokens = 1_000
    view = chat.preview(conv.id, FactSet()).view
    assert sum(t.tokens for t in view.turns) <= 1_000
    assert view.turns[-1].number == 40 and view.dropped_count > 0 and view.notes


def test_token_window_keeps_the_newest_turns_that_fit(store):
    chat, conv = build(store, 9, MemorySettings("token_window", max_tokens=30))
    view = chat.preview(conv.id, FactSet()).view
    per_turn = view.turns[0].tokens
    assert per_turn > 0
    assert [t.number for t in view.turns] == list(range(10 - 30 // per_turn, 10))
    assert sum(t.tokens for t in view.turns) <= 30


def test_token_window_with_one_message_over_the_limit_sends_no_history(store):
    chat, conv = build(store, 3, MemorySettings("token_window", max_tokens=5), reply="long " * 50)
    view = chat.preview(conv.id, FactSet()).view
    assert view.turns == () and view.dropped_count == 3
    assert any("over the" in note for note in view.notes)


def test_token_limit_of_one_token_is_allowed(store):
    chat, conv = build(store, 2, MemorySettings("token_window", max_tokens=1))
    assert chat.preview(conv.id, FactSet()).view.turns == ()


def test_history_reader_reads_are_bounded(store):
    """The window and token window read only the turns they need, whatever the length."""
    chat, conv = build(store, 300, MemorySettings("window", window_turns=2))
    calls = []
    original = store.turns_between

    def spy(user, conv_id, a, b):
        rows = original(user, conv_id, a, b)
        calls.append(len(rows))
        return rows

    store.turns_between = spy
    reader = HistoryReader(store, ME, conv.id, 300, COUNTER)
    MEMORY_TYPES["window"].view(reader, MemorySettings("window", window_turns=2), context_tokens=8000)
    MEMORY_TYPES["token_window"].view(reader, MemorySettings("token_window", max_tokens=40), context_tokens=8000)
    assert max(calls) <= 20 and sum(calls) <= 60  # never the 600 stored messages


@pytest.mark.parametrize("n_turns", EDGES)
def test_long_term_types_keep_the_contract_with_their_memory_filled(store, n_turns):
    """Entity notes and recalled turns go in the system prompt; the history stays a contiguous newest run."""
    from memstore.embeddings import WordLlamaEmbedder

    for memory_type in ("entity", "retrieval"):
        settings = MemorySettings(
            memory_type, window_turns=1, recall_turns=2, recall_min_score=-1.0, system_prompt="SYS"
        )
        chat, conv = build(store, n_turns, settings)
        chat.embedder = WordLlamaEmbedder()
        if n_turns:
            store.add_entity_versions(ME, conv.id, [("Q1", "The first question.")], turn=1, call=None)
            chat.long_term(conv.id).index(n_turns)
        payload = chat.preview(conv.id, FactSet(), draft="about q1 again")
        sent = history_of(payload)
        stored = [(m.role, m.content) for m in store.page(ME, conv.id, limit=100)]
        assert sent == (stored[-2:] if n_turns else [])  # window k=1
        assert payload.total_tokens == sum(s.tokens for s in payload.sections)
        extra = payload.section("entities" if memory_type == "entity" else "recalled")
        if memory_type == "entity":
            assert extra.items == (1 if n_turns else 0)
        else:  # every turn before the window is recalled (top 2, no minimum), never one inside it
            assert extra.items == min(2, max(0, n_turns - 1))
            assert all(r.turn.number < n_turns for r in payload.view.recall.recalled)
        assert (extra.tokens > 0) == (extra.items > 0)
