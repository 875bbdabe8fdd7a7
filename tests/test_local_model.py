"""The bundled offline model, for real: llama.cpp's own server (xllamacpp) on 127.0.0.1, through the openai client."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest

from memstore import Chat, ConfigError, FactSet, MemorySettings, Settings, SqlStore, client_from_settings
from memstore.llm import LocalServers
from memstore.llm.local_server import BUNDLED_NAME, LocalModelServer, ServerSpec, bundled_model_path


@pytest.fixture(scope="module")
def servers():
    pool = LocalServers(max_running=2)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def local_client(servers):
    return servers.client(ServerSpec(bundled_model_path(), BUNDLED_NAME))


def _port_open(base_url: str) -> bool:
    host, port = base_url.split("://")[1].split(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) == 0


def test_the_default_client_is_the_bundled_model_behind_a_loopback_server():
    client = client_from_settings(Settings.from_env({"DATABASE_URL": "sqlite://"}))
    server = client.keep_alive
    assert client.provider == "local" and client.model == "SmolLM2-135M-Instruct"
    assert server.base_url.startswith("http://127.0.0.1:") and server.load_seconds < 30
    # Exact counts come from the server's own tokenizer.
    assert client.counter().exact and client.counter().count("Hello world") == 2
    assert client.context_tokens == 8_192
    # Nobody else on this machine can use it: every request needs the key made up at start.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{server.base_url}/v1/models", timeout=5)
    assert refused.value.code == 401
    listed = urllib.request.Request(
        f"{server.base_url}/v1/models", headers={"Authorization": f"Bearer {server.api_key}"}
    )
    with urllib.request.urlopen(listed, timeout=5) as response:
        assert [m["id"] for m in json.load(response)["data"]] == ["SmolLM2-135M-Instruct"]
    server.close()
    assert not _port_open(server.base_url)  # stopped means the port is closed


@pytest.fixture
def sqlite_store(tmp_path):
    """The real model is the subject here, not the database: SQLite only (the store contract covers PostgreSQL)."""
    store = SqlStore.open(f"sqlite:///{tmp_path / 'local.db'}")
    yield store
    store.close()


SHORT = {"max_tokens": 48}  # the model's speed is measured in bench/local_model.py, not here


def test_two_turns_with_the_real_model_and_a_usable_summary(local_client, sqlite_store):
    sql_store = sqlite_store
    chat = Chat(sql_store, local_client, user_id="local", params=SHORT)
    conv = chat.new_conversation(settings=MemorySettings("summary"))
    first = chat.send(conv.id, "Hi! My name is Alice and I love green tea.", FactSet())
    deltas = list(first.stream())
    assert first.result.ok and "".join(deltas).strip() and len(deltas) > 1  # streamed, not one block
    update = chat.update_memory(conv.id)
    assert update.call.reply.strip() and update.call.usage.completion_tokens > 0  # the call is in the ledger
    second = chat.send(conv.id, "What drink do I love?", FactSet())
    if update.error is None:  # the tiny model sometimes only echoes the request: then no summary is stored
        assert len(update.summary.text.split()) >= 3
        assert update.summary.text in second.payload.messages[0].content  # the summary is what is remembered
    else:
        assert update.error.kind == "unusable_summary" and update.summary is None
    assert "".join(second.stream()).strip() and second.result.ok
    call = chat.last_chat_call(conv.id)
    assert call.provider == "local" and call.host == "this machine (llama.cpp)"
    assert call.finish_reason in ("stop", "length")
    # The server reports usage, and it agrees with what was counted here to within the chat template's framing.
    assert call.usage.prompt_tokens > 20 and call.usage.completion_tokens > 0
    assert abs(call.usage.prompt_tokens - call.counted_prompt_tokens) <= 3 * len(call.request) + 3
    assert call.usage.total_tokens == call.usage.prompt_tokens + call.usage.completion_tokens
    assert call.latency_ms > 0 and call.first_token_ms is not None
    assert call.params["max_tokens"] == 48 and call.params["repeat_penalty"] == 1.1  # llama.cpp's own sampler knob


def test_stopping_the_stream_keeps_the_partial_reply(local_client, sqlite_store):
    chat = Chat(sqlite_store, local_client, user_id="local", params=SHORT)
    conv = chat.new_conversation()
    run = chat.send(conv.id, "Write a long story about a lighthouse keeper.", FactSet())
    stream = run.stream()
    received = [next(stream) for _ in range(5)]
    stream.close()
    assert run.result.reply.status == "partial" and run.result.reply.content == "".join(received)
    # The model is free again for the next turn.
    assert chat.send(conv.id, "Say OK.", FactSet()).run().ok


def test_servers_start_once_per_model_and_the_oldest_stops_first(tmp_path):
    pool = LocalServers(max_running=1)
    copy = tmp_path / "copy.gguf"
    copy.symlink_to(bundled_model_path())
    try:
        first = pool.client(ServerSpec(bundled_model_path(), BUNDLED_NAME))
        assert pool.client(ServerSpec(bundled_model_path(), BUNDLED_NAME)) is first  # started once
        second = pool.client(ServerSpec(copy, "copy"))
        assert second.model == "copy" and _port_open(second.keep_alive.base_url)
        assert not first.keep_alive.running and not _port_open(first.keep_alive.base_url)
        assert [s.model for s in pool.running()] == ["copy"]
    finally:
        pool.close()
    assert not _port_open(second.keep_alive.base_url)


def test_a_file_that_is_not_a_model_gives_a_sentence(tmp_path):
    damaged = tmp_path / "damaged.gguf"
    damaged.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ConfigError) as failed:
        LocalModelServer(ServerSpec(damaged, "damaged"))
    assert "could not be loaded" in str(failed.value) and "damaged.gguf" in str(failed.value)
