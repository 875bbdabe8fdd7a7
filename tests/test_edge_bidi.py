"""A title with bidi controls reads the same, visibly, everywhere it is shown (issue 24, item 14).

"‮gpj.exe" drawn as is reads "exe.jpg": every place that shows a conversation title (the sidebar
picker, the chat header, the Conversations page's table and pickers, Model calls, Compare, the
Markdown export) draws each control as its code instead, and the stored title is unchanged.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, plain
from memstore import MemorySettings, SqlStore
from memstore.bidi import BIDI_CONTROLS

HOSTILE = "Invoice \u202egpj.exe\u202c \u2066x\u2069"
SHOWN = "Invoice [U+202E]gpj.exe[U+202C] [U+2066]x[U+2069]"


@pytest.fixture
def hostile_title(tmp_path, monkeypatch, app_env):
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("MEMORYLAB_DATA_DIR", str(tmp_path / "data"))
    store = SqlStore.open(url)
    conv = store.create_conversation("local", HOSTILE, MemorySettings("buffer"))
    msg = store.add_user_message("local", conv.id, "hello", tokens=1, tokenizer="t")
    store.add_reply("local", conv.id, msg.turn, "hi", status="complete", tokens=1, tokenizer="t")
    store.close()
    yield url
    store = SqlStore.open(url)
    assert [c.title for c in store.list_conversations("local")] == [HOSTILE]  # shown differently, stored as it was
    store.close()


def run(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / page), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


def strings(at: AppTest) -> list[str]:
    """Every string the page shows: element values, labels, options and table cells."""
    out: list[str] = []
    for element in (*at.main, *at.sidebar):
        for attr in ("value", "label", "options"):
            value = getattr(element, attr, None)
            if isinstance(value, str):
                out.append(plain(value))
            elif isinstance(value, (list, tuple)):
                out.extend(str(v) for v in value)
            elif hasattr(value, "to_numpy"):  # a table
                out.extend(str(v) for v in value.to_numpy().ravel())
    return out


def assert_shown_visibly(texts: list[str]) -> None:
    assert any(SHOWN in t for t in texts), texts
    assert not [t for t in texts if set(t) & BIDI_CONTROLS]


def test_the_chat_page_header_and_sidebar_picker_show_the_codes(hostile_title):
    at = run("app.py")
    assert_shown_visibly(strings(at))
    assert SHOWN in [o for box in at.sidebar.selectbox if box.label == "Open" for o in box.options]
    assert any(plain(m.value) == f"### {SHOWN}" for m in at.main.markdown)


def test_the_conversations_page_table_and_pickers_show_the_codes(hostile_title):
    at = run("app_pages/conversations.py")
    texts = strings(at)
    assert_shown_visibly(texts)
    assert SHOWN in texts  # the table's title cell
    assert f"{SHOWN} (#1)" in texts  # the picker


@pytest.mark.parametrize("page", ["app_pages/model_calls.py", "app_pages/compare.py"])
def test_the_other_pickers_show_the_codes(hostile_title, page):
    at = run(page)
    if page.endswith("compare.py"):
        at.radio[0].set_value("A saved conversation").run()
    assert_shown_visibly(strings(at))


def test_a_message_with_bidi_controls_reads_the_same_in_the_transcript_and_the_panel(tmp_path, monkeypatch, app_env):
    """Plain-text places (the transcript, the panel's turn cards, code blocks) draw the controls as codes too."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("MEMORYLAB_DATA_DIR", str(tmp_path / "data"))
    store = SqlStore.open(url)
    conv = store.create_conversation("local", "plain title", MemorySettings("buffer"))
    msg = store.add_user_message("local", conv.id, HOSTILE, tokens=1, tokenizer="t")
    store.add_reply("local", conv.id, msg.turn, "hi", status="complete", tokens=1, tokenizer="t")
    store.close()
    texts = strings(run("app.py"))
    assert sum(SHOWN in t for t in texts) >= 2  # the transcript and the panel's turn card
    assert not [t for t in texts if set(t) & BIDI_CONTROLS]
