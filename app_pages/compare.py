"""Compare: one conversation replayed through every memory type, side by side, turn by turn."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from memstore import MEMORY_TYPES, MemoryLabError, MemorySettings
from memstore.costs import price_for, prices_from_rows, shipped_prices
from memstore.facts import select_facts
from memstore.lessons import load_lessons
from memstore.replay import (
    MAX_REPLAY_TURNS,
    diff_frames,
    export_replay,
    fact_survival,
    parse_replay_file,
    preference_survival,
    replay_markdown,
    running_cost,
    script_from_conversation,
)
from memstore.transfer import to_json
from ui import compare_views, session, words
from ui.page import start_page
from ui.render import literal, plain_text, show_code, show_error, show_text

page = start_page("Compare · Memory Lab")
settings, store, client, USER = page.settings, page.store, page.client, page.user

st.title("Compare memory types")
st.caption(
    "Replays one conversation through every memory type: what each would send at each turn, message by "
    "message. The chat model is not called; summary types do call the summarizer, and each summary "
    "already in the ledger is reused."
)

lessons = {lesson.slug: lesson for lesson in load_lessons() if lesson.turns}  # practice lessons have no script
source = st.radio(
    "Conversation", ["A bundled lesson", "A saved conversation", "An exported replay file"], horizontal=True
)
chosen_types: list[str] | None = None
if source == "An exported replay file":
    upload = st.file_uploader("Replay file (JSON exported from this page)", type=["json"])
    if upload is None:
        st.stop()
    try:
        title, script, imported_settings = parse_replay_file(upload.getvalue(), settings.limits)
    except MemoryLabError as exc:
        show_error(exc, what="Cannot read the file: ")
        st.stop()
    source_key: tuple[object, ...] = ("file", upload.file_id)
    default_k, default_tokens = imported_settings[0].window_turns, imported_settings[0].max_tokens
    chosen_types = [s.memory_type for s in imported_settings]
elif source == "A bundled lesson":
    slug = st.selectbox("Lesson", list(lessons), format_func=lambda s: lessons[s].title)
    lesson = lessons[slug]
    title = lesson.title
    script = list(lesson.turns)
    source_key = ("lesson", slug)
    default_k, default_tokens = lesson.window_turns, lesson.max_tokens
    chosen_types = list(lesson.types)
else:
    saved = store.list_conversations(USER, limit=200)
    if not saved:
        st.info("No saved conversations yet: chat first, or pick a bundled lesson.")
        st.stop()
    titles = {c.id: c.title for c in saved}
    conv_id = st.selectbox("Saved conversation", list(titles), format_func=lambda i: f"{plain_text(titles[i])} (#{i})")
    title = titles[conv_id]
    script = script_from_conversation(store, USER, conv_id)
    source_key = ("conversation", conv_id, len(script))
    default_k, default_tokens = 3, 500
    if len(script) == MAX_REPLAY_TURNS:
        st.caption(f"Only the newest {MAX_REPLAY_TURNS:,} turns are replayed.")

left, mid, right = st.columns([1, 1, 3])
k = left.number_input(
    "Window k (turns)", min_value=0, max_value=100, value=default_k, step=1, help="k turns = 2k messages."
)
max_tokens = mid.number_input("Token limit", min_value=1, max_value=100_000, value=default_tokens, step=50)
chosen = right.multiselect(
    "Memory types", list(MEMORY_TYPES), default=chosen_types or list(MEMORY_TYPES), format_func=words.memory_label
)
use_preferences = st.checkbox("Inject my stored preferences and session facts", value=True)

if not script:
    st.info("This conversation has no turns to replay.")
    st.stop()
facts = session.current_facts(page, client) if use_preferences else select_facts({}, [])
run_key = (source_key, int(k), int(max_tokens), tuple(chosen), facts, client.model)
if st.button("Replay", type="primary", disabled=not chosen):
    try:
        st.session_state.compare = (
            run_key,
            compare_views.run_replay(
                page, script, [MemorySettings(t, int(k), int(max_tokens)) for t in chosen], facts, client
            ),
        )
    except MemoryLabError as exc:
        show_error(exc, what="Replay failed: ")

cached = st.session_state.get("compare")
if cached is None or cached[0] != run_key:
    st.caption("Press Replay to compute (again) with these settings.")
    st.stop()
results = cached[1]

st.subheader("Tokens sent per turn")
st.line_chart(compare_views.tokens_chart_frame(results), x_label="turn", y_label="prompt tokens")

with st.expander("Prices (USD per million tokens; edits last for this session)"):
    shipped = st.session_state.get("prices") or shipped_prices()
    edited = st.data_editor(
        pd.DataFrame(
            [{"model": m, "input": p.input_per_million, "output": p.output_per_million} for m, p in shipped.items()]
        ),
        key="prices_editor",
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
    )
    try:
        st.session_state.prices = prices_from_rows(edited.to_dict("records"))
    except MemoryLabError as exc:
        show_error(exc, what="Prices not changed: ")
prices = st.session_state.get("prices") or shipped_prices()
st.caption("Running cost per type (the request, the reply and any summary calls):")
model_price = price_for(client.model, prices)
cost_chart = pd.DataFrame(
    {words.memory_label(r.memory_type): running_cost(r, model_price) for r in results}, index=range(1, len(script) + 1)
)
cost_chart.index.name = "turn"
st.line_chart(cost_chart, x_label="turn", y_label="USD so far")
st.subheader("Totals")
st.caption(f"Cost at {literal(client.model)}'s price (models not in the table count as free).")
st.dataframe(
    compare_views.totals_frame(results, prices, client.model),
    hide_index=True,
    width="stretch",
    column_config={"cost (USD)": st.column_config.NumberColumn(format="$%.6f")},
)

exported = export_replay(title, script, results)
left, right = st.columns(2)
left.download_button(
    "Export this replay as JSON",
    to_json(exported),
    "memorylab-replay.json",
    "application/json",
    width="stretch",
    on_click="ignore",
    help="Every turn's payload, memory, diff and tokens; load it back here with 'An exported replay file'.",
)
right.download_button(
    "Export this replay as Markdown",
    replay_markdown(exported),
    "memorylab-replay.md",
    "text/markdown",
    width="stretch",
    on_click="ignore",
)

st.subheader("Each turn, side by side")
turn = st.slider("Turn", 1, len(script), len(script)) if len(script) > 1 else 1
st.caption(f"Turn {turn:d}: “{literal(words.turn_preview(script[turn - 1].user, 120))}”")
st.dataframe(
    pd.DataFrame(
        [
            {
                "memory type": words.memory_label(r.memory_type),
                **{
                    words.SECTION_NAMES[name]: tokens
                    for name, tokens in r.frames[turn - 1].payload.tokens_by_section().items()
                },
                "total": r.frames[turn - 1].payload.total_tokens,
                "reply": r.frames[turn - 1].reply_tokens,
                "summary calls (tokens)": r.frames[turn - 1].summary_tokens,
            }
            for r in results
        ]
    ),
    hide_index=True,
    width="stretch",
)
compare_views.render_frames_side_by_side(results, turn)
with st.expander(f"What changed at turn {turn:d}"):
    for result in results:
        before = result.frames[turn - 2] if turn > 1 else None
        st.markdown(f"**{literal(words.memory_label(result.memory_type))}**")
        show_code(compare_views.diff_text(diff_frames(before, result.frames[turn - 1])), language="diff")

reference = lessons[str(source_key[1])].reference_summary if source_key[0] == "lesson" else None
summary_results = [r for r in results if MEMORY_TYPES[r.memory_type].uses_summary]
if reference is not None and summary_results:
    sent_at = reference.through_turn + 1
    st.subheader("Summaries: the model's beside one written by hand")
    st.caption(
        f"What each summary type sends at turn {sent_at:d}, next to a summary of turns "
        f"1–{reference.through_turn:d} that was written by hand for this lesson. No model produced the "
        "hand-written one: it shows what a summary of this script could keep, so the comparison works even "
        "with a weak or offline model."
    )
    columns = st.columns(len(summary_results) + 1)
    with columns[0], st.container(border=True):
        st.markdown("**Written by hand for this lesson**")
        st.caption(f"Turns 1–{reference.through_turn:d} · not produced by a model")
        show_text(reference.text)
    for column, result in zip(columns[1:], summary_results):
        summary = result.frames[sent_at - 1].payload.view.summary
        with column, st.container(border=True):
            st.markdown(f"**{literal(words.memory_label(result.memory_type))}** · written by {literal(client.model)}")
            st.caption(
                f"Sent at turn {sent_at:d} · covers turns {summary.from_turn:d}–{summary.through_turn:d}"
                + (
                    ""
                    if summary.through_turn == reference.through_turn
                    else " (the newer turns are sent word for word)"
                )
                if summary is not None
                else f"Sent at turn {sent_at:d} · no summary yet"
            )
            show_text(summary.text if summary is not None and summary.text.strip() else "(no summary)")

st.subheader("When does a fact stop reaching the model?")
pin = st.radio("Pin", ["A message", "A preference or session fact"], horizontal=True)
if pin == "A preference or session fact":
    keys = [f.key for f in facts.injected]
    if not keys:
        st.caption("No preference or session fact is injected (add one, and tick the box above).")
    else:
        key = st.selectbox("Fact", keys)
        st.dataframe(compare_views.survival_frame(preference_survival(results, key)), hide_index=True, width="stretch")
    st.stop()
fact_turn = st.number_input("Pin the message of turn", min_value=1, max_value=len(script), value=1, step=1)
needle = st.text_input(
    "Words that must still be there",
    value=words.turn_preview(script[fact_turn - 1].user, 80),
    key=f"needle_{fact_turn}",
    help="A summary 'still mentions' the fact when it contains every distinctive word here.",
)
st.dataframe(
    compare_views.survival_frame(fact_survival(results, int(fact_turn), needle)), hide_index=True, width="stretch"
)
