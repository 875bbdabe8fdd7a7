"""Settings read once from the environment (or Streamlit secrets passed in as a mapping)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."


@dataclass(frozen=True)
class Limits:
    """Input limits; anything over them is refused with a clear message."""

    max_message_chars: int = 32_000
    max_key_chars: int = 64
    max_value_chars: int = 2_000
    max_title_chars: int = 200
    max_system_prompt_chars: int = 8_000
    max_window_turns: int = 1_000
    max_token_limit: int = 1_000_000


@dataclass(frozen=True)
class Settings:
    """Everything configurable; `api_key` is held in memory only, never written anywhere."""

    database_url: str
    data_dir: Path = DEFAULT_DATA_DIR  # the default SQLite file and the outbox of what the database refused
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    model: str = DEFAULT_OPENAI_MODEL
    timeout_s: float = 60.0
    max_retries: int = 1
    context_tokens: int | None = None
    local_model_path: Path | None = None  # a GGUF file to run instead of the bundled model
    local_threads: int = 1  # llama.cpp generation threads (bench/local_model.py measured 1 against 2)
    embeddings_model: str | None = None  # an OpenAI-compatible /v1/embeddings model; None: wordllama offline
    user_id: str = "local"
    limits: Limits = Limits()
    retention_days: int | None = None  # delete conversations idle and ledger rows older than this; None: keep all

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read DATABASE_URL, OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL and friends."""
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("MEMORYLAB_DATA_DIR") or DEFAULT_DATA_DIR)
        database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'memorylab.db'}"
        max_chars = _int(env, "MEMORYLAB_MAX_MESSAGE_CHARS", Limits.max_message_chars)
        return cls(
            database_url=database_url,
            data_dir=data_dir,
            api_key=env.get("OPENAI_API_KEY") or None,
            base_url=env.get("OPENAI_BASE_URL") or None,
            model=env.get("OPENAI_MODEL") or DEFAULT_OPENAI_MODEL,
            timeout_s=float(_int(env, "OPENAI_TIMEOUT_S", 60)),
            max_retries=_int(env, "OPENAI_MAX_RETRIES", 1),
            context_tokens=_int(env, "OPENAI_CONTEXT_TOKENS", 0) or None,
            local_model_path=Path(env["MEMORYLAB_LOCAL_MODEL"]) if env.get("MEMORYLAB_LOCAL_MODEL") else None,
            local_threads=max(1, _int(env, "MEMORYLAB_LOCAL_THREADS", 1)),
            embeddings_model=env.get("OPENAI_EMBEDDINGS_MODEL") or None,
            limits=Limits(max_message_chars=max_chars),
            retention_days=_int(env, "MEMORYLAB_RETENTION_DAYS", 0) or None,
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    """Parse an integer setting, naming the variable when it is not one."""
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}.") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative.")
    return value
