"""The outbox on the pages (AppTest): items waiting in other conversations are mentioned, another database's listed."""

from __future__ import annotations

import pytest

from conftest import plain, run_page
from memstore import MemorySettings, SqlStore
from memstore.database_identity import DatabaseIdentity
from memstore.outbox import Outbox, new_unsent

ME = "local"


@pytest.fixture
def seeded(app_env, tmp_path):
    """Conversation 1 waits for a reply the database refused (kept in the outbox); conversation 2 is the newest."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    store = SqlStore.open(url)
    first = store.create_conversation(ME, "First", MemorySettings("buffer"))
    store.add_user_message(ME, first.id, "asked in the first", tokens=3, tokenizer="t")
    second = store.create_conversation(ME, "Second", MemorySettings("buffer"))
    store.add_user_message(ME, second.id, "asked in the second", tokens=3, tokenizer="t")
    outbox = Outbox.beside(tmp_path / "data")
    outbox.put(new_unsent(ME, first.id, "reply", "the kept reply", "busy", database=store.identity(), turn=1))
    other = DatabaseIdentity("e" * 32, str(tmp_path / "other.db"))
    outbox.put(new_unsent(ME, first.id, "reply", "a reply of another database", "busy", database=other, turn=1))
    store.close()
    return url


def shown(at) -> str:
    return "\n".join(plain(e.value) for e in (*at.markdown, *at.caption, *at.warning, *at.text))


def test_the_chat_page_mentions_items_in_other_conversations_and_opens_them(seeded):
    at = run_page("app.py", timeout=30)
    assert "1 unsaved item in other conversations" in shown(at)
    assert "the kept reply" not in shown(at)  # it waits in the first conversation, not here
    assert not [b for b in at.button if b.label == "Save again"]  # nothing of another database can be saved here
    assert "1 unsaved item of another database" in shown(at) and "a reply of another database" in shown(at)
    open_first = next(b for b in at.button if b.label.startswith("Open “First”"))
    open_first.click().run()
    assert not at.exception
    assert "the kept reply" in shown(at) and "1 unsaved item in other conversations" not in shown(at)
    next(b for b in at.button if b.label == "Save again").click().run()
    assert not at.exception
    store = SqlStore.open(seeded)
    try:
        assert [m.content for m in store.page(ME, 1)] == ["asked in the first", "the kept reply"]
        assert [m.content for m in store.page(ME, 2)] == ["asked in the second"]
    finally:
        store.close()


def test_the_conversations_page_lists_where_unsaved_items_wait(seeded):
    at = run_page("app_pages/conversations.py", timeout=30)
    text = shown(at)
    assert "1 unsaved item in conversations" in text and "1 unsaved item of another database" in text
    assert any(b.label.startswith("Open “First”") for b in at.button)
    assert not [b for b in at.button if b.label == "Save again"]
