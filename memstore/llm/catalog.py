"""Every model the app can reach, grouped by where it runs: bundled, downloaded, configured, found on this machine.

Servers are probed in the background, in parallel, with short timeouts; a page waits at most a
fraction of a second for them and shows what is known so far.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import httpx2

from ..config import Settings
from ..errors import ConfigError, one_line

if TYPE_CHECKING:
    from .downloads import DownloadEntry

# Usual loopback ports of local OpenAI-compatible servers.
LOCAL_SERVERS = (("Ollama", 11434), ("LM Studio", 1234), ("llama.cpp server", 8080), ("vLLM", 8000))
LOCAL_SERVERS_VARIABLE = "MEMORYLAB_LOCAL_SERVERS"  # "Name=port, Name=port" instead (or "none")
LOCAL_PROBE_TIMEOUT_S = 0.25  # each whole probe, connect to last byte: a loopback server answers in milliseconds
REMOTE_PROBE_TIMEOUT_S = 5.0
PROBE_MAX_BYTES = 2_000_000
PAGE_WAIT_S = 0.3
REPROBE_AFTER_S = 60.0
MAX_MODELS_PER_SERVER = 50
# OpenAI lists embeddings, audio and image models too; these prefixes are its chat models.
OPENAI_CHAT_PREFIXES = ("gpt-", "o1", "o3", "o4", "chatgpt-")
NOT_CHAT_WORDS = (
    "embed",
    "whisper",
    "tts",
    "audio",
    "realtime",
    "image",
    "dall-e",
    "transcribe",
    "search",
    "moderation",
)

GROUP_BUNDLED = "Bundled"
GROUP_DOWNLOADED = "Downloaded"
GROUP_OPENAI = "OpenAI"


@dataclass(frozen=True)
class ModelChoice:
    """One model the picker offers: where it runs, its name, and how to reach it."""

    key: str  # stable across reruns: the session remembers this
    label: str
    group: str
    model: str
    base_url: str | None = None  # an OpenAI-compatible server (None with path: a local GGUF file)
    path: str | None = None  # a GGUF file run by llama.cpp in this process
    uses_key: bool = False  # the configured OPENAI_API_KEY goes with it (OpenAI, OPENAI_BASE_URL only)
    context_tokens: int | None = None

    @property
    def local_file(self) -> bool:
        return self.path is not None


@dataclass(frozen=True)
class Directory:
    """The picker's contents at one moment, and notes on what could not be listed."""

    choices: tuple[ModelChoice, ...]
    notes: tuple[str, ...] = ()
    checking: bool = False  # some servers have not answered yet

    def find(self, key: str) -> ModelChoice | None:
        return next((c for c in self.choices if c.key == key), None)

    def groups(self) -> list[tuple[str, list[ModelChoice]]]:
        out: dict[str, list[ModelChoice]] = {}
        for choice in self.choices:
            out.setdefault(choice.group, []).append(choice)
        return list(out.items())


@dataclass(frozen=True)
class Probe:
    """One server's answer to GET /v1/models: its models, or why there are none."""

    base_url: str
    models: tuple[str, ...] = ()
    error: str | None = None


def probe_models(base_url: str, *, api_key: str | None, timeout_s: float, max_bytes: int = PROBE_MAX_BYTES) -> Probe:
    """The model ids a server lists; never raises (an unreachable server is the common case), follows no redirect
    (so the key stays with the server it was configured for), and gives up after `timeout_s` in all, however
    slowly the server drips its answer."""
    try:
        return asyncio.run(_probe(base_url, api_key=api_key, timeout_s=timeout_s, max_bytes=max_bytes))
    except TimeoutError:
        return Probe(base_url, error=f"did not answer within {timeout_s:g} s")
    except (httpx2.HTTPError, httpx2.InvalidURL, OSError):
        return Probe(base_url, error="did not answer")


async def _probe(base_url: str, *, api_key: str | None, timeout_s: float, max_bytes: int) -> Probe:
    """GET /models under one deadline for the whole exchange (connect, headers and body)."""
    headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    async with (
        asyncio.timeout(timeout_s),
        # No proxy (loopback must never go via one) and no redirects: the key goes to this origin or nowhere.
        httpx2.AsyncClient(trust_env=False, follow_redirects=False, timeout=timeout_s) as client,
        client.stream("GET", f"{base_url.rstrip('/')}/models", headers=headers) as response,
    ):
        if response.is_redirect:
            where = one_line(response.headers.get("location", ""))
            return Probe(base_url, error=f"redirects to {where or 'another address'} (not followed)")
        if response.status_code != 200:
            return Probe(base_url, error=f"answered {response.status_code}")
        if response.headers.get("content-encoding", "identity").lower() != "identity":
            return Probe(base_url, error="is not an OpenAI-compatible server")  # compressed though asked not to
        body = bytearray()
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > max_bytes:
                return Probe(base_url, error=f"sent a model list over {max_bytes / 1e6:g} MB")
    return _listed(base_url, bytes(body))


