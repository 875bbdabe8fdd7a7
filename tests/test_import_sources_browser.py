"""Issue 24, item 8, as a user meets it: one poisoned session in an uploaded LangChain database (real Chromium)."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from browser import ARTIFACTS, browser_page, serve_app
from memstore import SqlStore
from sources import langchain_sql_db


def test_import_all_skips_the_one_poisoned_session_and_says_why(tmp_path):
    upload = tmp_path / "chat.db"
    sessions = {f"s{n}": [HumanMessage(f"question {n}"), AIMessage(f"answer {n}")] for n in range(6)}
    sessions["poisoned"] = [SystemMessage("Be brief.\x00"), HumanMessage("hi"), AIMessage("hello")]
    langchain_sql_db(upload, sessions)
    with serve_app(tmp_path) as url, browser_page(height=1600) as page:
        page.goto(url + "/conversations")
        page.get_by_text("LangChain SQLChatMessageHistory").click()
        page.get_by_text("The SQLite file (upload)").wait_for()
        page.locator("input[type=file]").set_input_files(str(upload))
        page.get_by_role("button", name="Preview").click()
        page.get_by_text("7 conversations", exact=False).wait_for()
        page.get_by_text("6 can be imported, 1 cannot be imported", exact=False).wait_for()
        page.get_by_role("button", name="Import", exact=True).click()
        done = page.get_by_text("Imported 6 conversations", exact=False)
        done.wait_for()
        said = done.inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "import-one-poisoned-session.png"), full_page=True)
        assert "1 that cannot be imported was skipped" in said
        assert "LangChain session poisoned" in said and "NUL byte" in said
        assert page.get_by_test_id("stException").count() == 0
    store = SqlStore.open(f"sqlite:///{tmp_path / 'browser.db'}")
    titles = sorted(c.title for c in store.list_conversations("local"))
    store.close()
    assert titles == [f"LangChain session s{n}" for n in range(6)]
