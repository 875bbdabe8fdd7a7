"""Hostile servers against the model probes: a redirect never carries the key, a drip never holds the picker."""

from __future__ import annotations

import threading
import time

import pytest
from probe_lesson_servers import Drip, Recorder, Redirector

from memstore import Settings
from memstore.llm.catalog import ModelDirectory, local_servers_from_env, probe_models
from openai_server import FakeOpenAIServer

SECRET = "sk-test-SECRET-key-that-must-stay-home"
HOLD_S = 30  # far past every deadline: a probe still running then is held by its server


def finished(call, hold_s: float = HOLD_S):
    """The call's result, run in a thread; None when it is still running after `hold_s` (held by the server)."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    thread.join(hold_s)
    return out[0] if out else None


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_the_configured_probe_follows_no_redirect_so_the_key_stays_with_its_server(status):
    with Recorder() as other, Redirector(status, f"http://127.0.0.1:{other.port}") as hostile:
        probe = probe_models(hostile.base_url, api_key=SECRET, timeout_s=5)
        assert hostile.hits == 1
        assert other.headers == []  # the other origin never heard from the probe, so never saw the key
        assert probe.models == ()
        assert probe.error == f"redirects to http://127.0.0.1:{other.port}/v1/models (not followed)"
        # The picker says so in one sentence and lists nothing from the other server.
        settings = Settings.from_env({"OPENAI_BASE_URL": hostile.base_url, "OPENAI_API_KEY": SECRET})
        listing = ModelDirectory(settings, local_servers=[]).snapshot(wait_s=10)
        assert [c.model for c in listing.choices if c.uses_key] == ["gpt-4o-mini"]
        assert listing.notes == (
            f"The server at {hostile.base_url} redirects to http://127.0.0.1:{other.port}/v1/models "
            "(not followed); its model list is not shown.",
        )
        assert other.headers == []


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_local_port_that_redirects_elsewhere_is_not_listed(status):
    with Recorder() as other, Redirector(status, f"http://127.0.0.1:{other.port}") as hostile:
        listing = ModelDirectory(Settings.from_env({}), local_servers=[("Ollama", hostile.port)]).snapshot(wait_s=10)
        assert not any(c.group.startswith("Ollama") for c in listing.choices)
        assert other.headers == []


@pytest.mark.parametrize("headers", [True, False], ids=["status-line", "body"])
def test_a_server_that_drips_its_answer_cannot_hold_a_probe_past_its_deadline(headers):
    """One byte every 0.5 s, forever: a socket timeout (5 s) never fires, the probe's total deadline does."""
    with Drip(0.5, headers=headers) as drip:
        probe = finished(lambda: probe_models(drip.base_url, api_key=None, timeout_s=2))
        assert probe is not None, "the probe was still running after 30 s"
        assert probe.error == "did not answer within 2 s"


def test_a_probe_reads_at_most_its_byte_cap():
    with FakeOpenAIServer() as big:
        big.models = [f"model-{n:07d}-" + "x" * 80 for n in range(30_000)]  # about 3 MB of model list
        probe = probe_models(big.base_url, api_key=None, timeout_s=10)
    assert probe.models == () and probe.error == "sent a model list over 2 MB"


def test_after_five_refreshes_with_drip_servers_on_every_local_port_the_configured_models_are_still_listed():
    """The attack: drips on the probed ports held every worker, and the configured server's probe waited behind
    them, so its models vanished from the picker."""
    with FakeOpenAIServer() as good:
        good.models = ["gpt-4o-mini", "my-finetune"]
        settings = Settings.from_env({"OPENAI_BASE_URL": good.base_url, "OPENAI_API_KEY": SECRET})
        drips = [Drip(0.1) for _ in range(4)]  # faster than the local socket timeout (0.25 s)
        for drip in drips:
            drip.__enter__()
        try:
            directory = ModelDirectory(
                settings, local_servers=[(f"Drip {n}", d.port) for n, d in enumerate(drips)], local_timeout_s=1
            )
            for _ in range(5):  # the picker's Refresh button, five times
                directory.refresh()
                time.sleep(0.3)
            listing = finished(lambda: _until_listed(directory, "my-finetune"))
            assert listing is not None, "the configured server's models never came back"
            assert [c.model for c in listing.choices if c.uses_key] == ["gpt-4o-mini", "my-finetune"]
            assert not any(c.group.startswith("Drip") for c in listing.choices)
            directory.close()
        finally:
            for drip in drips:
                drip.__exit__(None, None, None)


def _until_listed(directory: ModelDirectory, model: str):
    while True:
        listing = directory.snapshot(wait_s=0.5)
        if any(c.model == model for c in listing.choices):
            return listing


def test_the_probed_local_ports_can_be_set_for_a_test_or_an_unusual_setup():
    assert local_servers_from_env({}) == (
        ("Ollama", 11434),
        ("LM Studio", 1234),
        ("llama.cpp server", 8080),
        ("vLLM", 8000),
    )
    assert local_servers_from_env({"MEMORYLAB_LOCAL_SERVERS": "Ollama=4000, My server=4001"}) == (
        ("Ollama", 4000),
        ("My server", 4001),
    )
    assert local_servers_from_env({"MEMORYLAB_LOCAL_SERVERS": "none"}) == ()
    from memstore.errors import ConfigError

    for bad in ("Ollama", "Ollama=x", "Ollama=0", "Ollama=70000"):
        with pytest.raises(ConfigError, match="MEMORYLAB_LOCAL_SERVERS"):
            local_servers_from_env({"MEMORYLAB_LOCAL_SERVERS": bad})


def test_a_mistyped_port_setting_is_a_note_in_the_picker_not_a_crash(monkeypatch):
    monkeypatch.setenv("MEMORYLAB_LOCAL_SERVERS", "Ollama:11434")
    listing = ModelDirectory(Settings.from_env({})).snapshot()
    assert listing.notes == (
        "MEMORYLAB_LOCAL_SERVERS must read like \"Ollama=11434, LM Studio=1234\", not 'Ollama:11434'.",
    )
    assert [c.key for c in listing.choices] == ["bundled"]
