"""Model calls: the ledger of every chat, summary, facts and entity call, exactly as made."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from memstore import Chat
from ui import panel, words
from ui.page import start_page
from ui.render import literal, plain_text, show_code

page = start_page("Model calls · Memory Lab")
settings, store, client, USER = page.settings, page.store, page.client, page.user
PAGE = 50

st.title("Model calls")
st.caption(
    "Every call to a model, chat and summary alike: the exact request, the reply, tokens (counted here and "
    "reported by the server), latency and errors. API keys are never recorded."
)
conversations = store.list_conversations(USER, limit=500)
titles = {c.id: plain_text(c.title) for c in conversations}
left, mid, right = st.columns([3, 1, 1])
chosen = left.selectbox(
    "Conversation", [None, *titles], format_func=lambda i: "All conversations" if i is None else f"{titles[i]} (#{i})"
)
purpose = mid.selectbox("Kind", [None, "chat", "summary", "facts", "entities"], format_func=lambda p: p or "All")
page_number = int(right.number_input("Page", min_value=1, value=1, step=1))
calls = store.list_calls(USER, conversation_id=chosen, purpose=purpose, limit=PAGE, offset=(page_number - 1) * PAGE)
if not calls:
    st.info("No model calls here yet." if page_number == 1 else "No more calls.")
    st.stop()

st.dataframe(
    pd.DataFrame(
        [
            {
                "id": c.id,
                "when": c.created_at,
                "conversation": titles.get(c.conversation_id, "") if c.conversation_id is not None else "",
                "turn": c.turn,
                "kind": c.purpose,
                "memory": c.memory_type,
                "model": c.model,
                "server": c.host,
                "prompt tokens (counted)": c.counted_prompt_tokens,
                "prompt tokens (server)": c.usage.prompt_tokens,
                "completion tokens": c.usage.completion_tokens,
                "latency s": round(c.latency_ms / 1000, 3) if c.latency_ms is not None else None,
                "error": c.error or "",
            }
            for c in calls
        ]
    ),
    hide_index=True,
    width="stretch",
    column_config={"when": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")},
)

by_id = {c.id: c for c in calls}
selected = st.selectbox(
    "Show call",
    list(by_id),
    format_func=lambda i: f"#{i} · {by_id[i].purpose} · turn {by_id[i].turn} · {by_id[i].model}",
)
call = by_id[selected]
st.caption(literal(f"{words.call_summary(call)} · params {call.params} · finish reason {call.finish_reason}"))
if call.sections:
    st.caption("Sections: " + literal(", ".join(f"{k} {v:,}" for k, v in call.sections.items())))
st.markdown("**Request**")
panel.render_request(call.request, Chat(store, client, user_id=USER).count_request(call.request), key=f"call_{call.id}")
st.markdown("**Reply**")
show_code(call.reply or "(none)")
if call.error:
    st.error(literal(f"{call.error_kind}: {call.error}"))
