"""The outbox on the page: what the database refused, kept with a way to save it, and where else items wait.

An item is saved or sent only into the database it belongs to (memstore.outbox); items of another
database are listed as such, with their text to copy and a Discard button, never a Save button.
"""

from __future__ import annotations

import streamlit as st

from memstore import MemoryLabError, NotFound, StorageError
from memstore.database_identity import DatabaseIdentity
from memstore.outbox import SortedItems, Unsent, redacted_item, sort_items
from ui import resources, session
from ui.page import Page
from ui.render import copyable, literal, show_error, show_typed
from ui.session import ConversationRef, OpenChat

OUTBOX_ICON = ":material/outbox:"


def keep(item: Unsent) -> None:
    """Put a refused message or reply in the outbox; if even that fails, keep it for this session."""
    try:
        resources.outbox().put(item)
    except StorageError:
        st.session_state.setdefault("unsent_here", []).append(item)


def all_items(page: Page) -> list[Unsent]:
    """The user's kept items: on disk, then those only this session holds (the outbox folder refused them)."""
    return resources.outbox().items(page.user) + list(st.session_state.get("unsent_here", []))


def sorted_items(page: Page, conversation_id: int | None) -> SortedItems:
    return sort_items(all_items(page), page.store.identity(), conversation_id)


def request_resend(item_id: str) -> None:
    st.session_state.resend_requested = item_id


def resend_requested(page: Page) -> Unsent | None:
    """The kept message whose "Send again" was clicked, if any (read once)."""
    wanted = st.session_state.pop("resend_requested", None)
    return next((i for i in all_items(page) if i.id == wanted), None) if wanted else None


def forget(page: Page, item_id: str) -> None:
    """Drop a kept item: saved or sent now, or discarded."""
    resources.outbox().remove(page.user, item_id)
    st.session_state["unsent_here"] = [i for i in st.session_state.get("unsent_here", []) if i.id != item_id]


def forget_text(page: Page, text: str) -> None:
    """A message was forgotten: its text goes from the kept items too, so Save again cannot bring it back."""
    try:
        resources.outbox().redact(page.user, text)
    except StorageError as exc:
        show_error(exc, what="Forgotten in the database, but not in the unsaved items on disk: ")
    held = st.session_state.get("unsent_here", [])
    st.session_state["unsent_here"] = [redacted_item(i, text) for i in held]


def save_again(page: Page, view: OpenChat, item: Unsent) -> None:
    try:
        view.chat.save_unsent(item)
    except MemoryLabError as exc:
        st.session_state.unsent_error = f"Still not saved: {exc}"
        return
    forget(page, item.id)
    st.toast("Saved.", icon=":material/check:")


def open_elsewhere(conversation_id: int) -> None:
    session.open_conversation(ConversationRef(conversation_id, temporary=False))


def origin_md(item: Unsent) -> str:
    """Which database the item belongs to and which app process kept it, for the item's caption."""
    if not item.database_id:
        where = "Kept before Memory Lab recorded which database it belongs to"
    else:
        where = "Belongs to the database " + literal(item.database or "(not named)")
    kept_by = f" · kept by {literal(item.instance)}" if item.instance else ""
    return f"{where}{kept_by} · {literal(item.created_at)}"


def copy_text(item: Unsent) -> None:
    """The item's text in a code block (it has a copy button), opened from a small button."""
    with st.popover("Copy text", icon=":material/content_copy:"):
        copyable(item.text)


def box(page: Page, view: OpenChat | None, item: Unsent, *, here: DatabaseIdentity, gone: bool = False) -> None:
    """One kept item: why it was not saved, whose database it belongs to, its text, and what can be done.

    Save again and Send again are offered only in a saved conversation of the database the item belongs to.
    """
    foreign = item.refusal(here) is not None
    acts = view is not None and not view.ref.temporary and not foreign
    with st.container(border=True, key=f"unsent_{item.id}"):
        what = "Your message" if item.kind == "message" else f"The reply to turn {item.turn or 0:d}"
        where = " of another database" if foreign else (" of a conversation deleted since" if gone else "")
        st.warning(
            f"{what}{where} was not saved: {literal(item.error)} It is kept here (also after a reload) "
            "until it is saved or you discard it.",
            icon=OUTBOX_ICON,
        )
        st.caption(origin_md(item))
        show_typed(item.text)
        left, middle, right = st.columns([2, 2, 3])
        if acts and item.kind == "message":
            left.button(
                "Send again" if not gone else "Send it here",
                key=f"resend_{item.id}",
                on_click=request_resend,
                args=(item.id,),
                icon=":material/send:",
            )
        elif acts and item.kind == "reply" and not gone:
            left.button(
                "Save again",
                key=f"save_{item.id}",
                on_click=save_again,
                args=(page, view, item),
                icon=":material/save:",
            )
        middle.button(
            "Discard", key=f"discard_{item.id}", on_click=forget, args=(page, item.id), icon=":material/delete:"
        )
        if foreign or gone:
            with right:
                copy_text(item)


