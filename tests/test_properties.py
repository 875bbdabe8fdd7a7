"""Property-based tests: any text round-trips unchanged; every memory type keeps its contract on any input."""

from __future__ import annotations

import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes import FakeClient
from memstore import MEMORY_TYPES, Chat, FactSet, InvalidInput, MemorySettings, SqlStore
from memstore.validation import INVISIBLE_CATEGORIES

VALID_TEXT = st.text(min_size=1, max_size=3_000).filter(
    lambda t: t.strip() != "" and "\x00" not in t and not any(0xD800 <= ord(c) <= 0xDFFF for c in t)
)
KEY = st.text(min_size=1, max_size=64).filter(
    lambda t: (
        t.strip() == t
        and t != ""
        and all(ord(c) >= 0x20 and ord(c) != 0x7F for c in t)
        and not any(unicodedata.category(c) in INVISIBLE_CATEGORIES for c in t)
        and unicodedata.normalize("NFC", t) == t
    )
)
SETTINGS = dict(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def sqlite_store():
    folder = tempfile.mkdtemp(prefix="memorylab-props-")
    store = SqlStore.open(f"sqlite:///{Path(folder) / 'props.db'}")
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "memory"])
def any_store(request, sqlite_store):
    return sqlite_store if request.param == "sqlite" else SqlStore.in_memory()


@settings(**SETTINGS)
@given(texts=st.lists(VALID_TEXT, min_size=1, max_size=4))
def test_any_text_round_trips_unchanged(any_store, texts):
    conv = any_store.create_conversation("u", "props", MemorySettings())
    for text in texts:
        any_store.add_user_message("u", conv.id, text, tokens=1, tokenizer="t")
    assert [m.content for m in any_store.page("u", conv.id)] == texts


@settings(**SETTINGS)
@given(
    key=KEY,
    value=st.text(max_size=2_000).filter(lambda t: "\x00" not in t and not any(0xD800 <= ord(c) <= 0xDFFF for c in t)),
)
def test_any_preference_round_trips_unchanged(sqlite_store, key, value):
    sqlite_store.set_preference("prefs-user", key, value)
    stored = {p.key: p.value for p in sqlite_store.list_preferences("prefs-user")}
    assert stored[key] == value
    sqlite_store.delete_preference("prefs-user", key)


@settings(**SETTINGS)
@given(
    text=st.one_of(
        VALID_TEXT.map(lambda t: t * (32_000 // len(t) + 1)),
        st.just("   "),
        st.just("a\x00b"),
        st.just("lone \ud800 surrogate"),
    )
)
def test_bad_messages_are_refused_and_nothing_is_stored(any_store, text):
    conv = any_store.create_conversation("u", "refuse", MemorySettings())
    with pytest.raises(InvalidInput):
        any_store.add_user_message("u", conv.id, text, tokens=1, tokenizer="t")
    assert any_store.page("u", conv.id) == []


@settings(**SETTINGS)
@given(
    turns=st.lists(
        st.tuples(
            VALID_TEXT,
            st.text(max_size=500).filter(lambda t: "\x00" not in t and not any(0xD800 <= ord(c) <= 0xDFFF for c in t)),
        ),
        max_size=8,
    ),
    memory_type=st.sampled_from(sorted(MEMORY_TYPES)),
    window_turns=st.integers(0, 10),
    max_tokens=st.integers(1, 400),
)
def test_every_memory_type_keeps_its_contract_on_any_conversation(turns, memory_type, window_turns, max_tokens):
    store = SqlStore.in_memory()
    chat = Chat(store, FakeClient(), user_id="u")
    conv = chat.new_conversation("p", MemorySettings(memory_type, window_turns, max_tokens))
    for user, reply in turns:
        message = store.add_user_message("u", conv.id, user, tokens=1, tokenizer="t")
        store.add_reply("u", conv.id, message.turn, reply, status="complete", tokens=1, tokenizer="t")
    payload = chat.preview(conv.id, FactSet(), draft="next")
    sent = [(m.role, m.content) for m in payload.messages[1:-1]]
    stored = [(m.role, m.content) for m in store.page("u", conv.id, limit=100)]
    assert sent == (stored[-len(sent) :] if sent else [])
    assert payload.total_tokens == sum(s.tokens for s in payload.sections)
    if memory_type == "window":
        assert len(payload.view.turns) == min(window_turns, len(turns))
    if memory_type == "token_window":
        assert sum(t.tokens for t in payload.view.turns) <= max_tokens


@settings(**SETTINGS)
@given(
    key=KEY,
    hidden=st.sampled_from(["\u200b", "\u200d", "\u202e", "\u2066", "\ufeff", "\u00ad"]),
    at=st.integers(min_value=0, max_value=64),
)
def test_a_key_with_an_invisible_character_is_refused_not_stored_as_a_look_alike(sqlite_store, key, hidden, at):
    look_alike = key[:at] + hidden + key[at:]
    with pytest.raises(InvalidInput, match="invisible or direction-changing"):
        sqlite_store.set_preference("lookalike-user", look_alike, "x")
    assert sqlite_store.list_preferences("lookalike-user") == []
