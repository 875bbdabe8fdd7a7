"""Lessons, prices and hints in memstore; the Compare and Lessons pages with AppTest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import plain, run_page
from fakes import FakeClient
from memstore import MEMORY_TYPES, Chat, FactSet, InvalidInput, MemorySettings, SqlStore
from memstore.costs import Price, price_for, prices_from_rows, shipped_prices
from memstore.hints import hints
from memstore.lessons import grade, load_lessons, mark_answer, parse_lesson, sends_fact_at
from memstore.replay import fact_survival, replay

ROOT = Path(__file__).resolve().parent.parent


def test_every_bundled_lesson_loads_and_its_answer_differs_by_type():
    lessons = load_lessons()
    assert {lesson.slug for lesson in lessons} >= {"recall_a_name", "preferences_vs_window", "what_a_summary_loses"}
    for lesson in lessons:
        if lesson.question.kind != "sends":
            continue
        settings = [MemorySettings(t, lesson.window_turns, lesson.max_tokens) for t in lesson.types]
        results = replay(lesson.turns[: lesson.question.at_turn], settings, FakeClient(), user_id="u")
        answers = {
            s.memory_type: sends_fact_at(s, lesson.question.at_turn)
            for s in fact_survival(results, lesson.question.fact_turn, lesson.question.needle)
        }
        assert answers["buffer"] is True and answers.get("none") is not True, lesson.slug
        assert answers["window"] is False, lesson.slug  # every lesson's window is too small on purpose


def lesson_text(**changes) -> str:
    raw = json.loads((ROOT / "memstore" / "lessons" / "recall_a_name.json").read_text("utf-8"))
    for key, value in changes.items():
        if value is None:
            raw.pop(key)
        else:
            raw[key] = value
    return json.dumps(raw)


def test_lessons_carry_answers_and_a_hand_written_summary_that_are_validated():
    lesson = parse_lesson("recall_a_name", lesson_text())
    assert lesson.answers == ("Alice",) and lesson.reference_summary.through_turn == 6
    assert parse_lesson("x", lesson_text(answers=None)).answers == ("Alice",)  # default: the question's needle
    assert parse_lesson("x", lesson_text(reference_summary=None)).reference_summary is None
    for changes, sentence in (
        ({"answers": []}, "answers: [] should be non-empty"),
        ({"answers": ["Alice", " "]}, "answers/1: ' ' does not match"),
        ({"reference_summary": {"text": "", "through_turn": 2}}, "reference_summary/text: '' should be non-empty"),
        ({"reference_summary": {"text": "Alice.", "through_turn": 7}}, "'through_turn' must be a whole number"),
        ({"reference_summary": "Alice."}, "reference_summary: 'Alice.' is not of type 'object'"),
    ):
        with pytest.raises(InvalidInput) as refused:
            parse_lesson("x", lesson_text(**changes))
        assert sentence in str(refused.value) and "Lesson 'x'" in str(refused.value)


def test_every_bundled_reference_summary_keeps_the_lessons_fact():
    for lesson in load_lessons():
        reference = lesson.reference_summary
        if reference is None:
            continue
        assert reference.through_turn >= lesson.question.fact_turn, lesson.slug
        assert lesson.question.needle in reference.text, lesson.slug


def test_an_answer_is_marked_on_the_exact_request_and_the_reply():
    lesson = next(lesson for lesson in load_lessons() if lesson.slug == "recall_a_name")
    settings = [MemorySettings(t, lesson.window_turns, lesson.max_tokens) for t in ("buffer", "window")]
    results = {r.memory_type: r for r in replay(lesson.turns, settings, FakeClient(), user_id="u")}
    sent = {t: r.frames[lesson.question.at_turn - 1].payload.messages for t, r in results.items()}
    unused = mark_answer(lesson, "buffer", sent["buffer"], "I don't know your name.")
    assert unused.reached and not unused.answered
    assert mark_answer(lesson, "buffer", sent["buffer"], "You are alice.").answered
    guessed = mark_answer(lesson, "window", sent["window"], "Alice?")
    assert not guessed.reached and guessed.answered


def test_grading_a_prediction():
    lesson = next(lesson for lesson in load_lessons() if lesson.slug == "recall_a_name")
    results = replay(
        lesson.turns,
        [MemorySettings(t, lesson.window_turns, lesson.max_tokens) for t in ("buffer", "window", "none")],
        FakeClient(),
        user_id="u",
    )
    survival = fact_survival(results, 1, "Alice")
    grades = {g.memory_type: g for g in grade(["buffer", "window"], survival, 7)}
    assert grades["buffer"].correct and not grades["window"].correct and grades["none"].correct


def test_prices_are_shipped_matched_by_prefix_and_validated():
    table = shipped_prices()
    assert price_for("gpt-4o-mini-2024-07-18", table) == table["gpt-4o-mini"]
    assert price_for("SmolLM2-135M-Instruct", table) == Price(0, 0)
    assert Price(1.0, 2.0).cost(1_000_000, 500_000) == pytest.approx(2.0)
    assert prices_from_rows([{"model": "m", "input": 1, "output": 2}, {"model": "", "input": 5}]) == {"m": Price(1, 2)}
    for bad in (
        {"model": "m", "input": -1, "output": 1},
        {"model": "m", "input": "cheap", "output": 1},
        {"model": "m", "input": float("nan"), "output": 1},
    ):
        with pytest.raises(InvalidInput):
            prices_from_rows([bad])


def test_hints_follow_the_settings():
    chat = Chat(SqlStore.in_memory(), FakeClient(), user_id="u")
    conv = chat.new_conversation(settings=MemorySettings("window", window_turns=1))
    for text in ("My name is Alice", "two", "three"):
        chat.send(conv.id, text, FactSet()).run()
    payload = chat.preview(conv.id, FactSet())
    assert any(
        "With k=1, turns 1–2 are no longer sent" in h for h in hints(MemorySettings("window", 1), payload, last_turn=3)
    )
    summary = chat.preview(conv.id, FactSet(), settings=MemorySettings("summary"))
    assert any("one model call per turn" in h for h in hints(MemorySettings("summary"), summary, last_turn=3))
    chat.client.context_tokens = 60
    full = chat.preview(conv.id, FactSet(), settings=MemorySettings("buffer"))
    assert any("of the model's context window" in h for h in hints(MemorySettings("buffer"), full, last_turn=3))


@pytest.fixture
def env(app_env):
    return app_env


def page(name: str) -> AppTest:
    return run_page(f"app_pages/{name}")


def test_compare_page_replays_every_type_with_chart_totals_and_survival(env):
    at = page("compare.py")
    at.main.selectbox[0].set_value("recall_a_name").run()
    at.main.button[0].click().run()
    assert not at.exception
    assert any(getattr(e, "type", "") == "vega_lite_chart" for e in at.main)
    frames = {tuple(d.value.columns)[:2]: d.value for d in at.dataframe}
    totals = frames[("memory type", "prompt tokens sent")]
    assert len(totals) == len(MEMORY_TYPES)
    by_type = dict(zip(totals["memory type"], totals["prompt tokens sent"]))
    assert by_type["Buffer (every turn)"] > by_type["Window (last k turns)"] > by_type["No memory"]
    assert dict(zip(totals["memory type"], totals["summary calls"]))["Summary"] >= 1
    assert all(
        r["messages"][0]["content"].startswith(("You keep a running summary", "You keep short notes"))
        for r in env.requests
    ), "only memory calls (summaries, entity notes), never the chat model"
    survival = frames[("memory type", "what happened")]
    sections = frames[("memory type", "system prompt")]
    assert (
        sections["total"]
        == sections[["system prompt", "facts", "summary", "entities", "recalled turns", "history", "new message"]].sum(
            axis=1
        )
    ).all()
    assert dict(zip(survival["memory type"], survival["what happened"]))["Window (last k turns)"].startswith("evicted")
    assert any("Hi! My name is Alice." in c.value for c in at.code)  # the buffer's payload at the last turn
    calls_before = len(env.requests)
    at.slider[0].set_value(2).run()
    assert len(env.requests) == calls_before and not at.exception  # moving through turns calls nothing
    assert "Turn 2:" in " ".join(plain(c.value) for c in at.caption)


def test_lessons_page_predict_reveal_and_ask(env):
    at = page("lessons.py")
    at.selectbox(key="lesson_slug").set_value("recall_a_name").run()
    at.main.multiselect[0].set_value(["buffer", "window"]).run()
    at.main.button[0].click().run()
    assert not at.exception
    grades = at.dataframe[0].value
    assert dict(zip(grades["memory type"], grades["✓"]))["Buffer (every turn)"] == "✓"
    assert dict(zip(grades["memory type"], grades["✓"]))["Window (last k turns)"] == "✗"
    assert any(s.value.startswith("Reveal: you got") for s in at.subheader)
    asked_before = len(env.requests)
    at.main.button[1].click().run()
    assert len(env.requests) == asked_before + len(MEMORY_TYPES)
    assert len(at.text) >= len(MEMORY_TYPES)


def test_lessons_page_marks_each_answer_and_names_a_fact_the_model_had_but_did_not_use(env):
    at = page("lessons.py")
    at.selectbox(key="lesson_slug").set_value("recall_a_name").run()
    at.main.button[0].click().run()
    at.main.button[1].click().run()  # the echo server repeats the question: it never says the name
    assert not at.exception
    by_type = {row["memory type"]: row for row in at.dataframe[-1].value.to_dict("records")}
    buffer = by_type["Buffer (every turn)"]
    assert (buffer["fact reached the model"], buffer["answer contained it"], buffer["so"]) == (
        "yes",
        "no",
        "Had the fact but did not use it",
    )
    assert (by_type["No memory"]["fact reached the model"], by_type["No memory"]["so"]) == (
        "no",
        "Never had the fact, and did not answer it",
    )
    assert any(plain(w.value).startswith("Had the fact but did not use it: Buffer (every turn)") for w in at.warning)
    env.expect(*[("reply", "Your name is Alice.")] * len(MEMORY_TYPES))
    at.main.button[1].click().run()
    by_type = {row["memory type"]: row for row in at.dataframe[-1].value.to_dict("records")}
    assert by_type["Buffer (every turn)"]["so"] == "Had the fact and used it"
    assert by_type["Window (last k turns)"]["so"] == "Answered it without having the fact"
    assert not any("Had the fact but did not use it: " in w.value for w in at.warning)


def test_compare_page_shows_the_hand_written_summary_beside_the_models(env):
    at = page("compare.py")
    at.main.selectbox[0].set_value("recall_a_name").run()
    at.main.button[0].click().run()
    assert not at.exception
    lesson = next(lesson for lesson in load_lessons() if lesson.slug == "recall_a_name")
    assert "Summaries: the model's beside one written by hand" in [s.value for s in at.subheader]
    assert "**Written by hand for this lesson**" in [m.value for m in at.main.markdown]
    assert any("not produced by a model" in c.value for c in at.caption)
    assert lesson.reference_summary.text in [t.value for t in at.text]
    assert any(m.value.startswith("**Summary** · written by ") for m in at.main.markdown)
