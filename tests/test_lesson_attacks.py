"""Crafted lesson files: each gets one sentence and is not added; any lesson that is accepted runs without raising."""

from __future__ import annotations

import json
import sys
import threading
from functools import cache

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import plain, run_page
from fakes import FakeClient
from memstore import InvalidInput, MemoryLabError, MemorySettings
from memstore.facts import select_facts
from memstore.lessons import Lesson, parse_lesson, parse_lesson_file, practice_grades, read_lessons, reveal
from memstore.records import Preference
from memstore.replay import fact_survival, replay
from memstore.schema import utcnow
from sources import readme_example_lesson

TYPES = ["none", "buffer", "window", "token_window", "summary", "summary_buffer", "retrieval", "entity"]


def example(**changes) -> dict:
    raw = json.loads(readme_example_lesson())
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = raw
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return raw


def nested(depth: int) -> str:
    """The example lesson's text with "types" nested `depth` lists deep (json.dumps itself cannot go that deep)."""
    return json.dumps(example(types="NESTED")).replace('"NESTED"', "[" * depth + '"buffer"' + "]" * depth)


def refused(raw: dict | bytes) -> str:
    data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    with pytest.raises(InvalidInput) as info:
        parse_lesson_file("crafted.json", data)
    return str(info.value)


@pytest.mark.parametrize(
    "changes, sentence",
    [
        ({"question__at_turn": 4.0}, "question/at_turn: 4.0 is not of type 'integer'"),
        ({"question__fact_turn": 1.0}, "question/fact_turn: 1.0 is not of type 'integer'"),
        ({"settings__window_turns": 2.0}, "settings/window_turns: 2.0 is not of type 'integer'"),
        ({"settings__max_tokens": 1e2}, "settings/max_tokens: 100.0 is not of type 'integer'"),
        ({"order": 45.0}, "order: 45.0 is not of type 'integer'"),
        ({"question__at_turn": True}, "question/at_turn: True is not of type 'integer'"),
        ({"settings__window_turns": False}, "settings/window_turns: False is not of type 'integer'"),
        ({"reference_summary": {"text": "s", "through_turn": 1.0}}, "through_turn: 1.0 is not of type 'integer'"),
        ({"question__at_turn": 10**30}, "question/at_turn: 1000000000000000000000000000000 is greater than"),
    ],
)
def test_a_number_that_is_not_a_whole_number_is_refused_with_one_sentence(changes, sentence):
    assert sentence in refused(example(**changes))


