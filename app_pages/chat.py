"""The chat page: a conversation beside a live view of what its memory holds and sends."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import streamlit as st

import ui
import ui_models
from memstore import (
    MEMORY_TYPES,
    Chat,
    Conversation,
    FactSet,
    InvalidInput,
    MemoryLabError,
    MemorySettings,
    NotFound,
    StorageError,
    TurnRun,
    get_memory_type,
    with_session_fact,
    without_session_fact,
)
from memstore.costs import price_for, shipped_prices
from memstore.hints import hints
from memstore.outbox import new_unsent
from memstore.validation import MAX_RECALL_TURNS
from ui import ConversationRef
from ui_text import literal, model_markdown, show_typed, stream_reply

settings, store, client, USER = ui.start_page("Memory Lab")
READ_ONLY = ui.read_only()


# -- which conversation is open ----------------------------------------------------------------


def first_conversation(temporary: bool) -> ConversationRef:
    """The most recent conversation of the chosen kind, or a new one."""
    target = ui.temporary_store() if temporary else store
    recent = target.list_conversations(USER, limit=1)
    conv = recent[0] if recent else Chat(target, client, user_id=USER).new_conversation()
    return ConversationRef(conv.id, temporary)


def current() -> tuple[ConversationRef, Chat, Conversation]:
    ref = st.session_state.get("conversation_ref")
    if ref is None or (READ_ONLY and not ref.temporary):  # nothing can be saved: chat in a temporary store
        ref = first_conversation(temporary=READ_ONLY is not None)
        ui.open_conversation(ref)
    chat = ui.chat_for(ref, store, client)
    try:
        return ref, chat, chat.store.get_conversation(USER, ref.id)
    except NotFound:  # deleted elsewhere (another tab or page)
        ref = first_conversation(ref.temporary)
        ui.open_conversation(ref)
        chat = ui.chat_for(ref, store, client)
        return ref, chat, chat.store.get_conversation(USER, ref.id)


ref, chat, conversation = current()


# -- sidebar: conversations, memory settings, session facts, model ----------------------------


def new_chat() -> None:
    if conversation.message_count == 0:
        return  # the open chat is still empty: reuse it
    created = chat.new_conversation(settings=conversation.settings)
    ui.open_conversation(ConversationRef(created.id, ref.temporary))


def conversation_labels(titles: dict[int, str]) -> dict[int, str]:
    """A label per conversation id, unique even when titles repeat ("hi · #3", "hi · #7")."""
    counts: dict[str, int] = {}
    for title in titles.values():
        counts[title] = counts.get(title, 0) + 1
    labels = {i: f"{t} · #{i}" if counts[t] > 1 else t for i, t in titles.items()}
    if len(set(labels.values())) < len(labels):  # a title that reads like another's label: number them all
        labels = {i: f"{t} · #{i}" for i, t in titles.items()}
    return labels


def sidebar_conversations() -> None:
    st.subheader("Conversations")
    temporary = st.toggle(
        "Temporary chat",
        value=ref.temporary,
        disabled=READ_ONLY is not None,
        help="A temporary chat is never written to the database and is gone when this "
        "browser session ends. Preferences still apply; nothing new is saved.",
    )
    if temporary != ref.temporary:
        ui.open_conversation(first_conversation(temporary))
        st.rerun()
    st.button("New chat", icon=":material/add:", on_click=new_chat, width="stretch")
    recent = chat.store.list_conversations(USER, limit=50)
    ids = [c.id for c in recent]
    titles = {c.id: c.title for c in recent}
    if ref.id not in titles:
        ids.insert(0, ref.id)
        titles[ref.id] = conversation.title
    # Streamlit keeps a selectbox's choice by its label, so labels must be unique: a title two conversations share
    # gets each one's number. The key carries the labels, so a renamed conversation shows its new name at once.
    labels = conversation_labels(titles)
    listing = zlib.crc32(repr(sorted(labels.items())).encode())
    chosen = st.selectbox(
        "Open", ids, index=ids.index(ref.id), format_func=lambda i: labels[i], key=f"open_{ref.slug}_{listing}"
    )
    if chosen != ref.id:
        ui.open_conversation(ConversationRef(chosen, ref.temporary))
        st.rerun()
    with st.expander("Rename or delete"):
        title = st.text_input("Title", value=conversation.title, key=f"title_{ref.slug}")
        if st.button("Rename", key=f"rename_{ref.slug}"):
            try:
                chat.store.rename_conversation(USER, ref.id, title)
                st.rerun()
            except MemoryLabError as exc:
                ui.show_error(exc)
        confirm = st.checkbox(
            "Yes, delete this conversation, its memory and its model calls", key=f"confirm_delete_{ref.slug}"
        )
        if st.button("Delete conversation", disabled=not confirm, type="primary", key=f"delete_{ref.slug}"):
            chat.store.delete_conversation(USER, ref.id)
            ui.open_conversation(first_conversation(ref.temporary))
            st.rerun()


def auto_facts_on() -> bool:
    """Automatic facts: on by default with a real model, off with the bundled tiny one (it invents facts)."""
    return bool(st.session_state.get("auto_facts", not ui_models.is_bundled(client)))


def sidebar_memory() -> None:
    st.subheader("Memory")
    saved = conversation.settings
    names = list(MEMORY_TYPES)
    memory_type = st.selectbox(
        "Memory type",
        names,
        index=names.index(saved.memory_type),
        format_func=ui.memory_label,
        key=f"memory_type_{ref.slug}",
    )
    st.caption(literal(ui.explain_type(memory_type)))
    window_turns = st.number_input(
        "Window size k (turns)",
        min_value=0,
        max_value=settings.limits.max_window_turns,
        step=1,
        value=saved.window_turns,
        key=f"window_turns_{ref.slug}",
        disabled=memory_type not in ("window", "retrieval", "entity"),
        help="A turn is one message of yours and its reply, so k turns = 2k messages. Retrieval and entity memory "
        "use it for their short-term part.",
    )
    st.caption(f"k = {window_turns:d} turns = {2 * window_turns:d} messages")
    max_tokens = st.number_input(
        "Token limit (history)",
        min_value=1,
        max_value=settings.limits.max_token_limit,
        step=100,
        value=saved.max_tokens,
        key=f"max_tokens_{ref.slug}",
        disabled=memory_type not in ("token_window", "summary_buffer"),
        help="Token window and summary + buffer keep the newest whole turns that fit this many tokens.",
    )
    recall_turns, min_score, scope = saved.recall_turns, saved.recall_min_score, saved.recall_scope
    if memory_type == "retrieval":
        recall_turns = st.number_input(
            "Recall top k (old turns)",
            min_value=0,
            max_value=MAX_RECALL_TURNS,
            step=1,
            value=saved.recall_turns,
            key=f"recall_turns_{ref.slug}",
            help="How many older turns, most similar to your new message, are added.",
        )
        min_score = st.slider(
            "Minimum similarity",
            -1.0,
            1.0,
            float(saved.recall_min_score),
            0.05,
            key=f"recall_min_{ref.slug}",
            help="Cosine similarity a turn needs to be recalled; the panel shows near misses.",
        )
        scope = (
            "all"
            if st.toggle(
                "Recall from all my conversations", value=saved.recall_scope == "all", key=f"recall_scope_{ref.slug}"
            )
            else "conversation"
        )
    with st.expander("System prompt"):
        system_prompt = st.text_area(
            "System prompt", value=saved.system_prompt, key=f"system_prompt_{ref.slug}", label_visibility="collapsed"
        )
    # Widgets are drawn on this page only, and Streamlit drops a widget's state on other pages: the choices
    # live in plain session keys, copied from the widgets when they change.
    st.toggle(
        "Save facts about me automatically",
        key="auto_facts_widget",
        value=auto_facts_on(),
        disabled=ref.temporary,
        on_change=ui.keep_widget,
        args=("auto_facts_widget", "auto_facts"),
        help="After each turn a model call looks for facts you state about yourself and saves new or changed "
        "ones as preferences, with a notice and an undo. Never in a temporary chat. Off by default with "
        "the bundled tiny model, which invents facts.",
    )
    st.number_input(
        "Facts budget (tokens)",
        min_value=0,
        max_value=20_000,
        step=50,
        key="facts_budget_widget",
        value=ui.facts_budget(),
        on_change=ui.keep_widget,
        args=("facts_budget_widget", "facts_budget"),
        help="Preferences and session facts injected into the system prompt stop at this many tokens; "
        "the oldest are left out first.",
    )
    wanted = MemorySettings(
        memory_type, int(window_turns), int(max_tokens), system_prompt, int(recall_turns), float(min_score), scope
    )
    if wanted != saved:
        try:
            chat.update_settings(ref.id, wanted)
        except MemoryLabError as exc:
            ui.show_error(exc, what="Settings not changed: ")


def sidebar_session_facts() -> None:
    st.subheader("Session facts")
    st.caption(
        "Key/value facts for this browser session only (never saved). Stored preferences live on the Preferences page."
    )
    facts = ui.session_facts()
    for key, value in facts.items():
        left, right = st.columns([5, 1], vertical_alignment="center")
        left.markdown(f"**{literal(key)}**: {literal(value)}")
        if right.button("✕", key=f"remove_fact_{key}", help="Remove " + literal(key)):
            ui.set_session_facts(without_session_fact(facts, key))
            st.rerun()
    with st.form("add_fact", clear_on_submit=True, border=False):
        key = st.text_input("Key", placeholder="e.g. name")
        value = st.text_input("Value", placeholder="e.g. Alice")
        if st.form_submit_button("Add or update fact"):
            try:
                ui.set_session_facts(with_session_fact(facts, key, value, settings.limits))
                st.rerun()
            except MemoryLabError as exc:
                ui.show_error(exc, what="Fact not saved: ")


with st.sidebar:
    sidebar_conversations()
    sidebar_memory()
    sidebar_session_facts()
    show_panel = st.toggle("Show memory panel", value=True, key="show_panel")

conversation = chat.store.get_conversation(USER, ref.id)  # settings may have just changed


# -- the chat ------------------------------------------------------------------------------------


def request_retry() -> None:
    st.session_state.retry_requested = True


def show_older() -> None:
    st.session_state.pages_shown = st.session_state.get("pages_shown", 1) + 1


def transcript() -> None:
    limit = min(ui.PAGE_MESSAGES * st.session_state.get("pages_shown", 1), 500)
    messages = chat.store.page(USER, ref.id, limit=limit)
    hidden = conversation.message_count - len(messages)
    if hidden > 0:
        if limit < 500:
            st.button(f"Show older messages ({hidden:,} more)", on_click=show_older)
        else:
            st.caption(f"{hidden:,} older messages are not drawn; export the conversation to read them all.")
    if not messages:
        st.caption(
            f"{literal(ui.memory_label(conversation.settings.memory_type))}: "
            f"{literal(ui.explain_type(conversation.settings.memory_type))} Say hello to start."
        )
    for message in messages:
        ui.render_message(message)
    if messages and needs_retry(messages):
        st.button("Retry the last message", icon=":material/refresh:", on_click=request_retry, key="retry_last")


def needs_retry(messages) -> bool:
    """The newest turn has no complete reply (it failed, was cut short, or never ran)."""
    last_turn = messages[-1].turn
    replies = [m for m in messages if m.turn == last_turn and m.role == "assistant"]
    return not replies or replies[-1].status != "complete"


def run_turn(start: Callable[[], TurnRun], prompt: str | None, *, unsent_id: str | None = None) -> None:
    """Show the user's message, stream the reply, and report any error with a retry button.

    Nothing typed or received is lost: a message the database refuses, or a reply it will not
    store, is kept in the outbox (on disk) and shown with a way to send or save it again.
    """
    st.session_state.pop("memory_notice", None)  # a notice belongs to the turn that saved the facts
    if prompt is not None:
        with st.chat_message("user", avatar=ui.ROLE_AVATARS["user"]):
            show_typed(prompt)
    try:
        run = start()
    except InvalidInput as exc:
        ui.show_error(exc, what="Not sent: ")
        if prompt is not None:
            st.text_area("Your message, kept so you can copy it", value=prompt, key="unsent_message")
        return
    except (StorageError, NotFound) as exc:
        if prompt is not None and unsent_id is None and not ref.temporary:
            keep_unsent(new_unsent(USER, ref.id, "message", prompt, str(exc)))
            st.rerun()
        ui.show_error(exc, what="Not sent: ")
        return
    except MemoryLabError as exc:
        ui.show_error(exc)
        return
    if unsent_id is not None:  # the kept message is stored now
        ui.outbox().remove(USER, unsent_id)
    for update in run.summary_updates:
        if update.error is not None:
            st.warning("The summary could not be updated first: " + literal(update.error.message))
        elif update.folded:
            st.caption(f"Summary brought up to date (turns {update.folded[0]:d}–{update.folded[1]:d}).")
    with st.chat_message("assistant", avatar=ui.ROLE_AVATARS["assistant"]):
        stream_reply(run.stream())
        result = run.result
        if result is not None and not result.saved:
            ui.show_error(MemoryLabError(result.save_error or ""))
            keep_unsent(
                result.unsaved
                or new_unsent(
                    USER, ref.id, "reply", result.reply.content, result.save_error or "", turn=result.reply.turn
                )
            )
            return
        if result is not None and result.error is not None:
            kept = " What arrived is kept." if result.reply.content else ""
            st.error(literal(result.error.message) + kept, icon=":material/error:")
            st.button("Retry", icon=":material/refresh:", on_click=request_retry, key="retry_after_error")
            return
    memory = get_memory_type(conversation.settings.memory_type)
    extract = auto_facts_on() and not ref.temporary
    if memory.uses_summary or memory.name == "entity" or extract:
        with st.spinner("Updating memory…"):
            try:
                after = chat.after_turn(ref.id, extract=extract)
            except MemoryLabError as exc:
                ui.show_error(exc, what="Memory not updated: ")
                return
        problems = []
        if after.summary is not None and after.summary.error is not None:
            problems.append(
                f"The summary could not be updated: {after.summary.error.message} It will catch up next turn."
            )
        if after.entities is not None and after.entities.error:
            problems.append(f"Entity notes were not updated this turn: {after.entities.error}.")
        elif after.entities is not None and not after.entities.entities:
            problems.append(
                "Entity notes: the model named no new facts about any entity this turn (its reply is in the Timeline)."
            )
        if after.facts is not None and after.facts.error:
            problems.append(f"No facts were saved this turn: {after.facts.error}.")
        if after.facts is not None and after.facts.changes:
            st.session_state.memory_notice = list(after.facts.changes)
        st.session_state.memory_problems = problems  # shown under the transcript after the redraw
    st.rerun()  # redraw header, transcript and panel from what was stored


def keep_unsent(item) -> None:
    """Put a refused message or reply in the outbox; if even that fails, keep it for this session."""
    try:
        ui.outbox().put(item)
    except StorageError:
        st.session_state.setdefault("unsent_here", []).append(item)


def request_resend(item_id: str) -> None:
    st.session_state.resend_requested = item_id


def save_again(item) -> None:
    try:
        chat.save_unsent(item)
        ui.outbox().remove(USER, item.id)
        st.toast("Saved.", icon=":material/check:")
    except MemoryLabError as exc:
        st.session_state.unsent_error = f"Still not saved: {exc}"


def discard(item_id: str) -> None:
    ui.outbox().remove(USER, item_id)
    st.session_state["unsent_here"] = [i for i in st.session_state.get("unsent_here", []) if i.id != item_id]


def unsent() -> None:
    """What the database refused here (and in conversations deleted since): kept, with a way to retry."""
    if ref.temporary:
        return
    if error := st.session_state.pop("unsent_error", None):
        st.error(literal(error), icon=":material/error:")
    items = [i for i in ui.outbox().items(USER) if i.conversation_id == ref.id or gone(i.conversation_id)]
    for item in items + st.session_state.get("unsent_here", []):
        elsewhere = item.conversation_id != ref.id
        with st.container(border=True):
            if item.kind == "message":
                st.warning(
                    f"Your message was not saved: {literal(item.error)} It is kept here (also "
                    "after a reload) until you send it again or discard it.",
                    icon=":material/outbox:",
                )
            else:
                where = " of a conversation deleted since" if elsewhere else ""
                st.warning(
                    f"The reply to turn {item.turn:d}{where} was not saved: {literal(item.error)} "
                    "It is kept here until it is saved or you discard it.",
                    icon=":material/outbox:",
                )
            show_typed(item.text)
            left, right, _ = st.columns([2, 2, 3])
            if item.kind == "message":
                left.button(
                    "Send again",
                    key=f"resend_{item.id}",
                    on_click=request_resend,
                    args=(item.id,),
                    icon=":material/send:",
                )
            elif not elsewhere:
                left.button(
                    "Save again", key=f"save_{item.id}", on_click=save_again, args=(item,), icon=":material/save:"
                )
            right.button(
                "Discard", key=f"discard_{item.id}", on_click=discard, args=(item.id,), icon=":material/delete:"
            )


def gone(conversation_id: int) -> bool:
    try:
        store.get_conversation(USER, conversation_id)
        return False
    except NotFound:
        return True
    except StorageError:
        return False


def undo_change(change_id: int) -> None:
    try:
        store.undo_preference_change(USER, change_id)
        st.session_state.memory_notice = [c for c in st.session_state.get("memory_notice", []) if c.id != change_id]
        st.toast("Undone.", icon=":material/undo:")
    except MemoryLabError as exc:
        st.session_state.undo_error = str(exc)


def memory_notice() -> None:
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
        right.button("Dismiss", key="dismiss_notice", on_click=lambda: st.session_state.pop("memory_notice", None))
        for change in changes:
            text, button = st.columns([6, 1], vertical_alignment="center")
            text.markdown(ui.change_sentence_md(change))
            button.button("Undo", key=f"undo_{change.id}", on_click=undo_change, args=(change.id,))


# -- the memory panel ----------------------------------------------------------------------------


@st.fragment
def memory_panel(ref: ConversationRef) -> None:
    """What the memory holds now, what the next and last requests contain, and what they cost."""
    panel_chat = ui.chat_for(ref, store, client)
    conv = panel_chat.store.get_conversation(USER, ref.id)
    facts = ui.current_facts(store, client)
    draft_key = f"draft_{ref.slug}"
    payload = panel_chat.preview(ref.id, facts, draft=st.session_state.get(draft_key) or "")
    memory = get_memory_type(conv.settings.memory_type)
    st.markdown("#### :material/memory: " + literal(memory.label))
    st.caption(literal(memory.explanation))
    st.caption(f":material/smart_toy: Sent to {literal(client.model)} on {literal(client.host)}")
    estimate = "" if payload.exact_tokens else " (estimated)"
    st.progress(
        min(payload.context_fill, 1.0),
        text=f"Next request: {payload.total_tokens:,} of {payload.context_tokens:,} tokens"
        f" ({payload.context_fill:.1%} of the context window){estimate}",
    )
    for note in hints(conv.settings, payload, last_turn=conv.last_turn):
        st.caption(":material/lightbulb: " + literal(note))
    st.dataframe(
        ui.sections_frame(payload),
        hide_index=True,
        width="stretch",
        column_config={
            "tokens": st.column_config.ProgressColumn(
                "tokens", format="%d", min_value=0, max_value=max(payload.total_tokens, 1)
            )
        },
    )
    holds, next_tab, last_tab, summary_tab, timeline_tab = st.tabs(
        ["Holds now", "Next request", "Last request", "Summary call", "Timeline"]
    )
    with holds:
        render_holdings(payload, conv)
    with next_tab:
        st.text_input(
            "Preview a message",
            key=draft_key,
            placeholder="Type to see what it would cost",
            help="Shows the next request with this message in it; nothing is sent.",
        )
        st.caption(
            f"Exactly what the next turn would send under the current settings ({literal(payload.tokenizer)}"
            f"{estimate}). The last message is your next one."
        )
        ui.render_request(payload.messages, payload.message_tokens, key="next")
    with last_tab:
        call = panel_chat.last_chat_call(ref.id)
        if call is None:
            st.caption("No turn has been sent yet.")
        else:
            st.caption(
                f"Turn {call.turn:d} · {literal(ui.memory_label(call.memory_type))} · " + literal(ui.call_summary(call))
            )
            ui.render_request(call.request, panel_chat.count_request(call.request), key="last")
            st.markdown("**Reply**")
            st.code(call.reply or "(none)", language=None, wrap_lines=True)
    with summary_tab:
        render_summary_call(panel_chat, conv)
    with timeline_tab:
        render_timeline(panel_chat, conv, ref)


def render_timeline(panel_chat: Chat, conv: Conversation, ref: ConversationRef) -> None:
    """Scrub through past turns: what each one really sent, read back from the ledger."""
    if conv.last_turn == 0:
        st.caption("No turns yet.")
        return
    turn = st.slider("Turn", 1, conv.last_turn, conv.last_turn, key=f"timeline_{ref.slug}") if conv.last_turn > 1 else 1
    calls = panel_chat.store.calls_for_turn(USER, conv.id, turn)
    chat_calls = [c for c in calls if c.purpose == "chat"]
    price = price_for(client.model, shipped_prices())
    cost = sum(
        price.cost(c.usage.prompt_tokens or c.counted_prompt_tokens or 0, c.usage.completion_tokens or 0) for c in calls
    )
    st.caption(
        f"This turn's calls cost \\${cost:.6f} at {literal(client.model)}'s list price "
        f"({len(calls):d} call{'s' if len(calls) != 1 else ''}; server-reported tokens where given)."
    )
    if not chat_calls:
        st.caption(f"Turn {turn:d} has no recorded model call.")
    for call in chat_calls:
        sent = (
            f"turns {call.history_from_turn}–{call.history_to_turn}" if call.history_from_turn else "no earlier turns"
        )
        st.caption(
            f"Turn {turn:d} · {literal(ui.memory_label(call.memory_type))} · sent {literal(sent)} · "
            + literal(ui.call_summary(call))
        )
        if call.sections:
            st.caption(literal(" · ".join(f"{ui.SECTION_NAMES.get(k, k)} {v:,}" for k, v in call.sections.items())))
        for line in ui.details_lines(call.details):
            st.caption(literal(line))
        ui.render_request(call.request, panel_chat.count_request(call.request), key=f"timeline_{call.id}")
        st.markdown("**Reply**")
        st.code(call.reply or "(none)", language=None, wrap_lines=True)
    for call in (c for c in calls if c.purpose in ("facts", "entities")):
        st.caption(
            f"{'Facts' if call.purpose == 'facts' else 'Entity notes'} call after turn {turn:d}: "
            + literal(ui.call_summary(call))
        )
        st.code(call.reply or call.error or "(none)", language=None, wrap_lines=True)
    for call in (c for c in calls if c.purpose == "summary"):
        st.caption(
            f"Summary call after turn {turn:d} (folded turns {call.history_from_turn:d}–"
            f"{call.history_to_turn:d}): " + literal(ui.call_summary(call))
        )
        st.code(call.reply or "(none)", language=None, wrap_lines=True)


def render_holdings(payload, conv: Conversation) -> None:
    view = payload.view
    for note in view.notes:
        st.caption(literal(note))
    if view.summary is not None:
        st.markdown(
            f"**Summary** · turns {view.summary.from_turn:d}–{view.summary.through_turn:d} · "
            f"{view.summary.tokens:,} tokens"
        )
        st.info(model_markdown(view.summary.text) or "(empty)")
    render_recall(view.recall)
    render_entities(view.entities)
    shown = view.turns[-20:]
    if view.turns:
        st.markdown(
            f"**In memory: {len(view.turns):d} turn{'s' if len(view.turns) != 1 else ''}**"
            f" ({sum(t.tokens for t in view.turns):,} tokens)"
        )
        if len(view.turns) > len(shown):
            st.caption(f"…and {len(view.turns) - len(shown):d} older turns, also sent.")
        for turn in shown:
            with st.container(border=True):
                st.caption(f"Turn {turn.number:d} · {turn.tokens:,} tokens")
                st.text("\n".join(f"{m.role}: {ui.turn_preview(m.content)}" for m in turn.chat_messages()))
    elif conv.last_turn == 0:
        st.caption("Nothing yet: the conversation has no turns.")
    if view.dropped_count:
        st.markdown(
            f"**Fell out: {view.dropped_count:d} turn{'s' if view.dropped_count != 1 else ''}** "
            "(stored, but no longer sent)"
        )
        for dropped in view.dropped_recent:
            left = f"out of the window since turn {dropped.left_at_turn}" if dropped.left_at_turn else "no longer fits"
            user_text = dropped.turn.user.content if dropped.turn.user else ""
            st.caption(
                f"~~Turn {dropped.turn.number:d}~~ · {literal(left)} · {literal(ui.turn_preview(user_text, 80))}"
            )
    render_facts(payload.facts)


def render_recall(recall) -> None:
    """Recalled turns with their score and why each was picked; near misses under the minimum."""
    if recall is None or (recall.searched == 0 and not recall.recalled):
        return  # nothing searched yet: the notes above say why
    st.markdown(
        f"**Recalled: {len(recall.recalled):d} of top {recall.top_k:d}** "
        f"(min similarity {recall.min_score:.2f}, {recall.searched:,} turn{'s' if recall.searched != 1 else ''} "
        f"searched)"
    )
    for recalled in recall.recalled:
        with st.container(border=True):
            st.caption(
                f":material/manage_search: {literal(recalled.why(recall.min_score))} · {recalled.turn.tokens:,} tokens"
            )
            st.text("\n".join(f"{m.role}: {ui.turn_preview(m.content)}" for m in recalled.turn.chat_messages()))
    if recall.missed:
        st.caption("Just missed: " + ", ".join(f"turn {turn:d} ({score:.2f})" for _, turn, score in recall.missed))


def render_entities(entities) -> None:
    """The conversation's entity notes; the ones the next message names are injected."""
    if entities is None or not entities.known:
        return
    injected = {e.name for e in entities.injected}
    st.markdown(f"**Entities: {len(entities.known):d} known, {len(injected):d} injected**")
    st.dataframe(
        [
            {
                "injected": e.name in injected,
                "entity": e.name,
                "note": e.summary,
                "updated at turn": e.turn,
                "versions": e.versions,
            }
            for e in entities.known
        ],
        hide_index=True,
        width="stretch",
    )


