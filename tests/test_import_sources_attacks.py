"""Attacks on importing other apps' memory (issue 24): one bad value, the own-database guard, read-only WAL sources,
session ids that are not plain text, and temporary folders left by a killed import."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from memstore import InvalidInput, SqlStore
from memstore.importers import ChatGPTExport, LangChainSqlHistory, import_source, open_source, preview_source
from memstore.integrations.langchain import MemstoreChatMessageHistory
from memstore.tokens import counter_for_model
from sources import chatgpt_conversation, langchain_sql_db, write_chatgpt_export

ME = "alice"
COUNTER = counter_for_model("gpt-4o-mini")
ROOT = Path(__file__).resolve().parent.parent


def folder_state(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file in the folder, its bytes' hash and its mtime: a read-only source must be exactly as it was."""
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())
    }


@pytest.fixture
def lab(tmp_path):
    store = SqlStore.open(f"sqlite:///{tmp_path / 'lab.db'}")
    yield store
    store.close()


def add_row(path: Path, session_id: object, message: dict) -> None:
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO message_store (session_id, message) VALUES (?, ?)", (session_id, json.dumps(message)))
    db.close()


def human(text: str) -> dict:
    return {"type": "human", "data": {"content": text, "type": "human"}}


# -- 8. one bad value ----------------------------------------------------------------------------------------------


def seven_sessions(path: Path) -> Path:
    sessions = {f"s{n}": [HumanMessage(f"question {n}"), AIMessage(f"answer {n}")] for n in range(6)}
    sessions["poisoned"] = [SystemMessage("Be brief.\x00"), HumanMessage("hi"), AIMessage("hello")]
    langchain_sql_db(path, sessions)
    return path


def test_a_nul_in_one_system_prompt_skips_that_session_and_imports_the_other_six(tmp_path, lab):
    path = seven_sessions(tmp_path / "chat.db")
    previews = {p.key: p for p in preview_source(LangChainSqlHistory(path=path), lab, ME)}
    assert [k for k, p in previews.items() if not p.importable] == ["poisoned"]
    assert "NUL" in (previews["poisoned"].problem or "")
    result = import_source(lab, ME, LangChainSqlHistory(path=path), COUNTER, keys=set(previews))
    assert len(result.created) == 6 and len(lab.list_conversations(ME)) == 6
    sentence = result.sentence()
    assert "Imported 6 conversations" in sentence
    assert "LangChain session poisoned" in sentence and "NUL" in sentence  # which one, and why


def test_a_nul_in_chatgpt_custom_instructions_skips_only_that_conversation(tmp_path, lab):
    poisoned = chatgpt_conversation("Poisoned", [("hi", "hello")], conversation_id="c-bad")
    poisoned["mapping"]["sys"]["message"]["author"]["role"] = "user"
    poisoned["mapping"]["sys"]["message"]["content"] = {
        "content_type": "user_editable_context",
        "user_profile": "I am Ada.",
        "user_instructions": "Answer \x00 briefly.",
    }
    good = chatgpt_conversation("Good", [("hi", "hello")], conversation_id="c-good")
    path = write_chatgpt_export(tmp_path / "conversations.json", [poisoned, good])
    previews = list(preview_source(ChatGPTExport(path=path), lab, ME))
    assert [p.importable for p in previews] == [False, True]
    result = import_source(lab, ME, ChatGPTExport(path=path), COUNTER)
    assert [c.title for c in result.created] == ["Good"]
    assert "Poisoned" in result.sentence() and "NUL" in result.sentence()


# -- 11. the own-database guard ------------------------------------------------------------------------------------


def own_forms(tmp_path: Path, own: Path) -> list[str]:
    link = tmp_path / "link.db"
    link.symlink_to(own)
    hard = tmp_path / "hard.db"
    os.link(own, hard)
    return [
        str(own),
        f"sqlite:///{own}",
        f"sqlite+pysqlite:///{own}",
        f"sqlite:///{own}?mode=ro",
        f"sqlite+aiosqlite:///{own}",
        f"sqlite:///file:{own}?mode=ro&uri=true",
        f"file:{own}",
        f"file://{own}?mode=ro",
        str(link),
        f"sqlite:///{link}",
        str(hard),
        f"sqlite:///{hard}",
        "sqlite:///lab.db",  # relative to the working folder
        "lab.db",
        "./sub/../lab.db",
    ]


def test_every_way_to_name_the_apps_own_database_is_refused(tmp_path, lab, monkeypatch):
    own = tmp_path / "lab.db"
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    forms_folder = tmp_path / "forms"
    forms_folder.mkdir()
    for where in own_forms(forms_folder, own):
        for own_url in (f"sqlite:///{own}", "sqlite:///lab.db", f"sqlite+pysqlite:///{own}?mode=rwc"):
            with (
                pytest.raises(InvalidInput, match="Memory Lab's own database"),
                open_source("langchain", location=where, own_database=own_url),
            ):
                pass
        with (
            pytest.raises(InvalidInput, match="Memory Lab's own database"),
            open_source("langgraph", location=where, own_database=f"sqlite:///{own}"),
        ):
            pass


