"""Replays side by side (Compare and Lessons): progress, token charts, totals, requests per turn, survival, diffs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from memstore import ChatClient, FactSet
from memstore.costs import price_for
from memstore.lessons import sends_fact_at
from memstore.replay import replay
from ui import resources
from ui.page import Page
from ui.render import literal, show_code
from ui.words import memory_label

SURVIVAL_WORDS = {
    "kept": "kept: still sent word for word",
    "evicted": "evicted: fell out of the window",
    "folded": "folded into the summary",
    "recalled": "out of the window, recalled by meaning",
    "never_sent": "never sent after its turn",
}


def run_replay(page: Page, script, settings, facts: FactSet, client: ChatClient):
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
            user_id=page.user,
            facts=facts,
            cache=page.store,
            on_progress=progress,
            embedder=resources.embedder(),
            limits=page.store.limits,
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
                    show_code(message.content or " ")
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
