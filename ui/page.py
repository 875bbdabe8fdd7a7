"""Every page's first lines: title and icon, who is logged in, the model picker, and the banners for all pages."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from memstore import ChatClient, InvalidInput, MemoryLabError, Settings, SqlStore, StorageError
from memstore.identity import LOCAL_USER, user_id_from_claims
from ui import models, resources
from ui.render import literal

# An emoji favicon is drawn by the browser itself: a Material icon would be fetched from a font host, and an
# image file makes Streamlit load numpy and Pillow (13 MB) on every process just to serve it.
ICON = "🧠"
LOOPBACK = ("127.", "localhost", "::1", "[::1]")
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


@dataclass(frozen=True)
class Page:
    """What a page works with: settings, the database, the model client, whose data it shows, and whether it saves."""

    settings: Settings
    store: SqlStore
    client: ChatClient
    user: str
    read_only: str | None  # why nothing can be saved right now, or None


def start_page(title: str) -> Page:
    """Set up a page; stops it with a clear message when the database or the model cannot be used."""
    st.set_page_config(page_title=title, page_icon=ICON, layout="wide")
    try:
        settings = resources.load_settings()
        store = resources.store(settings)
        client = models.session_client(settings)
    except MemoryLabError as exc:
        st.error("Memory Lab cannot start: " + literal(exc))
        if isinstance(exc, StorageError):
            st.caption("Set DATABASE_URL to another database, or move the file aside. Nothing was overwritten.")
        st.stop()
        raise  # unreachable: st.stop() ends the script
    resources.heap().page_started()
    identity = user_id()
    with st.sidebar:
        models.model_picker(settings, client)
    if exposed_without_login():
        st.error(
            "Memory Lab is reachable from other machines (server.address is "
            + literal(st.get_option("server.address") or "every interface")
            + ") and has no login: anyone on the network can read, change and delete these conversations. "
            "Serve it on 127.0.0.1, or configure login (see the README).",
            icon=":material/public:",
        )
    note = host_check_note(
        str(st.get_option("server.address") or ""), [str(h) for h in st.get_option("server.allowedHosts") or ()]
    )
    if note:
        st.warning(literal(note), icon=":material/dns:")
    try:
        expired = resources.run_retention(settings, store)
    except MemoryLabError as exc:
        st.warning("Retention did not run: " + literal(exc), icon=":material/auto_delete:")
    else:
        for row in expired or ():
            if row.user_id == identity:
                st.toast("Retention deleted " + literal(row.sentence()) + ".", icon=":material/auto_delete:")
    problem = resources.read_only()
    if problem:
        st.warning(
            f"Nothing can be saved right now: {literal(problem)} Chats are temporary (kept in this "
            "browser session only) until the database can be written again.",
            icon=":material/lock:",
        )
    return Page(settings, store, client, identity, problem)


def auth_configured() -> bool:
    """Login is on when `.streamlit/secrets.toml` has an [auth] section (Streamlit's OIDC login)."""
    try:
        return "auth" in st.secrets
    except StreamlitSecretNotFoundError:
        return False


def exposed_without_login() -> bool:
    """Whether the server listens beyond this machine while everyone is the same local user."""
    address = str(st.get_option("server.address") or "")
    return not address.startswith(LOOPBACK) and not auth_configured()


def host_check_note(address: str, allowed_hosts: list[str]) -> str | None:
    """A sentence when the Host check (`server.allowedHosts`) is off, or refuses every machine but this one."""
    names = [h.strip().lower() for h in allowed_hosts if h.strip()]
    if not names or "*" in names:
        return (
            "Any site name can reach this app (server.allowedHosts is empty or *), so a web page that re-points "
            "its name at this machine could use it. List the names you open it by in server.allowedHosts."
        )
    if not address.startswith(LOOPBACK) and set(names) <= LOOPBACK_NAMES:
        return (
            "Other machines are refused: server.allowedHosts names only this machine. Add the name they open "
            "the app by, e.g. --server.allowedHosts lab.example.org (see the README)."
        )
    return None


def user_id() -> str:
    """Whose data this page shows: `local` without login; with login, the rule of `memstore.identity`.

    With login configured and nobody logged in, the page shows only a login button and stops,
    so no one sees any stored data. Data saved before login was turned on (user `local`) is never
    shown to a logged-in user.
    """
    if not auth_configured():
        return LOCAL_USER
    info = st.user.to_dict()
    if not info.get("is_logged_in"):
        st.title("Memory Lab")
        st.caption("Log in to see your conversations and preferences.")
        st.button("Log in", type="primary", on_click=st.login)
        st.stop()
    try:
        identity = user_id_from_claims(info)
    except InvalidInput as exc:
        st.error(literal(exc), icon=":material/person_off:")
        st.button("Log out", on_click=st.logout)
        st.stop()
        raise  # unreachable: st.stop() ends the script
    with st.sidebar:
        st.caption("Logged in as " + literal(identity))
        st.button("Log out", on_click=st.logout)
    return identity
