"""Issue 24, item 2 where a user meets it: a 131 KB ChatGPT zip holding a 128 MB reply, uploaded on Conversations."""

from __future__ import annotations

import sqlite3

import pytest
from test_import_caps import bomb_zip

from browser import ARTIFACTS, browser_page, serve_app
from openai_server import FakeOpenAIServer

pytestmark = pytest.mark.browser


def test_a_zip_bomb_upload_is_read_no_further_and_the_rest_imports(tmp_path):
    upload = tmp_path / "chatgpt-export.zip"
    upload.write_bytes(bomb_zip(128))
    assert upload.stat().st_size < 200_000
    with (
        FakeOpenAIServer() as server,
        serve_app(tmp_path, OPENAI_BASE_URL=server.base_url, OPENAI_MODEL="gpt-4o-mini") as url,
        browser_page(height=1600) as page,
    ):
        page.goto(url + "/conversations")
        page.get_by_text("ChatGPT data export").click()
        page.get_by_text("conversations.json or the export's zip (upload)").wait_for()
        page.locator("input[type=file]").set_input_files(str(upload))
        page.get_by_role("button", name="Preview").click()
        page.get_by_text("1 can be imported, 1 cannot be imported.", exact=False).wait_for()
        page.get_by_role("button", name="Import", exact=True).click()
        page.get_by_text(
            "Imported 1 conversation; 1 that cannot be imported was skipped (“Bomb”: message 2 is longer than "
            "32,000 characters (the limit, MEMORYLAB_MAX_MESSAGE_CHARS), so it was read no further).",
            exact=False,
        ).wait_for()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "import-zip-bomb.png"), full_page=True)
        assert page.get_by_test_id("stException").count() == 0
    with sqlite3.connect(tmp_path / "browser.db") as db:
        titles = [row[0] for row in db.execute("SELECT title FROM conversations")]
        longest = db.execute("SELECT max(length(content)), count(*) FROM messages").fetchone()
    assert titles == ["Fine"]
    assert longest == (5, 2)  # "hello" and "there": nothing of the 128 MB reply was stored
