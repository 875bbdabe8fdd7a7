"""Fixtures: every store implementation, a fake model, and a user id."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from memstore import SqlStore, TemporaryStore  # noqa: E402
from memstore.database import create_db_engine  # noqa: E402

POSTGRES_URL = os.environ.get("MEMORYLAB_TEST_POSTGRES_URL")
STORE_KINDS = ["sqlite", "temporary"] + (["postgresql"] if POSTGRES_URL else [])
SQL_KINDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


def _reset_postgres(url: str) -> None:
    engine = create_db_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


def make_sql_store(kind: str, tmp_path: Path) -> SqlStore:
    if kind == "sqlite":
        return SqlStore.open(f"sqlite:///{tmp_path / 'memorylab.db'}")
    assert POSTGRES_URL
    _reset_postgres(POSTGRES_URL)
    return SqlStore.open(POSTGRES_URL)


@pytest.fixture(params=STORE_KINDS)
def store(request, tmp_path):
    """Every TranscriptStore implementation, fresh for each test."""
    if request.param == "temporary":
        yield TemporaryStore()
        return
    sql = make_sql_store(request.param, tmp_path)
    yield sql
    sql.close()


@pytest.fixture(params=SQL_KINDS)
def sql_store(request, tmp_path):
    """Every SQL database the project supports, fresh for each test."""
    sql = make_sql_store(request.param, tmp_path)
    yield sql
    sql.close()


@pytest.fixture
def fake_server():
    """A local OpenAI-compatible server on 127.0.0.1 (see openai_server.py)."""
    from openai_server import FakeOpenAIServer

    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def app_env(fake_server, tmp_path, monkeypatch):
    """Settings that point the app at a fresh SQLite file and the local server; yields the server."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'app.db'}")
    monkeypatch.setenv("MEMORYLAB_DATA_DIR", str(tmp_path / "data"))  # the outbox lives here
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.base_url)
    monkeypatch.setenv("OPENAI_MODEL", "gpt-4o-mini")
    monkeypatch.setenv("OPENAI_MAX_RETRIES", "0")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return fake_server


def run_page(path: str, *, timeout: float = 60):
    """Run app.py or a page under AppTest and fail on any exception it shows."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / path), default_timeout=timeout)
    at.run()
    assert not at.exception, at.exception
    return at


def plain(markdown: str) -> str:
    """Markdown as the reader sees it: backslash escapes (from ui_text.literal) removed, line breaks kept."""
    import re

    return re.sub(r"\\(.)", r"\1", markdown).replace("  \n", "\n")
