"""Load, crashes and faults: nothing lost or duplicated, order kept, clear messages, retries work."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fakes import FakeClient
from memstore import Chat, FactSet, MemorySettings, OpenAIClient, SqlStore, StorageError
from openai_server import FakeOpenAIServer

WRITER = Path(__file__).resolve().parent / "writer.py"


def url_of(store: SqlStore) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def check_conversation(store: SqlStore, conversation_id: int, labels: dict[str, int]) -> None:
    """Every turn stored once, whole (user then its reply), seqs gapless, each writer's order kept."""
    messages, before = [], None
    while True:
        page = store.page("local", conversation_id, limit=500, before_seq=before)
        if not page:
            break
        messages = page + messages
        before = page[0].seq
    assert [m.seq for m in messages] == list(range(1, len(messages) + 1))
    turns: dict[int, list] = {}
    for m in messages:
        turns.setdefault(m.turn, []).append(m)
    assert sorted(turns) == list(range(1, len(turns) + 1))
    for rows in turns.values():
        assert [r.role for r in rows] == ["user", "assistant"]
        assert rows[1].content == f"echo: {rows[0].content}"
    seen: dict[str, list[int]] = {}
    for rows in sorted(turns.values(), key=lambda r: r[0].seq):
        label, index = rows[0].content.split(":")
        seen.setdefault(label, []).append(int(index))
    assert seen == {label: list(range(count)) for label, count in labels.items()}


def test_threads_write_turns_at_once_without_loss_or_duplicates(sql_store):
    shared = sql_store.create_conversation("local", "shared", MemorySettings("window", 2))
    own = [sql_store.create_conversation("local", f"own {i}", MemorySettings("token_window", 0, 200)) for i in range(4)]
    errors = []

    def work(label: str, conversation_id: int, turns: int) -> None:
        try:
            chat = Chat(sql_store, FakeClient(), user_id="local")
            for i in range(turns):
                chat.send(conversation_id, f"{label}:{i}", FactSet()).run()
        except Exception as exc:  # noqa: BLE001 - reported to the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"s{i}", shared.id, 15)) for i in range(4)]
    threads += [threading.Thread(target=work, args=(f"o{i}", conv.id, 15)) for i, conv in enumerate(own)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    check_conversation(sql_store, shared.id, {f"s{i}": 15 for i in range(4)})
    for i, conv in enumerate(own):
        check_conversation(sql_store, conv.id, {f"o{i}": 15})
    assert sql_store.get_conversation("local", shared.id).message_count == 120


def test_processes_write_turns_at_once_without_loss_or_duplicates(sql_store):
    shared = sql_store.create_conversation("local", "shared", MemorySettings("buffer"))
    procs = [
        subprocess.Popen(
            [sys.executable, str(WRITER), url_of(sql_store), str(shared.id), f"p{i}", "20"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    check_conversation(sql_store, shared.id, {f"p{i}": 20 for i in range(3)})


def test_a_writer_killed_mid_turn_loses_nothing_it_committed(tmp_path):
    path = tmp_path / "crash.db"
    store = SqlStore.open(f"sqlite:///{path}")
    conv = store.create_conversation("local", "crash", MemorySettings("window", 3))
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), f"sqlite:///{path}", str(conv.id), "k", "100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    committed = -1
    for line in proc.stdout:
        committed = int(line.split()[1])
        if committed >= 40:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.close()
    reopened = SqlStore.open(f"sqlite:///{path}")
    rows = reopened.turns_between("local", conv.id, 1, 10_000_000)
    users = [m.content for m in rows if m.role == "user"]
    assert users[: committed + 1] == [f"k:{i}" for i in range(committed + 1)]  # every committed turn is there
    assert users == [f"k:{i}" for i in range(len(users))]  # and every user message, even of a cut turn
    replied = {m.turn for m in rows if m.role == "assistant"}
    assert set(range(1, committed + 2)) <= replied
    reopened.close()


FAULTS = [
    (("status", 401), "auth"),
    (("status", 429), "rate_limit"),
    (("status", 500), "server_error"),
    (("sleep", 2.0), "timeout"),
    (("drop", "half a reply"), "truncated"),
    (("garbage",), "bad_response"),
]


@pytest.mark.parametrize("fault,kind", FAULTS, ids=[k for _, k in FAULTS])
def test_each_model_fault_is_readable_keeps_the_message_and_retries(sql_store, fault, kind):
    with FakeOpenAIServer() as server:
        client = OpenAIClient(model="gpt-4o-mini", api_key="k", base_url=server.base_url, timeout_s=0.8, max_retries=0)
        chat = Chat(sql_store, client, user_id="local")
        conv = chat.new_conversation()
        server.expect(fault)
        run = chat.send(conv.id, "Please answer", FactSet())
        run.run()
        assert run.result.error.kind == kind and len(run.result.error.message) > 20
        stored = sql_store.page("local", conv.id)
        assert stored[0].content == "Please answer" and stored[-1].status in ("failed", "partial")
        retry = chat.retry(conv.id, FactSet()).run()
        assert retry.ok and retry.reply.content == "echo: Please answer"


def test_a_refused_connection_keeps_the_message_and_retries_once_the_server_is_up(sql_store):
    chat = Chat(
        sql_store,
        OpenAIClient(model="m", api_key=None, base_url="http://127.0.0.1:9/v1", timeout_s=2, max_retries=0),
        user_id="local",
    )
    conv = chat.new_conversation()
    run = chat.send(conv.id, "Anyone there?", FactSet())
    run.run()
    assert run.result.error.kind == "unreachable"
    with FakeOpenAIServer() as server:
        chat.client = OpenAIClient(model="m", api_key=None, base_url=server.base_url, max_retries=0)
        assert chat.retry(conv.id, FactSet()).run().reply.content == "echo: Anyone there?"


def test_a_read_only_database_gives_a_clear_message_and_is_untouched(tmp_path):
    """Opened read-only (root ignores file modes, so SQLite's own read-only mode stands in for them)."""
    path = tmp_path / "memorylab.db"
    store = SqlStore.open(f"sqlite:///{path}")
    store.create_conversation("local", "keep me", MemorySettings())
    store.close()
    before = path.read_bytes()
    with pytest.raises(StorageError) as info:
        ro = SqlStore.open(f"sqlite:///file:{path}?mode=ro&uri=true")
        ro.create_conversation("local", "must not be written", MemorySettings())
    assert "read-only" in str(info.value) or "cannot be written" in str(info.value)
    assert path.read_bytes() == before


def test_an_unwritable_data_folder_gives_a_clear_message(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    with pytest.raises(StorageError, match="Cannot create the data folder"):
        SqlStore.open(f"sqlite:///{blocker / 'sub' / 'memorylab.db'}")
    assert blocker.read_text() == "a file where the data folder should be"
