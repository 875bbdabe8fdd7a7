"""Opening the database: engine, SQLite pragmas, and Alembic migrations applied on open."""

from __future__ import annotations

import re
import sqlite3
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from .errors import ConfigError, StorageError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000


def alembic_config() -> Config:
    """Alembic settings pointing at the scripts shipped inside the package."""
    from alembic.config import Config  # Alembic (11 MB) loads only when a schema must change

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())


@cache
def shipped_head() -> str:
    """The newest revision shipped, read from the scripts' own `revision = "…"` lines without loading Alembic."""
    found = [
        re.search(r'^revision = "([^"]+)"', path.read_text(), re.M)
        for path in sorted((MIGRATIONS_DIR / "versions").glob("[0-9]*.py"))
    ]
    return found[-1].group(1) if found and found[-1] else ""


def _current_revision(connection) -> str | None:
    """The database's revision, or None when it has none yet (a new database, or one without the table)."""
    try:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        connection.rollback()
        return None


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL, NORMAL sync, enforced foreign keys and a busy timeout on every SQLite connection."""
    dbapi_connection.isolation_level = None  # SQLAlchemy's begin event issues BEGIN itself
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA secure_delete = ON")  # deleted text is overwritten, not left in free pages
    mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
    if mode != "memory":  # in-memory databases cannot use WAL
        cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


def _sqlite_begin(connection) -> None:
    """Writers take the lock up front (BEGIN IMMEDIATE) so they queue instead of failing."""
    if connection.get_execution_options().get("memstore_write"):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")


def create_db_engine(url: str) -> Engine:
    """An engine for any SQLAlchemy URL; SQLite files get their folder created and pragmas set."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"DATABASE_URL is not a database URL: {url!r}.") from None
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and parsed.database in (None, "", ":memory:"):
        return create_memory_engine()  # SQLAlchemy's default pool would give each thread its own empty database
    is_uri = parsed.query.get("uri") == "true" or (parsed.database or "").startswith("file:")
    if is_sqlite and parsed.database and parsed.database != ":memory:" and not is_uri:
        folder = Path(parsed.database).expanduser().resolve().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"Cannot create the data folder {folder}: {exc.strerror}.") from None
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        engine = create_engine(parsed, pool_pre_ping=not is_sqlite)
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"No driver for {parsed.drivername}: {exc}.") from None
    return _listen_sqlite(engine) if is_sqlite else engine


def _listen_sqlite(engine: Engine) -> Engine:
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


@cache
def _migrated_image() -> bytes:
    """An empty database at the newest schema, serialized once per process (bytes, so nothing can change it)."""
    connection = sqlite3.connect(":memory:", check_same_thread=False)
    engine = _listen_sqlite(create_engine("sqlite://", creator=lambda: connection, poolclass=StaticPool))
    try:
        migrate(engine)
        return connection.serialize()
    finally:
        engine.dispose()
        connection.close()


def _fresh_copy() -> sqlite3.Connection:
    """A new in-memory database holding the migrated template."""
    connection = sqlite3.connect(":memory:", check_same_thread=False)
    connection.deserialize(_migrated_image())
    return connection


@cache
def _memory_prototype() -> Engine:
    """The engine every in-memory database copies: one dialect, initialized once, and one statement cache."""
    prototype = _listen_sqlite(create_engine("sqlite://", creator=_fresh_copy, poolclass=StaticPool))
    with prototype.connect():
        pass  # the first connection initializes the dialect
    return prototype


def create_memory_engine() -> Engine:
    """A private SQLite database in this process's memory, already migrated (copied from a template).

    It lives on one connection (StaticPool) that every thread shares, so the store that owns it
    serializes its transactions; it is gone when the engine is disposed. It shares the prototype's
    dialect and compiled statements, so opening one costs a copy of the template, not a new engine's
    first compiles (most of what the first turns of a fresh engine cost).
    """
    prototype = _memory_prototype()
    engine = Engine(
        prototype.pool.recreate(),  # same creator and connect listeners (pragmas), a connection of its own
        prototype.dialect,
        prototype.url,
        execution_options={"compiled_cache": prototype._compiled_cache},
    )
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def is_memory_engine(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")


def migrate(engine: Engine) -> str:
    """Bring the schema to the newest revision; refuse a database newer than this code."""
    try:
        with engine.connect() as connection:
            if _current_revision(connection) == shipped_head():
                return shipped_head()  # up to date: the usual open, without Alembic
    except DBAPIError as exc:
        raise StorageError(describe_db_error(exc)) from None
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
            if current is not None and current not in known:
                raise StorageError(
                    f"The database schema (revision {current}) is newer than this version of Memory Lab "
                    f"understands (newest {script.get_current_head()}). Upgrade Memory Lab; nothing was changed."
                )
            if current is None and _is_new_sqlite_file(engine, connection):
                _copy_template_into(connection)  # a new file starts as the migrated template: one page copy
            elif current != script.get_current_head():
                upgrade(connection, "head")
    except DBAPIError as exc:
        raise StorageError(describe_db_error(exc)) from None
    return str(script.get_current_head())


def _is_new_sqlite_file(engine: Engine, connection) -> bool:
    """A SQLite file with nothing in it yet (just created): the template can be copied in instead of migrating."""
    if engine.dialect.name != "sqlite" or is_memory_engine(engine):
        return False
    count = connection.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar()
    connection.rollback()
    return count == 0


def _copy_template_into(connection) -> None:
    """Write the migrated template into an empty SQLite file (the backup API copies its pages as they are)."""
    source = sqlite3.connect(":memory:")
    try:
        source.deserialize(_migrated_image())
        source.backup(connection.connection.dbapi_connection)
    finally:
        source.close()


def upgrade(connection, revision: str) -> None:
    """Run Alembic's upgrade on an open connection (tests use it to stop at old revisions)."""
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
    connection.commit()


def describe_db_error(exc: DBAPIError) -> str:
    """A sentence for people from a SQLAlchemy-wrapped driver error."""
    return describe_driver_error(exc.orig if exc.orig is not None else exc)


def describe_driver_error(exc: BaseException) -> str:
    """A sentence for people from a database driver's error."""
    text = str(exc)
    lowered = text.lower()
    if "not a database" in lowered or "malformed" in lowered:
        return "The database file is damaged or is not a Memory Lab database; it was left untouched."
    if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered:
        return "The database cannot be written (the file or its folder is read-only or missing)."
    if "locked" in lowered:
        return "The database is busy; another writer held it too long. Try again."
    if "connection" in lowered or "could not connect" in lowered:
        return "Cannot reach the database server named in DATABASE_URL."
    return f"Database error: {text.splitlines()[0] if text else type(exc).__name__}"