def test_another_sqlite_file_is_not_mistaken_for_the_apps_own(tmp_path, lab):
    path = seven_sessions(tmp_path / "chat.db")
    for where in (str(path), f"sqlite+pysqlite:///{path}?mode=ro", f"file:{path}"):
        with open_source("langchain", location=where, own_database=f"sqlite:///{tmp_path / 'lab.db'}") as source:
            assert len(list(source.conversations())) == 7


@pytest.mark.parametrize(
    "where",
    [
        "postgresql://other:pw@127.0.0.1:5432/lab",
        "postgresql+psycopg://me@localhost/lab",
        "postgresql://me@[::1]:5432/lab?sslmode=disable",
        "postgresql:///lab?host=/var/run/postgresql",
        "postgresql+psycopg2://me@LOCALHOST:5432/lab",
    ],
)
def test_the_apps_own_postgresql_database_is_refused_however_it_is_named(where):
    with (
        pytest.raises(InvalidInput, match="Memory Lab's own database"),
        open_source("langchain", location=where, own_database="postgresql+psycopg://me:secret@localhost:5432/lab"),
    ):
        pass


# -- 12. read-only WAL sources -------------------------------------------------------------------------------------


def wal_source(folder: Path) -> tuple[Path, sqlite3.Connection]:
    """A LangChain database in WAL mode whose writer is still open, with rows only in the -wal file."""
    folder.mkdir()
    path = folder / "chat.db"
    langchain_sql_db(path, {"old": [HumanMessage("checkpointed"), AIMessage("yes")]})
    writer = sqlite3.connect(path)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    for text in ("only in the wal", "still only in the wal"):
        writer.execute("INSERT INTO message_store (session_id, message) VALUES ('new', ?)", (json.dumps(human(text)),))
    writer.commit()
    return path, writer


def test_reading_a_wal_database_writes_nothing_beside_it(tmp_path, lab):
    path, writer = wal_source(tmp_path / "live")
    try:
        assert {p.name for p in path.parent.iterdir()} == {"chat.db", "chat.db-wal", "chat.db-shm"}
        before = folder_state(path.parent)
        source = LangChainSqlHistory(path=path)
        previews = {p.key: p.message_count for p in preview_source(source, lab, ME)}
        result = import_source(lab, ME, source, COUNTER)
        source.close()
        assert previews == {"old": 2, "new": 2}  # the rows in the -wal are read
        assert len(result.created) == 2
        assert folder_state(path.parent) == before
    finally:
        writer.close()


def test_reading_a_wal_database_left_by_a_crashed_writer_creates_no_shm(tmp_path, lab):
    path, writer = wal_source(tmp_path / "live")
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    for name in ("chat.db", "chat.db-wal"):  # as a killed writer leaves them, without the -shm
        (crashed / name).write_bytes((path.parent / name).read_bytes())
    writer.close()
    before = folder_state(crashed)
    with open_source("langchain", location=str(crashed / "chat.db")) as source:
        assert {c.key: len(c.messages) for c in source.conversations()} == {"old": 2, "new": 2}
    assert folder_state(crashed) == before


# -- 14. session ids -----------------------------------------------------------------------------------------------


def test_a_session_id_with_a_lone_surrogate_is_a_session_like_any_other(lab):
    odd = MemstoreChatMessageHistory("a\ud800b", store=lab)
    odd.add_messages([HumanMessage("hello"), AIMessage("hi")])
    plain = MemstoreChatMessageHistory("a?b", store=lab)
    assert [m.content for m in odd.messages] == ["hello", "hi"]
    assert plain.messages == []


def test_a_sha256_session_id_does_not_read_the_longer_id_it_hashes(lab):
    long_id = "x" * 300
    MemstoreChatMessageHistory(long_id, store=lab).add_messages([HumanMessage("the long one's secret")])
    alias = "sha256:" + hashlib.sha256(long_id.encode()).hexdigest()
    assert MemstoreChatMessageHistory(alias, store=lab).messages == []
    assert [m.content for m in MemstoreChatMessageHistory(long_id, store=lab).messages] == ["the long one's secret"]


def test_importing_a_long_session_and_its_hash_makes_two_conversations(tmp_path, lab):
    long_id = "y" * 300
    alias = "sha256:" + hashlib.sha256(long_id.encode()).hexdigest()
    path = tmp_path / "chat.db"
    langchain_sql_db(path, {long_id: [HumanMessage("long")], alias: [HumanMessage("alias")]})
    result = import_source(lab, ME, LangChainSqlHistory(path=path), COUNTER)
    assert (len(result.created), result.already_imported) == (2, 0)