def titles_of(page: Page, conversation_ids: list[int]) -> dict[int, str | None]:
    """Each conversation's title; None for one deleted since (a database that fails says '#id')."""
    out: dict[int, str | None] = {}
    for conversation_id in conversation_ids:
        try:
            out[conversation_id] = page.store.get_conversation(page.user, conversation_id).title
        except NotFound:
            out[conversation_id] = None
        except StorageError:
            out[conversation_id] = f"#{conversation_id:d}"
    return out


def unsaved_count_md(n: int) -> str:
    return f"{n:d} unsaved item{'s' if n != 1 else ''}"


def elsewhere_notice(counts: dict[int, int], titles: dict[int, str | None], *, where: str, key: str) -> int | None:
    """'2 unsaved items in other conversations', with a button that opens each; returns the one clicked."""
    waiting = {c: n for c, n in counts.items() if titles.get(c) is not None}
    if not waiting:
        return None
    clicked = None
    with st.container(border=True, key=f"unsaved_elsewhere_{key}"):
        st.markdown(f":material/outbox: **{unsaved_count_md(sum(waiting.values()))} {literal(where)}**")
        for conversation_id, n in waiting.items():
            if st.button(
                f"Open “{literal(titles[conversation_id] or '')}” (#{conversation_id:d}, {unsaved_count_md(n)})",
                key=f"open_unsaved_{key}_{conversation_id}",
                type="tertiary",
                icon=":material/forum:",
                help="Its unsaved items are shown there, with Save again or Send again.",
            ):
                clicked = conversation_id
    return clicked


def section(page: Page, view: OpenChat) -> None:
    """The chat page's outbox: items of this conversation (and of deleted ones), others mentioned, others' database."""
    if error := st.session_state.pop("unsent_error", None):
        st.error(literal(error), icon=":material/error:")
    ref = view.ref
    kept = sorted_items(page, None if ref.temporary else ref.id)
    here = page.store.identity()
    titles = titles_of(page, sorted(kept.conversations_elsewhere()))
    for item in kept.here:
        box(page, view, item, here=here)
    for item in kept.elsewhere:
        if titles.get(item.conversation_id, "") is None:
            box(page, view, item, here=here, gone=True)
    clicked = elsewhere_notice(kept.conversations_elsewhere(), titles, where="in other conversations", key="chat")
    if kept.foreign:
        foreign_list(page, view, kept.foreign, here=here)
    if clicked is not None:
        open_elsewhere(clicked)
        st.rerun()


def foreign_list(page: Page, view: OpenChat | None, items: tuple[Unsent, ...], *, here: DatabaseIdentity) -> None:
    """Items of another database: named as such, with their text to copy and Discard; never saved here."""
    with st.container(border=True, key="unsaved_foreign"):
        st.markdown(f":material/database: **{unsaved_count_md(len(items))} of another database**")
        st.caption(
            f"This app has {literal(here.where)} open; these are never saved into it. Open the app on the "
            "database each one names to save it, or copy its text."
        )
        for item in items:
            box(page, view, item, here=here)


def overview(page: Page) -> int | None:
    """The Conversations page's outbox: conversations holding unsaved items (returns the one to open), and those
    of another database."""
    kept = sorted_items(page, None)
    if not kept.elsewhere and not kept.foreign:
        return None
    here = page.store.identity()
    titles = titles_of(page, sorted(kept.conversations_elsewhere()))
    clicked = elsewhere_notice(kept.conversations_elsewhere(), titles, where="in conversations", key="conversations")
    for item in kept.elsewhere:
        if titles.get(item.conversation_id, "") is None:
            box(page, None, item, here=here, gone=True)
    if kept.foreign:
        foreign_list(page, None, kept.foreign, here=here)
    return clicked