def render_facts(facts: FactSet) -> None:
    if facts.budget_tokens is not None:
        fill = facts.used_tokens / facts.budget_tokens if facts.budget_tokens else 1.0
        st.progress(min(fill, 1.0), text=f"Facts budget: {facts.used_tokens:,} of {facts.budget_tokens:,} tokens")
    if facts.injected:
        st.markdown("**Facts injected into the system prompt**")
        st.dataframe(
            [{"source": f.source, "key": f.key, "value": f.value} for f in facts.injected],
            hide_index=True,
            width="stretch",
        )
    else:
        st.caption("No session facts or preferences are injected.")
    for fact, why in facts.left_out:
        st.caption(f"Left out: {literal(fact.key)} ({literal(fact.source)}, {literal(why)})")


def render_summary_call(panel_chat: Chat, conv: Conversation) -> None:
    if not get_memory_type(conv.settings.memory_type).uses_summary:
        st.caption(
            "This memory type makes no summary call. Summary and summary + buffer add one model call after each turn."
        )
        return
    call = panel_chat.last_call(conv.id, "summary")
    if call is None:
        when = (
            "after the first turn"
            if conv.settings.memory_type == "summary"
            else "when a turn falls out of the token limit"
        )
        st.caption(f"No summary call yet: the first one runs {literal(when)}.")
        return
    st.caption(
        f"After turn {call.turn:d}, folding turns {call.history_from_turn:d}–{call.history_to_turn:d} · "
        + literal(ui.call_summary(call))
    )
    ui.render_request(call.request, panel_chat.count_request(call.request), key="summary")
    st.markdown("**Output**")
    st.code(call.reply or "(none)", language=None, wrap_lines=True)


