"""The bundled offline model, for real: in-process with llama.cpp, and behind llama_cpp.server."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from memstore import Chat, FactSet, MemorySettings, OpenAIClient, Settings, client_from_settings
from memstore.llm.local_llama import LocalLlamaClient, bundled_model_path


@pytest.fixture(scope="module")
def local_client():
    return LocalLlamaClient()


def test_the_default_client_is_the_bundled_model():
    client = client_from_settings(Settings.from_env({"DATABASE_URL": "sqlite://"}))
    assert client.provider == "local" and client.model == "SmolLM2-135M-Instruct"
    assert client.counter().exact and client.counter().count("Hello world") == 2
    assert client.context_tokens == 8_192 and client.load_seconds < 30


def test_two_turns_with_the_real_model_and_a_usable_summary(local_client, sql_store):
    chat = Chat(sql_store, local_client, user_id="local")
    conv = chat.new_conversation(settings=MemorySettings("summary"))
    first = chat.send(conv.id, "Hi! My name is Alice and I love green tea.", FactSet())
    reply = "".join(first.stream())
    assert first.result.ok and reply.strip()
    update = chat.update_memory(conv.id)
    assert update.error is None and len(update.summary.text.split()) >= 3
    assert update.call.reply.strip() and update.call.usage.completion_tokens > 0
    second = chat.send(conv.id, "What drink do I love?", FactSet())
    assert update.summary.text in second.payload.messages[0].content  # the summary is what is remembered
    assert "".join(second.stream()).strip() and second.result.ok
    call = chat.last_chat_call(conv.id)
    assert call.provider == "local" and call.finish_reason in ("stop", "length")
    assert call.usage.prompt_tokens > 20 and call.usage.completion_tokens > 0
    assert call.usage.total_tokens == call.usage.prompt_tokens + call.usage.completion_tokens
    assert call.latency_ms > 0 and call.first_token_ms is not None
    assert call.params["max_tokens"] == 512  # the local model's defaults are recorded too


def test_stopping_the_stream_keeps_the_partial_reply(local_client, sql_store):
    chat = Chat(sql_store, local_client, user_id="local")
    conv = chat.new_conversation()
    run = chat.send(conv.id, "Write a long story about a lighthouse keeper.", FactSet())
    stream = run.stream()
    received = [next(stream) for _ in range(5)]
    stream.close()
    assert run.result.reply.status == "partial" and run.result.reply.content == "".join(received)
    # The model is free again for the next turn.
    assert chat.send(conv.id, "Say OK.", FactSet()).run().ok


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """llama_cpp.server (not written here) serving the same GGUF on 127.0.0.1."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_model_path()), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "4096", "--n_threads", "2", "--model_alias", "smollm2"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OPENAI_API_KEY": ""})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/v1/models", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log_path.read_text())
                time.sleep(0.5)
        yield f"{base}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_openai_client_against_llama_cpp_server_streams_and_summarizes(llama_server, sql_store):
    client = OpenAIClient(model="smollm2", api_key=None, base_url=llama_server, timeout_s=120, max_retries=0,
                          context_tokens=4096)
    chat = Chat(sql_store, client, user_id="local", params={"max_tokens": 64, "temperature": 0.2})
    conv = chat.new_conversation(settings=MemorySettings("summary"))
    run = chat.send(conv.id, "My name is Alice. Please greet me.", FactSet())
    deltas = list(run.stream())
    assert run.result.ok and len(deltas) > 1 and "".join(deltas).strip()
    call = chat.last_chat_call(conv.id)
    assert call.provider == "openai-compatible" and call.finish_reason in ("stop", "length")
    # This server sends no usage when streaming: the ledger keeps "not reported", never a made-up
    # figure, beside the count made here with the tokenizer.
    assert call.counted_prompt_tokens > 10
    assert call.usage.prompt_tokens is None or call.usage.prompt_tokens > 10
    update = chat.update_memory(conv.id)
    assert update.error is None and update.summary.text.strip()
    assert update.call.purpose == "summary" and update.call.counted_prompt_tokens > 10
    nxt = chat.preview(conv.id, FactSet(), draft="What is my name?")
    assert update.summary.text.strip() in nxt.messages[0].content