@pytest.mark.parametrize("depth", [500, 990])
def test_deep_nesting_is_refused_before_the_schema_check_even_on_a_deep_stack(depth):
    """Streamlit runs the page a few hundred frames deep; 500 levels of "types" raised RecursionError there."""
    text = nested(depth).encode()
    out: list[str] = []

    def deep_caller(frames: int) -> None:
        if frames:
            deep_caller(frames - 1)
            return
        try:
            parse_lesson_file("deep.json", text)
        except InvalidInput as exc:
            out.append(str(exc))

    thread = threading.Thread(target=deep_caller, args=(sys.getrecursionlimit() // 2,))
    thread.start()
    thread.join()
    assert out == ["Lesson 'deep' nests its data more than 10 levels deep."]


def test_a_wide_lesson_is_refused_by_its_count_of_values():
    assert refused(example(types=[[] for _ in range(300_000)])) == "Lesson 'crafted' holds more than 20,000 values."


NUL = "Lesson 'crafted' holds a NUL character, which cannot be stored or shown."
SURROGATE = "Lesson 'crafted' holds characters that are not valid Unicode (lone surrogates)."


@pytest.mark.parametrize(
    "raw, sentence",
    [
        (example(title="a\x00b"), NUL),
        (example(explanation="\ud800"), SURROGATE),
        (example(preferences=[{"key": "diet\udfff", "value": "v"}]), SURROGATE),
        (example(**{"\ud800": 1}), SURROGATE),
        (example(question__needle="Lis\x00bon"), NUL),
        (json.dumps(example(order=1)).replace('"order": 1', '"order": ' + "9" * 5000).encode(), "Lesson 'crafted' "),
        (json.dumps(example(order=1)).replace('"order": 1', '"order": NaN').encode(), "Lesson 'crafted' "),
    ],
    ids=["nul-title", "surrogate", "surrogate-key", "surrogate-name", "nul-needle", "5000-digits", "NaN"],
)
def test_text_that_cannot_be_shown_and_numbers_python_cannot_read_are_refused(raw, sentence):
    assert refused(raw).startswith(sentence)


def test_a_bad_file_in_the_lessons_folder_is_one_sentence_and_the_others_still_load(tmp_path):
    (tmp_path / "good.json").write_text(readme_example_lesson(), encoding="utf-8")
    (tmp_path / "float.json").write_text(json.dumps(example(question__at_turn=4.0)), encoding="utf-8")
    (tmp_path / "deep.json").write_text(nested(900), encoding="utf-8")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe")
    shelf = read_lessons(tmp_path)
    assert [lesson.slug for lesson in shelf.lessons] == ["good"]
    assert shelf.problems == (
        "The lesson file binary.json was skipped: The file is not UTF-8 text.",
        "The lesson file deep.json was skipped: Lesson 'deep' nests its data more than 10 levels deep.",
        "The lesson file float.json was skipped: Lesson 'float' does not follow the lesson schema: "
        "question/at_turn: 4.0 is not of type 'integer'",
    )


def test_the_lessons_page_shows_a_bad_stored_lesson_as_one_sentence(env_page, tmp_path, monkeypatch):
    from memstore import lessons as lessons_module

    (tmp_path / "good.json").write_text(readme_example_lesson(), encoding="utf-8")
    (tmp_path / "float.json").write_text(json.dumps(example(question__at_turn=4.0)), encoding="utf-8")
    monkeypatch.setattr(lessons_module, "bundled_lessons", lambda: read_lessons(tmp_path))
    at = run_page("app_pages/lessons.py", timeout=60)
    assert not at.exception
    assert [plain(w.value) for w in at.warning] == [
        "The lesson file float.json was skipped: Lesson 'float' does not follow the lesson schema: "
        "question/at_turn: 4.0 is not of type 'integer'"
    ]
    assert at.selectbox(key="lesson_slug").options == ["1. Does the window keep my city?"]


@pytest.fixture
def env_page(app_env, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'app.db'}")
    return app_env


# -- property: whatever passes validation runs ---------------------------------------------------------------


@cache
def embedder():
    from memstore.embeddings import WordLlamaEmbedder

    return WordLlamaEmbedder()


NUMBERS = ("order", "fact_turn", "at_turn", "budget_tokens", "window_turns", "max_tokens", "through_turn")
WORD = st.sampled_from(["Lisbon", "tea", "Ada", "blue", "x", "Lisbon is nice", "ümlaut", "a\u202eb", "  "])


@st.composite
def lessons(draw) -> dict:
    """Lesson dicts near the schema: the numbers mostly fit the script, and one of them may be any JSON number."""
    kind = draw(st.sampled_from(["sends", "lost_at", "under_budget", "stale", "practice"]))
    n = draw(st.integers(2, 6))
    odd_field = draw(st.sampled_from([None, *NUMBERS]))
    fact_turn = draw(st.integers(1, n - 1))
    number = {
        "order": draw(st.integers(1, 1000)),
        "fact_turn": fact_turn,
        "at_turn": draw(st.integers(fact_turn + 1, n)),
        "budget_tokens": draw(st.integers(1, 500)),
        "window_turns": draw(st.integers(0, 4)),
        "max_tokens": draw(st.integers(1, 300)),
        "through_turn": draw(st.integers(1, n)),
    }
    if odd_field is not None:  # what JSON can say and a count of turns or tokens is not: 4.0, true, 0, 3.5, 2**70
        whole = number[odd_field]
        number[odd_field] = draw(st.sampled_from([float(whole), float(whole), True, False, 0, -1, 3.5, 2**70]))
    turns = [{"user": draw(WORD) + f" {t}", "assistant": draw(WORD)} for t in range(n)]
    question: dict = {"kind": kind, "text": "Which?"}
    for field in ("fact_turn", "at_turn", "budget_tokens"):
        if draw(st.booleans()) or kind != "practice":
            question[field] = number[field]
    for field in ("needle", "update", "memory_type"):
        if draw(st.booleans()) or kind in ("sends", "stale", "lost_at"):
            question[field] = draw(st.sampled_from(TYPES)) if field == "memory_type" else draw(WORD).strip() or "y"
    if kind == "practice" or draw(st.booleans()):
        question["options"] = draw(st.lists(WORD, min_size=2, max_size=3))
        question["correct"] = draw(st.lists(st.sampled_from(question["options"]), max_size=2, unique=True))
    raw: dict = {
        "title": "T",
        "goal": "G",
        "idea": "window",
        "order": number["order"],
        "langchain": {"counterpart": "C", "readme": "R"},
        "question": question,
        "explanation": "E",
        "types": draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=4, unique=True)),
    }
    if kind == "lost_at" and draw(st.booleans()):
        raw["types"] = sorted({*raw["types"], question["memory_type"]})
    if kind != "practice" or draw(st.booleans()):
        raw["turns"] = turns
    if draw(st.booleans()):
        raw["settings"] = {"window_turns": number["window_turns"], "max_tokens": number["max_tokens"]}
    if draw(st.booleans()):
        raw["preferences"] = [{"key": draw(WORD).strip() or "k", "value": draw(WORD)}]
    if draw(st.booleans()):
        raw["reference_summary"] = {"text": "S", "through_turn": number["through_turn"]}
    if kind == "practice" or draw(st.booleans()):
        raw["practice"] = {"steps": ["Do it"], "check": "memory_cleared", "phrase": draw(WORD).strip() or "z"}
    return raw


