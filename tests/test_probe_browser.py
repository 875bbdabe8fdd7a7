"""The model picker in real Chromium while every probed local port drips: the configured server's models stay."""

from __future__ import annotations

import pytest
from probe_lesson_servers import Drip, Recorder, Redirector

from browser import ARTIFACTS, browser_page, serve_app
from openai_server import FakeOpenAIServer

pytestmark = pytest.mark.browser
SECRET = "sk-test-SECRET-key-that-must-stay-home"


def test_the_picker_keeps_the_configured_models_while_drip_servers_sit_on_the_local_ports(tmp_path):
    """The probed ports are set with MEMORYLAB_LOCAL_SERVERS (the usual 11434, 1234, 8080, 8000 may be taken
    here); four drip a byte every 0.1 s, one redirects to another origin that records what it is sent."""
    drips = [Drip(0.1) for _ in range(4)]
    with (
        FakeOpenAIServer() as good,
        Recorder() as other,
        Redirector(307, f"http://127.0.0.1:{other.port}") as hostile,
        drips[0],
        drips[1],
        drips[2],
        drips[3],
    ):
        good.models = ["gpt-4o-mini", "my-finetune"]
        ports = ", ".join(f"Drip {n}={d.port}" for n, d in enumerate(drips)) + f", Redirect={hostile.port}"
        with (
            serve_app(
                tmp_path,
                OPENAI_BASE_URL=good.base_url,
                OPENAI_API_KEY=SECRET,
                OPENAI_MODEL="gpt-4o-mini",
                MEMORYLAB_LOCAL_SERVERS=ports,
            ) as url,
            browser_page(height=1400) as page,
        ):
            page.goto(url)
            page.get_by_test_id("stChatInputTextArea").wait_for(timeout=60_000)
            sidebar = page.get_by_test_id("stSidebar")
            refresh = page.locator(".st-key-refresh_models button").first
            for _ in range(5):  # the attack: five refreshes while every local port drips
                refresh.click()
                page.wait_for_timeout(1_500)  # each click runs the page: let it
            group = f"Server {good.base_url.split('/')[2]}"
            picker = sidebar.get_by_test_id("stSelectbox").first
            for _ in range(30):  # the picker shows what is known so far; look again until the probe is in
                picker.click()
                options = page.get_by_role("option").all_inner_texts()
                page.keyboard.press("Escape")
                if f"{group}: my-finetune" in options:
                    break
                page.wait_for_timeout(1_000)
                page.reload()
                page.get_by_test_id("stChatInputTextArea").wait_for(timeout=60_000)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "probe-drip-picker.png"), full_page=True)
            assert f"{group}: gpt-4o-mini" in options and f"{group}: my-finetune" in options
            assert not any(o.startswith(("Drip", "Redirect")) for o in options)
            assert page.get_by_test_id("stException").count() == 0
        assert other.headers == []  # the redirecting port sent the probe nowhere
