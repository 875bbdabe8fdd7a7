"""The Streamlit app and its pages, driven with AppTest against a local OpenAI-compatible server."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import plain, run_page
from memstore import MemorySettings, SqlStore

ROOT = Path(__file__).resolve().parent.parent
S1 = "saved_1"


@pytest.fixture
def db_url(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("MEMORYLAB_DATA_DIR", str(tmp_path / "data"))
    return url


@pytest.fixture
def env(app_env, db_url):
    return app_env


def app() -> AppTest:
    return run_page("app.py", timeout=30)


def page(name: str) -> AppTest:
    return run_page(f"app_pages/{name}", timeout=30)


def send(at: AppTest, text: str) -> AppTest:
    at.chat_input[0].set_value(text).run()
    assert not at.exception, at.exception
    return at


def bubbles(at: AppTest) -> list[str]:
    """Chat bubbles' text as the reader sees it: yours as plain text, replies as (escaped) Markdown."""
    out = []
    for m in at.chat_message:
        if m.text:
            out.append(m.text[0].value)
        elif m.markdown:
            out.append(re.sub(r"\\(.)", r"\1", m.markdown[0].value).replace("  \n", "\n"))
    return out


def captions(at: AppTest) -> str:
    return "\n".join(plain(c.value) for c in at.caption)


def code_blocks(at: AppTest) -> list[str]:
    return [c.value for c in at.code]


def open_tab(at: AppTest, name: str) -> AppTest:
    """Open one of the memory panel's tabs (only the open one is drawn)."""
    at.session_state["panel_tab"] = name
    return at.run()


def test_sending_a_message_streams_the_reply_and_the_panel_shows_it(env, db_url):
    at = send(app(), "Hi, I am Alice")
    assert bubbles(at) == ["Hi, I am Alice", "echo: Hi, I am Alice"]
    assert [s for s in at.sidebar.selectbox if s.label == "Open"][0].options == [
        "Hi, I am Alice"
    ]  # the picker shows the new title at once
    assert "Turn 1 · " in captions(at)
    assert "Hi, I am Alice" in "\n".join(t.value for t in at.text)  # held in memory
    assert not code_blocks(at)  # only the open tab ("Holds now") is drawn
    for tab in ("Next request", "Last request"):
        assert any("Hi, I am Alice" in block for block in code_blocks(open_tab(at, tab))), tab
    assert any(p.text.startswith("Next request:") for p in at.progress)
    store = SqlStore.open(db_url)
    assert [m.content for m in store.page("local", 1)] == ["Hi, I am Alice", "echo: Hi, I am Alice"]
    assert store.get_conversation("local", 1).title == "Hi, I am Alice"
    store.close()


def test_switching_type_and_k_updates_the_panel_without_sending(env):
    at = app()
    for text in ["My name is Alice", "I like tea", "I live in Oslo"]:
        at = send(at, text)
    sent_before = len(env.chat_requests)
    at.number_input(key=f"window_turns_{S1}").set_value(1).run()
    assert len(env.chat_requests) == sent_before  # nothing was sent
    text = captions(at)
    assert "k = 1 turns = 2 messages" in text
    assert "~~Turn 2~~ · out of the window since turn 4" in text
    assert "~~Turn 1~~ · out of the window since turn 3" in text
    next_request = code_blocks(open_tab(at, "Next request"))
    assert "I like tea" not in "".join(next_request) and "I live in Oslo" in "".join(next_request)
    assert not any("My name is Alice" in block for block in next_request)
    open_tab(at, "Holds now")
    at.selectbox(key=f"memory_type_{S1}").set_value("buffer").run()
    assert "Fell out" not in "\n".join(plain(m.value) for m in at.markdown)
    assert "In memory: 3 turns" in "\n".join(plain(m.value) for m in at.markdown)
    assert len(env.chat_requests) == sent_before


def test_a_failed_reply_keeps_the_message_and_retry_recovers(env):
    env.expect(("status", 500))
    at = send(app(), "Are you there?")
    assert any("failed (500)" in plain(e.value) for e in at.error)
    assert "Are you there?" in bubbles(at)
    retry = [b for b in at.button if b.label.startswith("Retry")]
    retry[0].click().run()
    assert not at.exception
    assert bubbles(at)[-1] == "echo: Are you there?"
    assert [m["content"] for m in env.chat_requests[-1]["messages"] if m["role"] == "user"] == ["Are you there?"]


