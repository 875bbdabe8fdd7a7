"""The real openai client against a local OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import pytest

from memstore import Chat, FactSet, LLMError, MemorySettings, OpenAIClient, Settings, client_from_settings
from memstore.errors import ConfigError
from memstore.llm import complete
from memstore.records import ChatMessage
from openai_server import FakeOpenAIServer

SECRET = "sk-test-SECRET-key-never-stored"


@pytest.fixture
def server():
    with FakeOpenAIServer() as srv:
        yield srv


def client_for(server, **kw):
    return OpenAIClient(
        model="test-model",
        api_key=SECRET,
        base_url=server.base_url,
        timeout_s=kw.pop("timeout_s", 5),
        max_retries=0,
        **kw,
    )


def test_streams_deltas_and_reports_usage(server):
    server.expect(("reply", "Hello there, Alice"))
    client = client_for(server)
    stream = client.stream_chat([ChatMessage("user", "hi")], params={"temperature": 0.1})
    deltas = list(stream)
    assert deltas == ["Hello", " there,", " Alice"]
    assert stream.completion.finish_reason == "stop" and stream.completion.usage.completion_tokens == 3
    assert stream.completion.first_token_ms is not None
    sent = server.requests[0]
    assert sent["stream"] is True and sent["messages"] == [{"role": "user", "content": "hi"}]
    assert sent["temperature"] == 0.1 and sent["model"] == "test-model"
    assert server.headers[0]["authorization"] == f"Bearer {SECRET}"
    assert (client.provider, client.host) == ("openai-compatible", server.base_url.split("/")[2])


@pytest.mark.parametrize(
    "status,kind,words",
    [
        (401, "auth", "API key"),
        (403, "forbidden", "not allowed"),
        (404, "unknown_model", "model"),
        (429, "rate_limit", "rate-limiting"),
        (500, "server_error", "failed"),
        (400, "bad_request", "refused"),
    ],
)
def test_http_errors_become_readable_domain_errors(server, status, kind, words):
    server.expect(("status", status))
    with pytest.raises(LLMError) as info:
        list(client_for(server).stream_chat([ChatMessage("user", "hi")], params={}))
    assert info.value.kind == kind and words in info.value.message
    assert SECRET not in info.value.message


def test_connection_dropped_mid_stream_is_truncated_not_success(server):
    server.expect(("drop", "The capital of France is"))
    stream = client_for(server).stream_chat([ChatMessage("user", "capital?")], params={})
    received = []
    with pytest.raises(LLMError) as info:
        for delta in stream:
            received.append(delta)
    assert info.value.kind == "truncated"
    assert "".join(received) == stream.text == "The capital of France is" and stream.completion is None


def test_broken_chunked_body_keeps_what_arrived(server):
    server.expect(("reset", "Partial words here"))
    stream = client_for(server).stream_chat([ChatMessage("user", "x")], params={})
    with pytest.raises(LLMError) as info:
        list(stream)
    assert stream.text == "Partial words here" and info.value.message


def test_malformed_stream_data_is_an_error(server):
    server.expect(("garbage",))
    with pytest.raises(LLMError) as info:
        list(client_for(server).stream_chat([ChatMessage("user", "x")], params={}))
    assert info.value.kind == "bad_response"


def test_server_down_and_timeout(server):
    down = OpenAIClient(model="m", api_key=None, base_url="http://127.0.0.1:9/v1", timeout_s=2, max_retries=0)
    with pytest.raises(LLMError) as info:
        list(down.stream_chat([ChatMessage("user", "x")], params={}))
    assert info.value.kind == "unreachable" and "127.0.0.1:9" in info.value.message
    server.expect(("sleep", 2.0))
    with pytest.raises(LLMError) as info:
        list(client_for(server, timeout_s=0.5).stream_chat([ChatMessage("user", "x")], params={}))
    assert info.value.kind == "timeout"


def test_full_turn_with_summary_over_http_and_the_key_is_never_stored(server, sql_store):
    client = client_for(server)
    chat = Chat(sql_store, client, user_id="local")
    conv = chat.new_conversation("http", MemorySettings("summary"))
    server.expect(("reply", "Nice to meet you, Alice."), ("reply", "Alice introduced herself."), ("drop", "Your name"))
    run = chat.send(conv.id, "I am Alice", FactSet())
    assert "".join(run.stream()) == "Nice to meet you, Alice."
    update = chat.update_memory(conv.id)
    assert update.summary.text == "Alice introduced herself."
    second = chat.send(conv.id, "What is my name?", FactSet())
    list(second.stream())
    assert second.result.reply.status == "partial" and second.result.reply.content == "Your name"
    assert "Alice introduced herself." in server.requests[2]["messages"][0]["content"]
    calls = sql_store.list_calls("local", conversation_id=conv.id)
    assert [c.purpose for c in calls] == ["chat", "summary", "chat"]
    assert calls[2].usage.completion_tokens == 5 and calls[2].host == client.host
    assert calls[0].error_kind == "truncated"
    with sql_store.engine.connect() as conn:
        for table in ("model_calls", "messages", "conversations", "summaries"):
            dump = " ".join(str(row) for row in conn.exec_driver_sql(f"SELECT * FROM {table}"))
            assert SECRET not in dump


def test_settings_pick_the_client_and_never_show_the_key():
    settings = Settings.from_env({"OPENAI_API_KEY": SECRET, "OPENAI_MODEL": "gpt-4o-mini"})
    assert SECRET not in repr(settings)
    client = client_from_settings(settings)
    assert (client.provider, client.host, client.model) == ("openai", "api.openai.com", "gpt-4o-mini")
    assert client.context_tokens == 128_000
    local = client_from_settings(
        Settings.from_env({"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1", "OPENAI_MODEL": "llama3.2"})
    )
    assert local.provider == "openai-compatible" and local.counter().exact is False
    missing = client_from_settings(Settings.from_env({"MEMORYLAB_LOCAL_MODEL": "/nonexistent/model.gguf"}))
    assert missing.provider == "none" and "/nonexistent/model.gguf, which does not exist" in missing.message
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        client_from_settings(Settings.from_env({"OPENAI_BASE_URL": "localhost:11434"}))
    with pytest.raises(ConfigError, match="OPENAI_TIMEOUT_S"):
        Settings.from_env({"OPENAI_TIMEOUT_S": "soon"})


def test_complete_helper_drains_a_summary_call(server):
    server.expect(("reply", "short summary"))
    result = complete(client_for(server), [ChatMessage("user", "sum up")], params={})
    assert result.text == "short summary" and result.finish_reason == "stop"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_so_neither_the_conversation_nor_the_key_leaves(status):
    """The SDK follows redirects by default (a 307 would re-send the conversation elsewhere); ours follows none."""
    from probe_lesson_servers import Recorder, Redirector

    with Recorder() as other, Redirector(status, f"http://127.0.0.1:{other.port}/v1") as bad:
        client = OpenAIClient(model="m", api_key=SECRET, base_url=bad.base_url, timeout_s=5, max_retries=0)
        with pytest.raises(LLMError) as failed:
            list(client.stream_chat([ChatMessage("user", "my private question")], params={}))
        assert bad.hits == 1 and other.headers == []  # the other address got no request at all
        sentence = str(failed.value)
        assert failed.value.kind == "redirect" and f"127.0.0.1:{other.port}" in sentence
        assert "OPENAI_BASE_URL" in sentence and SECRET not in sentence
