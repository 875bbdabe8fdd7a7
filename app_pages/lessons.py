"""Lessons: predict what each memory type sends, then see it side by side."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from memstore import MEMORY_TYPES, Chat, MemoryLabError, MemorySettings
from memstore.facts import select_facts
from memstore.lessons import grade, load_lessons, mark_answer
from memstore.recall_check import outcome
from memstore.records import Preference
from memstore.replay import fact_survival
from memstore.schema import utcnow
from ui import compare_views, words
from ui.page import start_page
from ui.render import literal, show_error

page = start_page("Lessons · Memory Lab")
settings, store, client, USER = page.settings, page.store, page.client, page.user
VERDICTS = {
    "used": "Had the fact and used it",
    "unused": "Had the fact but did not use it",
    "guessed": "Answered it without having the fact",
    "missing": "Never had the fact, and did not answer it",
}

st.title("Lessons")
lessons = {lesson.slug: lesson for lesson in load_lessons()}
slug = st.selectbox("Lesson", list(lessons), format_func=lambda s: lessons[s].title)
lesson = lessons[slug]
st.markdown(f"**Goal.** {literal(lesson.goal)}")
st.caption(
    f"Window k = {lesson.window_turns:d} turns ({2 * lesson.window_turns:d} messages) · token limit "
    f"{lesson.max_tokens:,} · {len(lesson.turns):d} turns"
    + (
        " · preferences: " + ", ".join(literal(f"{k}: {v}") for k, v in lesson.preferences)
        if lesson.preferences
        else ""
    )
)
with st.expander("The conversation"):
    for number, turn in enumerate(lesson.turns, 1):
        st.text(f"{number}. user: {turn.user}\n   assistant: {turn.assistant}")

question = lesson.question
st.subheader("Predict")
st.markdown(literal(question.text))
prediction = st.multiselect(
    "Memory types that still send it", list(MEMORY_TYPES), format_func=words.memory_label, key=f"prediction_{slug}"
)

facts = select_facts({}, [Preference(k, v, True, utcnow()) for k, v in lesson.preferences])
state_key = f"lesson_{slug}"
if st.button("Reveal", type="primary"):
    try:
        results = compare_views.run_replay(
            page,
            lesson.turns[: question.at_turn],
            [MemorySettings(t, lesson.window_turns, lesson.max_tokens) for t in MEMORY_TYPES],
            facts,
            client,
        )
        st.session_state[state_key] = results
    except MemoryLabError as exc:
        show_error(exc, what="Could not replay the lesson: ")

results = st.session_state.get(state_key)
if results is None:
    st.caption("Make your prediction, then press Reveal.")
    st.stop()

survival = fact_survival(results, question.fact_turn, question.needle)
grades = grade(prediction, survival, question.at_turn)
right = sum(g.correct for g in grades)
st.subheader(f"Reveal: you got {right:d} of {len(grades):d} right")
st.dataframe(
    pd.DataFrame(
        [
            {
                "memory type": words.memory_label(g.memory_type),
                "you said": "sends it" if g.predicted else "forgets it",
                "replay shows": "sends it" if g.actual else "forgets it",
                "": "✓" if g.correct else "✗",
            }
            for g in grades
        ]
    ),
    hide_index=True,
    width="stretch",
)
st.info(literal(lesson.explanation))
st.dataframe(compare_views.survival_frame(survival, question.at_turn), hide_index=True, width="stretch")

st.subheader(f"What each type sends at turn {question.at_turn:d}")
compare_views.render_frames_side_by_side(results, question.at_turn)

st.subheader("Ask the model")
st.caption(
    f"Sends each type's request above to {literal(client.model)} ({literal(client.provider)}) and shows "
    "the replies. These are real model calls, recorded on the Model calls page. “Fact reached the model” "
    "is read from that type's exact request; “answer contained it” means the reply holds one of: "
    + ", ".join(f"“{literal(a)}”" for a in lesson.answers)
    + "."
)
if st.button("Ask the configured model"):
    chat = Chat(store, client, user_id=USER)
    marks = []
    progress = st.progress(0.0)
    for i, result in enumerate(results, 1):
        payload = result.frames[question.at_turn - 1].payload
        try:
            reply, error = chat.ask(payload, memory_type=result.memory_type), None
        except MemoryLabError as exc:
            reply, error = "", str(exc)
        marks.append(mark_answer(lesson, result.memory_type, payload.messages, reply, error))
        progress.progress(i / len(results))
    progress.empty()
    st.session_state[f"answers_{slug}"] = marks
shown_marks = st.session_state.get(f"answers_{slug}")
if shown_marks:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "memory type": words.memory_label(m.memory_type),
                    "fact reached the model": "yes" if m.reached else "no",
                    "answer contained it": "yes" if m.answered else "no",
                    "so": VERDICTS[outcome(m.reached, m.answered)]
                    if m.error is None
                    else f"The call failed: {m.error}",
                }
                for m in shown_marks
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    unused = [
        words.memory_label(m.memory_type)
        for m in shown_marks
        if m.error is None and outcome(m.reached, m.answered) == "unused"
    ]
    if unused:
        st.warning(
            "Had the fact but did not use it: "
            + ", ".join(literal(name) for name in unused)
            + ". The memory did its job; the model did not.",
            icon=":material/lightbulb:",
        )
    columns = st.columns(3)
    for i, m in enumerate(shown_marks):
        with columns[i % 3], st.container(border=True):
            st.markdown(f"**{literal(words.memory_label(m.memory_type))}**")
            st.caption(
                f"Fact reached the model: {'yes' if m.reached else 'no'} · answer contained it: "
                f"{'yes' if m.answered else 'no'}"
            )
            st.text(m.reply or "(no reply)")
            if m.error is not None:
                st.error(f"The call failed: {literal(m.error)}", icon=":material/error:")
