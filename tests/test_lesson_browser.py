"""Crafted lesson files uploaded on the Lessons page in real Chromium: one sentence each, no traceback, not added."""

from __future__ import annotations

import json

import pytest

from browser import ARTIFACTS, browser_page, serve_app, sync_api
from openai_server import FakeOpenAIServer
from sources import readme_example_lesson

pytestmark = pytest.mark.browser


def test_a_crafted_lesson_upload_gets_one_sentence_and_is_not_added(tmp_path):
    lesson = json.loads(readme_example_lesson())
    floats = dict(lesson, title="Float turn", question=dict(lesson["question"], at_turn=4.0))
    deep = json.dumps(dict(lesson, title="Deep types", types="NESTED")).replace(
        '"NESTED"', "[" * 500 + '"buffer"' + "]" * 500
    )
    files = {
        "float-turn.json": (json.dumps(floats), "question/at_turn: 4.0 is not of type 'integer'"),
        "deep-types.json": (deep, "Lesson 'deep-types' nests its data more than 10 levels deep."),
        "float-window.json": (
            json.dumps(dict(lesson, title="Float window", settings={"window_turns": 2.0, "max_tokens": 100})),
            "settings/window_turns: 2.0 is not of type 'integer'",
        ),
    }
    with (
        FakeOpenAIServer() as server,
        serve_app(tmp_path, OPENAI_BASE_URL=server.base_url, OPENAI_MODEL="gpt-4o-mini") as url,
        browser_page(height=1400) as page,
    ):
        page.goto(url + "/lessons")
        page.get_by_text("Your own lesson file").click()
        page.get_by_text("Lesson file", exact=True).wait_for()
        for name, (text, sentence) in files.items():
            path = tmp_path / name
            path.write_text(text, encoding="utf-8")
            page.locator("input[type=file]").set_input_files(str(path))
            page.get_by_text(name).wait_for()
            alerts = page.get_by_test_id("stAlert").filter(has_text="The lesson was not added")
            for _ in range(6):  # under load the click can reach the app before the upload does: click again
                page.get_by_role("button", name="Add the lesson").click()
                try:
                    alerts.filter(has_text=sentence).wait_for(timeout=15_000)
                    break
                except sync_api.TimeoutError:
                    continue
            alerts.filter(has_text=sentence).wait_for()
            assert alerts.count() == 1  # one sentence, this file's
            assert page.get_by_test_id("stException").count() == 0, name
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "lesson-crafted-upload.png"), full_page=True)
        page.get_by_test_id("stSelectbox").filter(has_text="Lesson").click()
        listed = page.get_by_role("option").all_inner_texts()
        assert len(listed) == 12  # the bundled lessons only: nothing crafted was added
        assert not any(title in " ".join(listed) for title in ("Float turn", "Deep types", "Float window"))
        assert page.get_by_test_id("stException").count() == 0