def test_null_and_odd_session_ids_are_distinct_and_can_be_looked_inside(tmp_path, lab):
    path = tmp_path / "chat.db"
    langchain_sql_db(path, {"None": [HumanMessage("a session named None")], "5": [HumanMessage("text five")]})
    add_row(path, None, human("a session with no id"))
    add_row(path, b"5", human("integer five"))
    with sqlite3.connect(path) as db:  # bytes that are not UTF-8, as another app's driver may have written
        db.execute(
            "INSERT INTO message_store (session_id, message) VALUES (CAST(X'61ED A080' AS TEXT), ?)".replace(" A", "A"),
            (json.dumps(human("bad bytes in the id")),),
        )
    db.close()
    source = LangChainSqlHistory(path=path)
    previews = list(preview_source(source, lab, ME))
    firsts = sorted(p.first_line for p in previews)
    assert firsts == sorted(
        ["a session named None", "text five", "a session with no id", "integer five", "bad bytes in the id"]
    )
    assert len({p.key for p in previews}) == 5
    for p in previews:  # "Look inside" reads each one alone
        found = list(source.conversations({p.key}))
        assert [c.messages[0].text for c in found] == [p.first_line]
    result = import_source(lab, ME, source, COUNTER)
    assert len(result.created) == 5
    assert import_source(lab, ME, LangChainSqlHistory(path=path), COUNTER).already_imported == 5


# -- 14. temporary folders -------------------------------------------------------------------------------------------


KILLED_IMPORT = """
import os, signal, sys
from memstore.importers import open_source
data = open(sys.argv[1], "rb").read()
with open_source("langchain", data=data, name="upload.db") as source:
    next(iter(source.conversations()))
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_folder_left_by_a_killed_import_is_removed_by_the_next(tmp_path, lab, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    path = seven_sessions(tmp_path / "chat.db")
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", KILLED_IMPORT, str(path)], env=env, cwd=ROOT, timeout=120)
    assert done.returncode == -signal.SIGKILL
    assert [p.name.startswith("memorylab-import-") for p in scratch.iterdir()] == [True]  # what a kill leaves
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with open_source("langchain", data=path.read_bytes(), name="chat.db") as source:
        assert len(list(source.conversations())) == 7
        assert len(list(scratch.iterdir())) == 1  # its own folder, and no other
    assert list(scratch.iterdir()) == []


# -- the fixes, attacked ---------------------------------------------------------------------------------------------


def test_a_wal_database_written_while_it_is_read_gives_whole_sessions_or_one_sentence(tmp_path, lab):
    """A writer adding rows (and checkpointing) while the copy is made: what is read is one moment of the file."""
    import threading

    path, writer = wal_source(tmp_path / "busy")
    writer.close()
    stop = threading.Event()

    def write() -> None:
        busy = sqlite3.connect(path)
        n = 0
        while not stop.is_set():
            busy.execute(
                "INSERT INTO message_store (session_id, message) VALUES ('busy', ?)", (json.dumps(human(f"m{n}")),)
            )
            busy.commit()
            n += 1
            if n % 50 == 0:
                busy.execute("PRAGMA wal_checkpoint(PASSIVE)")
        busy.close()

    thread = threading.Thread(target=write)
    thread.start()
    outcomes = []
    try:
        for _ in range(20):
            try:
                source = LangChainSqlHistory(path=path)
            except InvalidInput as exc:
                outcomes.append(str(exc))
                continue
            sessions = {c.key: [m.text for m in c.messages] for c in source.conversations()}
            source.close()
            busy = sessions.get("busy", [])
            assert busy == [f"m{n}" for n in range(len(busy))]  # a prefix of what was written: no gap, no tear
            outcomes.append(len(busy))
    finally:
        stop.set()
        thread.join()
    assert all(isinstance(o, int) or "kept writing" in o for o in outcomes)
    assert {p.name for p in path.parent.iterdir()} <= {"chat.db", "chat.db-wal", "chat.db-shm"}


def test_a_live_import_folder_is_not_swept_and_foreign_entries_are_left_alone(tmp_path, monkeypatch):
    from memstore.importers.scratch import remove_stale, scratch_folder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    target = tmp_path / "precious"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    (tmp_path / "memorylab-import-link").symlink_to(target)  # a link posing as a folder: never followed
    (tmp_path / "memorylab-import-file").write_text("not a folder")
    with scratch_folder() as first, scratch_folder() as second:
        assert first.is_dir() and second.is_dir()  # the second's sweep left the first alone (its lock is held)
        assert remove_stale() == 0
    assert not first.exists() and not second.exists()
    assert (target / "keep.txt").read_text() == "mine"
    assert (tmp_path / "memorylab-import-file").exists()


@pytest.mark.parametrize("where", ["sqlite:////tmp/lab.db%00", "file:/tmp/x%00y", "sqlite:///file:/tmp/a%00?uri=true"])
def test_a_nul_spelled_as_percent_00_is_one_sentence(where):
    from memstore.importers.locations import locate

    with pytest.raises(InvalidInput, match="NUL"):
        locate(where)
