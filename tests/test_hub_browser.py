"""The model picker's Download against a hostile Hub on 127.0.0.1, in real Chromium (issue 24, items 1 and 10)."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from browser import ARTIFACTS, browser_page, serve_app
from fake_hub import FakeHub, Lie
from memstore import MemorySettings, SqlStore

REPO = "memorylab-test/Hostile-GGUF"
PAYLOAD = random.Random(24).randbytes(200_000)
TITLE = "Passport renewal plans"


def _entry(key: str, label: str, filename: str, **extra: object) -> dict:
    return {
        "key": key,
        "label": label,
        "repo_id": REPO,
        "filename": filename,
        "size_bytes": len(PAYLOAD),
        "license": "Apache-2.0",
        "note": "Served by a hostile Hub.",
        **extra,
    }


def _everything_outside(root: Path, cache: Path) -> set[str]:
    return {str(p) for p in root.rglob("*") if not (p == cache or p.is_relative_to(cache))}


def test_download_from_a_hostile_hub_keeps_the_database_and_says_what_went_wrong(tmp_path):
    """An ETag naming the app's database and a GET far longer than its HEAD: two sentences, nothing lost."""
    db_url = f"sqlite:///{tmp_path / 'browser.db'}"  # the database serve_app gives the app
    store = SqlStore.open(db_url)
    try:
        store.create_conversation("local", TITLE, MemorySettings("buffer"))
    finally:
        store.close()
    models = tmp_path / "models.json"
    models.write_text(
        json.dumps(
            {
                "format": "memorylab.models/1",
                "models": [
                    # the attack run: the checksum cleanup deleted the file the ETag named, the app's database
                    _entry("etag", "Path ETag Model", "etag.gguf", sha256=hashlib.sha256(b"other").hexdigest()),
                    # HEAD says 1 kB, GET sends 30 MB: all of it was written, and the page said "sent less"
                    _entry("long", "Long Body Model", "long.gguf"),
                ],
            }
        )
    )
    cache = tmp_path / "hub"
    with FakeHub() as hub:
        hub.add_file(REPO, "etag.gguf", PAYLOAD)
        hub.lie(REPO, "etag.gguf", Lie(etag="../../../browser.db"))  # hub/models--…/blobs/../../../browser.db
        hub.add_file(REPO, "long.gguf", PAYLOAD)
        hub.lie(REPO, "long.gguf", Lie(head_size=1_000, body=PAYLOAD * 150))
        with (
            serve_app(
                tmp_path,
                HF_ENDPOINT=hub.endpoint,
                HF_HUB_CACHE=str(cache),
                MEMORYLAB_MODELS_FILE=str(models),
                HF_HUB_DISABLE_TELEMETRY="1",
            ) as url,
            browser_page(height=1400) as page,
        ):
            page.goto(url)
            page.get_by_test_id("stChatInputTextArea").wait_for(timeout=60_000)
            before = _everything_outside(tmp_path, cache)
            sidebar = page.get_by_test_id("stSidebar")
            sidebar.get_by_test_id("stExpander").filter(has_text="Download a stronger model").click()
            sidebar.get_by_text("Path ETag Model").wait_for()
            sidebar.get_by_role("button", name="Download", exact=True).first.click()
            sidebar.get_by_text("does not match the sha256 in the model list").wait_for(timeout=60_000)
            assert (tmp_path / "browser.db").is_file(), "the checksum cleanup deleted the app's database"
            assert not (tmp_path / "browser.db.lock").exists()
            sidebar.get_by_role("button", name="Download", exact=True).first.click()
            too_long = sidebar.get_by_text("sent more of Long Body Model than the 1 kB it said")
            too_long.wait_for(timeout=60_000)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "browser-hostile-hub.png"))
            assert sidebar.get_by_text("sent less").count() == 0
            assert page.get_by_test_id("stException").count() == 0
            page.goto(f"{url}/conversations")
            # still listed, from the same database file: the table is a canvas, so its buttons tell
            page.get_by_role("button", name="Open in chat").wait_for(timeout=60_000)
            assert page.get_by_text("No saved conversations yet").count() == 0
            created = _everything_outside(tmp_path, cache) - before
            the_apps = (str(tmp_path / "data"), str(tmp_path / "browser.db-"))  # its data folder, SQLite's -wal
            assert not [p for p in created if not p.startswith(the_apps)], created  # no .lock, no blob
    store = SqlStore.open(db_url)  # as after a restart of the app
    try:
        assert [c.title for c in store.list_conversations("local")] == [TITLE]
    finally:
        store.close()
    real_cache = cache.resolve()
    assert all(p.resolve().is_relative_to(real_cache) for p in cache.rglob("*"))
    assert not [p for p in cache.rglob("*") if p.name.endswith(".incomplete")]