def run_like_the_page(lesson: Lesson) -> None:
    """What the Lessons page does with a lesson: its caption, its choices, the replay and the reveal."""
    q = lesson.question
    f"{lesson.window_turns:d} {2 * lesson.window_turns:d} {lesson.max_tokens:,} {len(lesson.turns):d}"
    if q.kind == "practice" or lesson.practice is not None:
        practice_grades(lesson, list(q.options[:1]))
        return
    if q.kind == "lost_at":
        [str(t) for t in range(q.fact_turn + 1, len(lesson.turns) + 1)]
    upto = q.at_turn if q.kind in ("sends", "stale", "under_budget") else len(lesson.turns)
    facts = select_facts({}, [Preference(k, v, True, utcnow()) for k, v in lesson.preferences])
    results = replay(
        lesson.turns[:upto],
        [MemorySettings(t, lesson.window_turns, lesson.max_tokens) for t in lesson.types],
        FakeClient(),
        user_id="u",
        facts=facts,
        embedder=embedder(),
    )
    survival = fact_survival(results, q.fact_turn, q.needle) if q.kind == "sends" else None
    shown = reveal(lesson, [], results, survival)
    at_turn = shown.answer_turn or len(lesson.turns) if q.kind == "lost_at" else q.at_turn
    for result in results:
        result.frames[at_turn - 1].payload.messages  # noqa: B018 - the page shows this frame


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lessons())
def test_any_lesson_that_is_accepted_runs_like_the_page_without_raising(raw):
    try:
        lesson = parse_lesson("drawn", json.dumps(raw))
    except InvalidInput:
        event("refused")
        return  # refused with a sentence: what the page shows
    event(f"accepted: {lesson.question.kind}")
    try:
        run_like_the_page(lesson)
    except MemoryLabError:
        pass  # the project's own errors become a sentence on the page
