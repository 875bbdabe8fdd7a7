"""Schema migrations: a blank database, an upgrade from the first revision, and a newer schema refused."""

from __future__ import annotations

import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from memstore import MemorySettings, SqlStore, StorageError
from memstore.database import create_db_engine, head_revision, upgrade
from memstore.schema import Base


def test_blank_database_is_created_at_head_with_pragmas(tmp_path):
    path = tmp_path / "new" / "folder" / "memorylab.db"
    store = SqlStore.open(f"sqlite:///{path}")
    assert path.exists()
    with store.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    store.close()


def test_a_new_file_copied_from_the_template_has_the_schema_the_migrations_build(tmp_path):
    """New SQLite files (and temporary chats) start as a copy of a migrated template instead of running Alembic."""
    copied = SqlStore.open(f"sqlite:///{tmp_path / 'copied.db'}")
    copied.close()
    migrated_engine = create_db_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    with migrated_engine.connect() as conn:
        upgrade(conn, "head")
    migrated_engine.dispose()

    def schema(name: str) -> list[tuple]:
        with sqlite3.connect(tmp_path / name) as conn:
            return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()

    assert schema("copied.db") == schema("migrated.db") and len(schema("copied.db")) > 10


def test_migrations_build_exactly_the_declared_models(sql_store):
    with sql_store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_from_first_revision_keeps_data(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_db_engine(url)
    with engine.connect() as conn:
        upgrade(conn, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO conversations (user_id, title, memory_type, window_turns, max_tokens, system_prompt,"
                " created_at, updated_at, last_seq, last_turn, message_count, token_total)"
                " VALUES ('local', 'Old chat', 'window', 2, 100, 'sys', '2025-01-01 00:00:00', '2025-01-01 00:00:00',"
                " 1, 1, 1, 3)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO messages (conversation_id, user_id, seq, turn, role, content, status, tokens, tokenizer,"
                " created_at) VALUES (1, 'local', 1, 1, 'user', 'from the old schema', 'complete', 3, 't',"
                " '2025-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO preferences (user_id, key, value, updated_at)"
                " VALUES ('local', 'name', 'Ada', '2025-01-01 00:00:00')"
            )
        )
    engine.dispose()

    store = SqlStore.open(url)
    assert [m.content for m in store.page("local", 1)] == ["from the old schema"]
    assert [(p.key, p.value, p.enabled) for p in store.list_preferences("local")] == [("name", "Ada", True)]
    store.set_preference("local", "name", "Ada", enabled=False)
    assert store.list_preferences("local")[0].enabled is False
    assert store.get_conversation("local", 1).settings == MemorySettings("window", 2, 100, "sys")
    store.close()


def test_schema_newer_than_code_is_refused_untouched(tmp_path):
    path = tmp_path / "future.db"
    SqlStore.open(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    before = path.read_bytes()
    with pytest.raises(StorageError, match="newer"):
        SqlStore.open(f"sqlite:///{path}")
    assert path.read_bytes() == before


def test_corrupt_file_gives_clear_error_and_is_not_overwritten(tmp_path):
    path = tmp_path / "corrupt.db"
    junk = b"this is not a database at all " * 200
    path.write_bytes(junk)
    with pytest.raises(StorageError, match="damaged"):
        SqlStore.open(f"sqlite:///{path}")
    assert path.read_bytes() == junk


def test_the_fast_open_path_knows_the_same_newest_revision_as_alembic():
    """An up-to-date database opens without Alembic, so the two must agree on what "up to date" is."""
    from memstore.database import shipped_head

    assert shipped_head() == head_revision()
