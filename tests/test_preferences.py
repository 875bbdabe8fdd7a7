"""Preferences: per-user key/value facts in the database, validated, switchable, isolated."""

from __future__ import annotations

import pytest

from memstore import InvalidInput, NotFound, SqlStore


def test_set_update_switch_off_and_delete(sql_store):
    sql_store.set_preference("alice", "name", "Alice")
    sql_store.set_preference("alice", "diet", "vegetarian")
    sql_store.set_preference("alice", "name", "Alice B.", enabled=False)
    prefs = sql_store.list_preferences("alice")
    assert [(p.key, p.value, p.enabled) for p in prefs] == [("diet", "vegetarian", True), ("name", "Alice B.", False)]
    sql_store.delete_preference("alice", "diet")
    assert [p.key for p in sql_store.list_preferences("alice")] == ["name"]
    with pytest.raises(NotFound):
        sql_store.delete_preference("alice", "diet")


def test_preferences_are_per_user(sql_store):
    sql_store.set_preference("alice", "name", "Alice")
    sql_store.set_preference("bob", "name", "Bob")
    assert [p.value for p in sql_store.list_preferences("alice")] == ["Alice"]
    with pytest.raises(NotFound):
        sql_store.delete_preference("carol", "name")
    assert [p.value for p in sql_store.list_preferences("bob")] == ["Bob"]


@pytest.mark.parametrize("key", ["", "   ", "k" * 65, "line\nbreak", "nul\x00"])
def test_invalid_keys_are_refused_and_nothing_changes(sql_store, key):
    sql_store.set_preference("alice", "name", "Alice")
    with pytest.raises(InvalidInput):
        sql_store.set_preference("alice", key, "value")
    with pytest.raises(InvalidInput):
        sql_store.replace_preferences("alice", [("name", "Changed", True), (key, "v", True)])
    assert [(p.key, p.value) for p in sql_store.list_preferences("alice")] == [("name", "Alice")]


def test_keys_with_sql_and_64_characters_are_stored_literally(sql_store):
    key = "'); DELETE FROM preferences; --"
    sql_store.set_preference("alice", key, "<script>alert(1)</script>")
    sql_store.set_preference("alice", "k" * 64, "long key")
    values = {p.key: p.value for p in sql_store.list_preferences("alice")}
    assert values[key] == "<script>alert(1)</script>" and values["k" * 64] == "long key"


def test_replace_preferences_is_one_transaction(sql_store):
    sql_store.replace_preferences("alice", [("a", "1", True), ("b", "2", True)])
    saved = sql_store.replace_preferences("alice", [("b", "two", False), ("c", "3", True)])
    assert [(p.key, p.value, p.enabled) for p in saved] == [("b", "two", False), ("c", "3", True)]
    with pytest.raises(InvalidInput, match="twice"):
        sql_store.replace_preferences("alice", [("x", "1", True), ("x", "2", True)])
    assert [p.key for p in sql_store.list_preferences("alice")] == ["b", "c"]


def test_preferences_survive_reopening(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    first = SqlStore.open(url)
    first.set_preference("local", "city", "Lisbon")
    first.close()
    second = SqlStore.open(url)
    assert [(p.key, p.value) for p in second.list_preferences("local")] == [("city", "Lisbon")]
    second.close()
