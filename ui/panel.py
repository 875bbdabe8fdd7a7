"""The memory panel: what the memory holds now, the next and last requests, the summary call, and a timeline."""

from __future__ import annotations

import streamlit as st

from memstore import Chat, Conversation, FactSet, Payload, get_memory_type
from memstore.costs import price_for, shipped_prices
from memstore.hints import hints
from ui import session, words
from ui.page import Page
from ui.render import literal, model_markdown, show_code, show_text
from ui.session import ConversationRef


@st.fragment
def memory_panel(page: Page, ref: ConversationRef) -> None:
    """What the memory holds now, what the next and last requests contain, and what they cost."""
    client = page.client
    panel_chat = session.chat_for(page, ref)
    conv = panel_chat.store.get_conversation(page.user, ref.id)
    facts = session.current_facts(page, page.client)
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
    st.markdown(sections_md(payload))
    # Only the open tab is drawn: a rerun that changes nothing else redraws one view, not five.
    tabs = st.tabs(
        ["Holds now", "Next request", "Last request", "Summary call", "Timeline"], key="panel_tab", on_change="rerun"
    )
    views = [
        lambda: render_holdings(payload, conv),
        lambda: render_next(payload, draft_key),
        lambda: render_last(panel_chat, ref),
        lambda: render_summary_call(panel_chat, conv),
        lambda: render_timeline(page, panel_chat, conv, ref),
    ]
    for tab, view in zip(tabs, views):
        if tab.open:
            with tab:
                view()


def render_next(payload: Payload, draft_key: str) -> None:
    """The next request exactly as it would be sent, with an optional draft of your next message in it."""
    st.text_input(
        "Preview a message",
        key=draft_key,
        placeholder="Type to see what it would cost",
        help="Shows the next request with this message in it; nothing is sent.",
    )
    estimate = "" if payload.exact_tokens else " (estimated)"
    st.caption(
        f"Exactly what the next turn would send under the current settings ({literal(payload.tokenizer)}"
        f"{estimate}). The last message is your next one."
    )
    render_request(payload.messages, payload.message_tokens, key="next")


def render_last(panel_chat: Chat, ref: ConversationRef) -> None:
    """The last chat call as the ledger recorded it: request and reply."""
    call = panel_chat.last_chat_call(ref.id)
    if call is None:
        st.caption("No turn has been sent yet.")
        return
    st.caption(
        f"Turn {call.turn:d} · {literal(words.memory_label(call.memory_type))} · " + literal(words.call_summary(call))
    )
    render_request(call.request, panel_chat.count_request(call.request), key="last")
    st.markdown("**Reply**")
    show_code(call.reply or "(none)")


def render_timeline(page: Page, panel_chat: Chat, conv: Conversation, ref: ConversationRef) -> None:
    """Scrub through past turns: what each one really sent, read back from the ledger."""
    client = page.client
    if conv.last_turn == 0:
        st.caption("No turns yet.")
        return
    turn = st.slider("Turn", 1, conv.last_turn, conv.last_turn, key=f"timeline_{ref.slug}") if conv.last_turn > 1 else 1
    calls = panel_chat.store.calls_for_turn(page.user, conv.id, turn)
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
            f"Turn {turn:d} · {literal(words.memory_label(call.memory_type))} · sent {literal(sent)} · "
            + literal(words.call_summary(call))
        )
        if call.sections:
            st.caption(literal(" · ".join(f"{words.SECTION_NAMES.get(k, k)} {v:,}" for k, v in call.sections.items())))
        for line in words.details_lines(call.details):
            st.caption(literal(line))
        render_request(call.request, panel_chat.count_request(call.request), key=f"timeline_{call.id}")
        st.markdown("**Reply**")
        show_code(call.reply or "(none)")
    for call in (c for c in calls if c.purpose in ("facts", "entities")):
        st.caption(
            f"{'Facts' if call.purpose == 'facts' else 'Entity notes'} call after turn {turn:d}: "
            + literal(words.call_summary(call))
        )
        show_code(call.reply or call.error or "(none)")
    for call in (c for c in calls if c.purpose == "summary"):
        st.caption(
            f"Summary call after turn {turn:d} (folded turns {call.history_from_turn:d}–"
            f"{call.history_to_turn:d}): " + literal(words.call_summary(call))
        )
        show_code(call.reply or "(none)")


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
                show_text("\n".join(f"{m.role}: {words.turn_preview(m.content)}" for m in turn.chat_messages()))
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
                f"~~Turn {dropped.turn.number:d}~~ · {literal(left)} · {literal(words.turn_preview(user_text, 80))}"
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
            show_text("\n".join(f"{m.role}: {words.turn_preview(m.content)}" for m in recalled.turn.chat_messages()))
    if recall.missed:
        st.caption("Just missed: " + ", ".join(f"turn {turn:d} ({score:.2f})" for _, turn, score in recall.missed))


def render_entities(entities) -> None:
    """The conversation's entity notes; the ones the next message names are injected."""
    if entities is None or not entities.known:
        return
    injected = {e.name for e in entities.injected}
    st.markdown(f"**Entities: {len(entities.known):d} known, {len(injected):d} injected**")
    for e in entities.known:
        mark = "injected" if e.name in injected else "not named by the next message"
        versions = f"{e.versions:d} version{'s' if e.versions != 1 else ''}"
        st.caption(f"{literal(e.name)} · {mark} · updated at turn {e.turn:d} · {versions}")
        show_text(e.summary)


def render_facts(facts: FactSet) -> None:
    if facts.budget_tokens is not None:
        fill = facts.used_tokens / facts.budget_tokens if facts.budget_tokens else 1.0
        st.progress(min(fill, 1.0), text=f"Facts budget: {facts.used_tokens:,} of {facts.budget_tokens:,} tokens")
    if facts.injected:
        st.markdown("**Facts injected into the system prompt**")
        show_text("\n".join(f"{f.key}: {f.value}  ({f.source})" for f in facts.injected))
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
        + literal(words.call_summary(call))
    )
    render_request(call.request, panel_chat.count_request(call.request), key="summary")
    st.markdown("**Output**")
    show_code(call.reply or "(none)")


def sections_md(payload: Payload) -> str:
    """Tokens per section of the next request, as a Markdown table (no dataframe: pandas stays unloaded)."""
    total = max(payload.total_tokens, 1)
    header = "| section | tokens | share | items |\n|---|---:|---:|---:|\n"
    rows = [f"| {literal(s.label)} | {s.tokens:,} | {s.tokens / total:.0%} | {s.items:,} |" for s in payload.sections]
    return header + "\n".join(rows)


def render_request(messages, token_counts, *, key: str) -> None:
    """Messages exactly as sent: role, tokens, and the verbatim text (never rendered as Markdown)."""
    for i, (message, tokens) in enumerate(zip(messages, token_counts)):
        st.markdown(f"**{i + 1:d}. {literal(message.role)}** · {tokens:,} tokens")
        if message.content:
            show_code(message.content)
        else:
            st.caption("(empty: your next message goes here)")
