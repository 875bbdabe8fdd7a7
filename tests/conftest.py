"""Fixtures: every store implementation, a fake model, and a user id."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import postgres  # noqa: E402
from memstore import SqlStore  # noqa: E402
from memstore.database import create_db_engine, head_revision  # noqa: E402

# PostgreSQL runs whenever it is installed (a throw-away cluster) or MEMORYLAB_TEST_POSTGRES_URL names one.
POSTGRES = postgres.ThrowawayPostgres()
STORE_KINDS = ["sqlite", "memory", "postgresql"]  # one SqlStore over three databases
SQL_KINDS = ["sqlite", "postgresql"]


NOT_RUN = {
    "postgresql": "PostgreSQL is not installed, so the storage tests ran on SQLite only",
    "chromium": "Debian's chromium is not installed, so the browser tests did not run",
}
ENABLE = "./install.sh --dev   (as root or with sudo: it installs Debian's chromium and postgresql)"


def _reset_postgres(url: str) -> None:
    """An empty database at the newest schema: emptied (TRUNCATE, ids restarted) when already there, else rebuilt."""
    engine = create_db_engine(url)
    with engine.begin() as conn:
        tables = [row[0] for row in conn.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        version = (
            conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            if "alembic_version" in tables
            else None
        )
        if version == head_revision():
            data = ", ".join(f'"{t}"' for t in tables if t != "alembic_version")
            if data:
                conn.exec_driver_sql(f"TRUNCATE {data} RESTART IDENTITY CASCADE")
        else:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


def make_sql_store(kind: str, tmp_path: Path) -> SqlStore:
    if kind == "sqlite":
        return SqlStore.open(f"sqlite:///{tmp_path / 'memorylab.db'}")
    if kind == "memory":
        return SqlStore.in_memory()  # what a temporary chat uses
    if not postgres.available():
        pytest.skip(NOT_RUN["postgresql"])
    url = POSTGRES.start()
    _reset_postgres(url)
    return SqlStore.open(url)


@pytest.fixture(params=STORE_KINDS)
def store(request, tmp_path):
    """Every TranscriptStore implementation, fresh for each test."""
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
    """Markdown as the reader sees it: backslash escapes (from ui.render.literal) removed, line breaks kept."""
    import re

    return re.sub(r"\\(.)", r"\1", markdown).replace("  \n", "\n")


# -- the run's report: time per file, and what did not run ------------------------------------------


def pytest_collection_modifyitems(items):
    """Browser tests are marked `browser`; tests that run a real model or processes are marked `slow`."""
    slow_files = {"test_local_model.py", "test_reliability.py"}
    for item in items:
        name = item.path.name
        if name.startswith("test_browser"):
            item.add_marker(pytest.mark.browser)
        if name in slow_files:
            item.add_marker(pytest.mark.slow)


_FILE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    file = report.nodeid.split("::", 1)[0]
    _FILE_SECONDS[file] = _FILE_SECONDS.get(file, 0.0) + report.duration


def pytest_sessionfinish(session):
    POSTGRES.stop()


def pytest_terminal_summary(terminalreporter):
    if _FILE_SECONDS:
        terminalreporter.section("run time per file")
        for file, seconds in sorted(_FILE_SECONDS.items(), key=lambda kv: -kv[1]):
            terminalreporter.write_line(f"{seconds:7.1f} s  {file}")
        terminalreporter.write_line(f"{sum(_FILE_SECONDS.values()):7.1f} s  in all")
    skipped = terminalreporter.stats.get("skipped", [])
    reasons: dict[str, int] = {}
    for report in skipped:
        text = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
        for key, sentence in NOT_RUN.items():
            if sentence in text:
                reasons[key] = reasons.get(key, 0) + 1
    if reasons:
        terminalreporter.section("NOT EVERY TEST RAN", sep="!", red=True, bold=True)
        for key, count in reasons.items():
            terminalreporter.write_line(f"{count} skipped: {NOT_RUN[key]}.", red=True, bold=True)
        terminalreporter.write_line(f"To run them all: {ENABLE}", red=True, bold=True)