def test_a_damaged_local_model_explains_and_the_app_still_works(db_url, monkeypatch, tmp_path):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    damaged = tmp_path / "damaged.gguf"
    damaged.write_bytes(b"GGUF" + b"\x00" * 64)
    monkeypatch.setenv("MEMORYLAB_LOCAL_MODEL", str(damaged))
    at = send(app(), "hello?")
    assert any("could not be loaded" in plain(e.value) and "OPENAI_API_KEY" in plain(e.value) for e in at.error)
    assert "hello?" in bubbles(at)
    assert any("No model is available" in plain(w.value) for w in at.sidebar.warning)
    assert at.number_input(key="window_turns_saved_1").value == 3  # the rest of the app works


def test_temporary_chat_writes_nothing(env, db_url):
    at = app()
    at.toggle[0].set_value(True).run()
    at = send(at, "This must not be saved")
    assert "This must not be saved" in bubbles(at)
    assert "Temporary chat · nothing is saved" in captions(at)
    store = SqlStore.open(db_url)
    assert all(c.message_count == 0 for c in store.list_conversations("local")) and store.list_calls("local") == []
    store.close()


def test_session_facts_are_added_injected_and_removed(env):
    at = app()
    form_inputs = [t for t in at.sidebar.text_input if t.label in ("Key", "Value")]
    form_inputs[0].set_value("name")
    form_inputs[1].set_value("Alice")
    at.sidebar.button[[b.label for b in at.sidebar.button].index("Add or update fact")].click().run()
    assert "**name**: Alice" in [plain(m.value) for m in at.sidebar.markdown]
    assert "- name: Alice" in code_blocks(open_tab(at, "Next request"))[0]  # the next request's system prompt
    at = send(at, "What is my name?")
    assert "- name: Alice" in env.chat_requests[-1]["messages"][0]["content"]
    at.sidebar.button(key="remove_fact_name").click().run()
    assert "- name: Alice" not in code_blocks(at)[0]  # the next request's system prompt
    bad = [t for t in at.sidebar.text_input if t.label == "Key"][0]
    bad.set_value("x" * 65)
    at.sidebar.button[[b.label for b in at.sidebar.button].index("Add or update fact")].click().run()
    assert any("limit is 64" in plain(e.value) for e in at.sidebar.error)


def test_summary_memory_shows_the_summary_call(env):
    at = app()
    at.selectbox(key=f"memory_type_{S1}").set_value("summary").run()
    env.expect(("reply", "Nice to meet you."), ("reply", "The user is called Alice."))
    at = send(at, "I am Alice")
    assert "The user is called Alice." in [plain(i.value) for i in at.info]
    at = open_tab(at, "Summary call")
    assert any("Progressively" in b or "running summary" in b for b in code_blocks(at))
    assert "folding turns 1–1" in captions(at)


def seed_conversation(url: str, title: str, texts: list[str]) -> int:
    store = SqlStore.open(url)
    conv = store.create_conversation("local", title, MemorySettings("buffer"))
    for text in texts:
        msg = store.add_user_message("local", conv.id, text, tokens=1, tokenizer="t")
        store.add_reply("local", conv.id, msg.turn, "re: " + text, status="complete", tokens=1, tokenizer="t")
    store.close()
    return conv.id


def test_long_conversations_draw_only_the_newest_page(env, db_url):
    seed_conversation(db_url, "Long", [f"message {i}" for i in range(100)])
    at = app()
    assert len(at.chat_message) == 50 and bubbles(at)[-1] == "re: message 99"
    older = [b for b in at.button if b.label.startswith("Show older messages")]
    assert older and "150 more" in older[0].label
    older[0].click().run()
    assert len(at.chat_message) == 100