# -- layout ----------------------------------------------------------------------------------------

kind = "Temporary chat · nothing is saved" if ref.temporary else "Saved conversation"
st.markdown("### " + literal(conversation.title))
st.caption(
    f"{kind} · {literal(ui.memory_label(conversation.settings.memory_type))} · {conversation.message_count:,} messages"
)
chat_column, panel_column = st.columns([3, 2], gap="large") if show_panel else (st.container(), None)
# While a turn runs the box is disabled and its button stops the reply (what arrived is kept), so no message
# typed during a turn can silently replace another.
prompt = st.chat_input("Message Memory Lab", max_chars=settings.limits.max_message_chars, submit_mode="stop")
with chat_column:
    transcript()
    memory_notice()
    unsent()
    resend = st.session_state.pop("resend_requested", None)
    kept = next((i for i in ui.outbox().items(USER) if i.id == resend), None) if resend else None
    if prompt:
        run_turn(lambda: chat.send(ref.id, prompt, ui.current_facts(store, client)), prompt)
    elif kept is not None:
        run_turn(lambda: chat.send(ref.id, kept.text, ui.current_facts(store, client)), kept.text, unsent_id=kept.id)
    elif st.session_state.pop("retry_requested", False):
        run_turn(lambda: chat.retry(ref.id, ui.current_facts(store, client)), None)
if panel_column is not None:
    with panel_column:
        memory_panel(ref)