def _listed(base_url: str, body: bytes) -> Probe:
    """The model ids in a /models answer, or why it is not one."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return Probe(base_url, error="is not an OpenAI-compatible server")
    data = parsed.get("data") if isinstance(parsed, dict) else None
    if not isinstance(data, list):
        return Probe(base_url, error="is not an OpenAI-compatible server")
    ids = [str(m["id"]) for m in data if isinstance(m, dict) and isinstance(m.get("id"), str) and m["id"].strip()]
    return Probe(base_url, tuple(sorted(set(ids))[:MAX_MODELS_PER_SERVER]))


def openai_chat_models(ids: Sequence[str]) -> list[str]:
    """The chat models in OpenAI's list."""
    return [i for i in ids if i.startswith(OPENAI_CHAT_PREFIXES) and not any(w in i for w in NOT_CHAT_WORDS)]


def bundled_choice(settings: Settings) -> ModelChoice | str:
    """The offline model (SmolLM2-135M, or the GGUF in MEMORYLAB_LOCAL_MODEL), or why it is missing."""
    from .local_server import BUNDLED_NAME, bundled_model_path

    if settings.local_model_path is not None:
        path = settings.local_model_path
        if not path.is_file():
            return f"MEMORYLAB_LOCAL_MODEL points to {path}, which does not exist."
        return ModelChoice("bundled", f"{path.stem} (MEMORYLAB_LOCAL_MODEL)", GROUP_BUNDLED, path.stem, path=str(path))
    try:
        path = bundled_model_path()
    except ConfigError as exc:
        return str(exc)
    return ModelChoice("bundled", f"{BUNDLED_NAME} (tiny)", GROUP_BUNDLED, BUNDLED_NAME, path=str(path))


def configured_choice(settings: Settings) -> ModelChoice | None:
    """The model named by OPENAI_MODEL at OpenAI or at OPENAI_BASE_URL, when either is configured."""
    if not (settings.api_key or settings.base_url):
        return None
    group = GROUP_OPENAI if settings.base_url is None else f"Server {urlparse(settings.base_url).netloc}"
    return ModelChoice(
        f"configured:{settings.model}",
        settings.model,
        group,
        settings.model,
        base_url=settings.base_url,
        uses_key=True,
        context_tokens=settings.context_tokens,
    )


def downloaded_choices(entries: Sequence[DownloadEntry], cache_dir: str | Path | None = None) -> list[ModelChoice]:
    """Offered models whose file is complete in the Hugging Face cache."""
    from .downloads import downloaded_path  # huggingface_hub loads only when there is something to look for

    out = []
    for entry in entries:
        path = downloaded_path(entry, cache_dir=cache_dir)
        if path is not None:
            out.append(
                ModelChoice(
                    f"download:{entry.key}",
                    entry.label,
                    GROUP_DOWNLOADED,
                    entry.label,
                    path=str(path),
                    context_tokens=entry.context_tokens,
                )
            )
    return out


def default_key(settings: Settings) -> str:
    """The configured server's model when one is set, else the bundled model."""
    configured = configured_choice(settings)
    return configured.key if configured is not None else "bundled"


def local_servers_from_env(environ: Mapping[str, str] | None = None) -> tuple[tuple[str, int], ...]:
    """The loopback ports probed for local servers: the usual ones, or MEMORYLAB_LOCAL_SERVERS ("Name=port, …";
    "none" for no probing), so a test or an unusual setup can point the picker elsewhere."""
    env = os.environ if environ is None else environ
    raw = (env.get(LOCAL_SERVERS_VARIABLE) or "").strip()
    if not raw:
        return LOCAL_SERVERS
    if raw.lower() == "none":
        return ()
    servers = []
    for item in raw.split(","):
        name, _, port = item.partition("=")
        if not name.strip() or not port.strip().isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(
                f'{LOCAL_SERVERS_VARIABLE} must read like "Ollama=11434, LM Studio=1234", not {item.strip()!r}.'
            )
        servers.append((name.strip(), int(port)))
    return tuple(servers)