def test_preferences_page_adds_edits_switches_off_and_deletes(env, db_url):
    at = page("preferences.py")
    at.session_state["preferences_editor"] = {
        "edited_rows": {},
        "deleted_rows": [],
        "added_rows": [{"key": "name", "value": "Alice"}, {"key": "drink", "value": "tea", "enabled": False}],
    }
    at.run()
    at.main.button[0].click().run()
    store = SqlStore.open(db_url)
    assert [(p.key, p.value, p.enabled) for p in store.list_preferences("local")] == [
        ("drink", "tea", False),
        ("name", "Alice", True),
    ]
    at = page("preferences.py")
    assert "- name: Alice" in code_blocks(at)[0] and "tea" not in code_blocks(at)[0]
    at.session_state["preferences_editor"] = {
        "edited_rows": {1: {"value": "Alice B."}},
        "deleted_rows": [0],
        "added_rows": [],
    }
    at.run()
    at.main.button[0].click().run()
    assert [(p.key, p.value) for p in store.list_preferences("local")] == [("name", "Alice B.")]
    at = page("preferences.py")
    at.session_state["preferences_editor"] = {
        "edited_rows": {},
        "deleted_rows": [],
        "added_rows": [{"key": "k" * 65, "value": "too long"}],
    }
    at.run()
    at.main.button[0].click().run()
    assert any("limit is 64" in plain(e.value) for e in at.error)
    assert [(p.key, p.value) for p in store.list_preferences("local")] == [("name", "Alice B.")]
    store.close()


def test_enabled_preferences_reach_the_model(env, db_url):
    store = SqlStore.open(db_url)
    store.set_preference("local", "diet", "vegetarian")
    store.set_preference("local", "city", "Oslo", enabled=False)
    store.close()
    send(app(), "Suggest dinner")
    system = env.chat_requests[-1]["messages"][0]["content"]
    assert "- diet: vegetarian" in system and "Oslo" not in system


def test_conversations_page_lists_exports_and_deletes(env, db_url):
    first = seed_conversation(db_url, "Trip to Rome", ["Where should I eat?"])
    seed_conversation(db_url, "Other chat", ["Hello"])
    at = page("conversations.py")
    frame = at.dataframe[0].value
    assert list(frame["title"]) == ["Other chat", "Trip to Rome"] and list(frame["messages"]) == [2, 2]
    at.main.text_input[0].set_value("rome").run()
    assert list(at.dataframe[0].value["title"]) == ["Trip to Rome"]
    downloads = at.get("download_button")
    assert len(downloads) >= 2
    at.main.selectbox[0].set_value(first).run()
    at.checkbox(key=f"confirm_{first}").check().run()
    at.button(key=f"delete_{first}").click().run()
    assert not at.exception
    store = SqlStore.open(db_url)
    assert [c.title for c in store.list_conversations("local")] == ["Other chat"]
    store.close()


def test_export_and_import_round_trip(env, db_url):
    from memstore.tokens import CharEstimateCounter
    from memstore.transfer import export_conversations, import_export, to_json, to_markdown

    conv_id = seed_conversation(db_url, "Keep me", ["first <b>bold</b>", "second"])
    store = SqlStore.open(db_url)
    exported = export_conversations(store, "local", [conv_id])
    markdown = to_markdown(exported)
    assert "# Keep me" in markdown and "```text\nfirst <b>bold</b>\n```" in markdown  # fenced: shown verbatim
    created = import_export(store, "local", to_json(exported).encode(), CharEstimateCounter())
    assert created[0].title == "Keep me" and created[0].message_count == 4
    assert [m.content for m in store.page("local", created[0].id)] == [
        "first <b>bold</b>",
        "re: first <b>bold</b>",
        "second",
        "re: second",
    ]
    bad = json.dumps(
        {
            "format": "memorylab.conversations/1",
            "conversations": [
                {"title": "ok", "settings": {"memory_type": "window"}, "messages": [{"role": "user", "content": "a"}]},
                {
                    "title": "bad",
                    "settings": {"memory_type": "window"},
                    "messages": [{"role": "system", "content": "x"}],
                },
            ],
        }
    ).encode()
    from memstore import InvalidInput

    with pytest.raises(InvalidInput, match="role 'system'"):
        import_export(store, "local", bad, CharEstimateCounter())
    assert len(store.list_conversations("local")) == 2  # nothing from the bad file
    store.close()


