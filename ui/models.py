"""The sidebar's model picker and the download list: which model answers, and stronger ones one click away."""

from __future__ import annotations

import streamlit as st

from memstore import ChatClient, MemoryLabError, Settings
from memstore.llm import LocalServers, ModelChoice, UnconfiguredClient, client_for, default_key
from memstore.llm.catalog import GROUP_BUNDLED, Directory, ModelDirectory
from memstore.llm.downloads import DownloadEntry, ModelDownloads, format_bytes, load_download_list
from ui.render import literal

CHOICE_KEY = "model_choice"  # the session's pick (a ModelChoice), kept across pages
POLL_S = 1.0


@st.cache_resource(show_spinner=False)
def _servers() -> LocalServers:
    """Local llama.cpp servers of this app process: started on first use, stopped with the process."""
    return LocalServers(max_running=2)


@st.cache_resource(show_spinner=False)
def _download_list() -> tuple[DownloadEntry, ...]:
    return load_download_list()


@st.cache_resource(show_spinner=False)
def _directory(settings: Settings) -> ModelDirectory:
    return ModelDirectory(settings, entries=_download_list())


@st.cache_resource(show_spinner=False)
def _downloads() -> ModelDownloads:
    return ModelDownloads()


@st.cache_resource(show_spinner=False)
def _remote_client(choice: ModelChoice, settings: Settings) -> ChatClient:
    return client_for(choice, settings, _servers())


def directory(settings: Settings) -> Directory:
    return _directory(settings).snapshot()


def chosen(settings: Settings, listing: Directory) -> ModelChoice | None:
    """The session's model: its pick, else the configured server's model, else the bundled one."""
    picked = st.session_state.get(CHOICE_KEY)
    if isinstance(picked, ModelChoice):
        return picked
    return listing.find(default_key(settings)) or (listing.choices[0] if listing.choices else None)


def session_client(settings: Settings) -> ChatClient:
    """The client for the session's model; a model that cannot be used gives a client that says why on send."""
    listing = directory(settings)
    choice = chosen(settings, listing)
    if choice is None:
        notes = " ".join(listing.notes)
        return UnconfiguredClient(reason=notes or None)
    if choice.local_file:
        with st.spinner(f"Starting {literal(choice.label)} on this machine…"):
            return client_for(choice, settings, _servers())
    try:
        return _remote_client(choice, settings)
    except MemoryLabError as exc:
        return UnconfiguredClient(reason=str(exc))


def is_bundled(client: ChatClient) -> bool:
    """Whether the tiny offline model answers (it invents facts, so automatic facts default to off)."""
    picked = st.session_state.get(CHOICE_KEY)
    return client.provider == "none" or (
        client.provider == "local" and (not isinstance(picked, ModelChoice) or picked.group == GROUP_BUNDLED)
    )


def _pick(choices: dict[str, ModelChoice]) -> None:
    st.session_state[CHOICE_KEY] = choices[st.session_state.model_picker]


def model_picker(settings: Settings, client: ChatClient) -> None:
    """Every model the app can reach, grouped by where it runs; switching needs no restart."""
    listing = directory(settings)
    current = chosen(settings, listing)
    choices = {c.key: c for c in listing.choices}
    if current is not None and current.key not in choices:  # a server that stopped answering: still the pick
        choices = {current.key: current, **choices}
    st.subheader("Model")
    if choices:
        keys = list(choices)
        missing = current is not None and listing.find(current.key) is None
        st.selectbox(
            "Model",
            keys,
            index=keys.index(current.key) if current else 0,
            key="model_picker",
            format_func=lambda k: (
                f"{choices[k].group}: {choices[k].label}"
                + (" (not answering)" if missing and current is not None and k == current.key else "")
            ),
            on_change=_pick,
            args=(choices,),
            label_visibility="collapsed",
            help="Bundled, downloaded, configured (OPENAI_API_KEY, OPENAI_BASE_URL) and local servers "
            "found on their usual ports (Ollama, LM Studio, llama.cpp, vLLM).",
        )
    counter = client.counter()
    left, right = st.columns([5, 1], vertical_alignment="center")
    left.caption(
        f"On {literal(client.host)} · context {client.context_tokens:,} tokens · "
        + ("exact token counts" if counter.exact else "token counts estimated")
        + (" · still looking for local servers…" if listing.checking else "")
    )
    if right.button(
        "",
        icon=":material/refresh:",
        key="refresh_models",
        help="Look again for local servers (Ollama, LM Studio, llama.cpp, vLLM) and their models.",
    ):
        _directory(settings).refresh()
        st.rerun()
    for note in listing.notes:
        st.caption(":material/info: " + literal(note))
    if client.provider == "none":
        st.warning(
            f"No model is available. {literal(getattr(client, 'reason', '') or '')} Memory and history still work; "
            "messages are kept and can be retried."
        )
    elif is_bundled(client):
        st.info(
            "The bundled **SmolLM2-135M** is tiny and weak at recall: it often ignores facts in its context. "
            "Download a stronger model, start Ollama or LM Studio, or set `OPENAI_API_KEY`."
        )
    box = st.expander("Download a stronger model", icon=":material/download:", key="downloads_open", on_change="rerun")
    if box.open or downloading():  # while a download runs its fragment polls, so the picker lists it when done
        with box:
            downloads_panel()


def downloading() -> bool:
    manager = _downloads()
    return any(manager.status(e).state in ("downloading", "verifying") for e in _download_list())


def downloads_panel() -> None:
    """Each offered model with its size, licence and a note; downloads run in the background with progress."""
    if downloading():
        _downloads_running()
    else:
        _downloads_idle()


@st.fragment(run_every=POLL_S)
def _downloads_running() -> None:
    """Redrawn every second while a download runs; the whole page reruns when it ends, so the picker lists it."""
    if not _download_list_panel():
        st.rerun()


@st.fragment
def _downloads_idle() -> None:
    _download_list_panel()


def _download_list_panel() -> bool:
    """The offered models; returns whether any is downloading."""
    manager = _downloads()
    running = False
    for entry in _download_list():
        status = manager.status(entry)
        with st.container(border=True):
            st.markdown(f"**{literal(entry.label)}**")
            st.caption(
                " · ".join(
                    literal(part) for part in (format_bytes(entry.size_bytes), entry.license, entry.repo_id, entry.note)
                )
            )
            if status.state in ("downloading", "verifying"):
                running = True
                st.progress(status.fraction, text=literal(status.progress_text))
            elif status.state == "done":
                st.caption(":material/check_circle: Downloaded: pick it in the Model list above.")
            else:
                if status.state == "failed" and status.error:
                    st.error(literal(status.error), icon=":material/error:")
                label = "Download again" if status.state == "failed" else "Download"
                if st.button(label, key=f"download_{entry.key}", icon=":material/download:"):
                    manager.start(entry)
                    st.rerun()
    if running:
        st.caption("Downloads go on while you chat or switch pages.")
    return running
