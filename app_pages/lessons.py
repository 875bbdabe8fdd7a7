"""Lessons: the memory guide's ideas in its order; predict, then reveal by a replay or by doing it in the app."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from memstore import Chat, MemoryLabError, MemorySettings
from memstore.facts import select_facts
from memstore.lessons import (
    IDEAS,
    Lesson,
    bundled_lessons,
    mark_answer,
    parse_lesson_file,
    practice_grades,
    readme_section,
    reveal,
)
from memstore.practice import check_practice
from memstore.recall_check import outcome
from memstore.records import Preference
from memstore.replay import fact_survival
from memstore.schema import utcnow
from ui import compare_views, resources, words
from ui.page import start_page
from ui.render import literal, model_markdown, show_error, show_text

page = start_page("Lessons · Memory Lab")
settings, store, client, USER = page.settings, page.store, page.client, page.user
VERDICTS = {
    "used": "Had the fact and used it",
    "unused": "Had the fact but did not use it",
    "guessed": "Answered it without having the fact",
    "missing": "Never had the fact, and did not answer it",
}

st.title("Lessons")
st.caption(
    "The ideas of LangChain's memory guide, in its order. Predict first, then reveal: by replaying the "
    "conversation through the memory types, or, for what happens outside one page, by doing it in the app "
    "and letting the lesson check the database."
)
shelf = bundled_lessons()
for problem in shelf.problems:  # a broken lesson file is one sentence here, and the others still load
    st.warning(literal(problem), icon=":material/warning:")
lessons: dict[str, Lesson] = {lesson.slug: lesson for lesson in shelf.lessons}
lessons.update(st.session_state.get("own_lessons", {}))
with st.expander("Your own lesson file", key="own_lesson_open", on_change="rerun"):
    if st.session_state.get("own_lesson_open"):
        st.caption(
            "A JSON file following memstore/data/lesson.schema.json (the README's “Writing a lesson” shows one). "
            "It is checked like a replay file, kept for this browser session only, and listed last."
        )
        upload = st.file_uploader("Lesson file", type=["json"], key="own_lesson_upload")
        if upload is not None and st.button("Add the lesson", key="own_lesson_add"):
            try:
                own = parse_lesson_file(upload.name, upload.getvalue(), settings.limits)
            except MemoryLabError as exc:
                show_error(exc, what="The lesson was not added: ")
            else:
                own = replace(own, slug="own_" + own.slug, order=10_000)
                st.session_state.setdefault("own_lessons", {})[own.slug] = own
                st.session_state["lesson_slug"] = own.slug
                st.rerun()
order = sorted(lessons, key=lambda s: (lessons[s].order, lessons[s].title))
slug = st.selectbox(
    "Lesson",
    order,
    format_func=lambda s: f"{order.index(s) + 1}. {lessons[s].title}",
    key="lesson_slug",
)
lesson = lessons[slug]
question = lesson.question
st.markdown(f"**{literal(IDEAS.get(lesson.idea, lesson.idea))}.** {literal(lesson.goal)}")
st.caption("LangChain counterpart: " + literal(lesson.counterpart))
differs = readme_section(lesson.readme)
with st.expander("How Memory Lab differs (from the README: " + literal(lesson.readme) + ")"):
    if differs:
        st.markdown(model_markdown(differs))
    else:
        st.caption("See the README's section " + literal(f"“{lesson.readme}”") + ".")
if lesson.replays:
    st.caption(
        f"Window k = {lesson.window_turns:d} turns ({2 * lesson.window_turns:d} messages) · token limit "
        f"{lesson.max_tokens:,} · {len(lesson.turns):d} turns · replays: "
        + ", ".join(literal(words.memory_label(t)) for t in lesson.types)
        + (
            " · preferences: " + ", ".join(literal(f"{k}: {v}") for k, v in lesson.preferences)
            if lesson.preferences
            else ""
        )
    )
    with st.expander("The conversation"):
        for number, turn in enumerate(lesson.turns, 1):
            show_text(f"{number}. user: {turn.user}\n   assistant: {turn.assistant}")

st.subheader("Predict")
st.markdown(literal(question.text))
if question.kind == "practice":
    prediction = st.multiselect("Your answer", list(question.options), key=f"prediction_{slug}")
elif question.kind == "lost_at":
    choices = [str(t) for t in range(question.fact_turn + 1, len(lesson.turns) + 1)] + ["never"]
    picked = st.selectbox("The first turn without it", choices, index=None, key=f"prediction_{slug}")
    prediction = [picked] if picked else []
else:
    label = "Memory types within the budget" if question.kind == "under_budget" else "Memory types that do"
    prediction = st.multiselect(label, list(lesson.types), format_func=words.memory_label, key=f"prediction_{slug}")

state_key = f"lesson_{slug}"


def grades_table(grades, yes: str, no: str, choice=lambda c: c, column: str = "memory type") -> None:
    right = sum(g.correct for g in grades)
    st.subheader(f"Reveal: you got {right:d} of {len(grades):d} right")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    column: choice(g.memory_type),
                    "you said": yes if g.predicted else no,
                    "it is": yes if g.actual else no,
                    "✓": "✓" if g.correct else "✗",
                }
                for g in grades
            ]
        ),
        hide_index=True,
        width="stretch",
    )


if lesson.practice is not None:
    st.subheader("Do it in the app")
    for number, step in enumerate(lesson.practice.steps, 1):
        st.markdown(f"{number:d}. " + literal(step))
    check_col, reveal_col = st.columns(2)
    if check_col.button("Check", type="primary", key=f"check_{slug}"):
        temporary = st.session_state.get("temporary_store")
        st.session_state[state_key] = check_practice(
            lesson.practice, store, USER, process_started=resources.PROCESS_STARTED, temporary=temporary
        )
    if reveal_col.button("Reveal without checking", key=f"reveal_{slug}"):
        st.session_state[f"{state_key}_revealed"] = True
    result = st.session_state.get(state_key)
    if result is not None:
        (st.success if result.passed else st.warning)(literal(result.sentence))
    if (result is not None and result.passed) or st.session_state.get(f"{state_key}_revealed"):
        grades_table(practice_grades(lesson, prediction), "yes", "no", column="answer")
        st.info(literal(lesson.explanation))
    else:
        st.caption("Make your prediction, do the steps, then press Check.")
    st.stop()

if st.button("Reveal", type="primary"):
    facts = select_facts({}, [Preference(k, v, True, utcnow()) for k, v in lesson.preferences])
    upto = question.at_turn if question.kind in ("sends", "stale", "under_budget") else len(lesson.turns)
    try:
        st.session_state[state_key] = compare_views.run_replay(
            page,
            lesson.turns[:upto],
            [MemorySettings(t, lesson.window_turns, lesson.max_tokens) for t in lesson.types],
            facts,
            client,
        )
    except MemoryLabError as exc:
        show_error(exc, what="Could not replay the lesson: ")

results = st.session_state.get(state_key)
if results is None:
    st.caption("Make your prediction, then press Reveal.")
    st.stop()

survival = fact_survival(results, question.fact_turn, question.needle) if question.kind == "sends" else None
shown = reveal(lesson, prediction, results, survival)
at_turn = question.at_turn
if question.kind == "lost_at":
    answer = "never" if shown.answer_turn is None else f"turn {shown.answer_turn:d}"
    right = bool(shown.grades[0].correct)
    st.subheader(("Right: " if right else "Not quite: ") + f"the window first leaves it out at {answer}")
    at_turn = shown.answer_turn or len(lesson.turns)
elif question.kind == "under_budget":
    grades_table(shown.grades, "within", "over", words.memory_label)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "memory type": words.memory_label(t),
                    f"tokens sent at turn {at_turn:d}": n,
                    f"within {question.budget_tokens:,}": "yes" if n <= question.budget_tokens else "no",
                }
                for t, n in shown.tokens.items()
            ]
        ),
        hide_index=True,
        width="stretch",
    )
else:
    grades_table(shown.grades, "sends it", "does not", words.memory_label)
st.info(literal(lesson.explanation))
if survival is not None:
    st.dataframe(compare_views.survival_frame(survival, at_turn), hide_index=True, width="stretch")

st.subheader(f"What each type sends at turn {at_turn:d}")
compare_views.render_frames_side_by_side(results, at_turn)

if question.kind not in ("sends", "stale"):
    st.stop()
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
        payload = result.frames[at_turn - 1].payload
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
            show_text(m.reply or "(no reply)")
            if m.error is not None:
                st.error(f"The call failed: {literal(m.error)}", icon=":material/error:")
