"""What one app process shares between sessions: settings, the database, the outbox and the embedder."""

from __future__ import annotations

import gc
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from memstore import Limits, Settings, SqlStore, open_store
from memstore.embeddings import Embedder, embedder_from_settings
from memstore.outbox import Outbox
from memstore.records import Expired
from memstore.retention import RetentionSchedule

# When this app process loaded its UI (its first page): what was written before it survived a restart.
PROCESS_STARTED = datetime.now(UTC)

SETTING_NAMES = (
    "DATABASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_MODEL",
    "OPENAI_TIMEOUT_S",
    "OPENAI_MAX_RETRIES",
    "OPENAI_CONTEXT_TOKENS",
    "OPENAI_EMBEDDINGS_MODEL",
    "MEMORYLAB_DATA_DIR",
    "MEMORYLAB_MAX_MESSAGE_CHARS",
    "MEMORYLAB_LOCAL_MODEL",
    "MEMORYLAB_LOCAL_THREADS",
    "MEMORYLAB_RETENTION_DAYS",
)


def load_settings() -> Settings:
    """Settings from the environment, then `.streamlit/secrets.toml` for names the environment lacks."""
    env = dict(os.environ)
    try:
        for name in SETTING_NAMES:
            if name not in env and name in st.secrets:
                env[name] = str(st.secrets[name])
    except StreamlitSecretNotFoundError:
        pass  # no secrets file: the environment alone configures the app
    return Settings.from_env(env)


@st.cache_resource(show_spinner="Opening the database…")
def _store(url: str, limits: Limits) -> SqlStore:
    return open_store(Settings(database_url=url, limits=limits))


def store(settings: Settings) -> SqlStore:
    """The app's database (opened and migrated once per process)."""
    return _store(settings.database_url, settings.limits)


@st.cache_resource(show_spinner=False)
def _outbox(data_dir: str) -> Outbox:
    return Outbox.beside(Path(data_dir))


def outbox() -> Outbox:
    """Where messages and replies the database refused are kept until they are saved."""
    return _outbox(str(load_settings().data_dir))


@st.cache_data(ttl=30, show_spinner=False)
def _write_problem(url: str, limits: Limits) -> str | None:
    return _store(url, limits).write_problem()


def read_only() -> str | None:
    """Why the database refuses writes, or None (checked at most every 30 s)."""
    settings = load_settings()
    return _write_problem(settings.database_url, settings.limits)


@st.cache_resource(show_spinner=False)
def _embedder(model: str | None, api_key: str | None, base_url: str | None) -> Embedder:
    return embedder_from_settings(model, api_key=api_key, base_url=base_url)


def embedder() -> Embedder:
    """The embedding model for retrieval memory: wordllama offline unless OPENAI_EMBEDDINGS_MODEL is set."""
    settings = load_settings()
    return _embedder(settings.embeddings_model, settings.api_key, settings.base_url)


@st.cache_resource(show_spinner=False)
def _retention(days: int) -> RetentionSchedule:
    return RetentionSchedule(days)


def run_retention(settings: Settings, store: SqlStore) -> list[Expired] | None:
    """Retention, when MEMORYLAB_RETENTION_DAYS is set: at the first page of the process, then once a day."""
    if settings.retention_days is None:
        return None
    return _retention(settings.retention_days).due_run(store)


class Heap:
    """Moves the process's long-lived objects (modules, the tokenizer, the model client) out of the collector's way.

    Streamlit collects garbage fully after every script run; with the imports of a warmed-up app that scan
    cost more than the script itself. Once one page has run, everything alive is frozen (gc.freeze), so each
    later collection walks only what the runs since have made.
    """

    def __init__(self) -> None:
        self._pages = 0
        self._lock = threading.Lock()

    def page_started(self) -> None:
        with self._lock:
            self._pages += 1
            if self._pages != 2:
                return
        gc.collect()
        gc.freeze()


@st.cache_resource(show_spinner=False)
def heap() -> Heap:
    return Heap()
