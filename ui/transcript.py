"""The chat itself: the stored messages, the turn as it streams, retries, the outbox and "Memory updated"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from memstore import (
    Conversation,
    InvalidInput,
    MemoryLabError,
    Message,
    NotFound,
    StorageError,
    TurnRun,
    get_memory_type,
)
from memstore.chat import needs_retry
from memstore.forgotten import JOURNAL_PENDING_NOTE
from memstore.outbox import new_unsent
from ui import session, unsaved, words
from ui.page import Page
from ui.render import literal, show_error, show_reply, show_typed, stream_reply
from ui.session import OpenChat

PAGE_MESSAGES = 50
ROLE_AVATARS = {"user": ":material/person:", "assistant": ":material/smart_toy:", "system": ":material/settings:"}
FAILED_AVATAR = ":material/error:"


def render_message(message: Message, *, forgettable: bool = False) -> None:
    """A stored message as a chat bubble: yours exactly as typed, replies as capped Markdown; failures say so."""
    if message.status == "forgotten":
        with st.chat_message(message.role, avatar=":material/visibility_off:"):
            st.caption(f"Turn {message.turn:d}: this message was " + literal(message.error or "forgotten") + ".")
        return
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
        if forgettable:  # a small menu under the text (two elements: every one drawn costs each rerun)
            with st.popover("⋯", type="tertiary"):
                st.button(
                    "Forget this message…",
                    key=f"forget_{message.id}",
                    type="tertiary",
                    icon=":material/delete_sweep:",
                    help="Remove its text from the transcript, the ledger, summaries, entity notes and vectors. "
                    "You see what will change first.",
                    on_click=ask_forget,
                    args=(message.id,),
                )


def ask_forget(message_id: int) -> None:
    st.session_state.forget_message_id = message_id


def cancel_forget() -> None:
    st.session_state.pop("forget_message_id", None)


def forget_box(page: Page, view: OpenChat) -> None:
    """The confirmation for forgetting one message: exactly what will change, then one button."""
    message_id = st.session_state.get("forget_message_id")
    if message_id is None:
        return
    store, ref = view.chat.store, view.ref
    try:
        plan = store.forget_plan(page.user, ref.id, message_id)
    except MemoryLabError as exc:
        cancel_forget()
        show_error(exc, what="Cannot forget it: ")
        return
    with st.container(border=True, key="forget_box"):
        st.markdown(f"**Forget message {message_id:d}** (turn {plan.turn:d}, {literal(plan.role)})")
        st.caption(literal(plan.sentence()))
        chosen = []
        for change in plan.facts:
            if st.checkbox(
                "Also remove the saved fact: " + words.change_sentence_md(change),
                value=True,
                key=f"forget_fact_{change.id}",
            ):
                chosen.append(change.id)
        st.caption(
            "The text is replaced by a marker in every model call, summaries and entity notes from this turn on "
            "are rebuilt on the next turn, and the database file keeps no copy. This cannot be undone."
        )
        left, right, _ = st.columns([2, 2, 4])
        if left.button("Forget it", type="primary", key="forget_confirm", icon=":material/delete_sweep:"):
            try:
                done = store.forget_message(page.user, ref.id, message_id, remove_facts=chosen)
            except MemoryLabError as exc:
                show_error(exc, what="Not forgotten: ")
                return
            unsaved.forget_text(page, done.forgotten_text)
            cancel_forget()
            st.session_state.forget_done = (
                done.sentence().replace("appears in", "was removed from"),
                store.journal_pending(),
            )
            st.rerun()
        right.button("Cancel", key="forget_cancel", on_click=cancel_forget)


def request_retry() -> None:
    st.session_state.retry_requested = True


def show_older() -> None:
    st.session_state.pages_shown = st.session_state.get("pages_shown", 1) + 1


@dataclass(frozen=True)
class Drawn:
    """What the transcript drew before a turn, so the turn can bring it up to date without redrawing the page."""

    retry_shown: bool
    notice: Any  # the "Memory updated" slot


def draw(page: Page, view: OpenChat, prompt: str | None) -> Conversation:
    """The chat column: stored messages, notices, the outbox, then the turn the user just asked for (if any).

    Returns the conversation as it stands once the column is drawn (after the turn, when there was one).
    """
    retry_shown = messages(page, view)
    forget_box(page, view)
    notice = st.empty()
    with notice.container():
        memory_notice(page)
    unsaved.section(page, view)
    drawn = Drawn(retry_shown, notice)
    chat, ref = view.chat, view.ref
    kept = unsaved.resend_requested(page)
    if prompt:
        facts = session.current_facts(page, page.client)
        return run_turn(page, view, lambda: chat.send(ref.id, prompt, facts), prompt, drawn=drawn)
    elif kept is not None:
        facts = session.current_facts(page, page.client)
        run_turn(page, view, lambda: chat.send_unsent(kept, ref.id, facts), kept.text, unsent_id=kept.id)
    elif st.session_state.pop("retry_requested", False):
        run_turn(page, view, lambda: chat.retry(ref.id, session.current_facts(page, page.client)), None)
    return view.conversation


def messages(page: Page, view: OpenChat) -> bool:
    """The newest messages (50 more per "Show older"), and a retry button when the last turn has no reply.

    Returns whether the retry button is shown.
    """
    chat, conversation, ref = view.chat, view.conversation, view.ref
    limit = min(PAGE_MESSAGES * st.session_state.get("pages_shown", 1), 500)
    shown = chat.store.page(page.user, ref.id, limit=limit)
    hidden = conversation.message_count - len(shown)
    if hidden > 0:
        if limit < 500:
            st.button(f"Show older messages ({hidden:,} more)", on_click=show_older)
        else:
            st.caption(f"{hidden:,} older messages are not drawn; export the conversation to read them all.")
    if not shown:
        st.caption(
            f"{literal(words.memory_label(conversation.settings.memory_type))}: "
            f"{literal(words.explain_type(conversation.settings.memory_type))} Say hello to start."
        )
    if done := st.session_state.pop("forget_done", None):
        sentence, journal_pending = done
        if journal_pending:  # forgotten everywhere the app reads, but not yet erased from the file
            st.warning(
                "Forgotten everywhere the app reads. " + literal(sentence) + " " + literal(JOURNAL_PENDING_NOTE),
                icon=":material/delete_sweep:",
            )
        else:
            st.success("Forgotten. " + literal(sentence), icon=":material/delete_sweep:")
    for message in shown:
        render_message(message, forgettable=True)
    retry_shown = bool(shown) and needs_retry(shown)
    if retry_shown:
        st.button("Retry the last message", icon=":material/refresh:", on_click=request_retry, key="retry_last")
    return retry_shown


def sidebar_view(conversation: Conversation) -> tuple[str, bool]:
    """What the sidebar shows of a conversation that a turn can change: its title and the Undo clear button."""
    return conversation.title, conversation.memory_cleared and conversation.last_turn < conversation.memory_from_turn


def run_turn(
    page: Page,
    view: OpenChat,
    start: Callable[[], TurnRun],
    prompt: str | None,
    *,
    unsent_id: str | None = None,
    drawn: Drawn | None = None,
) -> Conversation:
    """Show the user's message, stream the reply, and report any error with a retry button.

    Nothing typed or received is lost: a message the database refuses, or a reply it will not
    store, is kept in the outbox (on disk) and shown with a way to send or save it again.

    A turn that ends well brings the page up to date in this same run (one script run per turn);
    only when something drawn above it changed (the title, the retry button, the sidebar) is the
    page redrawn. Returns the conversation as the turn left it.
    """
    chat, conversation, ref = view.chat, view.conversation, view.ref
    st.session_state.pop("memory_notice", None)  # a notice belongs to the turn that saved the facts
    if drawn is not None:
        drawn.notice.empty()
    user_slot = st.empty()
    if prompt is not None:
        with user_slot.container(), st.chat_message("user", avatar=ROLE_AVATARS["user"]):
            show_typed(prompt)
    try:
        run = start()
    except InvalidInput as exc:
        show_error(exc, what="Not sent: ")
        if prompt is not None:
            st.text_area("Your message, kept so you can copy it", value=prompt, key="unsent_message")
        return conversation
    except (StorageError, NotFound) as exc:
        if prompt is not None and unsent_id is None and not ref.temporary:
            unsaved.keep(new_unsent(page.user, ref.id, "message", prompt, str(exc), database=chat.store.identity()))
            st.rerun()
        show_error(exc, what="Not sent: ")
        return conversation
    except MemoryLabError as exc:
        show_error(exc)
        return conversation
    if unsent_id is not None:  # the kept message is stored now
        unsaved.forget(page, unsent_id)
    for update in run.summary_updates:
        if update.error is not None:
            st.warning("The summary could not be updated first: " + literal(update.error.message))
        elif update.folded:
            st.caption(f"Summary brought up to date (turns {update.folded[0]:d}–{update.folded[1]:d}).")
    reply_slot = st.empty()
    with reply_slot.container(), st.chat_message("assistant", avatar=ROLE_AVATARS["assistant"]):
        stream_reply(run.stream())
        result = run.result
        if result is not None and not result.saved:
            show_error(MemoryLabError(result.save_error or ""))
        elif result is not None and result.error is not None:
            kept = " What arrived is kept." if result.reply.content else ""
            st.error(literal(result.error.message) + kept, icon=":material/error:")
            st.button("Retry", icon=":material/refresh:", on_click=request_retry, key="retry_after_error")
            return run.conversation
    if result is not None and not result.saved:
        item = result.unsaved or new_unsent(
            page.user,
            ref.id,
            "reply",
            result.reply.content,
            result.save_error or "",
            database=chat.store.identity(),
            turn=result.reply.turn,
        )
        unsaved.keep(item)
        # Drawn now, with its Save again button: the outbox above was drawn before this item existed.
        unsaved.box(page, view, item, here=chat.store.identity(), gone=result.unsaved is None)
        return run.conversation
    memory = get_memory_type(conversation.settings.memory_type)
    extract = session.auto_facts_on(page.client) and not ref.temporary
    if memory.uses_summary or memory.name == "entity" or extract:
        with st.spinner("Updating memory…"):
            try:
                after = chat.after_turn(ref.id, extract=extract)
            except MemoryLabError as exc:
                show_error(exc, what="Memory not updated: ")
                return run.conversation
        if after.facts is not None and after.facts.changes:
            st.session_state.memory_notice = list(after.facts.changes)
        st.session_state.memory_problems = after.problems()
    try:
        now = chat.store.get_conversation(page.user, ref.id)
    except MemoryLabError:
        st.rerun()  # deleted meanwhile (another tab): the redraw opens another one
        raise  # unreachable: st.rerun() ends the script
    if drawn is None or drawn.retry_shown or sidebar_view(now) != sidebar_view(conversation) or result is None:
        st.rerun()  # something above the turn changed: redraw the page from what was stored
    # The two bubbles as a redraw would show them (with their menus), then the notice. "Show older" still
    # counts right: the new messages are drawn, so the ones not drawn are the same.
    if prompt is not None:
        with user_slot.container():
            render_message(run.user_message, forgettable=True)
    with reply_slot.container():
        render_message(result.reply, forgettable=True)
    memory_notice(page)
    return now


def undo_change(page: Page, change_id: int) -> None:
    try:
        page.store.undo_preference_change(page.user, change_id)
        st.session_state.memory_notice = [c for c in st.session_state.get("memory_notice", []) if c.id != change_id]
        st.toast("Undone.", icon=":material/undo:")
    except MemoryLabError as exc:
        st.session_state.undo_error = str(exc)


def memory_notice(page: Page) -> None:
    """'Memory updated': each fact saved about the user after the last turn, with an undo."""
    if error := st.session_state.pop("undo_error", None):
        st.error("Not undone: " + literal(error), icon=":material/error:")
    for problem in st.session_state.pop("memory_problems", []):
        st.caption(":material/warning: " + literal(problem))
    changes = st.session_state.get("memory_notice") or []
    if not changes:
        return
    with st.container(border=True):
        left, right = st.columns([6, 1], vertical_alignment="center")
        left.markdown(":material/bookmark_added: **Memory updated**")
        right.button(
            "Dismiss",
            key=f"dismiss_notice_{changes[0].id}",
            on_click=lambda: st.session_state.pop("memory_notice", None),
        )
        for change in changes:
            text, button = st.columns([6, 1], vertical_alignment="center")
            text.markdown(words.change_sentence_md(change))
            button.button("Undo", key=f"undo_{change.id}", on_click=undo_change, args=(page, change.id))
