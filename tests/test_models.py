"""The model picker's directory: bundled, downloaded, configured and detected servers, and a client for each."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from memstore import Settings
from memstore.llm import LocalServers, client_for
from memstore.llm.catalog import GROUP_BUNDLED, ModelDirectory, openai_chat_models, probe_models
from memstore.records import ChatMessage
from openai_server import FakeOpenAIServer

SECRET = "sk-test-SECRET-key-never-sent-to-other-servers"


@pytest.fixture
def hanging_port():
    """A port that accepts connections and never answers (a hung server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_directory_lists_bundled_configured_and_a_detected_server(hanging_port):
    with FakeOpenAIServer() as configured, FakeOpenAIServer() as ollama:
        ollama.models = ["llama3.2:1b", "qwen2.5:0.5b"]
        configured.models = ["gpt-4o-mini", "my-finetune"]
        settings = Settings.from_env({"OPENAI_BASE_URL": configured.base_url, "OPENAI_API_KEY": SECRET})
        ollama_port = int(ollama.base_url.split(":")[2].split("/")[0])
        directory = ModelDirectory(
            settings,
            local_servers=[("Ollama", ollama_port), ("Hung", hanging_port), ("LM Studio", closed_port())],
            local_timeout_s=20,
        )
        started = time.monotonic()
        listing = directory.snapshot(wait_s=0.3)
        waited = time.monotonic() - started
        assert waited < 5  # the hung server (20 s timeout) did not hold the page
        assert listing.checking  # and the picker says it is still looking
        groups = dict(listing.groups())
        assert [c.model for c in groups[GROUP_BUNDLED]] == ["SmolLM2-135M-Instruct"]
        assert [c.model for c in groups[f"Server {configured.base_url.split('/')[2]}"]] == [
            "gpt-4o-mini",
            "my-finetune",
        ]
        detected = groups[f"Ollama :{ollama_port}"]
        assert [c.model for c in detected] == ["llama3.2:1b", "qwen2.5:0.5b"]
        assert not any(name.startswith(("Hung", "LM Studio")) for name in groups)
        # A detected server is another program: the configured key never goes to it.
        client = client_for(detected[0], settings, LocalServers())
        assert "".join(client.stream_chat([ChatMessage("user", "hi")], params={})) == "echo: hi"
        assert ollama.requests[-1]["model"] == "llama3.2:1b"
        assert SECRET not in str(ollama.headers[-1])
        mine = client_for(groups[f"Server {configured.base_url.split('/')[2]}"][1], settings, LocalServers())
        assert "".join(mine.stream_chat([ChatMessage("user", "hi")], params={})) == "echo: hi"
        assert configured.headers[-1]["authorization"] == f"Bearer {SECRET}"
        assert configured.requests[-1]["model"] == "my-finetune"


def test_refresh_finds_a_server_started_later():
    with FakeOpenAIServer() as later:
        port = int(later.base_url.split(":")[2].split("/")[0])
        later.httpd.server_close()  # not listening yet
        directory = ModelDirectory(Settings.from_env({}), local_servers=[("LM Studio", port)])
        assert not any(c.group.startswith("LM Studio") for c in directory.snapshot().choices)
    with FakeOpenAIServer(port=port) as started:
        started.models = ["phi-3.5-mini"]
        assert not any(c.group.startswith("LM Studio") for c in directory.snapshot().choices)  # cached
        directory.refresh()
        assert [c.model for c in directory.snapshot().choices if c.group.startswith("LM Studio")] == ["phi-3.5-mini"]


def test_a_server_that_is_not_openai_compatible_is_not_listed():
    assert probe_models(f"http://127.0.0.1:{closed_port()}/v1", api_key=None, timeout_s=1).error == "did not answer"
    with FakeOpenAIServer() as server:
        server.models = []
        assert probe_models(server.base_url, api_key=None, timeout_s=2).models == ()


def test_openai_list_keeps_chat_models_only():
    ids = [
        "gpt-4o-mini",
        "text-embedding-3-small",
        "whisper-1",
        "o3-mini",
        "dall-e-3",
        "gpt-4o-mini-tts",
        "gpt-4.1",
        "omni-moderation-latest",
    ]
    assert openai_chat_models(ids) == ["gpt-4o-mini", "o3-mini", "gpt-4.1"]


def test_a_missing_bundled_model_is_a_note_not_a_crash(tmp_path):
    settings = Settings.from_env({"MEMORYLAB_LOCAL_MODEL": str(tmp_path / "gone.gguf")})
    listing = ModelDirectory(settings, local_servers=[]).snapshot()
    assert listing.choices == ()
    assert any("gone.gguf, which does not exist" in note for note in listing.notes)