def test_model_calls_page_shows_the_ledger(env, db_url):
    at = app()
    send(at, "first question")
    calls = page("model_calls.py")
    frame = calls.dataframe[0].value
    assert list(frame["kind"]) == ["facts", "chat"] and set(frame["model"]) == {"gpt-4o-mini"}  # newest first
    assert any("first question" in block for block in code_blocks(calls))
    calls.main.selectbox[1].set_value("summary").run()
    assert any("No model calls" in plain(i.value) for i in calls.info)


def test_sidebar_renames_switches_and_deletes_with_confirmation(env, db_url):
    seed_conversation(db_url, "Older chat", ["old question"])
    at = app()
    assert "### Older chat" in [plain(m.value) for m in at.markdown]  # the most recent conversation opens
    at.sidebar.button[[b.label for b in at.sidebar.button].index("New chat")].click().run()
    assert "### New chat" in [plain(m.value) for m in at.markdown]
    at = send(at, "newest question")
    current = at.session_state["conversation_ref"]
    assert not [t for t in at.sidebar.text_input if t.key == f"title_{current.slug}"]  # drawn only when opened
    at.session_state[f"manage_open_{current.slug}"] = True  # open "Rename or delete"
    at.run()
    at.sidebar.text_input(key=f"title_{current.slug}").set_value("Renamed chat")
    at.sidebar.button(key=f"rename_{current.slug}").click().run()
    assert "### Renamed chat" in [plain(m.value) for m in at.markdown]
    delete = at.sidebar.button(key=f"delete_{current.slug}")
    assert delete.disabled  # nothing is deleted without the confirmation box
    at.sidebar.checkbox(key=f"confirm_delete_{current.slug}").check().run()
    at.sidebar.button(key=f"delete_{current.slug}").click().run()
    assert not at.exception
    assert "### Older chat" in [plain(m.value) for m in at.markdown] and "re: old question" in bubbles(at)
    store = SqlStore.open(db_url)
    assert [c.title for c in store.list_conversations("local")] == ["Older chat"]
    store.close()
    at.session_state[f"manage_open_{at.session_state['conversation_ref'].slug}"] = True
    at.run()
    bad = at.sidebar.text_input(key=f"title_{at.session_state['conversation_ref'].slug}")
    bad.set_value("   ")
    at.sidebar.button(key=f"rename_{at.session_state['conversation_ref'].slug}").click().run()
    assert any("title is empty" in plain(e.value) for e in at.sidebar.error)


