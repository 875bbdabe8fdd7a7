"""A real browser: `streamlit run app.py` driven by Playwright in Debian's Chromium."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from browser import ARTIFACTS, browser_page, message_texts, serve_app, sync_api, wait_for_chat_call
from memstore import SqlStore
from openai_server import FakeOpenAIServer


@pytest.fixture
def running_app(tmp_path):
    """The app on a free 127.0.0.1 port, talking to a local OpenAI-compatible server."""
    with (
        FakeOpenAIServer() as server,
        serve_app(tmp_path, OPENAI_BASE_URL=server.base_url, OPENAI_MODEL="gpt-4o-mini", OPENAI_MAX_RETRIES="0") as url,
    ):
        yield url, server


def test_window_k1_evicts_the_first_turn_in_panel_and_request(running_app):
    url, server = running_app
    with browser_page() as page:
        page.goto(url)
        chat_box = page.get_by_test_id("stChatInputTextArea")
        chat_box.wait_for(timeout=30_000)
        page.get_by_test_id("stSelectbox").filter(has_text="Memory type").click()
        page.get_by_role("option", name="Buffer (every turn)").click()
        page.get_by_text("Sends every earlier turn word for word").first.wait_for()

        for text in ["My name is Alice.", "I love green tea.", "I live in Oslo."]:
            chat_box.fill(text)
            chat_box.press("Enter")
            page.get_by_text(f"echo: {text}").first.wait_for(timeout=30_000)
            page.wait_for_function("() => !document.querySelector('[data-testid=stChatInputTextArea]').disabled")
        assert len(server.chat_requests) == 3
        # The conversation picker shows the title the first message gave the chat, not "New chat".
        picker = page.get_by_test_id("stSelectbox").filter(has_text="Open")
        shown = picker.locator("input").input_value() + picker.text_content()
        assert "My name is Alice." in shown and "New chat" not in shown

        page.get_by_test_id("stSelectbox").filter(has_text="Memory type").click()
        page.get_by_role("option", name="Window (last k turns)").click()
        k_box = page.get_by_role("spinbutton", name="Window size k (turns)")
        k_box.wait_for()
        page.wait_for_function("() => !document.querySelector('input[aria-label=\"Window size k (turns)\"]').disabled")
        k_box.fill("1")
        k_box.press("Enter")
        page.get_by_text("k = 1 turns = 2 messages").wait_for(timeout=30_000)
        panel = page.get_by_text("Turn 1 · out of the window since turn 3")
        panel.wait_for(timeout=30_000)
        page.get_by_text("Turn 2 · out of the window since turn 4").wait_for()  # the panel may still be drawing
        page.get_by_text("Fell out: 2 turns").wait_for()
        assert page.get_by_text("Turn 2 · out of the window since turn 4").count() == 1
        assert page.get_by_text("Fell out: 2 turns").count() == 1
        assert len(server.chat_requests) == 3  # changing memory sent nothing

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "browser-window-k1.png"))

        chat_box.fill("What is my name?")
        chat_box.press("Enter")
        page.get_by_text("echo: What is my name?").first.wait_for(timeout=30_000)
        sent = [(m["role"], m["content"]) for m in server.chat_requests[-1]["messages"]]
        assert sent[1:] == [
            ("user", "I live in Oslo."),
            ("assistant", "echo: I live in Oslo."),
            ("user", "What is my name?"),
        ]
        assert sent[0][0] == "system"
        assert page.get_by_test_id("stException").count() == 0
        page.screenshot(path=str(ARTIFACTS / "browser-after-turn-4.png"))


def test_compare_page_draws_the_chart_and_every_types_payload(running_app):
    url, server = running_app
    with browser_page(height=1400) as page:
        page.goto(f"{url}/compare")
        page.get_by_role("button", name="Replay").click()
        page.get_by_text("Tokens sent per turn").wait_for(timeout=60_000)
        chart = page.get_by_test_id("stVegaLiteChart").first
        chart.wait_for(timeout=30_000)
        page.wait_for_function(
            "() => document.querySelector('[data-testid=stVegaLiteChart] canvas, [data-testid=stVegaLiteChart] svg')",
            timeout=30_000,
        )
        box = chart.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
        for label in (
            "No memory",
            "Buffer (every turn)",
            "Window (last k turns)",
            "Token window",
            "Summary",
            "Summary + buffer",
            "Retrieval (window + recalled turns)",
            "Entity (window + what is known about names)",
        ):
            assert page.get_by_text(f"{label} ·", exact=False).count() >= 1, label
        assert page.get_by_test_id("stException").count() == 0
        assert server.chat_requests == []  # a replay calls memory models only, never the chat
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "browser-compare.png"), full_page=True)


def test_two_tabs_on_one_conversation_both_keep_their_turns(running_app):
    url, server = running_app
    with browser_page(pages=2) as (first, second):
        first.goto(url)
        box = first.get_by_test_id("stChatInputTextArea")
        box.wait_for(timeout=30_000)
        box.fill("From tab one")
        box.press("Enter")
        first.get_by_text("echo: From tab one").first.wait_for(timeout=30_000)
        second.goto(url)  # a second session opens the most recent conversation: the same one
        second.get_by_text("echo: From tab one").first.wait_for(timeout=30_000)
        other = second.get_by_test_id("stChatInputTextArea")
        other.fill("From tab two")
        other.press("Enter")
        second.get_by_text("echo: From tab two").first.wait_for(timeout=30_000)
        box.fill("Tab one again")
        box.press("Enter")
        first.get_by_text("echo: Tab one again").first.wait_for(timeout=30_000)
        first.reload()
        first.get_by_text("echo: Tab one again").first.wait_for(timeout=30_000)
        bubbles = message_texts(first)
        assert bubbles == [
            "From tab one",
            "echo: From tab one",
            "From tab two",
            "echo: From tab two",
            "Tab one again",
            "echo: Tab one again",
        ]
        # Tab one's third turn was built from the stored transcript, so it saw tab two's turn.
        assert [m["content"] for m in server.chat_requests[-1]["messages"] if m["role"] == "user"] == [
            "From tab one",
            "From tab two",
            "Tab one again",
        ]


def test_retrieval_recalls_an_old_turn_and_a_saved_fact_can_be_undone(running_app):
    url, server = running_app
    with browser_page(height=1400) as page:
        page.goto(url)
        chat_box = page.get_by_test_id("stChatInputTextArea")
        chat_box.wait_for(timeout=60_000)
        page.get_by_test_id("stSelectbox").filter(has_text="Memory type").click()
        page.get_by_role("option", name="Retrieval (window + recalled turns)").click()
        page.get_by_text("Recall top k (old turns)").first.wait_for()

        server.expect(("reply", "Nice to meet you, Priya."), ("reply", '{"name": "Priya", "dog": "Biscuit"}'))
        turns = [
            "I'm Priya and my dog Biscuit is a border collie.",
            "I play the cello on Thursdays.",
            "What's the capital of Australia?",
            "Give me a stretching routine.",
            "Recommend a novel.",
        ]
        for text in turns:
            chat_box.fill(text)
            chat_box.press("Enter")
            reply = "Nice to meet you, Priya." if text == turns[0] else f"echo: {text}"
            page.get_by_text(reply).first.wait_for(timeout=30_000)
            page.wait_for_function("() => !document.querySelector('[data-testid=stChatInputTextArea]').disabled")
            if text == turns[0]:
                page.get_by_text("Memory updated").first.wait_for(timeout=30_000)
                assert page.get_by_text("Saved name: Priya").count() == 1
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "browser-memory-updated.png"), full_page=True)
                page.get_by_role("button", name="Undo").first.click()
                page.get_by_text("Undone.").first.wait_for(timeout=10_000)
        page.screenshot(path=str(ARTIFACTS / "browser-retrieval-turns.png"), full_page=True)
        assert page.get_by_text("Memory updated").count() == 0  # the notice belongs to the turn that saved the fact
        page.get_by_role("tab", name="Next request").click()
        preview = page.get_by_role("textbox", name="Preview a message")
        preview.fill("What breed is my dog?")
        preview.press("Enter")
        page.get_by_text("most similar").first.wait_for(timeout=30_000)
        page.get_by_role("tab", name="Holds now").click()
        page.screenshot(path=str(ARTIFACTS / "browser-retrieval.png"), full_page=True)
        recalled = page.get_by_text("turn 1 of this conversation").first
        recalled.wait_for(timeout=30_000)
        assert page.get_by_test_id("stException").count() == 0
        page.screenshot(path=str(ARTIFACTS / "browser-retrieval.png"), full_page=True)


def test_pick_download_and_chat_with_a_stronger_model_from_a_fake_hub(tmp_path):
    """No settings: the picker lists the bundled model, a local server on LM Studio's port and the download list;
    a model downloads from a local server posing as the Hugging Face Hub, with progress, and then answers."""
    from fake_hub import FakeHub
    from memstore.llm.local_server import bundled_model_path

    gguf = bundled_model_path()
    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
    models = tmp_path / "models.json"
    models.write_text(
        json.dumps(
            {
                "format": "memorylab.models/1",
                "models": [
                    {
                        "key": "test-model",
                        "label": "Test Model 135M",
                        "repo_id": "memorylab-test/Test-GGUF",
                        "filename": "test-model.gguf",
                        "size_bytes": gguf.stat().st_size,
                        "sha256": digest,
                        "license": "Apache-2.0",
                        "note": "The bundled weights under a test name.",
                        "context_tokens": 4096,
                    }
                ],
            }
        )
    )
    detected = None
    try:
        detected = FakeOpenAIServer(port=1234)  # LM Studio's usual port
        detected.models = ["lmstudio-test-model"]
    except OSError:
        pass  # something really listens there; the rest of the test still runs
    with FakeHub(bytes_per_s=15_000_000) as hub, detected or FakeOpenAIServer():
        hub.add_file("memorylab-test/Test-GGUF", "test-model.gguf", gguf)
        with (
            serve_app(
                tmp_path,
                HF_ENDPOINT=hub.endpoint,
                HF_HUB_CACHE=str(tmp_path / "hub"),
                MEMORYLAB_MODELS_FILE=str(models),
                HF_HUB_DISABLE_TELEMETRY="1",
            ) as url,
            browser_page(height=1400) as page,
        ):
            page.goto(url)
            page.get_by_test_id("stChatInputTextArea").wait_for(timeout=60_000)
            sidebar = page.get_by_test_id("stSidebar")
            picker = sidebar.get_by_test_id("stSelectbox").first
            picker.click()
            options = page.get_by_role("option").all_inner_texts()
            assert options[0].startswith("Bundled: SmolLM2-135M-Instruct")
            if detected is not None:
                assert "LM Studio :1234: lmstudio-test-model" in options
            page.keyboard.press("Escape")
            sidebar.get_by_test_id("stExpander").filter(has_text="Download a stronger model").click()
            sidebar.get_by_text("Test Model 135M").wait_for()
            assert sidebar.get_by_text("Apache-2.0").count() >= 1
            sidebar.get_by_role("button", name="Download").click()
            progress = sidebar.get_by_test_id("stProgress").filter(has_text=re.compile(r"\d+ MB of 98 MB"))
            progress.first.wait_for(timeout=30_000)  # "24 MB of 98 MB · about 5 s left"
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "browser-download-progress.png"))
            first_seen = int(re.search(r"(\d+) MB of", progress.first.inner_text()).group(1))
            sidebar.get_by_text("Downloaded: pick it in the Model list above.").wait_for(timeout=120_000)
            assert first_seen < 98 and hub.requests_for("GET")  # progress was shown before the end
            downloaded = page.get_by_role("option", name="Downloaded: Test Model 135M")
            for _ in range(10):  # the page reruns once more after the caption: a list opened before it is stale
                picker.click()
                try:
                    downloaded.wait_for(timeout=5_000)
                    break
                except sync_api.TimeoutError:
                    page.keyboard.press("Escape")
            downloaded.click()
            page.get_by_text("Sent to Test Model 135M on this machine").wait_for(timeout=60_000)
            box = page.get_by_test_id("stChatInputTextArea")
            box.fill("Say hello in one short sentence.")
            box.press("Enter")
            store = SqlStore.open(f"sqlite:///{tmp_path / 'browser.db'}")
            try:
                call = wait_for_chat_call(store)
                assert (call.model, call.provider, call.error) == ("Test Model 135M", "local", None)
                assert call.reply.strip() and call.usage.completion_tokens > 0
            finally:
                store.close()
            page.get_by_text(call.reply.strip()[:30]).first.wait_for(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "browser-downloaded-model.png"))
            assert page.get_by_test_id("stException").count() == 0


def test_upload_a_chatgpt_export_preview_and_import(running_app, tmp_path):
    """The upload path AppTest cannot drive: a zip from ChatGPT, previewed and imported; hostile text stays text."""
    import io
    import zipfile

    from sources import chatgpt_conversation

    url, _ = running_app
    hostile = "<img src=http://127.0.0.1:9/canary.png onerror=alert(1)> **bold** $x$"
    export = [
        chatgpt_conversation(hostile, [("My name is Ada.", "Hello Ada."), ("Who am I?", "Ada.")], conversation_id="c1"),
        chatgpt_conversation("Second", [("hi", "hello")], conversation_id="c2"),
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("conversations.json", json.dumps(export))
    upload = tmp_path / "chatgpt-export.zip"
    upload.write_bytes(buffer.getvalue())
    with browser_page(height=1600) as page:
        outside: list[str] = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(url) else None)
        page.goto(url + "/conversations")
        page.get_by_text("ChatGPT data export").click()
        page.get_by_text("conversations.json or the export's zip (upload)").wait_for()
        page.locator("input[type=file]").set_input_files(str(upload))
        page.get_by_role("button", name="Preview").click()
        page.get_by_text("Found 2 conversations (", exact=False).wait_for()
        page.get_by_role("button", name="Import", exact=True).click()
        page.get_by_text("Imported 2 conversations", exact=False).wait_for()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "import-chatgpt.png"), full_page=True)
        assert outside == []
    store = SqlStore.open(f"sqlite:///{tmp_path / 'browser.db'}")
    titles = sorted(c.title for c in store.list_conversations("local"))
    store.close()
    assert titles == sorted(["Second", " ".join(hostile.split())])


def test_the_first_run_tour_walks_through_and_never_comes_back(running_app):
    url, _ = running_app
    with browser_page(height=1200) as page:
        page.goto(url)
        page.get_by_text("Tour 1 of 5 · The chat").wait_for()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "tour-1.png"))
        for heading in ("The memory panel", "Memory type and k", "Preferences", "Compare"):
            page.get_by_role("button", name="Next").click()
            page.get_by_text(f"· {heading}", exact=False).wait_for()
        page.get_by_role("link", name="Open Compare").wait_for()
        page.get_by_role("button", name="Done").click()
        page.get_by_text("Tour 5 of 5", exact=False).wait_for(state="detached")
        page.reload()
        page.get_by_placeholder("Message Memory Lab").wait_for()
        page.wait_for_timeout(1500)
        assert page.get_by_text("Tour 1 of 5", exact=False).count() == 0


def test_a_teacher_uploads_a_lesson_from_the_readme_and_runs_it(running_app, tmp_path):
    """The README's example lesson, uploaded as a file (with a hostile title), is listed, checked and revealed."""
    from sources import readme_example_lesson

    url, _ = running_app
    lesson = json.loads(readme_example_lesson())
    lesson["title"] = "City <img src=http://127.0.0.1:9/x.png> **k=2**"
    path = tmp_path / "my-lesson.json"
    path.write_text(json.dumps(lesson), encoding="utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"title": "no goal"}), encoding="utf-8")
    with browser_page(height=1600) as page:
        outside: list[str] = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(url) else None)
        page.goto(url + "/lessons")
        page.get_by_text("Your own lesson file").click()
        page.get_by_text("Lesson file", exact=True).wait_for()
        page.locator("input[type=file]").set_input_files(str(broken))
        page.get_by_text("broken.json").wait_for()
        page.get_by_role("button", name="Add the lesson").click()
        page.get_by_text("'goal' is a required property", exact=False).wait_for()
        page.locator("input[type=file]").set_input_files(str(path))
        page.get_by_text("my-lesson.json").wait_for()
        page.get_by_role("button", name="Add the lesson").click()
        page.get_by_text("See a fact fall out of a window of two turns.", exact=False).wait_for()
        page.get_by_role("button", name="Reveal", exact=True).click()
        page.get_by_text("Reveal: you got", exact=False).wait_for()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "own-lesson.png"), full_page=True)
        shown = page.locator("[data-testid=stSelectbox]").evaluate_all(
            "els => els.map(e => e.innerText + ' ' + [...e.querySelectorAll('input')].map(i => i.value).join(' '))"
            ".join(' ')"
        )
        assert "City <img src=http://127.0.0.1:9/x.png> **k=2**" in shown  # the title as text, not an image
        assert page.locator("img[src*='127.0.0.1:9']").count() == 0
        assert outside == []
