"""Shared Streamlit helpers: settings, cached store and client, session state, and rendering.

UI only: every decision about memory, storage and prompts is made in memstore.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

import ui_models
from memstore import (
    MEMORY_TYPES,
    Chat,
    ChatClient,
    FactSet,
    Limits,
    MemoryLabError,
    Message,
    ModelCall,
    Payload,
    Settings,
    SqlStore,
    StorageError,
    TemporaryStore,
    get_memory_type,
    open_store,
    select_facts,
)
from memstore.costs import price_for
from memstore.embeddings import Embedder, embedder_from_settings
from memstore.lessons import sends_fact_at
from memstore.outbox import Outbox
from memstore.replay import replay
from ui_text import literal, show_reply, show_typed

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
)
DEFAULT_FACTS_BUDGET_TOKENS = 500
ICON = Path(__file__).resolve().parent / "assets" / "icon.png"
PAGE_MESSAGES = 50
SECTION_NAMES = {
    "system": "system prompt",
    "facts": "facts",
    "summary": "summary",
    "entities": "entities",
    "recalled": "recalled turns",
    "history": "history",
    "new_message": "new message",
}
ROLE_AVATARS = {"user": ":material/person:", "assistant": ":material/smart_toy:", "system": ":material/settings:"}
FAILED_AVATAR = ":material/error:"


# -- configuration and resources ---------------------------------------------------------------


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


@st.cache_resource(show_spinner=False)
def _outbox(data_dir: str) -> Outbox:
    return Outbox.beside(Path(data_dir))


def outbox() -> Outbox:
    """Where messages and replies the database refused are kept until they are saved."""
    return _outbox(str(load_settings().data_dir))


@st.cache_data(ttl=30, show_spinner=False)
def write_problem(url: str, limits: Limits) -> str | None:
    """Why the database cannot be written now (checked at most every 30 s), or None."""
    return _store(url, limits).write_problem()


@st.cache_resource(show_spinner=False)
def _embedder(model: str | None, api_key: str | None, base_url: str | None) -> Embedder:
    return embedder_from_settings(model, api_key=api_key, base_url=base_url)


def embedder() -> Embedder:
    """The embedding model for retrieval memory: wordllama offline unless OPENAI_EMBEDDINGS_MODEL is set."""
    settings = load_settings()
    return _embedder(settings.embeddings_model, settings.api_key, settings.base_url)


def resources() -> tuple[Settings, SqlStore, ChatClient]:
    """The settings, the database and the model client; stops the page with a clear message if unusable."""
    try:
        settings = load_settings()
        return settings, _store(settings.database_url, settings.limits), ui_models.session_client(settings)
    except MemoryLabError as exc:
        st.error("Memory Lab cannot start: " + literal(exc))
        if isinstance(exc, StorageError):
            st.caption("Set DATABASE_URL to another database, or move the file aside. Nothing was overwritten.")
        st.stop()
        raise  # unreachable: st.stop() ends the script


def auth_configured() -> bool:
    """Login is on when `.streamlit/secrets.toml` has an [auth] section (Streamlit's OIDC login)."""
    try:
        return "auth" in st.secrets
    except StreamlitSecretNotFoundError:
        return False


def start_page(title: str) -> tuple[Settings, SqlStore, ChatClient, str]:
    """Every page's first lines: its configuration, the store, the model client, and whose data it shows."""
    # A file of ours as the icon: a Material icon name makes the browser fetch the favicon from a font host.
    st.set_page_config(page_title=title, page_icon=str(ICON), layout="wide")
    settings, store, client = resources()
    identity = user_id()
    with st.sidebar:
        ui_models.model_picker(settings, client)
    if exposed_without_login():
        st.error(
            "Memory Lab is reachable from other machines (server.address is "
            + literal(st.get_option("server.address") or "every interface")
            + ") and has no login: anyone on the network can read, change and delete these conversations. "
            "Serve it on 127.0.0.1, or configure login (see the README).",
            icon=":material/public:",
        )
    if problem := read_only():
        st.warning(
            f"Nothing can be saved right now: {literal(problem)} Chats are temporary (kept in this "
            "browser session only) until the database can be written again.",
            icon=":material/lock:",
        )
    return settings, store, client, identity


LOOPBACK = ("127.", "localhost", "::1", "[::1]")


def exposed_without_login() -> bool:
    """Whether the server listens beyond this machine while everyone is the same local user."""
    address = str(st.get_option("server.address") or "")
    return not address.startswith(LOOPBACK) and not auth_configured()


def read_only() -> str | None:
    """Why the database refuses writes, or None (checked at most every 30 s)."""
    settings = load_settings()
    return write_problem(settings.database_url, settings.limits)


def user_id() -> str:
    """The logged-in user's email (or subject) when login is configured; otherwise the local user.

    With login configured and nobody logged in, the page shows only a login button and stops,
    so no one sees any stored data.
    """
    if not auth_configured():
        return "local"
    info = st.user.to_dict()
    if not info.get("is_logged_in"):
        st.title("Memory Lab")
        st.caption("Log in to see your conversations and preferences.")
        st.button("Log in", type="primary", on_click=st.login)
        st.stop()
    identity = str(info.get("email") or info.get("sub") or "")
    if not identity or len(identity) > 200:
        st.error("The identity provider sent no usable email or subject, so Memory Lab cannot tell whose data to show.")
        st.stop()
    with st.sidebar:
        st.caption("Logged in as " + literal(identity))
        st.button("Log out", on_click=st.logout)
    return identity


# -- session state -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationRef:
    """Which conversation is open: a saved one, or one in the session's temporary store."""

    id: int
    temporary: bool

    @property
    def slug(self) -> str:
        """A short stable name for widget keys."""
        return f"{'temporary' if self.temporary else 'saved'}_{self.id}"


def temporary_store() -> TemporaryStore:
    if "temporary_store" not in st.session_state:
        st.session_state.temporary_store = TemporaryStore(limits=load_settings().limits)
    return st.session_state.temporary_store


def session_facts() -> dict[str, str]:
    return dict(st.session_state.get("session_facts", {}))


def set_session_facts(facts: dict[str, str]) -> None:
    st.session_state.session_facts = dict(facts)


def chat_for(ref: ConversationRef, store: SqlStore, client: ChatClient) -> Chat:
    return Chat(
        temporary_store() if ref.temporary else store, client, user_id=user_id(), embedder=embedder(), preferences=store
    )


def keep_widget(widget_key: str, state_key: str) -> None:
    """Copy a widget's value to a plain session key, which survives visits to other pages."""
    st.session_state[state_key] = st.session_state[widget_key]


def facts_budget() -> int:
    return int(st.session_state.get("facts_budget", DEFAULT_FACTS_BUDGET_TOKENS))


def current_facts(store: SqlStore, client: ChatClient | None = None) -> FactSet:
    """Session facts and the user's stored preferences, merged as the next turn will see them, within the budget."""
    counter = client.counter() if client is not None else None
    return select_facts(
        session_facts(),
        store.list_preferences(user_id()),
        counter=counter,
        budget_tokens=facts_budget() if counter is not None else None,
    )


def open_conversation(ref: ConversationRef) -> None:
    st.session_state.conversation_ref = ref
    st.session_state.pages_shown = 1


def show_error(exc: MemoryLabError, *, what: str = "") -> None:
    """One readable sentence for any memstore error (its text may quote a server or a file: shown literally)."""
    st.error(literal(what) + literal(exc), icon=":material/error:")


# -- rendering ---------------------------------------------------------------------------------


def change_sentence_md(change) -> str:
    """One line of Markdown for a preference change: what it was, what it became, from which turn."""
    key = f"**{literal(change.key)}**"
    old = literal(change.old_value or "")
    new = literal(change.new_value or "")
    where = " (by you)" if change.source == "user" else f" (turn {change.turn:d})" if change.turn else ""
    if change.kind == "added":
        return f"Saved {key}: {new}{where}"
    if change.kind == "removed":
        return f"Removed {key} (was {old}){where}"
    if change.kind == "undone":
        return f"Undid a change to {key}: back to {new or '(removed)'}"
    return f"Changed {key}: {old} → {new}{where}"


def details_lines(details: dict) -> list[str]:
    """A ledger row's memory details as short lines: which turns were recalled and why, entities, facts left out."""
    lines = []
    recall = details.get("recall")
    if recall:
        picked = ", ".join(
            f"turn {r['turn']}"
            + ("" if r["same_conversation"] else f" of “{r['conversation_title']}”")
            + f" ({r['score']:.2f}, #{r['rank']})"
            for r in recall.get("recalled", [])
        )
        lines.append(
            f"Recalled {picked or 'nothing'} · min {recall['min_score']:.2f} · searched {recall['searched']:,}"
        )
        if recall.get("missed"):
            lines.append("Just missed: " + ", ".join(f"turn {m['turn']} ({m['score']:.2f})" for m in recall["missed"]))
    entities = details.get("entities")
    if entities:
        names = ", ".join(e["name"] for e in entities.get("injected", []))
        lines.append(f"Entities injected: {names or 'none'} (of {entities.get('known', 0)} known)")
    for left in details.get("facts_left_out", []):
        lines.append(f"Fact left out: {left['key']} ({left['reason']})")
    return lines


def memory_label(name: str) -> str:
    return MEMORY_TYPES[name].label if name in MEMORY_TYPES else name


def render_message(message: Message) -> None:
    """A stored message as a chat bubble: yours exactly as typed, replies as capped Markdown; failures say so."""
    if message.role == "assistant" and message.status == "failed":
        with st.chat_message("assistant", avatar=FAILED_AVATAR):
            st.error(f"No reply (turn {message.turn:d}): " + literal(message.error or "the call failed"))
        return
    with st.chat_message(message.role, avatar=ROLE_AVATARS.get(message.role)):
        if message.role == "user":
            show_typed(message.content)
        else:
            show_reply(message.content, key=f"message_{message.id}")
        if message.status == "partial":
            st.caption(":material/warning: Reply cut short: " + literal(message.error or "the stream ended early"))


def sections_frame(payload: Payload) -> pd.DataFrame:
    return pd.DataFrame([{"section": s.label, "tokens": s.tokens, "items": s.items} for s in payload.sections])


def render_request(messages, token_counts, *, key: str) -> None:
    """Messages exactly as sent: role, tokens, and the verbatim text (never rendered as Markdown)."""
    for i, (message, tokens) in enumerate(zip(messages, token_counts)):
        st.markdown(f"**{i + 1:d}. {literal(message.role)}** · {tokens:,} tokens")
        if message.content:
            st.code(message.content, language=None, wrap_lines=True)
        else:
            st.caption("(empty: your next message goes here)")


def call_summary(call: ModelCall) -> str:
    """One line about a ledger row: tokens counted and reported, latency, error."""
    reported = call.usage.prompt_tokens
    parts = [f"{call.counted_prompt_tokens or 0:,} prompt tokens counted"]
    if reported is not None:
        parts.append(f"{reported:,} reported by the server")
    if call.usage.completion_tokens is not None:
        parts.append(f"{call.usage.completion_tokens:,} completion tokens")
    if call.latency_ms is not None:
        parts.append(f"{call.latency_ms / 1000:.2f} s")
    if call.error:
        parts.append(f"error: {call.error}")
    return " · ".join(parts)


def turn_preview(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def explain_type(name: str) -> str:
    return get_memory_type(name).explanation


# -- replays (compare and lessons pages) -------------------------------------------------------

SURVIVAL_WORDS = {
    "kept": "kept: still sent word for word",
    "evicted": "evicted: fell out of the window",
    "folded": "folded into the summary",
    "never_sent": "never sent after its turn",
}


def run_replay(script, settings, facts: FactSet, store: SqlStore, client: ChatClient):
    """Replay with a progress bar; summaries already in the ledger are reused, new ones are recorded."""
    bar = st.progress(0.0, text="Replaying…")

    def progress(done: int, total: int) -> None:
        bar.progress(
            done / total, text=f"Replaying: {done:d} of {total:d} turn-and-type steps (summaries call the model)"
        )

    try:
        results = replay(
            script,
            settings,
            client,
            user_id=user_id(),
            facts=facts,
            cache=store,
            on_progress=progress,
            embedder=embedder(),
            limits=store.limits,
        )
    finally:
        bar.empty()
    return results


def tokens_chart_frame(results) -> pd.DataFrame:
    """Tokens sent per turn, one column per memory type (for st.line_chart)."""
    data = {memory_label(r.memory_type): [f.payload.total_tokens for f in r.frames] for r in results}
    frame = pd.DataFrame(data)
    frame.index = range(1, len(frame) + 1)
    frame.index.name = "turn"
    return frame


def totals_frame(results, prices, model: str) -> pd.DataFrame:
    price = price_for(model, prices)
    rows = []
    for r in results:
        completion = sum(f.reply_tokens for f in r.frames)
        summary_completion = sum(c.usage.completion_tokens or 0 for f in r.frames for c in f.summary_calls)
        summary_prompt = sum(c.counted_prompt_tokens or 0 for f in r.frames for c in f.summary_calls)
        rows.append(
            {
                "memory type": memory_label(r.memory_type),
                "prompt tokens sent": r.prompt_tokens,
                "reply tokens": completion,
                "summary calls": r.summary_calls,
                "summary tokens": r.summary_tokens,
                "cost (USD)": price.cost(r.prompt_tokens + summary_prompt, completion + summary_completion),
            }
        )
    return pd.DataFrame(rows)


def render_frames_side_by_side(results, turn: int, *, per_row: int = 3) -> None:
    """Each type's exact request at one turn, in columns."""
    for start in range(0, len(results), per_row):
        columns = st.columns(per_row)
        for column, result in zip(columns, results[start : start + per_row]):
            frame = result.frames[turn - 1]
            with column, st.container(border=True):
                st.markdown(f"**{literal(memory_label(result.memory_type))}** · {frame.payload.total_tokens:,} tokens")
                sent = frame.sent_turns
                st.caption(f"History: turns {sent[0]:d}–{sent[-1]:d}" if sent else "History: none")
                for message, tokens in zip(frame.payload.messages, frame.payload.message_tokens):
                    st.caption(f"{literal(message.role)} · {tokens:,} tokens")
                    st.code(message.content or " ", language=None, wrap_lines=True)
                for call in frame.summary_calls:
                    st.caption(
                        f"Summary call: {(call.counted_prompt_tokens or 0):,} prompt + "
                        f"{call.usage.completion_tokens or 0:,} completion tokens"
                        + (" (reused from the ledger)" if call.latency_ms == 0 else "")
                    )


def survival_frame(survival, at_turn: int | None = None) -> pd.DataFrame:
    rows = []
    for s in survival:
        row = {
            "memory type": memory_label(s.memory_type),
            "what happened": SURVIVAL_WORDS[s.status],
            "last sent word for word at turn": "—" if s.last_verbatim_turn is None else str(s.last_verbatim_turn),
            "gone from turn": "—" if s.lost_at_turn is None else str(s.lost_at_turn),
            "summary still mentions it": "—" if s.summary_mentions is None else ("yes" if s.summary_mentions else "no"),
        }
        if at_turn is not None:
            row[f"reaches the model at turn {at_turn}"] = "yes" if sends_fact_at(s, at_turn) else "no"
        rows.append(row)
    return pd.DataFrame(rows)


def diff_text(diff) -> str:
    """A per-turn diff as unified-diff-like lines (shown with st.code, so nothing in it is rendered)."""
    lines = []
    if diff.entered:
        lines.append("+ turns now sent: " + ", ".join(map(str, diff.entered)))
    if diff.left:
        lines.append("- turns no longer sent: " + ", ".join(map(str, diff.left)))
    for fact in diff.facts_added:
        lines.append(f"+ fact: {fact}")
    for fact in diff.facts_removed:
        lines.append(f"- fact: {fact}")
    if diff.summary_changed:
        for op, words in diff.summary_ops:
            if op != "equal":
                lines.append(("+ summary: " if op == "insert" else "- summary: ") + words)
    return "\n".join(lines) or "  (no change)"