def test_with_no_settings_the_app_chats_with_the_bundled_offline_model(db_url, monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "MEMORYLAB_LOCAL_MODEL"):
        monkeypatch.delenv(name, raising=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert any("SmolLM2-135M" in plain(i.value) and "weak at recall" in plain(i.value) for i in at.sidebar.info)
    at.chat_input[0].set_value("Hello! Who are you?").run()
    assert not at.exception and not at.error
    assert bubbles(at)[0] == "Hello! Who are you?" and bubbles(at)[1].strip()
    store = SqlStore.open(db_url)
    call = store.list_calls("local")[0]
    assert call.provider == "local" and call.usage.completion_tokens > 0
    store.close()


def test_conversations_page_forks_and_compares_branches(env, db_url):
    at = app()
    for text in ["My name is Alice", "I like tea", "I live in Oslo"]:
        at = send(at, text)
    conv = at.switch_page("app_pages/conversations.py").run()  # from app.py, so the page can switch back
    conv.number_input(key="fork_turn_1").set_value(2)
    conv.selectbox(key="fork_type_1").set_value("none")
    conv.button(key="fork_1").click().run()
    assert not conv.exception
    assert "### My name is Alice (fork at turn 2, none)" in [plain(m.value) for m in conv.markdown]  # the fork is open
    store = SqlStore.open(db_url)
    fork = store.get_conversation("local", 2)
    assert fork.title == "My name is Alice (fork at turn 2, none)" and fork.last_turn == 2
    assert fork.settings.memory_type == "none"
    store.close()
    conv = page("conversations.py")
    conv.main.selectbox[0].set_value(1).run()
    assert not conv.exception
    rows = conv.dataframe[1].value
    assert list(rows["turn"]) == [1, 2, 3] and rows["tokens sent (other)"].isna().all()


def test_timeline_scrubs_back_to_what_an_earlier_turn_sent(env):
    at = app()
    for text in ["My name is Alice", "I like tea", "I live in Oslo"]:
        at = send(at, text)
    at.number_input(key=f"window_turns_{S1}").set_value(0).run()  # later settings do not rewrite history
    at = open_tab(at, "Timeline")
    at.slider(key=f"timeline_{S1}").set_value(2).run()
    text = captions(at)
    assert "Turn 2 · Window (last k turns) · sent turns 1–1" in text
    assert "This turn's calls cost $0.0000" in text and "at gpt-4o-mini's list price" in text
    assert any(block == "echo: I like tea" for block in code_blocks(at))
    assert any(block == "My name is Alice" for block in code_blocks(at))  # turn 2's request carried turn 1


def test_markdown_and_html_in_messages_are_shown_as_text(env):
    hostile = "**not bold** <img src=x onerror=alert(1)> ![tracker](http://127.0.0.1:9/pixel.png) # not a heading"
    env.expect(("reply", "Here: ![tracker](http://127.0.0.1:9/pixel.png) and **bold is fine**"))
    at = send(app(), hostile)
    user, reply = at.chat_message[0], at.chat_message[1]
    assert [t.value for t in user.text] == [hostile] and not user.markdown  # plain text: shown exactly as typed
    assert "![" not in reply.markdown[0].value and "**bold is fine**" in reply.markdown[0].value  # never images
    assert bubbles(at)[0] == hostile


def test_with_login_configured_nobody_sees_data_before_logging_in(env, db_url):
    seed_conversation(db_url, "Private chat", ["my secret plans"])
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.secrets["auth"] = {
        "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
        "cookie_secret": "s",
        "client_id": "c",
        "client_secret": "x",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
    }
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Log in"]
    assert len(at.chat_input) == 0 and len(at.chat_message) == 0
    shown = " ".join(e.value for e in (*at.markdown, *at.caption, *at.title) if isinstance(e.value, str))
    assert "Private chat" not in shown and "secret" not in shown


def test_the_api_key_never_reaches_the_page_the_database_or_exports(env, db_url, monkeypatch):
    from memstore.transfer import export_conversations, to_json, to_markdown

    secret = "sk-test-NEVER-SHOWN-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    at = send(app(), "hello")
    at = send(at, "again")
    assert env.headers[-1]["authorization"] == f"Bearer {secret}"  # it was used...
    texts = [str(getattr(e, "value", "")) for e in at.main] + [str(getattr(e, "value", "")) for e in at.sidebar]
    assert not any(secret in t for t in texts)  # ...but never shown
    for name in ("model_calls.py", "conversations.py"):
        p = page(name)
        assert not any(secret in str(getattr(e, "value", "")) for e in p.main)
    store = SqlStore.open(db_url)
    with store.engine.connect() as conn:
        for table in ("model_calls", "messages", "conversations", "summaries", "preferences"):
            assert secret not in " ".join(str(r) for r in conn.exec_driver_sql(f"SELECT * FROM {table}"))
    export = export_conversations(store, "local")
    assert secret not in to_json(export) and secret not in to_markdown(export)
    store.close()


def test_imports_are_size_limited_validated_and_land_only_in_the_importers_data(env, db_url):
    from memstore import InvalidInput
    from memstore.tokens import CharEstimateCounter
    from memstore.transfer import MAX_IMPORT_BYTES, import_export

    store = SqlStore.open(db_url)
    theirs = store.create_conversation("bob", "Bob's chat", MemorySettings())
    crafted = json.dumps(
        {
            "format": "memorylab.conversations/1",
            "conversations": [
                {
                    "id": theirs.id,
                    "user_id": "bob",
                    "conversation_id": theirs.id,
                    "title": "Injected",
                    "settings": {"memory_type": "window"},
                    "messages": [{"role": "user", "content": "hello", "user_id": "bob"}],
                }
            ],
        }
    ).encode()
    created = import_export(store, "local", crafted, CharEstimateCounter())
    assert created[0].user_id == "local" and created[0].id != theirs.id
    assert store.get_conversation("bob", theirs.id).message_count == 0
    assert [c.title for c in store.list_conversations("bob")] == ["Bob's chat"]
    with pytest.raises(InvalidInput, match="limit"):
        import_export(store, "local", b" " * (MAX_IMPORT_BYTES + 1), CharEstimateCounter())
    with pytest.raises(InvalidInput):
        import_export(
            store,
            "local",
            json.dumps(
                {
                    "format": "memorylab.conversations/1",
                    "conversations": [
                        {"title": "x", "settings": {"memory_type": "window", "window_turns": -3}, "messages": []}
                    ],
                }
            ).encode(),
            CharEstimateCounter(),
        )
    assert len(store.list_conversations("local")) == 1
    store.close()


def test_facts_saved_after_a_turn_are_announced_and_can_be_undone(env, db_url):
    env.expect(("reply", "Nice to meet you, Ada."), ("reply", '{"name": "Ada", "home_city": "Oslo"}'))
    at = send(app(), "I'm Ada and I live in Oslo.")
    assert "**Memory updated**" in " ".join(plain(m.value) for m in at.markdown)
    assert any("Saved **name**: Ada" in plain(m.value) for m in at.markdown)
    store = SqlStore.open(db_url)
    assert {p.key: p.value for p in store.list_preferences("local")} == {"name": "Ada", "home_city": "Oslo"}
    undo = [b for b in at.button if b.label == "Undo"]
    assert len(undo) == 2
    undo[0].click().run()
    assert len({p.key for p in store.list_preferences("local")}) == 1  # one fact is gone again
    assert [h.kind for h in store.preference_history("local")][0] == "undone"
    assert "facts" in [c.purpose for c in store.list_calls("local")]
    store.close()


def test_automatic_facts_can_be_switched_off(env, db_url):
    at = app()
    at.sidebar.toggle(key="auto_facts_widget").set_value(False).run()
    at.switch_page("app_pages/preferences.py").run()
    at.switch_page("app_pages/chat.py").run()  # the choice outlives a visit to another page
    assert at.sidebar.toggle(key="auto_facts_widget").value is False
    send(at, "I'm Ada.")
    assert len(env.requests) == len(env.chat_requests) == 1  # the chat call only: no facts call
    store = SqlStore.open(db_url)
    assert store.list_preferences("local") == [] and store.list_calls("local", purpose="facts") == []
    store.close()


def test_two_conversations_with_one_title_each_keep_their_own_messages(env, db_url):
    first = seed_conversation(db_url, "hi", ["hello from the first"])
    second = seed_conversation(db_url, "hi", ["hello from the second"])
    at = app()
    picker = next(s for s in at.sidebar.selectbox if s.label == "Open")
    assert len(set(picker.options)) == 2  # told apart although the titles are the same
    for target in (first, second, first):
        picker = next(s for s in at.sidebar.selectbox if s.label == "Open")
        picker.set_value(target).run()
        at = send(at, f"follow-up for {target}")
    store = SqlStore.open(db_url)
    try:
        users = {c: [m.content for m in store.page("local", c) if m.role == "user"] for c in (first, second)}
    finally:
        store.close()
    assert users[first] == ["hello from the first", f"follow-up for {first}", f"follow-up for {first}"]
    assert users[second] == ["hello from the second", f"follow-up for {second}"]


def test_a_message_sent_while_the_database_is_locked_is_kept_and_sent_again_after_a_reload(
    env, db_url, monkeypatch, tmp_path
):
    import sqlite3

    monkeypatch.setattr("memstore.database.SQLITE_BUSY_TIMEOUT_MS", 200)
    at = app()
    lock = sqlite3.connect(tmp_path / "app.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # another process holds the database
    try:
        at = send(at, "typed while the database was locked")
        assert any("Your message was not saved" in plain(w.value) and "busy" in plain(w.value) for w in at.warning)
        assert "typed while the database was locked" in [t.value for t in at.text]
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert env.chat_requests == []
    reloaded = app()  # a new browser session: the kept message is still there
    assert "typed while the database was locked" in [t.value for t in reloaded.text]
    reloaded.button(key=next(b.key for b in reloaded.button if b.label == "Send again")).click().run()
    assert not reloaded.exception
    assert bubbles(reloaded)[-2:] == [
        "typed while the database was locked",
        "echo: typed while the database was locked",
    ]
    assert not any("not saved" in plain(w.value) for w in reloaded.warning)  # sent, so no longer kept
    store = SqlStore.open(db_url)
    try:
        assert [m.content for m in store.page("local", 1)] == [
            "typed while the database was locked",
            "echo: typed while the database was locked",
        ]
    finally:
        store.close()


def test_a_read_only_database_is_said_at_once_and_chats_stay_temporary(env, db_url, tmp_path):
    import shutil
    import subprocess
    import sys

    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    # An app that ran before still holds the database, so its -wal and -shm files exist; then the folder and its
    # files are made immutable. (Another process, as in real life: one process's own mapping of -shm would fault.)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; sys.path.insert(0, sys.argv[1]); from memstore import SqlStore, MemorySettings; "
                "s = SqlStore.open(sys.argv[2]); s.create_conversation('local', 'Before', MemorySettings()); "
                "print('ready', flush=True); time.sleep(120)"
            ),
            str(ROOT),
            db_url,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        if subprocess.run(["chattr", "-R", "+i", str(tmp_path)]).returncode != 0:
            pytest.skip("chattr is not permitted here (it needs root)")
        try:
            at = app()
            assert any("Nothing can be saved right now" in plain(w.value) for w in at.warning)
            assert at.toggle[0].value is True and at.toggle[0].disabled  # temporary, and it says so
            at = send(at, "written to a read-only folder")
            assert bubbles(at)[-2:] == ["written to a read-only folder", "echo: written to a read-only folder"]
        finally:
            subprocess.run(["chattr", "-R", "-i", str(tmp_path)], check=True)
    finally:
        holder.kill()
        holder.wait()
    store = SqlStore.open(db_url)
    try:
        assert [c.title for c in store.list_conversations("local")] == ["Before"]
        assert store.page("local", 1) == []
    finally:
        store.close()


def test_an_empty_reply_says_so_and_offers_a_retry(env):
    env.expect(("reply", ""))
    at = send(app(), "Say nothing")
    assert any("finished without writing anything" in plain(e.value) for e in at.error)
    assert any(b.label == "Retry" for b in at.button)


def test_the_message_limit_setting_is_honoured_by_the_box_and_the_turn(env, monkeypatch):
    monkeypatch.setenv("MEMORYLAB_MAX_MESSAGE_CHARS", "100000")
    at = app()
    assert at.chat_input[0].max_chars == 100_000
    long = "word " * 8_000  # 40,000 characters
    at = send(at, long)
    assert bubbles(at)[0] == long.strip() and not at.error  # (the text element does not draw outer whitespace)
    store = SqlStore.open(os.environ["DATABASE_URL"])
    try:
        assert store.page("local", 1)[0].content == long  # stored exactly
    finally:
        store.close()


def test_a_huge_reply_draws_capped_and_math_cannot_cover_the_page(env):
    table = "| n | square |\n|---|---|\n" + "".join(f"| {i} | {i * i} |\n" for i in range(3_000))
    env.expect(("reply", "$\\rule{500em}{500em}$ and a table:\n\n" + table))
    at = send(app(), "draw a big table")
    reply = at.chat_message[1]
    shown = reply.markdown[0].value
    assert shown.startswith("\\$\\rule") and shown.count("\n") < 450  # math off; 3,000 rows not drawn at once
    more = [b for b in at.button if b.label.startswith("Show the rest of this reply")]
    assert more
    more[0].click().run()
    assert any("| 2999 | 8994001 |" in c.value for c in at.code)  # the rest, on demand, as plain text


def test_the_app_warns_when_reachable_from_other_machines_without_login(env):
    from streamlit import config

    assert config.get_option("server.address") == "127.0.0.1"  # the shipped default: loopback only
    at = app()
    assert not any("reachable from other machines" in plain(e.value) for e in at.error)
    config.set_option("server.address", "0.0.0.0")
    try:
        at = app()
        assert any("reachable from other machines" in plain(e.value) for e in at.error)
    finally:
        config.set_option("server.address", "127.0.0.1")


def test_forgetting_a_message_shows_what_changes_then_leaves_a_tombstone(env, db_url):
    at = send(app(), "my locker code is tangerine-4417")
    at = send(at, "what is the weather")
    forget = [b for b in at.button if b.key and b.key.startswith("forget_")]
    assert len(forget) == 4  # one per message
    forget[0].click().run()
    # turn 1's chat and facts calls, and turn 2's chat call (the window still holds turn 1)
    assert "This message appears in 3 model calls" in captions(at)
    [b for b in at.button if b.key == "forget_confirm"][0].click().run()
    assert not at.exception, at.exception
    assert "this message was forgotten on" in captions(at)
    assert any("was removed from 3 model calls" in plain(s.value) for s in at.success)
    store = SqlStore.open(db_url)
    first = store.page("local", 1)[0]
    assert first.status == "forgotten" and first.content == ""
    assert all("tangerine" not in m.content for c in store.list_calls("local", conversation_id=1) for m in c.request)
    store.close()


def test_forget_everything_about_me_states_the_counts_and_spares_other_users(env, db_url):
    send(app(), "hello, I am the local user")
    store = SqlStore.open(db_url)
    other = store.create_conversation("someone-else", "theirs", MemorySettings())
    store.add_user_message("someone-else", other.id, "their words", tokens=2, tokenizer="t")
    store.set_preference("someone-else", "name", "Grace")
    store.close()
    at = page("conversations.py")
    assert "1 conversation (2 messages)" not in captions(at)  # counted only when asked for
    [c for c in at.checkbox if c.key == "forget_me_open"][0].check().run()
    assert "1 conversation (2 messages)" in captions(at)
    confirm = [b for b in at.button if b.label == "Forget everything about me"][0]
    assert confirm.disabled
    [t for t in at.text_input if t.key == "forget_me_confirm"][0].set_value("forget me").run()
    [b for b in at.button if b.label == "Forget everything about me"][0].click().run()
    assert not at.exception, at.exception
    assert any("Forgotten: 1 conversation (2 messages)" in plain(s.value) for s in at.success)
    store = SqlStore.open(db_url)
    assert store.user_data("local").total == 0
    assert [m.content for m in store.page("someone-else", other.id)] == ["their words"]
    assert [(p.key, p.value) for p in store.list_preferences("someone-else")] == [("name", "Grace")]
    store.close()


def test_clear_memory_in_the_sidebar_empties_the_next_request_keeps_the_transcript_and_undoes(env, db_url):
    at = send(app(), "remember the blue door")
    assert [b for b in at.sidebar.button if b.label == "Undo clear"] == []
    [b for b in at.sidebar.button if b.label == "Clear memory"][0].click().run()
    assert not at.exception, at.exception
    assert "Memory was cleared after turn 1" in captions(at)
    assert bubbles(at)[:2] == ["remember the blue door", "echo: remember the blue door"]  # transcript kept
    assert [b for b in at.sidebar.button if b.label == "Clear memory"][0].disabled  # nothing new to clear
    [b for b in at.sidebar.button if b.label == "Undo clear"][0].click().run()
    assert "Memory was cleared" not in captions(at)
    store = SqlStore.open(db_url)
    assert store.get_conversation("local", 1).memory_from_turn == 1
    store.close()


def test_a_new_system_prompt_is_what_the_next_turn_sends(env):
    at = app()
    assert not at.sidebar.text_area  # the box is drawn only when "System prompt" is opened
    at.session_state[f"system_prompt_open_{S1}"] = True
    at.run()
    at.sidebar.text_area(key=f"system_prompt_{S1}").set_value("You answer like a pirate.").run()
    assert code_blocks(open_tab(at, "Next request"))[0].startswith("You answer like a pirate.")
    at = send(at, "Hello")
    assert env.chat_requests[-1]["messages"][0]["content"].startswith("You answer like a pirate.")
    at.session_state[f"system_prompt_open_{S1}"] = False  # closing the box keeps the prompt
    at = send(at.run(), "Hello again")
    assert env.chat_requests[-1]["messages"][0]["content"].startswith("You answer like a pirate.")


def test_the_messages_of_a_turn_can_be_forgotten_as_soon_as_it_ends(env, db_url):
    """When a turn ends its two messages have their menus and the header counts them (no second run needed)."""
    at = send(app(), "My secret is 4711")
    store = SqlStore.open(db_url)
    ids = [m.id for m in store.page("local", 1)]
    store.close()
    assert {f"forget_{i}" for i in ids} <= {b.key for b in at.button}
    assert "2 messages" in captions(at)  # the header counts them too