class ModelDirectory:
    """What the app can reach, probed in the background and kept until `refresh` or a minute passes.

    The configured server has a worker of its own, and a server still being probed is not probed again, so slow
    or hostile local ports can never queue the configured server's probe behind them.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        entries: Sequence[DownloadEntry] = (),
        local_servers: Sequence[tuple[str, int]] | None = None,
        cache_dir: str | Path | None = None,
        local_timeout_s: float = LOCAL_PROBE_TIMEOUT_S,
        remote_timeout_s: float = REMOTE_PROBE_TIMEOUT_S,
    ):
        self.settings = settings
        self.entries = tuple(entries)
        self._setup_notes: tuple[str, ...] = ()
        if local_servers is None:
            try:
                local_servers = local_servers_from_env()
            except ConfigError as exc:  # a mistyped setting costs the local servers, not the page
                local_servers, self._setup_notes = (), (str(exc),)
        self.local_servers = tuple(local_servers)
        self.cache_dir = cache_dir
        self.local_timeout_s = local_timeout_s
        self.remote_timeout_s = remote_timeout_s
        self._configured_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-probe-configured")
        self._local_pool = ThreadPoolExecutor(
            max_workers=max(1, len(self.local_servers)), thread_name_prefix="model-probe-local"
        )
        self._lock = threading.Lock()
        self._probes: dict[str, Future[Probe]] = {}
        self._probed_at = 0.0

    def refresh(self) -> None:
        """Probe every server again (the picker's Refresh button); a probe still running is kept, not repeated."""
        with self._lock:
            self._probed_at = time.monotonic()
            running = {url: f for url, f in self._probes.items() if not f.done()}
            self._probes = {}
            configured = self.settings.base_url or (None if not self.settings.api_key else "https://api.openai.com/v1")
            if configured:
                self._probes[configured] = running.get(configured) or self._configured_pool.submit(
                    probe_models, configured, api_key=self.settings.api_key, timeout_s=self.remote_timeout_s
                )
            for _, port in self.local_servers:
                url = f"http://127.0.0.1:{port}/v1"
                if not _same_server(url, configured):
                    self._probes[url] = running.get(url) or self._local_pool.submit(
                        probe_models, url, api_key=None, timeout_s=self.local_timeout_s
                    )

    def snapshot(self, *, wait_s: float = PAGE_WAIT_S) -> Directory:
        """Every choice known now; waits at most `wait_s` for servers still being probed."""
        with self._lock:
            stale = not self._probes or time.monotonic() - self._probed_at > REPROBE_AFTER_S
        if stale:
            self.refresh()
        with self._lock:
            probes = dict(self._probes)
        done, pending = wait(probes.values(), timeout=wait_s)
        results = {url: f.result() for url, f in probes.items() if f in done}
        choices: list[ModelChoice] = []
        notes: list[str] = list(self._setup_notes)
        bundled = bundled_choice(self.settings)
        if isinstance(bundled, str):
            notes.append(f"The bundled model is unavailable: {bundled}")
        else:
            choices.append(bundled)
        choices.extend(downloaded_choices(self.entries, self.cache_dir))
        choices.extend(self._configured(results, notes))
        for name, port in self.local_servers:
            url = f"http://127.0.0.1:{port}/v1"
            probe = results.get(url)
            if probe is None or probe.error is not None:
                continue  # nothing there is the usual case: not worth a note
            group = f"{name} :{port}"
            choices.extend(ModelChoice(f"server:{url}|{m}", m, group, m, base_url=url) for m in probe.models)
        return Directory(tuple(choices), tuple(notes), checking=bool(pending))

    def _configured(self, results: dict[str, Probe], notes: list[str]) -> list[ModelChoice]:
        configured = configured_choice(self.settings)
        if configured is None:
            return []
        url = self.settings.base_url or "https://api.openai.com/v1"
        probe = results.get(url)
        listed: Sequence[str] = ()
        if probe is not None and probe.error is not None:
            notes.append(f"The server at {url} {probe.error}; its model list is not shown.")
        elif probe is not None:
            listed = openai_chat_models(probe.models) if self.settings.base_url is None else probe.models
        others = [
            ModelChoice(
                f"configured:{m}",
                m,
                configured.group,
                m,
                base_url=configured.base_url,
                uses_key=True,
                context_tokens=self.settings.context_tokens,
            )
            for m in listed
            if m != configured.model
        ]
        return [configured, *others]

    def close(self) -> None:
        self._configured_pool.shutdown(wait=False, cancel_futures=True)
        self._local_pool.shutdown(wait=False, cancel_futures=True)


def _same_server(url: str, other: str | None) -> bool:
    """Whether two base URLs name one server (localhost and 127.0.0.1 alike)."""
    if other is None:
        return False

    def norm(u: str) -> str:
        return u.rstrip("/").replace("://localhost:", "://127.0.0.1:").removesuffix("/v1")

    return norm(url) == norm(other)
